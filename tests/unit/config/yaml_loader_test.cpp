#include "config/yaml_loader.h"

#include <cctype>
#include <cstdlib>
#include <sstream>

#include <catch2/catch.hpp>

#include "temp_dir.h"

using namespace popbridge::config;
using namespace std::chrono_literals;
using popbridge::config::test::TempDir;

namespace {

// "{dir}" in an expected string stands for the test's temporary directory.
std::string expand(std::string text, const TempDir& dir) {
    const std::string token = "{dir}";
    for (auto at = text.find(token); at != std::string::npos; at = text.find(token)) {
        text.replace(at, token.size(), dir.path().string());
    }
    return text;
}

std::vector<std::string> strings(const std::vector<Diagnostic>& diags) {
    std::vector<std::string> out;
    for (const Diagnostic& d : diags) {
        out.push_back(d.to_string());
    }
    return out;
}

struct BadCase {
    const char* name;
    std::string yaml;
    // Each expected diagnostic without the leading "<file>:".
    std::vector<std::string> expected;
};

void check_bad_account(const BadCase& c) {
    INFO(c.name);
    TempDir dir;
    auto file = dir.write("alice.yaml", c.yaml);
    auto result = load_account(file);
    REQUIRE_FALSE(result.has_value());
    std::vector<std::string> expected;
    for (const std::string& e : c.expected) {
        expected.push_back(file.string() + ":" + expand(e, dir));
    }
    CHECK(strings(result.error()) == expected);
}

constexpr const char* kHead = "user: alice\n"
                              "password_hash: \"$y$j9T$salt$hash\"\n"
                              "upstreams:\n";

std::string account(const std::string& upstreams) {
    return kHead + upstreams;
}

} // namespace

