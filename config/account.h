// One local user and the upstream POP3 mailboxes popbridge polls for it: the typed form of
// an account file (accounts.d/<name>.yaml, see docs/configuration.md). Plain structs plus
// validate(); reading YAML is yaml_loader's job.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "config/parse.h"
#include "config/secret.h"

namespace popbridge::config {

// How the connection to an upstream POP3 server is protected.
enum class TlsMode {
    Implicit, // TLS from the first byte (pop3s, port 995)
    StartTls, // plain connect, then STLS (RFC 2595) before authenticating; failure aborts
    None,     // no TLS at all; needs allow_plaintext: true
};
std::string_view to_string(TlsMode);

// How popbridge authenticates to the upstream server.
enum class AuthMethod {
    Pass,        // USER/PASS (RFC 1939)
    Apop,        // APOP with the greeting timestamp (RFC 1939 section 7)
    Plain,       // AUTH PLAIN (RFC 5034, RFC 4616)
    XOAuth2,     // AUTH XOAUTH2 with a bearer token (Google/Microsoft)
    OAuthBearer, // AUTH OAUTHBEARER (RFC 7628)
};
std::string_view to_string(AuthMethod);
// True for the methods that take a token (token_file / token_command), not a password.
bool uses_token(AuthMethod);

// Where the upstream credential comes from; exactly one per upstream.
enum class SecretSource {
    None,         // not configured (validate() reports it)
    Password,     // `password:` inline in the account file
    PasswordFile, // `password_file:` read once at load, one trailing newline stripped
    PasswordEnv,  // `password_env:` environment variable read once at load
    TokenFile,    // `token_file:` re-read by the poller before each login (tokens rotate)
    TokenCommand, // `token_command:` run by the poller before each login; stdout is the token
};
std::string_view to_string(SecretSource);
// The account-file key that selects `source` ("password_file"...), "" for None.
std::string_view key_name(SecretSource source);

// What happens upstream to a message once it is durably stored here.
struct Retention {
    enum class Kind {
        Keep,                // leave it on the server (keep_on_server: true)
        DeleteAfterDownload, // DELE right after the local commit (keep_on_server: false)
        DeleteAfterAge,      // DELE once `age` has passed since it was downloaded
    };
    Kind kind = Kind::Keep;
    std::chrono::seconds age{0}; // only for DeleteAfterAge, > 0

    friend bool operator==(const Retention&, const Retention&) = default;
};
std::string_view to_string(Retention::Kind);

// First-sync window: on the first sync of an upstream, messages older than this are not
// imported (judged by the poller; later syncs ignore the setting).
struct ImportSince {
    enum class Kind {
        Age,  // `import_since: 30d`: not older than `age` before the first sync
        Date, // `import_since: 2024-01-31`: not before that day, 00:00 UTC
    };
    Kind kind = Kind::Age;
    std::chrono::seconds age{0};
    std::chrono::year_month_day date{};

    friend bool operator==(const ImportSince&, const ImportSince&) = default;
};
std::string_view to_string(ImportSince::Kind);

inline constexpr std::chrono::seconds kDefaultPollEvery{300};
inline constexpr std::chrono::seconds kMinPollEvery{10};
inline constexpr std::uint64_t kDefaultMaxMessageSize = 50ULL * 1000 * 1000;

// 995 for TlsMode::Implicit, 110 otherwise.
std::uint16_t default_port(TlsMode);

// One upstream POP3 mailbox of an account. Defaults are those of a key left out of the file.
// Paths are absolute or relative to the account file's directory already resolved.
struct Upstream {
    std::string name; // unique within the account, [A-Za-z0-9._-]+; names the UIDL ledger
    std::string host;
    std::uint16_t port = 995;
    TlsMode tls = TlsMode::Implicit;
    std::optional<std::filesystem::path> ca_file; // absent: the system trust store
    // SHA-256 of the server's leaf certificate (DER). When set, the poller accepts the
    // server if and only if the leaf certificate matches, whatever signed it (this is how
    // self-signed servers are used); the host name is not checked then.
    std::optional<Sha256> pin_sha256;
    std::string username;
    AuthMethod auth = AuthMethod::Pass;

    SecretSource secret_source = SecretSource::None;
    // The password for Password, PasswordFile and PasswordEnv; empty for token sources.
    Secret secret;
    // For PasswordFile / TokenFile: the file; for PasswordEnv: empty.
    std::filesystem::path secret_file;
    // For PasswordEnv: the variable's name (not its value).
    std::string secret_env;
    // For TokenCommand: argv, not run at load time. Arguments may hold client secrets, so
    // describe() prints only argv[0].
    std::vector<std::string> token_command;

    std::chrono::seconds poll_every = kDefaultPollEvery;
    Retention keep_on_server;
    bool delete_upstream_on_expunge = false;
    std::optional<ImportSince> import_since;
    std::uint64_t max_message_size = kDefaultMaxMessageSize;
    std::string folder = "INBOX"; // local folder new messages are delivered to
    bool allow_plaintext = false; // permits tls: none

    friend bool operator==(const Upstream&, const Upstream&) = default;
};

// One local user: the IMAP login and its upstreams.
struct Account {
    std::string user;                // safe name, see is_safe_user_name(); the store's directory
    std::string password_hash;       // crypt(3) string checked at IMAP login
    std::vector<Upstream> upstreams; // may be empty: a local-only user
    std::string source_file;         // the account file, as given to the loader

    friend bool operator==(const Account&, const Account&) = default;
};

// [a-z0-9._-]{1,64}, not starting with '.'.
bool is_safe_user_name(std::string_view name);
// [A-Za-z0-9._-]{1,64}.
bool is_valid_upstream_name(std::string_view name);
// Shape of a crypt(3) hash: starts with $y$, $gy$, $7$, $2a$, $2b$, $2y$, $6$ or $5$ and is
// followed by at least one character from the crypt alphabet [A-Za-z0-9./$] (plus ',' '='
// for $5$/$6$ rounds=). The hash itself is not checked.
bool is_valid_password_hash(std::string_view hash);

// Semantic checks of a decoded account: user name, password hash shape, upstream names
// unique and well formed, tls none only with allow_plaintext, exactly one credential source
// matching the auth method, poll_every >= 10s, sizes and ages > 0, ca_file / token_file
// readable. Positions come from `where` (empty map: line 0). Returns every problem found;
// empty means valid.
std::vector<Diagnostic> validate(const Account& account, const SourceMap& where = {});

// A multi-line human summary for logs and the admin /status page. Never contains a secret
// value: only where each secret comes from ("password_file /run/secrets/x").
std::string describe(const Account& account);

} // namespace popbridge::config
