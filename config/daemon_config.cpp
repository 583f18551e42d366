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
    return out;
}

} // namespace popbridge::config