TEST_CASE("good account file: every field typed, defaults filled", "[config]") {
    TempDir dir;
    dir.write("secrets/isp.txt", "s3cret pass\n");
    dir.write("ca.pem", "-----BEGIN CERTIFICATE-----\n");
    dir.write("gmail.token", "token\n");
    ::setenv("PB_TEST_LOCAL_PASSWORD", "from-env", 1);
    auto file = dir.write("alice.yaml", R"(# alice's mail
user: alice
password_hash: "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o"
upstreams:
  - name: isp
    host: pop.example.net
    tls: starttls
    ca_file: ca.pem
    pin_sha256: "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"
    username: alice@example.net
    auth: apop
    password_file: secrets/isp.txt
    poll_every: 90s
    keep_on_server: 14d
    delete_upstream_on_expunge: true
    import_since: 2024-01-31
    max_message_size: 10MiB
    folder: Archive/ISP
  - name: Gmail.2
    host: pop.gmail.com
    username: alice@gmail.com
    auth: xoauth2
    token_command: /usr/bin/oauth-helper --user  alice
    keep_on_server: false
  - name: work
    host: pop.work.example
    username: alice
    auth: oauthbearer
    token_file: gmail.token
  - name: local
    host: 127.0.0.1
    port: 1110
    tls: none
    allow_plaintext: true
    username: alice
    auth: plain
    password_env: PB_TEST_LOCAL_PASSWORD
    import_since: 30d
  - name: inline
    host: "::1"
    username: "0123"
    password: "p: #w"
    poll_every: 600
    max_message_size: 1000000
    folder: INBOX
)");
    auto result = load_account(file);
    ::unsetenv("PB_TEST_LOCAL_PASSWORD");
    if (!result) {
        FAIL(strings(result.error()).front());
    }
    const Account& a = *result;
    CHECK(a.user == "alice");
    CHECK(a.password_hash == "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o");
    CHECK(a.source_file == file.string());
    REQUIRE(a.upstreams.size() == 5);

    Upstream isp;
    isp.name = "isp";
    isp.host = "pop.example.net";
    isp.port = 110;
    isp.tls = TlsMode::StartTls;
    isp.ca_file = dir.path() / "ca.pem";
    isp.pin_sha256 = *parse_sha256_fingerprint(
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    isp.username = "alice@example.net";
    isp.auth = AuthMethod::Apop;
    isp.secret_source = SecretSource::PasswordFile;
    isp.secret = Secret("s3cret pass");
    isp.secret_file = dir.path() / "secrets/isp.txt";
    isp.poll_every = 90s;
    isp.keep_on_server = {Retention::Kind::DeleteAfterAge, 14 * 86400s};
    isp.delete_upstream_on_expunge = true;
    isp.import_since = ImportSince{ImportSince::Kind::Date, {}, *parse_date("2024-01-31")};
    isp.max_message_size = 10 * 1024 * 1024;
    isp.folder = "Archive/ISP";
    CHECK(a.upstreams[0] == isp);
    CHECK(a.upstreams[0].secret.reveal() == "s3cret pass");

    Upstream gmail;
    gmail.name = "Gmail.2";
    gmail.host = "pop.gmail.com";
    gmail.port = 995;
    gmail.username = "alice@gmail.com";
    gmail.auth = AuthMethod::XOAuth2;
    gmail.secret_source = SecretSource::TokenCommand;
    gmail.token_command = {"/usr/bin/oauth-helper", "--user", "alice"};
    gmail.keep_on_server = {Retention::Kind::DeleteAfterDownload, 0s};
    CHECK(a.upstreams[1] == gmail);

    Upstream work;
    work.name = "work";
    work.host = "pop.work.example";
    work.username = "alice";
    work.auth = AuthMethod::OAuthBearer;
    work.secret_source = SecretSource::TokenFile;
    work.secret_file = dir.path() / "gmail.token";
    CHECK(a.upstreams[2] == work);

    Upstream local;
    local.name = "local";
    local.host = "127.0.0.1";
    local.port = 1110;
    local.tls = TlsMode::None;
    local.allow_plaintext = true;
    local.username = "alice";
    local.auth = AuthMethod::Plain;
    local.secret_source = SecretSource::PasswordEnv;
    local.secret_env = "PB_TEST_LOCAL_PASSWORD";
    local.secret = Secret("from-env");
    local.import_since = ImportSince{ImportSince::Kind::Age, 30 * 86400s, {}};
    CHECK(a.upstreams[3] == local);

    Upstream in;
    in.name = "inline";
    in.host = "::1";
    in.username = "0123";
    in.secret_source = SecretSource::Password;
    in.secret = Secret("p: #w");
    in.poll_every = 600s;
    in.max_message_size = 1'000'000;
    CHECK(a.upstreams[4] == in);
    // Defaults of an upstream that sets nothing optional.
    CHECK(in.port == 995);
    CHECK(in.tls == TlsMode::Implicit);
    CHECK(in.auth == AuthMethod::Pass);
    CHECK(in.keep_on_server.kind == Retention::Kind::Keep);
    CHECK_FALSE(in.import_since.has_value());
    CHECK(in.folder == "INBOX");
    CHECK_FALSE(in.delete_upstream_on_expunge);
}

TEST_CASE("account without upstreams, token_command as a list, .yml", "[config]") {
    TempDir dir;
    auto local_only = dir.write("bob.yml", "user: bob\npassword_hash: $2b$12$abc\n");
    auto r = load_account(local_only);
    REQUIRE(r.has_value());
    CHECK(r->user == "bob");
    CHECK(r->upstreams.empty());

    auto listed = dir.write("carol.yaml", account(R"(  - name: g
    host: pop.gmail.com
    username: carol@gmail.com
    auth: xoauth2
    token_command: ["/bin/sh", "-c", "oauth2 refresh --account 'carol x'"]
)"));
    auto r2 = load_account(listed);
    REQUIRE(r2.has_value());
    CHECK(r2->upstreams[0].token_command ==
          std::vector<std::string>{"/bin/sh", "-c", "oauth2 refresh --account 'carol x'"});
}

TEST_CASE("password_file: one trailing newline stripped, CRLF too, inner lines kept", "[config]") {
    struct Case {
        const char* content;
        const char* expected;
    };
    const Case cases[] = {{"pw", "pw"},       {"pw\n", "pw"},     {"pw\r\n", "pw"},
                          {"pw\n\n", "pw\n"}, {" pw \n", " pw "}, {"a\nb\n", "a\nb"}};
    for (const Case& c : cases) {
        INFO(c.content);
        TempDir dir;
        dir.write("pw", c.content);
        auto file = dir.write("a.yaml", account(R"(  - name: isp
    host: h
    username: u
    password_file: pw
)"));
        auto r = load_account(file);
        REQUIRE(r.has_value());
        CHECK(r->upstreams[0].secret.reveal() == c.expected);
    }
}

TEST_CASE("bad account files: exact diagnostics", "[config]") {
    const std::string tls_tsl = account(R"(  - name: isp
    host: pop.example.net
    username: alice@example.net
    tls: tsl
    password: x
)");
    const BadCase cases[] = {
        {"bad enum (the DESIGN example)",
         tls_tsl,
         {"7:10: upstreams[0].tls: expected one of implicit, starttls, none, got \"tsl\""}},
        {"unknown key with a close match, and the key it was meant to be is missing",
         "user: alice\n"
         "password_hash: \"$y$j9T$salt$hash\"\n"
         "upstreams:\n"
         "  - name: isp\n"
         "    host: pop.example.net\n"
         "    usrname: alice@example.net\n"
         "    password: x\n",
         {"4:5: upstreams[0].username: missing required key",
          "6:5: upstreams[0].usrname: unknown key, did you mean \"username\"?"}},
        {"unknown key without a close match",
         "user: alice\npassword_hash: $y$j9T$s$h\ncolour: blue\n",
         {"3:1: colour: unknown key, expected one of user, password_hash, upstreams"}},
        {"wrong types, all reported",
         "user: alice\n"
         "password_hash: \"$y$j9T$salt$hash\"\n"
         "upstreams:\n"
         "  - name: isp\n"
         "    host: pop.example.net\n"
         "    port: [995]\n"
         "    username: alice@example.net\n"
         "    password: x\n"
         "    delete_upstream_on_expunge: yes\n"
         "    folder: {a: b}\n",
         {"6:11: upstreams[0].port: expected an integer between 1 and 65535, got a list",
          "9:33: upstreams[0].delete_upstream_on_expunge: expected true or false, got \"yes\"",
          "10:13: upstreams[0].folder: expected a string, got a mapping"}},
        {"upstreams is not a list",
         "user: alice\npassword_hash: $y$j9T$s$h\nupstreams: {a: b}\n",
         {"3:12: upstreams: expected a list of upstreams, got a mapping"}},
        {"upstream item is not a mapping; later indexes still match the file",
         "user: alice\n"
         "password_hash: $y$j9T$s$h\n"
         "upstreams:\n"
         "  - isp\n"
         "  - name: two\n"
         "    host: h\n"
         "    username: u\n"
         "    tls: bogus\n"
         "    password: x\n",
         {"4:5: upstreams[0]: expected a mapping, got \"isp\"",
          "8:10: upstreams[1].tls: expected one of implicit, starttls, none, got \"bogus\""}},
        {"bad auth",
         account(R"(  - name: isp
    host: h
    username: u
    auth: login
    password: x
)"),
         {"7:11: upstreams[0].auth: expected one of pass, apop, plain, xoauth2, oauthbearer, "
          "got \"login\""}},
        {"missing required keys", "user: alice\n", {"1:1: password_hash: missing required key"}},
        {"missing upstream keys",
         "user: alice\npassword_hash: $y$j9T$s$h\nupstreams:\n  - name: x\n",
         {"4:5: upstreams[0].host: missing required key",
          "4:5: upstreams[0].username: missing required key",
          "4:5: upstreams[0]: expected one of password, password_file, password_env"}},
        {"empty required value",
         "user:\npassword_hash: $y$j9T$s$h\n",
         {"1:1: user: expected a value, got an empty value"}},
        {"tls none without allow_plaintext",
         account(R"(  - name: isp
    host: h
    username: u
    tls: none
    password: x
)"),
         {"7:10: upstreams[0].tls: tls none sends the credentials in clear text; set "
          "allow_plaintext: true to allow it"}},
        {"two secret sources",
         account(R"(  - name: isp
    host: h
    username: u
    password: x
    password_env: HOME
    token_file: t
)"),
         {"8:5: upstreams[0].password_env: only one of password, password_file, password_env, "
          "token_file, token_command may be set; password is already set",
          "9:5: upstreams[0].token_file: only one of password, password_file, password_env, "
          "token_file, token_command may be set; password is already set"}},
        {"bad duration, size, retention, date, fingerprint",
         account(R"(  - name: isp
    host: h
    username: u
    password: x
    poll_every: 5x
    max_message_size: 50 MBs
    keep_on_server: forever
    import_since: 2023-02-30
    pin_sha256: abc
)"),
         {"8:17: upstreams[0].poll_every: expected a duration such as 90s, 5m, 2h, 14d or 1w, "
          "got \"5x\"",
          "9:23: upstreams[0].max_message_size: expected a size such as 1024, 50MB or 10MiB "
          "(units B, KB, MB, GB, KiB, MiB, GiB), got \"50 MBs\"",
          "10:21: upstreams[0].keep_on_server: expected true, false or a duration such as 14d, "
          "got \"forever\"",
          "11:19: upstreams[0].import_since: expected a date that exists, YYYY-MM-DD, got "
          "\"2023-02-30\"",
          "12:17: upstreams[0].pin_sha256: expected a SHA-256 fingerprint: 64 hex digits, "
          "optionally as colon-separated pairs, got \"abc\""}},
        {"poll_every below the minimum, import_since not a duration",
         account(R"(  - name: isp
    host: h
    username: u
    password: x
    poll_every: 5s
    import_since: soon
)"),
         {"8:17: upstreams[0].poll_every: expected at least 10s, got 5s",
          "9:19: upstreams[0].import_since: expected a duration such as 30d or a date "
          "YYYY-MM-DD, got \"soon\""}},
        {"port out of range",
         account(R"(  - name: isp
    host: h
    port: 0
    username: u
    password: x
)"),
         {"6:11: upstreams[0].port: expected an integer between 1 and 65535, got \"0\""}},
        {"YAML syntax error", "user: alice: bob\n", {"1:12: YAML syntax error: illegal map value"}},
        {"YAML syntax error: unclosed flow",
         "user: alice\npassword_hash: $y$j9T$s$h\nupstreams: [\n  {name: isp\n",
         {"5:1: YAML syntax error: end of map flow not found"}},
        {"two documents",
         "user: alice\n---\nuser: bob\n",
         {"2:1: expected one YAML document, found 2"}},
        // yaml-cpp 0.7's LoadAll never returns on these (found by fuzz_config).
        {"lone comma",
         ",",
         {"1:1: YAML syntax error: unexpected character outside any mapping or list"}},
        {"comma on its own line",
         "\n,\n",
         {"2:1: YAML syntax error: unexpected character outside any mapping or list"}},
        {"mapping then a comma",
         "user: alice\n,\n",
         {"2:1: YAML syntax error: end of map not found"}},
        {"empty file", "", {"1:1: expected a mapping of keys, the file is empty"}},
        {"not a mapping", "- alice\n", {"1:1: expected a mapping of keys, got a list"}},
        {"duplicate upstream names",
         account(R"(  - name: isp
    host: a
    username: u
    password: x
  - name: isp
    host: b
    username: u
    password: y
)"),
         {"8:11: upstreams[1].name: duplicate upstream name \"isp\""}},
        {"bad upstream name",
         account(R"(  - name: my isp
    host: a
    username: u
    password: x
)"),
         {"4:11: upstreams[0].name: expected 1 to 64 characters from [A-Za-z0-9._-], got "
          "\"my isp\""}},
        {"bad user name",
         "user: Alice\npassword_hash: $y$j9T$s$h\n",
         {"1:7: user: expected 1 to 64 characters from [a-z0-9._-], not starting with '.', "
          "got \"Alice\""}},
        {"user name starting with a dot",
         "user: .alice\npassword_hash: $y$j9T$s$h\n",
         {"1:7: user: expected 1 to 64 characters from [a-z0-9._-], not starting with '.', "
          "got \".alice\""}},
        {"bad password hash",
         "user: alice\npassword_hash: hunter2\n",
         {"2:16: password_hash: expected a crypt(3) hash starting with $y$, $gy$, $7$, $2b$, "
          "$2a$, $2y$, $6$ or $5$ (make one with mkpasswd)"}},
        {"duplicate key",
         "user: alice\nuser: bob\npassword_hash: $y$j9T$s$h\n",
         {"2:1: user: duplicate key"}},
        {"auth xoauth2 with a password",
         account(R"(  - name: isp
    host: h
    username: u
    auth: xoauth2
    password: x
)"),
         {"8:15: upstreams[0].password: auth xoauth2 takes token_file or token_command, not "
          "password"}},
        {"password_file missing",
         account(R"(  - name: isp
    host: h
    username: u
    password_file: missing.txt
)"),
         {"7:20: upstreams[0].password_file: cannot read \"{dir}/missing.txt\": No such file "
          "or directory"}},
        {"password_env not set",
         account(R"(  - name: isp
    host: h
    username: u
    password_env: PB_TEST_SURELY_UNSET_VARIABLE
)"),
         {"7:19: upstreams[0].password_env: environment variable "
          "PB_TEST_SURELY_UNSET_VARIABLE is not set"}},
        {"password_env not a name",
         account(R"(  - name: isp
    host: h
    username: u
    password_env: "$HOME"
)"),
         {"7:19: upstreams[0].password_env: expected an environment variable name, got "
          "\"$HOME\""}},
        {"token_file missing",
         account(R"(  - name: isp
    host: h
    username: u
    auth: oauthbearer
    token_file: /nonexistent/token
)"),
         {"8:17: upstreams[0].token_file: file \"/nonexistent/token\" does not exist"}},
        {"ca_file missing",
         account(R"(  - name: isp
    host: h
    username: u
    password: x
    ca_file: ca.pem
)"),
         {"8:14: upstreams[0].ca_file: file \"{dir}/ca.pem\" does not exist"}},
    };
    for (const BadCase& c : cases) {
        check_bad_account(c);
    }
}

TEST_CASE("password_file that is empty after the newline", "[config]") {
    TempDir dir;
    dir.write("pw", "\n");
    auto file = dir.write("a.yaml", account(R"(  - name: isp
    host: h
    username: u
    password_file: pw
)"));
    auto r = load_account(file);
    REQUIRE_FALSE(r.has_value());
    CHECK(strings(r.error()) ==
          std::vector<std::string>{file.string() +
                                   ":7:20: upstreams[0].password_file: "
                                   "file \"" +
                                   (dir.path() / "pw").string() + "\" is empty"});
}

TEST_CASE("unreadable account file", "[config]") {
    TempDir dir;
    auto r = load_account(dir.path() / "nope.yaml");
    REQUIRE_FALSE(r.has_value());
    CHECK(strings(r.error()) ==
          std::vector<std::string>{(dir.path() / "nope.yaml").string() +
                                   ": cannot read file: No such file or directory"});
}

TEST_CASE("load_accounts: a bad file disables only its account", "[config]") {
    TempDir dir;
    const auto accounts = dir.path() / "accounts.d";
    dir.write("accounts.d/alice.yaml", "user: alice\npassword_hash: $y$j9T$s$h\n");
    dir.write("accounts.d/bob.yml", account(R"(  - name: isp
    host: h
    username: u
    tls: tsl
    password: x
)"));
    dir.write("accounts.d/carol.yaml", "user: alice\npassword_hash: $6$s$h\n");
    dir.write("accounts.d/dave.yml", "user: dave\npassword_hash: $2b$10$x\n");
    dir.write("accounts.d/.hidden.yaml", "not: [valid\n");
    dir.write("accounts.d/notes.txt", "not yaml at all: [\n");
    dir.write("accounts.d/alice.yaml.bak", "user: alice\n");
    std::filesystem::create_directories(accounts / "sub.yaml");

    AccountsLoad load = load_accounts(accounts);
    REQUIRE(load.accounts.size() == 2);
    CHECK(load.accounts[0].user == "alice");
    CHECK(load.accounts[0].source_file == (accounts / "alice.yaml").string());
    CHECK(load.accounts[1].user == "dave");
    CHECK(load.disabled_files == std::vector<std::string>{(accounts / "bob.yml").string(),
                                                          (accounts / "carol.yaml").string()});
    CHECK(strings(load.errors) ==
          std::vector<std::string>{
              (accounts / "bob.yml").string() +
                  ":7:10: upstreams[0].tls: expected one of implicit, starttls, none, got \"tsl\"",
              (accounts / "carol.yaml").string() +
                  ":1:7: user: user \"alice\" is already "
                  "defined in " +
                  (accounts / "alice.yaml").string() + "; this file is disabled"});
}

TEST_CASE("load_accounts: missing directory, empty directory", "[config]") {
    TempDir dir;
    AccountsLoad missing = load_accounts(dir.path() / "none");
    CHECK(missing.accounts.empty());
    CHECK(strings(missing.errors) ==
          std::vector<std::string>{(dir.path() / "none").string() +
                                   ": cannot read accounts directory: No such file or directory"});
    AccountsLoad empty = load_accounts(dir.path());
    CHECK(empty.accounts.empty());
    CHECK(empty.errors.empty());
    CHECK(empty.disabled_files.empty());
}

TEST_CASE("secrets never appear in diagnostics or describe (canary)", "[config]") {
    // Starts with hex digits so that a bad \U escape around it would show up in yaml-cpp's
    // "invalid unicode: ..." message if the loader passed that detail on.
    const std::string canary = "DEADBEEF-CANARY-7f3e9a1c";
    TempDir dir;
    ::setenv("PB_TEST_SECRET_ENV", canary.c_str(), 1);
    dir.write("accounts.d/pw.txt", canary + "\n");
    dir.write("accounts.d/a.yaml", "user: a\npassword_hash: " + canary + R"(
upstreams:
  - name: one
    host: h
    username: u
    password: )" + canary + R"(
    password_file: pw.txt
    password_env: PB_TEST_SECRET_ENV
    tls: none
  - name: two
    host: h
    username: u
    password: [)" + canary + R"(]
  - name: three
    host: h
    username: u
    auth: xoauth2
    password_file: pw.txt
  - name: four
    host: h
    username: u
    auth: xoauth2
    password_env: PB_TEST_SECRET_ENV
  - name: five
    host: h
    username: u
    pasword: )" + canary + R"(
    password: {)" + canary + R"(: 1}
)");
    dir.write("accounts.d/b.yaml", "user: b\npassword_hash: $y$j9T$s$h\nupstreams:\n"
                                   "  - name: x\n    host: h\n    username: u\n"
                                   "    password: \"\\U" +
                                       canary + "\"\n");
    dir.write("accounts.d/c.yaml", "user: c\npassword_hash: $y$j9T$s$h\nupstreams:\n"
                                   "  - name: x\n    host: h\n    username: u\n"
                                   "    password_env: PB_TEST_SECRET_ENV\n");
    dir.write("accounts.d/d.yaml", "user: d\npassword_hash: $y$j9T$s$h\nupstreams:\n"
                                   "  - name: x\n    host: h\n    username: u\n"
                                   "    password_file: pw.txt\n");
    AccountsLoad load = load_accounts(dir.path() / "accounts.d");
    ::unsetenv("PB_TEST_SECRET_ENV");

    CHECK(load.disabled_files.size() == 2);
    REQUIRE(load.errors.size() >= 8);
    for (const Diagnostic& d : load.errors) {
        INFO(d.to_string());
        std::string text = d.to_string();
        for (char& ch : text) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        CHECK(text.find("canary") == std::string::npos);
        CHECK(text.find("deadbeef") == std::string::npos);
    }
    REQUIRE(load.accounts.size() == 2);
    for (const Account& a : load.accounts) {
        CHECK(a.upstreams.at(0).secret.reveal() == canary);
        CHECK(describe(a).find(canary) == std::string::npos);
        std::ostringstream os;
        os << a.upstreams[0].secret;
        CHECK(os.str() == "***");
    }
}

TEST_CASE("good daemon file: exact struct, relative paths resolved", "[config]") {
    TempDir dir;
    dir.write("tls/cert.pem", "cert");
    dir.write("tls/key.pem", "key");
    auto file = dir.write("popbridge.yaml", R"(data_dir: data
accounts_dir: /etc/popbridge/accounts.d
imap:
  listen: ["127.0.0.1:0", "[::1]:1143"]
  listen_tls: ["0.0.0.0:993"]
  tls: {cert: tls/cert.pem, key: ./tls/../tls/key.pem}
  allow_plaintext_auth: true
  login_delay: 100ms
  login_delay_max: 2s
  timeouts: {tls_handshake: 5s, login: 2m, autologout: 45m}
  limits:
    max_line_pre_auth: 4KiB
    max_line: 100000
    max_bad_commands_pre_auth: 2
    max_bad_commands: 50
    max_connections: 500
  structure_cache: 8MiB
admin: {listen: "127.0.0.1:9143"}
log: {level: debug, format: json}
poll: {max_connections: 4, connect_timeout: 10s, read_timeout: 2m, token_command_timeout: 5s}
)");
    auto r = load_daemon_config(file);
    if (!r) {
        FAIL(strings(r.error()).front());
    }
    DaemonConfig expected;
    expected.data_dir = dir.path() / "data";
    expected.accounts_dir = "/etc/popbridge/accounts.d";
    expected.imap.listen = {{"127.0.0.1", 0}, {"::1", 1143}};
    expected.imap.listen_tls = {{"0.0.0.0", 993}};
    expected.imap.tls = TlsFiles{dir.path() / "tls/cert.pem", dir.path() / "tls/key.pem"};
    expected.imap.allow_plaintext_auth = true;
    expected.imap.login_delay = std::chrono::milliseconds(100);
    expected.imap.login_delay_max = std::chrono::seconds(2);
    expected.admin.listen = Endpoint{"127.0.0.1", 9143};
    expected.log = {LogLevel::Debug, LogFormat::Json};
    expected.imap.timeouts = {std::chrono::seconds(5), std::chrono::minutes(2),
                              std::chrono::minutes(45)};
    expected.imap.limits = {4096, 100000, 2, 50, 500};
    expected.imap.structure_cache = 8 * 1024 * 1024;
    expected.poll.max_connections = 4;
    expected.poll.connect_timeout = std::chrono::seconds(10);
    expected.poll.read_timeout = std::chrono::minutes(2);
    expected.poll.token_command_timeout = std::chrono::seconds(5);
    expected.source_file = file.string();
    CHECK(*r == expected);
}

TEST_CASE("minimal daemon file gets the defaults", "[config]") {
    TempDir dir;
    auto file = dir.write("p.yaml", "data_dir: /d\naccounts_dir: a\nimap: {listen: "
                                    "\"127.0.0.1:0\"}\n");
    auto r = load_daemon_config(file);
    REQUIRE(r.has_value());
    CHECK(r->accounts_dir == dir.path() / "a");
    CHECK(r->imap.listen == std::vector<Endpoint>{{"127.0.0.1", 0}});
    CHECK(r->imap.listen_tls.empty());
    CHECK_FALSE(r->imap.tls.has_value());
    CHECK_FALSE(r->imap.allow_plaintext_auth);
    CHECK(r->imap.login_delay == std::chrono::seconds(2));
    CHECK(r->imap.login_delay_max == std::chrono::seconds(15));
    CHECK_FALSE(r->admin.listen.has_value());
    CHECK(r->log.level == LogLevel::Info);
    CHECK(r->log.format == LogFormat::Text);
    CHECK(r->poll.max_connections == 8);
    // DESIGN.md "Bad input" values.
    CHECK(r->imap.timeouts.tls_handshake == std::chrono::seconds(10));
    CHECK(r->imap.timeouts.login == std::chrono::seconds(60));
    CHECK(r->imap.timeouts.autologout == std::chrono::minutes(31));
    CHECK(r->imap.limits.max_line_pre_auth == 8 * 1024);
    CHECK(r->imap.limits.max_line == 64 * 1024);
    CHECK(r->imap.limits.max_bad_commands_pre_auth == 3);
    CHECK(r->imap.limits.max_bad_commands == 20);
    CHECK(r->imap.limits.max_connections == 20000);
    CHECK(r->imap.structure_cache == 32 * 1024 * 1024);
    CHECK(r->poll.connect_timeout == std::chrono::seconds(30));
    CHECK(r->poll.read_timeout == std::chrono::seconds(60));
    CHECK(r->poll.token_command_timeout == std::chrono::seconds(30));
}

TEST_CASE("bad daemon files: exact diagnostics", "[config]") {
    const BadCase cases[] = {
        {"everything at once",
         "data_dir: /var/lib/popbridge\n"
         "acounts_dir: /etc/x\n"
         "imap:\n"
         "  listen: [\"0.0.0.0:99999\"]\n"
         "  listen_tls: [\"[::]:993\"]\n"
         "log: {level: verbose}\n"
         "poll: {max_connections: 0}\n",
         {"1:1: accounts_dir: missing required key",
          "2:1: acounts_dir: unknown key, did you mean \"accounts_dir\"?",
          "4:12: imap.listen[0]: expected a port between 0 and 65535 in host:port, got "
          "\"0.0.0.0:99999\"",
          "5:15: imap.listen_tls: listen_tls needs imap.tls: {cert, key}",
          "6:14: log.level: expected one of trace, debug, info, warn, error, got \"verbose\"",
          "7:25: poll.max_connections: expected an integer between 1 and 10000, got \"0\""}},
        {"missing imap, wrong section type",
         "data_dir: /d\naccounts_dir: /a\nlog: debug\nadmin: {listen: nowhere}\n",
         {"1:1: imap: missing required key", "3:6: log: expected a mapping, got \"debug\"",
          "4:17: admin.listen: expected an address host:port such as 0.0.0.0:993 or [::1]:143, "
          "got \"nowhere\""}},
        {"tls without key, cert missing",
         "data_dir: /d\naccounts_dir: /a\nimap:\n  listen_tls: [\"[::]:993\"]\n"
         "  tls: {cert: c.pem}\n",
         {"5:8: imap.tls.key: missing required key",
          "5:15: imap.tls.cert: file \"{dir}/c.pem\" does not exist"}},
        {"tls files that do not exist",
         "data_dir: /d\naccounts_dir: /a\nimap:\n  listen_tls: [\"[::]:993\"]\n"
         "  tls:\n    cert: c.pem\n    key: /nonexistent/k.pem\n",
         {"6:11: imap.tls.cert: file \"{dir}/c.pem\" does not exist",
          "7:10: imap.tls.key: file \"/nonexistent/k.pem\" does not exist"}},
        {"plain listener on a public address",
         "data_dir: /d\naccounts_dir: /a\nimap:\n  listen:\n    - 127.0.0.1:1143\n"
         "    - 0.0.0.0:143\n",
         {"6:7: imap.listen[1]: clients on 0.0.0.0:143 could not log in: set imap.tls (for "
          "STARTTLS) or imap.allow_plaintext_auth: true, or listen on a loopback address"}},
        {"bool wrong",
         "data_dir: /d\naccounts_dir: /a\nimap:\n  listen: 127.0.0.1:0\n"
         "  allow_plaintext_auth: 1\n",
         {"5:25: imap.allow_plaintext_auth: expected true or false, got \"1\""}},
        {"login delays",
         "data_dir: /d\naccounts_dir: /a\nimap:\n  listen: 127.0.0.1:0\n"
         "  login_delay: 2 s\n  login_delay_max: 1m\n",
         {"5:16: imap.login_delay: expected a duration such as 250ms, 2s or 1m, got \"2 s\"",
          "6:20: imap.login_delay_max: expected a duration between 1ms and 25s, got 1m"}},
        {"login delay above its max",
         "data_dir: /d\naccounts_dir: /a\nimap:\n  listen: 127.0.0.1:0\n"
         "  login_delay: 3s\n  login_delay_max: 2s\n",
         {"6:20: imap.login_delay_max: must not be below imap.login_delay (3s), got 2s"}},
        {"limits and timeouts out of range, unknown keys",
         "data_dir: /d\naccounts_dir: /a\nimap:\n  listen: 127.0.0.1:0\n"
         "  timeouts: {tls_handshake: 0, login: soon, autologout: 10m, idle: 5m}\n"
         "  limits:\n"
         "    max_line: 100\n"
         "    max_line_pre_auth: 8 KB\n"
         "    max_bad_commands: 0\n"
         "    max_connections: lots\n"
         "    max_literal: 1MB\n"
         "  structure_cache: 32GiB\n"
         "poll: {connect_timeout: 20m, read_timeout: 0s, token_command_timeout: 1.5s}\n",
         {"5:29: imap.timeouts.tls_handshake: expected a duration between 1s and 1h, got 0s",
          "5:39: imap.timeouts.login: expected a duration such as 90s, 5m, 2h, 14d or 1w, got "
          "\"soon\"",
          "5:57: imap.timeouts.autologout: expected a duration between 30m and 1d, got 10m "
          "(RFC 3501 section 5.4 requires at least 30 minutes)",
          "5:62: imap.timeouts.idle: unknown key, expected one of tls_handshake, login, "
          "autologout",
          "7:15: imap.limits.max_line: expected a size between 1KiB and 16MiB, got 100B",
          "9:23: imap.limits.max_bad_commands: expected an integer between 1 and 1000, got \"0\"",
          "10:22: imap.limits.max_connections: expected an integer between 1 and 1000000, got "
          "\"lots\"",
          "11:5: imap.limits.max_literal: unknown key, expected one of max_line_pre_auth, "
          "max_line, max_bad_commands_pre_auth, max_bad_commands, max_connections",
          "12:20: imap.structure_cache: expected a size between 0B and 16GiB, got 32GiB",
          "13:25: poll.connect_timeout: expected a duration between 1s and 10m, got 20m",
          "13:44: poll.read_timeout: expected a duration between 1s and 1h, got 0s",
          "13:71: poll.token_command_timeout: expected a duration such as 90s, 5m, 2h, 14d or "
          "1w, got \"1.5s\""}},
        {"syntax error",
         "data_dir: /d\n  accounts_dir: /a\n",
         {"2:15: YAML syntax error: illegal map value"}},
    };
    for (const BadCase& c : cases) {
        INFO(c.name);
        TempDir dir;
        auto file = dir.write("popbridge.yaml", c.yaml);
        auto result = load_daemon_config(file);
        REQUIRE_FALSE(result.has_value());
        std::vector<std::string> expected;
        for (const std::string& e : c.expected) {
            expected.push_back(file.string() + ":" + expand(e, dir));
        }
        CHECK(strings(result.error()) == expected);
    }
}

TEST_CASE("unreadable daemon file", "[config]") {
    TempDir dir;
    auto r = load_daemon_config(dir.path() / "missing.yaml");
    REQUIRE_FALSE(r.has_value());
    CHECK(strings(r.error()) ==
          std::vector<std::string>{(dir.path() / "missing.yaml").string() +
                                   ": cannot read file: No such file or directory"});
}

TEST_CASE("parse_account and parse_daemon_config work on text in memory", "[config]") {
    auto a = parse_account("user: zed\npassword_hash: $5$s$h\n", "/nowhere/zed.yaml");
    REQUIRE(a.has_value());
    CHECK(a->source_file == "/nowhere/zed.yaml");
    auto d = parse_daemon_config("data_dir: d\naccounts_dir: a\nimap: {listen: ['[::1]:0']}\n",
                                 "/etc/pb/popbridge.yaml");
    REQUIRE(d.has_value());
    CHECK(d->data_dir == "/etc/pb/d");
    auto bad = parse_daemon_config("data_dir: [", "x.yaml");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().at(0).file == "x.yaml");
    CHECK(bad.error().at(0).line > 0);
}

TEST_CASE("the examples of DESIGN.md load (paths moved into a temp dir)", "[config]") {
    TempDir dir;
    dir.write("tls/cert.pem", "cert");
    dir.write("tls/key.pem", "key");
    dir.write("isp-ca.pem", "ca");
    dir.write("alice-isp", "secret\n");
    const std::string d = dir.path().string();
    auto daemon = dir.write("popbridge.yaml", R"(# popbridge.yaml
data_dir: /var/lib/popbridge
accounts_dir: /etc/popbridge/accounts.d
imap:
  listen: ["0.0.0.0:143"]          # STARTTLS
  listen_tls: ["0.0.0.0:993"]      # implicit TLS
  tls: {cert: )" + d + "/tls/cert.pem, key: " + d +
                                                  R"(/tls/key.pem}
admin: {listen: "127.0.0.1:9143"}  # /metrics, /healthz, /status
log: {level: info, format: text}
)");
    auto cfg = load_daemon_config(daemon);
    if (!cfg) {
        FAIL(strings(cfg.error()).front());
    }
    CHECK(cfg->imap.listen_tls == std::vector<Endpoint>{{"0.0.0.0", 993}});

    auto alice = dir.write("accounts.d/alice.yaml", R"(# accounts.d/alice.yaml
user: alice
password_hash: "$y$j9T$..."        # crypt(3) format: yescrypt, bcrypt, sha512-crypt
upstreams:                         # optional: a user may have none
  - name: isp
    host: pop.example.net
    port: 995
    tls: implicit                  # implicit | starttls | none (none needs allow_plaintext: true)
    ca_file: )" + d + R"(/isp-ca.pem   # optional; default: the system trust store
    username: alice@example.net
    auth: pass                     # pass | apop | plain | xoauth2 | oauthbearer
    password_file: )" + d + R"(/alice-isp   # or password: / password_env:
    poll_every: 5m
    keep_on_server: 14d            # false: delete after download; true: keep; or a duration
    delete_upstream_on_expunge: false
    import_since: 30d              # optional first-sync window
    max_message_size: 50MB
    folder: INBOX
)");
    auto account = load_account(alice);
    if (!account) {
        FAIL(strings(account.error()).front());
    }
    CHECK(account->upstreams.at(0).secret.reveal() == "secret");
    CHECK(account->upstreams.at(0).max_message_size == kDefaultMaxMessageSize);
}
