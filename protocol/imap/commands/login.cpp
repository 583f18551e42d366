// LOGIN, AUTHENTICATE PLAIN (RFC 4616, with SASL-IR RFC 4959), STARTTLS.
#include "protocol/imap/server.h"

#include "protocol/common/wipe.h"

namespace popbridge::protocol::imap {

namespace {

// Strict base64 (RFC 4648 with padding); nullopt on anything else.
std::optional<std::string> decode_base64_strict(std::string_view in) {
    if (in.size() % 4 != 0)
        return std::nullopt;
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    std::size_t pad = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=' && i + 2 >= in.size()) {
            ++pad;
            continue;
        } else
            return std::nullopt;
        if (pad != 0)
            return std::nullopt; // data after padding
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

bool plaintext_refused(const SessionConfig& c) {
    return !c.tls_active && !c.allow_plaintext_login;
}

} // namespace

void Session::exec_login(const Command& cmd, const LoginArgs& args) {
    if (plaintext_refused(config_)) {
        // RFC 3501 6.2.3: LOGINDISABLED is advertised; refuse without checking.
        finish(cmd.tag, RespStatus::No, {RespCode::PrivacyRequired, {}},
               "LOGIN is disabled without TLS");
        return;
    }
    start_login(cmd.tag, args.user, args.password, false);
}

void Session::start_login(const std::string& tag, std::string user, std::string password,
                          bool sasl) {
    busy_ = true; // pipelined commands wait for the answer
    std::weak_ptr<int> alive = alive_;
    backend_.login(user, password, [this, alive, tag, user, sasl](bool ok) {
        if (alive.expired() || !busy_)
            return; // session gone, or a second call of `done`
        if (ok) {
            state_ = Authenticated{user};
            tokenizer_.set_limits(config_.post_auth);
            bad_commands_ = 0;
            write_tagged(output_, tag, RespStatus::Ok, {RespCode::Capability, capability_string()},
                         sasl ? "Authenticated" : "Logged in");
        } else {
            write_tagged(output_, tag, RespStatus::No, {RespCode::AuthenticationFailed, {}},
                         "Authentication failed");
            // Failed logins count like bad commands: a few guesses, then BYE.
            if (++bad_commands_ >= config_.pre_auth.max_bad_commands) {
                write_untagged_status(output_, RespStatus::Bye, {}, "Too many failed logins");
                state_ = LoggedOut{};
                closing_ = true;
            }
        }
        after_async();
    });
    protocol::wipe(password); // the backend made its own copy
}

void Session::exec_authenticate(const Command& cmd, const AuthenticateArgs& args) {
    if (args.mechanism != "PLAIN") {
        finish(cmd.tag, RespStatus::No, {RespCode::Cannot, {}}, "Unsupported mechanism");
        return;
    }
    if (plaintext_refused(config_)) {
        finish(cmd.tag, RespStatus::No, {RespCode::PrivacyRequired, {}},
               "AUTHENTICATE is disabled without TLS");
        return;
    }
    if (args.initial) {
        finish_authenticate(cmd.tag, *args.initial);
        return;
    }
    write_continuation(output_, "");
    auth_tag_ = cmd.tag;
}

void Session::finish_authenticate(const std::string& tag, std::string_view base64) {
    std::optional<std::string> decoded =
        base64 == "=" ? std::optional<std::string>(std::string()) : decode_base64_strict(base64);
    if (!decoded) {
        bad(tag, "Invalid base64");
        return;
    }
    // message = [authzid] NUL authcid NUL passwd (RFC 4616)
    auto n1 = decoded->find('\0');
    auto n2 = n1 == std::string::npos ? n1 : decoded->find('\0', n1 + 1);
    if (n2 == std::string::npos || decoded->find('\0', n2 + 1) != std::string::npos) {
        bad(tag, "Invalid PLAIN message");
        return;
    }
    std::string authzid = decoded->substr(0, n1);
    std::string user = decoded->substr(n1 + 1, n2 - n1 - 1);
    std::string password = decoded->substr(n2 + 1);
    protocol::wipe(*decoded);
    if (!authzid.empty() && authzid != user) {
        finish(tag, RespStatus::No, {RespCode::AuthenticationFailed, {}},
               "Authorization identity must match");
        return;
    }
    start_login(tag, std::move(user), std::move(password), true);
}

void Session::exec_starttls(const Command& cmd) {
    if (config_.tls_active || !config_.starttls_available) {
        // Counts toward the bad-command limit like any other BAD: a pre-login client must
        // not get unlimited BADs by repeating STARTTLS.
        bad(cmd.tag, "STARTTLS not available");
        return;
    }
    finish(cmd.tag, RespStatus::Ok, {}, "Begin TLS negotiation now");
    // RFC 3501 6.2.1 / RFC 2595: anything pipelined after STARTTLS came in the clear and
    // must not be executed inside the TLS session.
    input_.clear();
    input_pos_ = 0;
    tokenizer_ = Tokenizer(config_.pre_auth);
    starttls_requested_ = true;
}

} // namespace popbridge::protocol::imap
