#include "proxy/imap_session.h"

#include <cstdlib>

#include <spdlog/spdlog.h>

#include "proxy/metrics.h"

namespace popbridge::proxy {

namespace imap = protocol::imap;

namespace {

imap::SessionConfig session_config(const Connection& conn, const ImapSessionOptions& o) {
    imap::SessionConfig c;
    c.tls_active = o.implicit_tls;
    // Loopback peers may log in without TLS. POPBRIDGE_TEST_LOOPBACK_IS_REMOTE=1 turns that
    // off so tests on 127.0.0.1 can see how a remote client is treated (LOGINDISABLED).
    const char* strict = std::getenv("POPBRIDGE_TEST_LOOPBACK_IS_REMOTE");
    bool loopback_ok = conn.remote_is_loopback() && !(strict && std::string_view(strict) == "1");
    c.allow_plaintext_login = o.allow_plaintext_auth || loopback_ok;
    c.starttls_available = !o.implicit_tls && o.tls != nullptr;
    c.pre_auth.max_line = o.max_line_pre_auth;
    c.pre_auth.max_bad_commands = o.max_bad_commands_pre_auth;
    c.post_auth.max_line = o.max_line;
    c.post_auth.max_bad_commands = o.max_bad_commands;
    return c;
}

} // namespace

ImapSession* ImapSession::start(Connection* conn, BackendServices services,
                                const ImapSessionOptions& options, Registry registry) {
    auto* s = new ImapSession(conn, services, options, std::move(registry));
    conn->set_handler(s);
    if (options.implicit_tls) {
        conn->start_tls_server(options.tls);
        s->arm_tls_deadline();
    }
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
    session_.set_command_observer(
        [](imap::CommandId id) { metrics().imap.command(imap::to_string(id)); });
    metrics().imap.connection_opened();
    if (registry_)
        registry_(this, true);
    spdlog::debug("imap connect remote={}", conn_->remote_address());
}

ImapSession::~ImapSession() {
    if (idling_)
        metrics().imap.idle_ended();
    metrics().imap.connection_closed();
    if (registry_)
        registry_(this, false);
}

void ImapSession::arm_tls_deadline() {
    // A deadline, not the idle timer: a client trickling handshake bytes must not hold a
    // connection (and its TLS state) for long.
    if (!tls_deadline_)
        tls_deadline_ = std::make_unique<uv::Timer>(conn_->loop());
    auto ms = uint64_t(std::chrono::milliseconds(options_.tls_handshake_timeout).count());
    tls_deadline_->start(ms, 0, [this] {
        if (!conn_ || conn_->closing())
            return;
        spdlog::info("imap TLS handshake timeout remote={} after {}s", conn_->remote_address(),
                     options_.tls_handshake_timeout.count());
        conn_->close("TLS handshake timeout");
    });
}

void ImapSession::on_tls_ready(Connection&) {
    tls_deadline_.reset(); // stops it; no timer handle kept for the session's lifetime
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
        // While the socket is behind, output stays in the session: it then generates no
        // more (output_high_water), so a streamed BODY[] never piles up here.
        if (conn_->write_queue_size() > Connection::kHighWater)
            break;
        std::string out = session_.take_output();
        bool wrote = !out.empty();
        if (wrote)
            conn_->write(std::move(out));
        if (session_.wants_close()) {
            conn_->close_after_flush("logout");
            return;
        }
        if (session_.take_starttls()) {
            // The OK went out in the clear; everything after it is TLS. The session has
            // already dropped whatever the client pipelined after STARTTLS.
            conn_->start_tls_server(options_.tls);
            arm_tls_deadline();
            session_.set_tls_active(true);
            spdlog::debug("imap starttls remote={}", conn_->remote_address());
        }
        if (!wrote || conn_->write_queue_size() > Connection::kHighWater)
            break;
        session_.pump(); // continue a long FETCH while the client keeps up
    }
    if (session_.idling() != idling_) {
        idling_ = session_.idling();
        if (idling_)
            metrics().imap.idle_started();
        else
            metrics().imap.idle_ended();
    }
    if (!authenticated_ && !std::holds_alternative<imap::NotAuthenticated>(session_.state())) {
        authenticated_ = true;
        conn_->set_idle_timeout(options_.autologout);
    }
    if (session_.input_blocked() || conn_->write_queue_size() > Connection::kHighWater)
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
