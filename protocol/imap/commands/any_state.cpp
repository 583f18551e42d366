// Commands legal in every state: CAPABILITY, NOOP, LOGOUT, ID; plus CHECK.
#include "protocol/imap/server.h"

namespace popbridge::protocol::imap {

void Session::exec_capability(const Command& cmd) {
    write_untagged(output_, "CAPABILITY " + capability_string());
    finish(cmd.tag, RespStatus::Ok, {}, "CAPABILITY completed");
}

void Session::exec_noop(const Command& cmd) {
    finish(cmd.tag, RespStatus::Ok, {}, "NOOP completed");
}

void Session::exec_check(const Command& cmd) {
    // Every change is durable before it is acknowledged, so there is nothing to do.
    finish(cmd.tag, RespStatus::Ok, {}, "CHECK completed");
}

void Session::exec_logout(const Command& cmd) {
    write_untagged_status(output_, RespStatus::Bye, {}, "Logging out");
    if (std::holds_alternative<Selected>(state_))
        backend_.unselect();
    state_ = LoggedOut{};
    write_tagged(output_, cmd.tag, RespStatus::Ok, {}, "LOGOUT completed");
    closing_ = true;
}

void Session::exec_id(const Command& cmd, const IdArgs&) {
    // RFC 2971: the client's parameters are informational only.
    write_untagged(output_, "ID (\"name\" \"popbridge\")");
    finish(cmd.tag, RespStatus::Ok, {}, "ID completed");
}

} // namespace popbridge::protocol::imap
