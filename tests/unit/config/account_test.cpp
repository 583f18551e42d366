#include "config/account.h"

#include <catch2/catch.hpp>

#include "temp_dir.h"

using namespace popbridge::config;
using namespace std::chrono_literals;

namespace {

Upstream good_upstream(std::string name) {
    Upstream up;
    up.name = std::move(name);
    up.host = "pop.example.net";
    up.username = "alice@example.net";
    up.secret_source = SecretSource::Password;
    up.secret = Secret("pw");
    return up;
}

Account good_account() {
    Account a;
    a.user = "alice";
    a.password_hash = "$y$j9T$salt$hash";
    a.upstreams.push_back(good_upstream("isp"));
    return a;
}

std::vector<std::string> messages(const Account& a) {
    std::vector<std::string> out;
    for (const Diagnostic& d : validate(a)) {
        out.push_back(d.field + ": " + d.message);
    }
    return out;
}

} // namespace

TEST_CASE("is_safe_user_name", "[config]") {
    for (const char* ok : {"alice", "a", "bob.smith", "x_y-z", "0", "a..b", "abc-"}) {
        INFO(ok);
        CHECK(is_safe_user_name(ok));
    }
    for (std::string bad : {"", ".alice", "..", "Alice", "al ice", "al/ice", "al@ice", "é"}) {
        INFO(bad);
        CHECK_FALSE(is_safe_user_name(bad));
    }
    CHECK(is_safe_user_name(std::string(64, 'a')));
    CHECK_FALSE(is_safe_user_name(std::string(65, 'a')));
}

TEST_CASE("is_valid_password_hash checks the crypt(3) shape only", "[config]") {
    for (const char* ok :
         {"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
          "$2b$12$abcdefghijklmnopqrstuu", "$2a$10$x", "$2y$10$x", "$6$rounds=5000$salt$hash",
          "$5$salt$hash", "$7$CU..../....$x", "$gy$j9T$a$b"}) {
        INFO(ok);
        CHECK(is_valid_password_hash(ok));
    }
    for (const char* bad : {"", "hunter2", "$y$", "$1$salt$md5", "$y$ spaces", "{SHA}abc",
                            "$argon2id$v=19$m=65536", "$6$salt$hash\n"}) {
        INFO(bad);
        CHECK_FALSE(is_valid_password_hash(bad));
    }
}

TEST_CASE("validate accepts a good account", "[config]") {
    CHECK(validate(good_account()).empty());
    Account local = good_account();
    local.upstreams.clear();
    CHECK(validate(local).empty());
}

TEST_CASE("validate reports each semantic problem", "[config]") {
    struct Case {
        const char* name;
        void (*change)(Account&);
        std::vector<std::string> expected;
    };
    const Case cases[] = {
        {"bad user",
         [](Account& a) { a.user = ".x"; },
         {"user: expected 1 to 64 characters from [a-z0-9._-], not starting with '.', got "
          "\".x\""}},
        {"bad hash",
         [](Account& a) { a.password_hash = "hunter2"; },
         {"password_hash: expected a crypt(3) hash starting with $y$, $gy$, $7$, $2b$, $2a$, "
          "$2y$, $6$ or $5$ (make one with mkpasswd)"}},
        {"tls none",
         [](Account& a) { a.upstreams[0].tls = TlsMode::None; },
         {"upstreams[0].tls: tls none sends the credentials in clear text; set "
          "allow_plaintext: true to allow it"}},
        {"tls none allowed",
         [](Account& a) {
             a.upstreams[0].tls = TlsMode::None;
             a.upstreams[0].allow_plaintext = true;
         },
         {}},
        {"duplicate names",
         [](Account& a) { a.upstreams.push_back(good_upstream("isp")); },
         {"upstreams[1].name: duplicate upstream name \"isp\""}},
        {"bad upstream name",
         [](Account& a) { a.upstreams[0].name = "my isp"; },
         {"upstreams[0].name: expected 1 to 64 characters from [A-Za-z0-9._-], got \"my isp\""}},
        {"no secret",
         [](Account& a) {
             a.upstreams[0].secret_source = SecretSource::None;
             a.upstreams[0].secret = Secret();
         },
         {"upstreams[0]: expected one of password, password_file, password_env"}},
        {"no token",
         [](Account& a) {
             a.upstreams[0].auth = AuthMethod::OAuthBearer;
             a.upstreams[0].secret_source = SecretSource::None;
         },
         {"upstreams[0]: expected one of token_file, token_command for auth oauthbearer"}},
        {"password for xoauth2",
         [](Account& a) { a.upstreams[0].auth = AuthMethod::XOAuth2; },
         {"upstreams[0].password: auth xoauth2 takes token_file or token_command, not "
          "password"}},
        {"token for pass",
         [](Account& a) {
             a.upstreams[0].secret_source = SecretSource::TokenCommand;
             a.upstreams[0].token_command = {"/bin/true"};
         },
         {"upstreams[0].token_command: auth pass takes password, password_file or "
          "password_env, not token_command"}},
        {"empty password",
         [](Account& a) { a.upstreams[0].secret = Secret(); },
         {"upstreams[0].password: the password is empty"}},
        {"poll too often",
         [](Account& a) { a.upstreams[0].poll_every = 9s; },
         {"upstreams[0].poll_every: expected at least 10s, got 9s"}},
        {"zero age",
         [](Account& a) {
             a.upstreams[0].keep_on_server = {Retention::Kind::DeleteAfterAge, 0s};
         },
         {"upstreams[0].keep_on_server: expected a duration above 0 (use false to delete "
          "right after download), got 0s"}},
        {"zero size",
         [](Account& a) { a.upstreams[0].max_message_size = 0; },
         {"upstreams[0].max_message_size: expected a size above 0, got 0"}},
        {"empty folder",
         [](Account& a) { a.upstreams[0].folder = ""; },
         {"upstreams[0].folder: expected a folder name without control characters, got "
          "\"\""}},
        {"port 0",
         [](Account& a) { a.upstreams[0].port = 0; },
         {"upstreams[0].port: expected a port between 1 and 65535, got 0"}},
        {"missing ca_file",
         [](Account& a) { a.upstreams[0].ca_file = "/nonexistent/ca.pem"; },
         {"upstreams[0].ca_file: file \"/nonexistent/ca.pem\" does not exist"}},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        Account a = good_account();
        c.change(a);
        CHECK(messages(a) == c.expected);
    }
}

