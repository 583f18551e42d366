#include "config/account.h"

#include <cstdio>
#include <set>
#include <sstream>
#include <unistd.h>

namespace popbridge::config {

std::string_view to_string(TlsMode mode) {
    switch (mode) {
    case TlsMode::Implicit:
        return "implicit";
    case TlsMode::StartTls:
        return "starttls";
    case TlsMode::None:
        return "none";
    }
    return "?";
}

std::string_view to_string(AuthMethod method) {
    switch (method) {
    case AuthMethod::Pass:
        return "pass";
    case AuthMethod::Apop:
        return "apop";
    case AuthMethod::Plain:
        return "plain";
    case AuthMethod::XOAuth2:
        return "xoauth2";
    case AuthMethod::OAuthBearer:
        return "oauthbearer";
    }
    return "?";
}

bool uses_token(AuthMethod method) {
    return method == AuthMethod::XOAuth2 || method == AuthMethod::OAuthBearer;
}

std::string_view to_string(SecretSource source) {
    switch (source) {
    case SecretSource::None:
        return "none";
    case SecretSource::Password:
        return "password";
    case SecretSource::PasswordFile:
        return "password_file";
    case SecretSource::PasswordEnv:
        return "password_env";
    case SecretSource::TokenFile:
        return "token_file";
    case SecretSource::TokenCommand:
        return "token_command";
    }
    return "?";
}

std::string_view key_name(SecretSource source) {
    return source == SecretSource::None ? std::string_view{} : to_string(source);
}

std::string_view to_string(Retention::Kind kind) {
    switch (kind) {
    case Retention::Kind::Keep:
        return "keep";
    case Retention::Kind::DeleteAfterDownload:
        return "delete_after_download";
    case Retention::Kind::DeleteAfterAge:
        return "delete_after_age";
    }
    return "?";
}

std::string_view to_string(ImportSince::Kind kind) {
    switch (kind) {
    case ImportSince::Kind::Age:
        return "age";
    case ImportSince::Kind::Date:
        return "date";
    }
    return "?";
}

std::uint16_t default_port(TlsMode mode) {
    return mode == TlsMode::Implicit ? 995 : 110;
}

bool is_safe_user_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.front() == '.') {
        return false;
    }
    for (char c : name) {
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool is_valid_upstream_name(std::string_view name) {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool is_valid_password_hash(std::string_view hash) {
    static constexpr std::string_view kPrefixes[] = {"$y$",  "$gy$", "$7$", "$2a$",
                                                     "$2b$", "$2y$", "$6$", "$5$"};
    for (std::string_view prefix : kPrefixes) {
        if (hash.substr(0, prefix.size()) != prefix) {
            continue;
        }
        std::string_view rest = hash.substr(prefix.size());
        if (rest.empty()) {
            return false;
        }
        for (char c : rest) {
            bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '/' || c == '$' || c == ',' || c == '=';
            if (!ok) {
                return false;
            }
        }
        return true;
    }
    return false;
}

namespace {

bool readable_file(const std::filesystem::path& path, std::string& why) {
    std::error_code ec;
    auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) {
        why = "file " + quote(path.string()) + " does not exist";
        return false;
    }
    if (std::filesystem::is_directory(status)) {
        why = "expected a file, " + quote(path.string()) + " is a directory";
        return false;
    }
    if (::access(path.c_str(), R_OK) != 0) {
        why = "file " + quote(path.string()) + " is not readable";
        return false;
    }
    return true;
}

void validate_upstream(const Upstream& up, const std::string& at, const SourceMap& where,
                       std::vector<Diagnostic>& out) {
    if (!is_valid_upstream_name(up.name)) {
        out.push_back(
            where.at(at + ".name",
                     "expected 1 to 64 characters from [A-Za-z0-9._-], got " + quote(up.name)));
    }
    if (up.host.empty()) {
        out.push_back(where.at(at + ".host", "expected a host name or address, got \"\""));
    }
    if (up.port == 0) {
        out.push_back(where.at(at + ".port", "expected a port between 1 and 65535, got 0"));
    }
    if (up.tls == TlsMode::None && !up.allow_plaintext) {
        out.push_back(where.at(at + ".tls", "tls none sends the credentials in clear text; set "
                                            "allow_plaintext: true to allow it"));
    }
    if (up.ca_file) {
        std::string why;
        if (!readable_file(*up.ca_file, why)) {
            out.push_back(where.at(at + ".ca_file", why));
        }
    }
    if (up.username.empty()) {
        out.push_back(where.at(at + ".username", "expected the upstream login name, got \"\""));
    }

    const std::string source_field = at + "." + std::string(key_name(up.secret_source));
    switch (up.secret_source) {
    case SecretSource::None:
        out.push_back(where.at(at, uses_token(up.auth)
                                       ? "expected one of token_file, token_command for auth " +
                                             std::string(to_string(up.auth))
                                       : "expected one of password, password_file, password_env"));
        break;
    case SecretSource::Password:
    case SecretSource::PasswordFile:
    case SecretSource::PasswordEnv:
        if (uses_token(up.auth)) {
            out.push_back(where.at(source_field, "auth " + std::string(to_string(up.auth)) +
                                                     " takes token_file or token_command, not " +
                                                     std::string(key_name(up.secret_source))));
        } else if (up.secret.empty()) {
            out.push_back(where.at(source_field, "the password is empty"));
        }
        break;
    case SecretSource::TokenFile:
    case SecretSource::TokenCommand:
        if (!uses_token(up.auth)) {
            out.push_back(
                where.at(source_field, "auth " + std::string(to_string(up.auth)) +
                                           " takes password, password_file or password_env, not " +
                                           std::string(key_name(up.secret_source))));
        } else if (up.secret_source == SecretSource::TokenFile) {
            std::string why;
            if (!readable_file(up.secret_file, why)) {
                out.push_back(where.at(source_field, why));
            }
        } else if (up.token_command.empty() || up.token_command.front().empty()) {
            out.push_back(where.at(source_field, "expected a command, got an empty one"));
        }
        break;
    }

    if (up.poll_every < kMinPollEvery) {
        out.push_back(where.at(at + ".poll_every", "expected at least " +
                                                       format_duration(kMinPollEvery) + ", got " +
                                                       format_duration(up.poll_every)));
    }
    if (up.keep_on_server.kind == Retention::Kind::DeleteAfterAge &&
        up.keep_on_server.age <= std::chrono::seconds(0)) {
        out.push_back(where.at(at + ".keep_on_server",
                               "expected a duration above 0 (use false to delete right after "
                               "download), got " +
                                   format_duration(up.keep_on_server.age)));
    }
    if (up.import_since && up.import_since->kind == ImportSince::Kind::Date &&
        !up.import_since->date.ok()) {
        out.push_back(where.at(at + ".import_since", "expected a date that exists"));
    }
    if (up.max_message_size == 0) {
        out.push_back(where.at(at + ".max_message_size", "expected a size above 0, got 0"));
    }
    bool folder_ok = !up.folder.empty();
    for (char c : up.folder) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            folder_ok = false;
        }
    }
    if (!folder_ok) {
        out.push_back(
            where.at(at + ".folder",
                     "expected a folder name without control characters, got " + quote(up.folder)));
    }
}

} // namespace

