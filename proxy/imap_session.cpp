#include "proxy/imap_session.h"

#include <spdlog/spdlog.h>

namespace popbridge::proxy {

namespace imap = protocol::imap;

namespace {

imap::SessionConfig session_config(const Connection& conn, const ImapSessionOptions& o) {
    imap::SessionConfig c;
    c.tls_active = o.implicit_tls;
    c.allow_plaintext_login = o.allow_plaintext_auth || conn.remote_is_loopback();
    return c;
}

} // namespace

ImapSession* ImapSession::start(Connection* conn, BackendServices services,
                                const ImapSessionOptions& options, Registry registry) {
    auto* s = new ImapSession(conn, services, options, std::move(registry));
    conn->set_handler(s);
    if (options.implicit_tls)
        conn->start_tls_server(options.tls);
    conn->set_idle_timeout(options.login_timeout);
    s->flush(); // the greeting
    return s;
}

ImapSession::ImapSession(Connection* conn, BackendServices services,
                         const ImapSessionOptions& options, Registry registry)
    : conn_(conn), options_(options), registry_(std::move(registry)),
      backend_(services, conn->remote_address()),
      session_(backend_, session_config(*conn, options)) {
    backend_.attach(&session_);
    session_.set_output_callback([this] { flush(); });
    if (registry_)
        registry_(this, true);
    spdlog::debug("imap connect remote={}", conn_->remote_address());
}

ImapSession::~ImapSession() {
    if (registry_)
        registry_(this, false);
}

void ImapSession::on_data(Connection&, std::string_view data) {
    session_.feed(std::span<const char>(data.data(), data.size()));
    flush();
}

void ImapSession::on_drain(Connection&) {
    session_.pump();
    flush();
}

void ImapSession::flush() {
    if (!conn_ || conn_->closing())
        return;
    for (;;) {
        std::string out = session_.take_output();
        if (!out.empty())
            conn_->write(out);
        if (session_.wants_close()) {
            conn_->close_after_flush("logout");
            return;
        }
        if (out.empty() || conn_->write_queue_size() >= Connection::kHighWater)
            break;
        session_.pump(); // continue a long FETCH while the client keeps up
    }
    if (!authenticated_ && !std::holds_alternative<imap::NotAuthenticated>(session_.state())) {
        authenticated_ = true;
        conn_->set_idle_timeout(options_.autologout);
    }
    if (session_.input_blocked() || conn_->write_queue_size() >= Connection::kHighWater)
        conn_->pause_reading();
    else
        conn_->resume_reading();
}

void ImapSession::shutdown(std::string_view text) {
    if (!conn_ || conn_->closing())
        return;
    conn_->write("* BYE " + std::string(text) + "\r\n");
    conn_->close_after_flush("server shutting down");
}

void ImapSession::abort() {
    if (conn_)
        conn_->close("server shutting down");
}

void ImapSession::on_closed(Connection&, std::string_view reason) {
    spdlog::debug("imap disconnect remote={} user={} reason={}", conn_->remote_address(),
                  backend_.user(), reason);
    conn_ = nullptr;
    delete this;
}

} // namespace popbridge::proxy
