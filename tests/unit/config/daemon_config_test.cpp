#include "config/daemon_config.h"

#include <functional>

#include <catch2/catch.hpp>

#include "temp_dir.h"

using namespace popbridge::config;

namespace {

std::vector<std::string> messages(const DaemonConfig& c) {
    std::vector<std::string> out;
    for (const Diagnostic& d : validate(c)) {
        out.push_back(d.field + ": " + d.message);
    }
    return out;
}

DaemonConfig good_config() {
    DaemonConfig c;
    c.data_dir = "/var/lib/popbridge";
    c.accounts_dir = "/etc/popbridge/accounts.d";
    c.imap.listen = {{"127.0.0.1", 0}};
    return c;
}

} // namespace

TEST_CASE("DaemonConfig validate", "[config]") {
    popbridge::config::test::TempDir dir;
    auto cert = dir.write("cert.pem", "c");
    auto key = dir.write("key.pem", "k");
    struct Case {
        const char* name;
        std::function<void(DaemonConfig&)> change;
        std::vector<std::string> expected;
    };
    const Case cases[] = {
        {"good", [](DaemonConfig&) {}, {}},
        {"no dirs",
         [](DaemonConfig& c) {
             c.data_dir.clear();
             c.accounts_dir.clear();
         },
         {"data_dir: expected a directory path", "accounts_dir: expected a directory path"}},
        {"no listener",
         [](DaemonConfig& c) { c.imap.listen.clear(); },
         {"imap: expected at least one address in listen or listen_tls"}},
        {"listen_tls without tls",
         [](DaemonConfig& c) {
             c.imap.listen_tls = {{"::", 993}};
         },
         {"imap.listen_tls: listen_tls needs imap.tls: {cert, key}"}},
        {"tls files present",
         [&](DaemonConfig& c) {
             c.imap.listen_tls = {{"::", 993}};
             c.imap.tls = TlsFiles{cert, key};
         },
         {}},
        {"tls files missing",
         [&](DaemonConfig& c) {
             c.imap.tls = TlsFiles{dir.path() / "nope.pem", key};
         },
         {"imap.tls.cert: file \"" + (dir.path() / "nope.pem").string() + "\" does not exist"}},
        {"public plain listener",
         [](DaemonConfig& c) {
             c.imap.listen = {{"127.0.0.1", 143}, {"0.0.0.0", 143}};
         },
         {"imap.listen[1]: clients on 0.0.0.0:143 could not log in: set imap.tls (for "
          "STARTTLS) or imap.allow_plaintext_auth: true, or listen on a loopback address"}},
        {"public plain listener allowed",
         [](DaemonConfig& c) {
             c.imap.listen = {{"0.0.0.0", 143}};
             c.imap.allow_plaintext_auth = true;
         },
         {}},
        {"address twice",
         [](DaemonConfig& c) {
             c.imap.listen = {{"127.0.0.1", 1143}, {"127.0.0.1", 0}, {"127.0.0.1", 0}};
             c.admin.listen = Endpoint{"127.0.0.1", 1143};
         },
         {"admin.listen: address 127.0.0.1:1143 is already used by imap"}},
        {"login_delay 0",
         [](DaemonConfig& c) { c.imap.login_delay = std::chrono::milliseconds(0); },
         {"imap.login_delay: expected a duration between 1ms and 25s, got 0s"}},
        {"login delays in order",
         [](DaemonConfig& c) {
             c.imap.login_delay = std::chrono::milliseconds(100);
             c.imap.login_delay_max = std::chrono::milliseconds(800);
         },
         {}},
        {"max_connections 0",
         [](DaemonConfig& c) { c.poll.max_connections = 0; },
         {"poll.max_connections: expected an integer between 1 and 10000, got 0"}},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        DaemonConfig config = good_config();
        c.change(config);
        CHECK(messages(config) == c.expected);
    }
}

TEST_CASE("log enums to_string", "[config]") {
    CHECK(to_string(LogLevel::Warn) == "warn");
    CHECK(to_string(LogLevel::Trace) == "trace");
    CHECK(to_string(LogFormat::Json) == "json");
}