TEST_CASE("validate checks that ca_file and token_file are readable files", "[config]") {
    popbridge::config::test::TempDir dir;
    auto ca = dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    auto token = dir.write("token", "tok\n");
    Account a = good_account();
    a.upstreams[0].ca_file = ca;
    CHECK(validate(a).empty());
    a.upstreams[0].ca_file = dir.path();
    CHECK(messages(a) == std::vector<std::string>{"upstreams[0].ca_file: expected a file, \"" +
                                                  dir.path().string() + "\" is a directory"});
    a.upstreams[0].ca_file.reset();
    a.upstreams[0].auth = AuthMethod::XOAuth2;
    a.upstreams[0].secret_source = SecretSource::TokenFile;
    a.upstreams[0].secret = Secret();
    a.upstreams[0].secret_file = token;
    CHECK(validate(a).empty());
    a.upstreams[0].secret_file = dir.path() / "missing";
    CHECK(messages(a) ==
          std::vector<std::string>{"upstreams[0].token_file: file \"" +
                                   (dir.path() / "missing").string() + "\" does not exist"});
}

TEST_CASE("validate uses the source map for positions", "[config]") {
    SourceMap where;
    where.file = "accounts.d/alice.yaml";
    where.positions["upstreams[0]"] = {4, 5};
    where.positions["upstreams[0].tls"] = {7, 10};
    Account a = good_account();
    a.upstreams[0].tls = TlsMode::None;
    auto diags = validate(a, where);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].to_string() == "accounts.d/alice.yaml:7:10: upstreams[0].tls: tls none sends "
                                  "the credentials in clear text; set allow_plaintext: true to "
                                  "allow it");
}

TEST_CASE("enum to_string and defaults", "[config]") {
    CHECK(to_string(TlsMode::StartTls) == "starttls");
    CHECK(to_string(AuthMethod::OAuthBearer) == "oauthbearer");
    CHECK(to_string(SecretSource::PasswordEnv) == "password_env");
    CHECK(to_string(Retention::Kind::DeleteAfterAge) == "delete_after_age");
    CHECK(to_string(ImportSince::Kind::Date) == "date");
    CHECK(default_port(TlsMode::Implicit) == 995);
    CHECK(default_port(TlsMode::StartTls) == 110);
    CHECK(default_port(TlsMode::None) == 110);
    CHECK(key_name(SecretSource::None).empty());
}

TEST_CASE("describe shows where secrets come from, never the values", "[config]") {
    Account a = good_account();
    a.source_file = "alice.yaml";
    a.upstreams[0].secret = Secret("CANARY-describe");
    Upstream tok = good_upstream("gmail");
    tok.auth = AuthMethod::XOAuth2;
    tok.secret_source = SecretSource::TokenCommand;
    tok.secret = Secret();
    tok.token_command = {"/usr/bin/oauth", "--client-secret", "CANARY-argv"};
    a.upstreams.push_back(tok);
    std::string text = describe(a);
    CHECK(text.find("CANARY") == std::string::npos);
    CHECK(text.find("credential from password") != std::string::npos);
    CHECK(text.find("/usr/bin/oauth (+2 args)") != std::string::npos);
    CHECK(text.rfind("account alice (alice.yaml), 2 upstream(s)\n", 0) == 0);
}
