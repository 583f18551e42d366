#pragma once
// One TCP connection on the event loop, optionally wrapped in TLS (OpenSSL with memory
// BIOs, so the same code serves implicit TLS, STARTTLS and STLS).
//
// Ownership: a Connection owns itself. It is created by connect() or accept(), and frees
// itself after its libuv handles are closed; just before that it calls
// ConnectionHandler::on_closed() exactly once. After on_closed() returns, neither the
// handler nor anyone else may touch the Connection. All calls happen on the loop thread;
// no exception leaves a libuv callback.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>

#include <openssl/ssl.h>
#include <uv.h>

namespace popbridge::proxy {

class Connection;

class ConnectionHandler {
public:
    virtual ~ConnectionHandler() = default;
    // Client side: the TCP connection is established (before any TLS).
    virtual void on_connected(Connection&) {}
    // The TLS handshake finished and the peer was verified (when verification was asked).
    virtual void on_tls_ready(Connection&) {}
    // Bytes from the peer, already decrypted. The view is valid only during the call.
    virtual void on_data(Connection&, std::string_view data) = 0;
    // The write queue fell to the low-water mark after having been above it.
    virtual void on_drain(Connection&) {}
    // The connection is gone (peer closed, error, timeout or close()). Called exactly once.
    virtual void on_closed(Connection&, std::string_view reason) = 0;
};

class Connection {
public:
    // Starts resolving host and connecting. Returns the connection (already owned by the
    // loop); failures are reported through on_closed() later, never synchronously.
    // Every resolved address is tried in turn, IPv6 and IPv4 alternating (starting with the
    // resolver's first family): the next one on failure, or after a per-address timeout
    // (connect_timeout / 10, within 1..5 s) while more addresses remain; the last address
    // gets what is left of connect_timeout, which also bounds the resolution. Each failed
    // address is logged (info) and named in the close reason when all fail.
    static Connection* connect(uv_loop_t* loop, const std::string& host, uint16_t port,
                               ConnectionHandler* handler,
                               std::chrono::milliseconds connect_timeout = kDefaultConnectTimeout);
    // The same without resolution: tries `addresses` in the given order (tests; `host` only
    // labels logs, TLS uses what start_tls_client() is given).
    static Connection* connect_addresses(uv_loop_t* loop, const std::string& host, uint16_t port,
                                         std::vector<sockaddr_storage> addresses,
                                         ConnectionHandler* handler,
                                         std::chrono::milliseconds connect_timeout);
    static constexpr std::chrono::milliseconds kDefaultConnectTimeout{30'000};
    // Accepts one pending connection of a listening stream; nullptr if accept failed.
    // The handler is set afterwards with set_handler() (before returning to the loop).
    static Connection* accept(uv_stream_t* server);

    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void set_handler(ConnectionHandler* handler) { handler_ = handler; }

    // Wrap the stream in TLS as a client: SNI and host-name (or IP) verification for
    // `host` when verify is true. Bytes already received but not yet handed to the
    // handler are dropped (STARTTLS injection defence).
    void start_tls_client(SSL_CTX* ctx, const std::string& host, bool verify);
    // Wrap the stream in TLS as a server (implicit TLS or after STARTTLS).
    void start_tls_server(SSL_CTX* ctx);
    bool tls_active() const { return ssl_ != nullptr; }
    // The TLS session (nullptr before start_tls_*), for peer certificate checks.
    SSL* ssl() const { return ssl_; }
    // Text describing why certificate verification failed (empty when it did not).
    const std::string& tls_error() const { return tls_error_; }

    // Queues bytes for the peer (encrypted when TLS is active; held until the handshake
    // is done). Ignored once closing.
    void write(std::string_view data);
    // The same, taking the bytes without a copy when the connection is plain.
    void write(std::string&& data);
    // Bytes queued but not yet written to the socket.
    size_t write_queue_size() const { return queued_bytes_; }

    // Closes after the queued bytes are written (TLS: after close_notify).
    void close_after_flush(std::string_view reason);
    // Closes now, dropping queued bytes.
    void close(std::string_view reason);
    bool closing() const { return closing_; }

    void pause_reading();
    void resume_reading();

    // Closes the connection when nothing was received for `timeout` (0 disables).
    void set_idle_timeout(std::chrono::milliseconds timeout);

    const std::string& remote_address() const { return remote_; }
    uv_loop_t* loop() const { return loop_; }
    bool remote_is_loopback() const { return loopback_; }

    // High and low water marks of the write queue for backpressure (bytes).
    static constexpr size_t kHighWater = 256 * 1024;
    static constexpr size_t kLowWater = 64 * 1024;

private:
    explicit Connection(uv_loop_t* loop);
    ~Connection();

    static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept;
    static void on_connect_timer(uv_timer_t* timer) noexcept;
    static void on_attempt_closed(uv_handle_t* handle) noexcept;
    static void on_connect(uv_connect_t* req, int status) noexcept;
    static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
    static void on_shutdown(uv_shutdown_t* req, int status) noexcept;
    static void on_handle_closed(uv_handle_t* handle) noexcept;
    static void on_idle_timer(uv_timer_t* timer) noexcept;

    // Connect phase: a timer bounding resolution and each attempt, then one attempt per
    // address in addrs_ (a failed attempt closes tcp_ and re-creates it for the next).
    // A new outgoing connection to host:port, its connect timer running (connect()'s and
    // connect_addresses()' common start).
    static Connection* outgoing(uv_loop_t* loop, const std::string& host, uint16_t port,
                                ConnectionHandler* handler,
                                std::chrono::milliseconds connect_timeout);
    void start_connect_timer(std::chrono::milliseconds timeout);
    void begin_attempts(std::vector<sockaddr_storage> addresses);
    void try_next_address();
    void attempt_failed(std::string why);
    void stop_connect_timer();
    // SSL object and memory BIOs for either role; false (and closing) on failure.
    bool create_tls_session(SSL_CTX* ctx);
    void start_reading();
    void note_peer_address();
    void handle_plain(std::string_view data);
    void handle_tls(std::string_view data);
    void drive_handshake();
    void flush_tls_output();
    void raw_write(std::string data);
    void finish_close();
    void maybe_finish_flush_close();

    uv_loop_t* loop_;
    uv_tcp_t tcp_{};
    uv_timer_t timer_{};
    bool tcp_open_ = false;
    bool timer_open_ = false;
    int open_handles_ = 0;
    bool reading_ = false;
    bool paused_ = false;
    bool closing_ = false;
    bool flush_close_ = false;
    bool close_reported_ = false;
    bool above_high_water_ = false;
    std::string close_reason_;
    std::chrono::milliseconds idle_timeout_{0};

    ConnectionHandler* handler_ = nullptr;
    std::string remote_;
    bool loopback_ = false;
    std::string connect_host_;
    uint16_t connect_port_ = 0;
    uv_timer_t connect_timer_{};
    bool connect_timer_open_ = false;
    std::chrono::milliseconds connect_timeout_{0};
    uint64_t connect_deadline_ = 0; // uv_now() by which the connection must be established
    std::vector<sockaddr_storage> addrs_;
    size_t next_addr_ = 0;     // index of the address tried next
    std::string attempt_addr_; // the address being tried, for messages
    std::string attempt_errors_;
    bool attempt_closing_ = false; // tcp_ is closing after a failed attempt

    SSL* ssl_ = nullptr;
    BIO* rbio_ = nullptr; // network -> SSL
    BIO* wbio_ = nullptr; // SSL -> network
    bool handshake_done_ = false;
    bool tls_client_ = false;
    std::string tls_error_;
    std::string pending_plain_; // written before the handshake finished

    size_t queued_bytes_ = 0;
    size_t writes_in_flight_ = 0;
};

} // namespace popbridge::proxy
