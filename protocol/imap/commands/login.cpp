#include "protocol/imap/server.h"

namespace popbridge::protocol::imap {

void Session::exec_login(const Command& cmd, const LoginArgs& args) {
    if (!config_.tls_active && !config_.allow_plaintext_login) {
        // RFC 3501 6.2.3: LOGINDISABLED is advertised; refuse without checking.
        finish(cmd.tag, RespStatus::No, {RespCode::PrivacyRequired, {}},
               "LOGIN is disabled without TLS");
        return;
    }
    busy_ = true; // pipelined commands wait for the answer
    std::weak_ptr<int> alive = alive_;
    std::string tag = cmd.tag;
    std::string user = args.user;
    backend_.login(args.user, args.password, [this, alive, tag, user](bool ok) {
        if (alive.expired() || !busy_)
            return; // session gone, or a second call of `done`
        if (ok) {
            state_ = Authenticated{user};
            tokenizer_.set_limits(config_.post_auth);
            bad_commands_ = 0;
            write_tagged(output_, tag, RespStatus::Ok, {RespCode::Capability, capability_string()},
                         "Logged in");
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
}

} // namespace popbridge::protocol::imap
