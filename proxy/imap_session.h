#pragma once
// One IMAP client connection: glues a Connection (socket + TLS) to protocol/imap's
// sans-I/O Session and a StoreBackend. Applies backpressure both ways: stops reading
// while the session is busy or its output is not yet written, and generates long
// responses only as fast as the client reads them.
//
// Lifetime: created by the Daemon for an accepted connection; deletes itself when the
// connection closes. The Daemon keeps a registry to close all sessions at shutdown.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "protocol/imap/server.h"
#include "proxy/connection.h"
#include "proxy/store_backend.h"
#include "proxy/uv/work.h"

namespace popbridge::proxy {

struct ImapSessionOptions {
    bool implicit_tls = false;                      // the listener is an implicit-TLS (993) one
    SSL_CTX* tls = nullptr;                         // server context for implicit TLS
    bool allow_plaintext_auth = false;              // from the daemon config
    std::chrono::seconds tls_handshake_timeout{10}; // deadline for the TLS handshake
    std::chrono::seconds login_timeout{60};         // idle time allowed before login
    std::chrono::seconds autologout{31 * 60};       // idle time allowed after login
    std::size_t max_line_pre_auth = protocol::imap::kPreAuthLimits.max_line;
    std::size_t max_line = protocol::imap::post_auth_limits().max_line;
    unsigned max_bad_commands_pre_auth = protocol::imap::kPreAuthLimits.max_bad_commands;
    unsigned max_bad_commands = protocol::imap::post_auth_limits().max_bad_commands;
};

class ImapSession final : public ConnectionHandler {
public:
    // Registry hooks so the daemon can find and close live sessions.
    using Registry = std::function<void(ImapSession*, bool added)>;

    static ImapSession* start(Connection* conn, BackendServices services,
                              const ImapSessionOptions& options, Registry registry);

    // Sends "* BYE" and closes (daemon shutdown).
    void shutdown(std::string_view text);
    // Closes at once, dropping unsent output.
    void abort();

    void on_tls_ready(Connection&) override;
    void on_data(Connection&, std::string_view data) override;
    void on_drain(Connection&) override;
    void on_closed(Connection&, std::string_view reason) override;

private:
    ImapSession(Connection* conn, BackendServices services, const ImapSessionOptions& options,
                Registry registry);
    ~ImapSession() override;
    void flush();
    // Closes the connection unless the TLS handshake finishes within tls_handshake_timeout.
    void arm_tls_deadline();

    Connection* conn_;
    ImapSessionOptions options_;
    Registry registry_;
    StoreBackend backend_;
    protocol::imap::Session session_;
    bool authenticated_ = false;
    bool idling_ = false;
    std::unique_ptr<uv::Timer> tls_deadline_;
};

} // namespace popbridge::proxy
