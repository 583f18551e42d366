// Commands legal in every state: CAPABILITY, NOOP, LOGOUT, ID; plus CHECK, ENABLE,
// NAMESPACE and IDLE.
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

void Session::exec_enable(const Command& cmd, const EnableArgs& args) {
    // RFC 5161: unknown capabilities are ignored; only newly enabled ones are listed.
    std::string enabled;
    for (const std::string& cap : args.capabilities) {
        bool* flag = cap == "CONDSTORE" ? &condstore_ : cap == "QRESYNC" ? &qresync_ : nullptr;
        if (flag == nullptr || *flag)
            continue;
        *flag = true;
        enabled += " " + cap;
        if (cap == "QRESYNC" && !condstore_) {
            condstore_ = true; // RFC 7162 3.2.3: QRESYNC implies CONDSTORE
            enabled += " CONDSTORE";
        }
    }
    write_untagged(output_, "ENABLED" + enabled);
    finish(cmd.tag, RespStatus::Ok, {}, "ENABLE completed");
}

void Session::exec_namespace(const Command& cmd) {
    // One personal namespace, no prefix, "/" as the separator (RFC 2342).
    write_untagged(output_, "NAMESPACE ((\"\" \"/\")) NIL NIL");
    finish(cmd.tag, RespStatus::Ok, {}, "NAMESPACE completed");
}

void Session::exec_idle(const Command& cmd) {
    write_continuation(output_, "idling");
    idle_tag_ = cmd.tag;
    if (std::holds_alternative<Selected>(state_)) {
        flush_pending(true); // what happened before IDLE goes out now
        backend_.idle_started();
    }
}

} // namespace popbridge::protocol::imap