std::vector<Diagnostic> validate(const Account& account, const SourceMap& where) {
    std::vector<Diagnostic> out;
    if (!is_safe_user_name(account.user)) {
        out.push_back(where.at("user", "expected 1 to 64 characters from [a-z0-9._-], not "
                                       "starting with '.', got " +
                                           quote(account.user)));
    }
    if (!is_valid_password_hash(account.password_hash)) {
        // The hash is not a secret in the password sense, but do not echo it: people paste
        // clear-text passwords here by mistake.
        out.push_back(where.at("password_hash",
                               "expected a crypt(3) hash starting with $y$, $gy$, $7$, $2b$, "
                               "$2a$, $2y$, $6$ or $5$ (make one with mkpasswd)"));
    }
    std::set<std::string, std::less<>> names;
    for (std::size_t i = 0; i < account.upstreams.size(); ++i) {
        const Upstream& up = account.upstreams[i];
        std::string at = "upstreams[" + std::to_string(i) + "]";
        validate_upstream(up, at, where, out);
        if (!up.name.empty() && !names.insert(up.name).second) {
            out.push_back(where.at(at + ".name", "duplicate upstream name " + quote(up.name)));
        }
    }
    return out;
}

std::string describe(const Account& account) {
    std::ostringstream os;
    os << "account " << account.user << " (" << account.source_file << "), "
       << account.upstreams.size() << " upstream(s)\n";
    for (const Upstream& up : account.upstreams) {
        os << "  upstream " << up.name << ": " << up.username << " @ "
           << Endpoint{up.host, up.port}.to_string() << " tls " << to_string(up.tls) << " auth "
           << to_string(up.auth) << ", credential from " << to_string(up.secret_source);
        switch (up.secret_source) {
        case SecretSource::PasswordFile:
        case SecretSource::TokenFile:
            os << ' ' << up.secret_file.string();
            break;
        case SecretSource::PasswordEnv:
            os << " $" << up.secret_env;
            break;
        case SecretSource::TokenCommand:
            // Only the program: arguments may carry client secrets.
            if (!up.token_command.empty()) {
                os << ' ' << up.token_command.front();
                if (up.token_command.size() > 1) {
                    os << " (+" << up.token_command.size() - 1 << " args)";
                }
            }
            break;
        default:
            break;
        }
        os << "\n    poll every " << format_duration(up.poll_every) << ", keep_on_server ";
        switch (up.keep_on_server.kind) {
        case Retention::Kind::Keep:
            os << "true";
            break;
        case Retention::Kind::DeleteAfterDownload:
            os << "false";
            break;
        case Retention::Kind::DeleteAfterAge:
            os << format_duration(up.keep_on_server.age);
            break;
        }
        os << ", max_message_size " << format_size(up.max_message_size) << ", folder " << up.folder;
        if (up.import_since) {
            os << ", import_since ";
            if (up.import_since->kind == ImportSince::Kind::Age) {
                os << format_duration(up.import_since->age);
            } else {
                const auto& d = up.import_since->date;
                char buf[16];
                std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(d.year()),
                              static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
                os << buf;
            }
        }
        if (up.delete_upstream_on_expunge) {
            os << ", delete_upstream_on_expunge";
        }
        if (up.ca_file) {
            os << ", ca_file " << up.ca_file->string();
        }
        if (up.pin_sha256) {
            os << ", pin_sha256 " << format_sha256(*up.pin_sha256);
        }
        os << '\n';
    }
    return os.str();
}

} // namespace popbridge::config
