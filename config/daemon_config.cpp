#include "config/daemon_config.h"

#include <set>
#include <unistd.h>

namespace popbridge::config {

std::string_view to_string(LogLevel level) {
    switch (level) {
    case LogLevel::Trace:
        return "trace";
    case LogLevel::Debug:
        return "debug";
    case LogLevel::Info:
        return "info";
    case LogLevel::Warn:
        return "warn";
    case LogLevel::Error:
        return "error";
    }
    return "?";
}

std::string_view to_string(LogFormat format) {
    switch (format) {
    case LogFormat::Text:
        return "text";
    case LogFormat::Json:
        return "json";
    }
    return "?";
}

namespace {

void check_readable(const std::filesystem::path& path, const std::string& field,
                    const SourceMap& where, std::vector<Diagnostic>& out) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        out.push_back(where.at(field, "file " + quote(path.string()) + " does not exist"));
    } else if (::access(path.c_str(), R_OK) != 0) {
        out.push_back(where.at(field, "file " + quote(path.string()) + " is not readable"));
    }
}

void check_duration(std::chrono::seconds value, std::chrono::seconds min, std::chrono::seconds max,
                    const std::string& field, const SourceMap& where, std::vector<Diagnostic>& out,
                    std::string_view why = {}) {
    if (value < min || value > max) {
        std::string msg = "expected a duration between " + format_duration(min) + " and " +
                          format_duration(max) + ", got " + format_duration(value);
        if (!why.empty())
            msg += " (" + std::string(why) + ")";
        out.push_back(where.at(field, msg));
    }
}

void check_range(std::uint64_t value, std::uint64_t min, std::uint64_t max,
                 const std::string& field, const SourceMap& where, std::vector<Diagnostic>& out,
                 bool size) {
    if (value < min || value > max) {
        auto text = [&](std::uint64_t v) { return size ? format_size(v) : std::to_string(v); };
        std::string what = size ? "expected a size" : "expected an integer";
        out.push_back(where.at(field, what + " between " + text(min) + " and " + text(max) +
                                          ", got " + text(value)));
    }
}

} // namespace

std::vector<Diagnostic> validate(const DaemonConfig& config, const SourceMap& where) {
    std::vector<Diagnostic> out;
    if (config.data_dir.empty()) {
        out.push_back(where.at("data_dir", "expected a directory path"));
    }
    if (config.accounts_dir.empty()) {
        out.push_back(where.at("accounts_dir", "expected a directory path"));
    }
    const ImapConfig& imap = config.imap;
    if (imap.listen.empty() && imap.listen_tls.empty()) {
        out.push_back(where.at("imap", "expected at least one address in listen or listen_tls"));
    }
    if (!imap.listen_tls.empty() && !imap.tls) {
        out.push_back(where.at("imap.listen_tls", "listen_tls needs imap.tls: {cert, key}"));
    }
    if (imap.tls) {
        check_readable(imap.tls->cert, "imap.tls.cert", where, out);
        check_readable(imap.tls->key, "imap.tls.key", where, out);
    }
    if (!imap.tls && !imap.allow_plaintext_auth) {
        for (std::size_t i = 0; i < imap.listen.size(); ++i) {
            if (!imap.listen[i].is_loopback()) {
                out.push_back(where.at(
                    "imap.listen[" + std::to_string(i) + "]",
                    "clients on " + imap.listen[i].to_string() +
                        " could not log in: set imap.tls (for STARTTLS) or "
                        "imap.allow_plaintext_auth: true, or listen on a loopback address"));
            }
        }
    }
    // Port 0 means "any free port", so it can appear more than once.
    std::set<std::string> seen;
    auto check_dup = [&](const std::vector<Endpoint>& list, const std::string& name) {
        for (std::size_t i = 0; i < list.size(); ++i) {
            if (list[i].port != 0 && !seen.insert(list[i].to_string()).second) {
                out.push_back(where.at(name + "[" + std::to_string(i) + "]",
                                       "address " + list[i].to_string() + " is listed twice"));
            }
        }
    };
    check_dup(imap.listen, "imap.listen");
    check_dup(imap.listen_tls, "imap.listen_tls");
    if (config.admin.listen && config.admin.listen->port != 0 &&
        !seen.insert(config.admin.listen->to_string()).second) {
        out.push_back(where.at("admin.listen", "address " + config.admin.listen->to_string() +
                                                   " is already used by imap"));
    }
    auto check_delay = [&](std::chrono::milliseconds d, const char* key) {
        if (d < std::chrono::milliseconds(1) || d > kMaxLoginDelay) {
            out.push_back(where.at(key, "expected a duration between 1ms and " +
                                            format_duration_ms(kMaxLoginDelay) + ", got " +
                                            format_duration_ms(d)));
            return false;
        }
        return true;
    };
    if (check_delay(imap.login_delay, "imap.login_delay") &&
        check_delay(imap.login_delay_max, "imap.login_delay_max") &&
        imap.login_delay > imap.login_delay_max) {
        out.push_back(
            where.at("imap.login_delay_max", "must not be below imap.login_delay (" +
                                                 format_duration_ms(imap.login_delay) + "), got " +
                                                 format_duration_ms(imap.login_delay_max)));
    }
    if (config.poll.max_connections < 1 || config.poll.max_connections > kMaxMaxConnections) {
        out.push_back(
            where.at("poll.max_connections", "expected an integer between 1 and " +
                                                 std::to_string(kMaxMaxConnections) + ", got " +
                                                 std::to_string(config.poll.max_connections)));
    }
    using std::chrono::hours;
    using std::chrono::minutes;
    using std::chrono::seconds;
    const ImapTimeouts& t = imap.timeouts;
    check_duration(t.tls_handshake, seconds(1), hours(1), "imap.timeouts.tls_handshake", where,
                   out);
    check_duration(t.login, seconds(1), hours(1), "imap.timeouts.login", where, out);
    check_duration(t.autologout, minutes(30), hours(24), "imap.timeouts.autologout", where, out,
                   "RFC 3501 section 5.4 requires at least 30 minutes");
    const ImapLimits& l = imap.limits;
    check_range(l.max_line_pre_auth, kMinImapLine, kMaxImapLine, "imap.limits.max_line_pre_auth",
                where, out, true);
    check_range(l.max_line, kMinImapLine, kMaxImapLine, "imap.limits.max_line", where, out, true);
    check_range(l.max_bad_commands_pre_auth, 1, kMaxBadCommands,
                "imap.limits.max_bad_commands_pre_auth", where, out, false);
    check_range(l.max_bad_commands, 1, kMaxBadCommands, "imap.limits.max_bad_commands", where, out,
                false);
    check_range(l.max_connections, 1, kMaxMaxImapConnections, "imap.limits.max_connections", where,
                out, false);
    check_range(imap.structure_cache, 0, kMaxStructureCache, "imap.structure_cache", where, out,
                true);
    const PollConfig& p = config.poll;
    check_duration(p.connect_timeout, seconds(1), minutes(10), "poll.connect_timeout", where, out);
    check_duration(p.read_timeout, seconds(1), hours(1), "poll.read_timeout", where, out);
    check_duration(p.token_command_timeout, seconds(1), hours(1), "poll.token_command_timeout",
                   where, out);
    return out;
}

} // namespace popbridge::config
