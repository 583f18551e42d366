// The daemon file (popbridge.yaml, see docs/configuration.md): where data and account files
// live, what the IMAP side listens on, logging and polling limits. Plain structs plus
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

namespace popbridge::config {

enum class LogLevel {
    Trace, // every protocol line (secrets masked)
    Debug, // state changes, scheduling decisions
    Info,  // start-up, reloads, polls that fetched mail
    Warn,  // recoverable trouble: upstream errors, disabled accounts
    Error, // failures that lose a feature or an account
};
std::string_view to_string(LogLevel);

enum class LogFormat {
    Text, // one human-readable line per event
    Json, // one JSON object per line
};
std::string_view to_string(LogFormat);

// Certificate and key for the IMAP listeners (PEM files).
struct TlsFiles {
    std::filesystem::path cert;
    std::filesystem::path key;

    friend bool operator==(const TlsFiles&, const TlsFiles&) = default;
};

inline constexpr std::chrono::milliseconds kDefaultLoginDelay{2000};
inline constexpr std::chrono::milliseconds kDefaultLoginDelayMax{15000};
inline constexpr std::chrono::milliseconds kMaxLoginDelay{25000};

struct ImapConfig {
    std::vector<Endpoint> listen;     // plain IMAP, STARTTLS offered when `tls` is set
    std::vector<Endpoint> listen_tls; // implicit TLS (993)
    std::optional<TlsFiles> tls;      // required when listen_tls is not empty
    // Accept LOGIN/AUTHENTICATE on a connection that is not TLS. Connections from a loopback
    // peer may always authenticate in plain text.
    bool allow_plaintext_auth = false;
    // Failed-login brake (proxy/login_throttle.h): the delay after the first failure of an
    // account or address, doubling per failure up to login_delay_max. 1ms..25s each, and
    // login_delay <= login_delay_max; the waits before and after a check stay under the 60 s
    // login timeout.
    std::chrono::milliseconds login_delay{kDefaultLoginDelay};
    std::chrono::milliseconds login_delay_max{kDefaultLoginDelayMax};

    friend bool operator==(const ImapConfig&, const ImapConfig&) = default;
};

struct AdminConfig {
    std::optional<Endpoint> listen; // /metrics, /healthz, /status; absent: no admin endpoint

    friend bool operator==(const AdminConfig&, const AdminConfig&) = default;
};

struct LogConfig {
    LogLevel level = LogLevel::Info;
    LogFormat format = LogFormat::Text;

    friend bool operator==(const LogConfig&, const LogConfig&) = default;
};

inline constexpr unsigned kDefaultMaxConnections = 8;
inline constexpr unsigned kMaxMaxConnections = 10000;

struct PollConfig {
    // Upper bound on simultaneous upstream POP3 connections over all accounts; pollers over
    // the cap wait their turn. 1..10000.
    unsigned max_connections = kDefaultMaxConnections;

    friend bool operator==(const PollConfig&, const PollConfig&) = default;
};

// The whole daemon file. Paths are absolute or resolved against the daemon file's directory.
struct DaemonConfig {
    std::filesystem::path data_dir;     // required
    std::filesystem::path accounts_dir; // required
    ImapConfig imap;
    AdminConfig admin;
    LogConfig log;
    PollConfig poll;
    std::string source_file; // the daemon file, as given to the loader

    friend bool operator==(const DaemonConfig&, const DaemonConfig&) = default;
};

// Semantic checks: data_dir and accounts_dir set, at least one IMAP listener, tls set when
// listen_tls is used, cert and key readable, no address listed twice, a plain `listen` on a
// non-loopback address only when STARTTLS (tls) or allow_plaintext_auth makes login
// possible, max_connections and the login delays in range. Positions come from `where`. Empty means
// valid.
std::vector<Diagnostic> validate(const DaemonConfig& config, const SourceMap& where = {});

} // namespace popbridge::config
