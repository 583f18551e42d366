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
// Timeouts of one IMAP connection (DESIGN.md, "Bad input").
struct ImapTimeouts {
    // Implicit TLS and STARTTLS: the handshake must finish within this (a deadline, not an
    // idle timer). 1s..1h.
    std::chrono::seconds tls_handshake{10};
    // Before login: the connection closes after this long without input. 1s..1h.
    std::chrono::seconds login{60};
    // After login (IDLE included): the connection closes after this long without input.
    // RFC 3501 5.4 requires at least 30 minutes; a smaller value is an error. 30m..24h.
    std::chrono::seconds autologout{31 * 60};

    friend bool operator==(const ImapTimeouts&, const ImapTimeouts&) = default;
};

inline constexpr std::uint64_t kMinImapLine = 1024;
inline constexpr std::uint64_t kMaxImapLine = 16 * 1024 * 1024;
inline constexpr unsigned kMaxBadCommands = 1000;
inline constexpr unsigned kDefaultMaxImapConnections = 20000;
inline constexpr unsigned kMaxMaxImapConnections = 1000000;

// Input limits of one IMAP connection and of the listener (DESIGN.md, "Bad input"). The
// literal limits are not here: before login 8 KiB, after login the account's
// max_message_size.
struct ImapLimits {
    std::uint64_t max_line_pre_auth = 8 * 1024; // one command line before login, 1 KiB..16 MiB
    std::uint64_t max_line = 64 * 1024;         // after login, 1 KiB..16 MiB
    unsigned max_bad_commands_pre_auth = 3;     // BAD replies before "* BYE", 1..1000
    unsigned max_bad_commands = 20;             // the same after login, 1..1000
    // IMAP connections over all listeners; one more gets "* BYE" and is closed. 1..1000000.
    unsigned max_connections = kDefaultMaxImapConnections;

    friend bool operator==(const ImapLimits&, const ImapLimits&) = default;
};

inline constexpr std::uint64_t kDefaultStructureCache = 32 * 1024 * 1024;
inline constexpr std::uint64_t kMaxStructureCache = std::uint64_t(16) * 1024 * 1024 * 1024;

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
    ImapTimeouts timeouts;
    ImapLimits limits;
    // Bytes of parsed BODYSTRUCTURE/ENVELOPE data kept in memory for all users (LRU);
    // 0 disables the cache. At most 16 GiB.
    std::uint64_t structure_cache = kDefaultStructureCache;

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
    // Connecting to an upstream, all of its resolved addresses together. 1s..10m.
    std::chrono::seconds connect_timeout{30};
    // A connected upstream that sends nothing for this long is dropped. 1s..1h.
    std::chrono::seconds read_timeout{60};
    // An oauth token_command still running after this is killed (its process group). 1s..1h.
    std::chrono::seconds token_command_timeout{30};

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
// possible, every timeout and limit in its range (see the fields), the login delays in
// range. Positions come from `where`. Empty means valid.
std::vector<Diagnostic> validate(const DaemonConfig& config, const SourceMap& where = {});

} // namespace popbridge::config
