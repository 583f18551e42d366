#include "proxy/connection.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <new>

#include <spdlog/spdlog.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace popbridge::proxy {
namespace {

// Reads are handed to the handler before the read callback returns, so one buffer per
// loop thread serves every connection (no per-connection or per-read allocation).
thread_local char g_read_buffer[64 * 1024];

struct WriteReq {
    uv_write_t req{};
    std::string data;
};

bool is_ip_literal(const std::string& host) {
    in6_addr a6{};
    in_addr a4{};
    return inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
           inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

std::string openssl_error_text() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty())
            out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown TLS error" : out;
}

// Freed memory of many closed connections (TLS state above all) stays in malloc's free
// lists and counts as RSS. Give it back to the kernel after a large batch of closes, or
// once every connection is gone: malloc_trim walks the heap, so not on every close.
thread_local std::size_t g_live_connections = 0;
thread_local std::size_t g_closed_since_trim = 0;

void note_connection_freed() {
    --g_live_connections;
    ++g_closed_since_trim;
    if (g_closed_since_trim >= 4096 || (g_live_connections == 0 && g_closed_since_trim >= 64)) {
        g_closed_since_trim = 0;
        ::malloc_trim(0);
    }
}

} // namespace

Connection::Connection(uv_loop_t* loop) : loop_(loop) {
    ++g_live_connections;
    uv_tcp_init(loop_, &tcp_);
    tcp_.data = this;
    tcp_open_ = true;
    ++open_handles_;
}

Connection::~Connection() {
    if (ssl_)
        SSL_free(ssl_); // frees both memory BIOs
    note_connection_freed();
}

Connection* Connection::outgoing(uv_loop_t* loop, const std::string& host, uint16_t port,
                                 ConnectionHandler* handler,
                                 std::chrono::milliseconds connect_timeout) {
    auto* c = new Connection(loop);
    c->handler_ = handler;
    c->connect_host_ = host;
    c->connect_port_ = port;
    c->remote_ = host + ":" + std::to_string(port);
    c->start_connect_timer(connect_timeout);
    return c;
}

Connection* Connection::connect(uv_loop_t* loop, const std::string& host, uint16_t port,
                                ConnectionHandler* handler,
                                std::chrono::milliseconds connect_timeout) {
    Connection* c = outgoing(loop, host, port, handler, connect_timeout);
    auto* req = new uv_getaddrinfo_t{};
    req->data = c;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    std::string port_text = std::to_string(port);
    ++c->open_handles_; // the resolver request keeps the connection alive too
    int rc = uv_getaddrinfo(loop, req, &Connection::on_resolved, host.c_str(), port_text.c_str(),
                            &hints);
    if (rc < 0) {
        delete req;
        --c->open_handles_;
        c->close(std::string("cannot resolve ") + host + ": " + uv_strerror(rc));
    }
    return c;
}

Connection* Connection::connect_addresses(uv_loop_t* loop, const std::string& host, uint16_t port,
                                          std::vector<sockaddr_storage> addresses,
                                          ConnectionHandler* handler,
                                          std::chrono::milliseconds connect_timeout) {
    Connection* c = outgoing(loop, host, port, handler, connect_timeout);
    c->begin_attempts(std::move(addresses));
    return c;
}

Connection* Connection::accept(uv_stream_t* server) {
    auto* c = new Connection(server->loop);
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp_)) != 0) {
        c->close("accept failed");
        return nullptr; // frees itself once closed; no handler to tell
    }
    uv_tcp_nodelay(&c->tcp_, 1);
    c->note_peer_address();
    c->start_reading();
    return c;
}

void Connection::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
    auto* c = static_cast<Connection*>(req->data);
    delete req;
    --c->open_handles_;
    if (c->closing_) {
        if (res)
            uv_freeaddrinfo(res);
        if (c->open_handles_ == 0)
            c->finish_close();
        return;
    }
    if (status < 0 || !res) {
        c->close("cannot resolve " + c->connect_host_ + ": " + uv_strerror(status));
        return;
    }
    // Alternate the families, starting with the resolver's first choice (RFC 8305 4): a
    // broken IPv6 (or IPv4) path then costs one attempt, not one per address.
    std::vector<sockaddr_storage> first, second;
    int first_family = res->ai_family;
    for (addrinfo* a = res; a; a = a->ai_next) {
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
            a->ai_addrlen > sizeof(sockaddr_storage))
            continue;
        sockaddr_storage ss{};
        std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
        (a->ai_family == first_family ? first : second).push_back(ss);
    }
    uv_freeaddrinfo(res);
    std::vector<sockaddr_storage> ordered;
    for (size_t i = 0; i < std::max(first.size(), second.size()); ++i) {
        if (i < first.size())
            ordered.push_back(first[i]);
        if (i < second.size())
            ordered.push_back(second[i]);
    }
    c->begin_attempts(std::move(ordered));
}

void Connection::start_connect_timer(std::chrono::milliseconds timeout) {
    connect_timeout_ = timeout.count() > 0 ? timeout : kDefaultConnectTimeout;
    connect_deadline_ = uv_now(loop_) + uint64_t(connect_timeout_.count());
    uv_timer_init(loop_, &connect_timer_);
    connect_timer_.data = this;
    connect_timer_open_ = true;
    ++open_handles_;
    uv_timer_start(&connect_timer_, &Connection::on_connect_timer,
                   uint64_t(connect_timeout_.count()), 0);
}

void Connection::stop_connect_timer() {
    if (!connect_timer_open_)
        return;
    connect_timer_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&connect_timer_), &Connection::on_handle_closed);
}

void Connection::begin_attempts(std::vector<sockaddr_storage> addresses) {
    if (closing_)
        return;
    addrs_ = std::move(addresses);
    next_addr_ = 0;
    if (addrs_.empty()) {
        close("cannot connect to " + remote_ + ": no IPv4 or IPv6 address");
        return;
    }
    try_next_address();
}

void Connection::try_next_address() {
    if (closing_)
        return;
    uint64_t now = uv_now(loop_);
    if (next_addr_ >= addrs_.size() || now >= connect_deadline_) {
        if (next_addr_ < addrs_.size())
            attempt_errors_ += (attempt_errors_.empty() ? "" : "; ") +
                               std::string("no time left for the other addresses");
        close("cannot connect to " + remote_ + ": " + attempt_errors_);
        return;
    }
    const sockaddr_storage& ss = addrs_[next_addr_++];
    char ip[INET6_ADDRSTRLEN] = {0};
    if (ss.ss_family == AF_INET6) {
        uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&ss), ip, sizeof ip);
        attempt_addr_ = "[" + std::string(ip) + "]";
    } else {
        uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&ss), ip, sizeof ip);
        attempt_addr_ = ip;
    }
    attempt_addr_ += ":" + std::to_string(connect_port_);
    // While other addresses remain, one that does not answer gets a short time only.
    uint64_t left = connect_deadline_ - now;
    uint64_t budget = left;
    if (next_addr_ < addrs_.size()) {
        uint64_t share = std::clamp<uint64_t>(uint64_t(connect_timeout_.count()) / 10, 1000, 5000);
        budget = std::min(left, share);
    }
    uv_timer_start(&connect_timer_, &Connection::on_connect_timer, budget, 0);
    auto* creq = new uv_connect_t{};
    creq->data = this;
    int rc = uv_tcp_connect(creq, &tcp_, reinterpret_cast<const sockaddr*>(&ss),
                            &Connection::on_connect);
    if (rc < 0) {
        delete creq;
        attempt_failed(uv_strerror(rc));
    }
}

void Connection::attempt_failed(std::string why) {
    if (closing_ || attempt_closing_)
        return;
    spdlog::info("connect {}: address {} failed: {}", remote_, attempt_addr_, why);
    attempt_errors_ += (attempt_errors_.empty() ? "" : "; ") + attempt_addr_ + " " + why;
    if (next_addr_ >= addrs_.size()) {
        close("cannot connect to " + remote_ + ": " + (addrs_.size() == 1 ? why : attempt_errors_));
        return;
    }
    // A socket whose connect failed cannot be reused (and the next address may be of the
    // other family): close it and start the next attempt on a fresh one.
    uv_timer_stop(&connect_timer_);
    attempt_closing_ = true;
    tcp_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::on_attempt_closed);
}

void Connection::on_attempt_closed(uv_handle_t* handle) noexcept {
    auto* c = static_cast<Connection*>(handle->data);
    c->attempt_closing_ = false;
    if (c->closing_) {
        on_handle_closed(handle);
        return;
    }
    uv_tcp_init(c->loop_, &c->tcp_);
    c->tcp_.data = c;
    c->tcp_open_ = true;
    c->try_next_address();
}

void Connection::on_connect_timer(uv_timer_t* timer) noexcept {
    auto* c = static_cast<Connection*>(timer->data);
    if (c->addrs_.empty()) {
        c->close("cannot connect to " + c->remote_ + ": resolving " + c->connect_host_ +
                 " timed out");
        return;
    }
    c->attempt_failed("timed out");
}

void Connection::on_connect(uv_connect_t* req, int status) noexcept {
    auto* c = static_cast<Connection*>(req->data);
    delete req;
    if (status == UV_ECANCELED || c->closing_ || c->attempt_closing_)
        return;
    if (status < 0) {
        c->attempt_failed(uv_strerror(status));
        return;
    }
    c->stop_connect_timer();
    if (!c->attempt_errors_.empty())
        spdlog::info("connect {}: connected to {} after failed addresses", c->remote_,
                     c->attempt_addr_);
    uv_tcp_nodelay(&c->tcp_, 1);
    c->note_peer_address();
    c->start_reading();
    if (c->handler_)
        c->handler_->on_connected(*c);
}

void Connection::note_peer_address() {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return;
    char ip[INET6_ADDRSTRLEN] = {0};
    int port = 0;
    if (ss.ss_family == AF_INET) {
        auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
        uv_ip4_name(sa, ip, sizeof ip);
        port = ntohs(sa->sin_port);
        loopback_ = (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
        // Built with append: GCC 12 warns (-Wrestrict, a false positive) on `a + ":" + b`.
        remote_.assign(ip);
        remote_.append(":").append(std::to_string(port));
    } else if (ss.ss_family == AF_INET6) {
        auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
        uv_ip6_name(sa, ip, sizeof ip);
        port = ntohs(sa->sin6_port);
        loopback_ = IN6_IS_ADDR_LOOPBACK(&sa->sin6_addr);
        remote_.assign("[").append(ip).append("]:").append(std::to_string(port));
    }
}

void Connection::start_reading() {
    if (closing_ || reading_ || paused_)
        return;
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &Connection::on_alloc,
                      &Connection::on_read) == 0)
        reading_ = true;
}

void Connection::pause_reading() {
    paused_ = true;
    if (reading_) {
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
        reading_ = false;
    }
}

void Connection::resume_reading() {
    paused_ = false;
    start_reading();
}

void Connection::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
    buf->base = g_read_buffer;
    buf->len = sizeof g_read_buffer;
}

void Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* c = static_cast<Connection*>(stream->data);
    if (nread == 0)
        return;
    if (nread < 0) {
        c->close(nread == UV_EOF ? "peer closed the connection"
                                 : std::string("read error: ") + uv_strerror(int(nread)));
        return;
    }
    if (c->closing_)
        return;
    if (c->timer_open_ && c->idle_timeout_.count() > 0)
        uv_timer_again(&c->timer_);
    std::string_view data(buf->base, size_t(nread));
    if (c->ssl_)
        c->handle_tls(data);
    else
        c->handle_plain(data);
}

void Connection::handle_plain(std::string_view data) {
    if (handler_)
        handler_->on_data(*this, data);
}

bool Connection::create_tls_session(SSL_CTX* ctx) {
    ssl_ = SSL_new(ctx);
    if (!ssl_) {
        close("cannot create TLS session: " + openssl_error_text());
        return false;
    }
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, rbio_, wbio_); // the SSL now owns both BIOs
    return true;
}

void Connection::start_tls_client(SSL_CTX* ctx, const std::string& host, bool verify) {
    if (closing_ || ssl_)
        return;
    tls_client_ = true;
    if (!create_tls_session(ctx))
        return;
    SSL_set_connect_state(ssl_);
    bool ip = is_ip_literal(host);
    if (!ip && !host.empty())
        SSL_set_tlsext_host_name(ssl_, host.c_str());
    if (verify) {
        SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
        if (ip)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str());
        else
            SSL_set1_host(ssl_, host.c_str());
    } else {
        SSL_set_verify(ssl_, SSL_VERIFY_NONE, nullptr);
    }
    drive_handshake();
}

void Connection::start_tls_server(SSL_CTX* ctx) {
    if (closing_ || ssl_)
        return;
    tls_client_ = false;
    if (!create_tls_session(ctx))
        return;
    SSL_set_accept_state(ssl_);
}

void Connection::drive_handshake() {
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_);
    flush_tls_output();
    if (closing_)
        return;
    if (rc == 1) {
        handshake_done_ = true;
        if (!pending_plain_.empty()) {
            std::string pending = std::move(pending_plain_);
            pending_plain_.clear();
            write(pending);
        }
        if (handler_)
            handler_->on_tls_ready(*this);
        return;
    }
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return;
    long verify = SSL_get_verify_result(ssl_);
    if (tls_client_ && verify != X509_V_OK)
        tls_error_ = std::string("certificate verification failed: ") +
                     X509_verify_cert_error_string(verify);
    else
        tls_error_ = openssl_error_text();
    close("TLS handshake failed: " + tls_error_);
}

void Connection::handle_tls(std::string_view data) {
    if (!data.empty() && BIO_write(rbio_, data.data(), int(data.size())) != int(data.size())) {
        close("TLS buffer error");
        return;
    }
    if (!handshake_done_) {
        drive_handshake();
        if (!handshake_done_ || closing_)
            return;
    }
    char plain[16 * 1024];
    while (!closing_ && !flush_close_) {
        ERR_clear_error();
        int n = SSL_read(ssl_, plain, sizeof plain);
        if (n > 0) {
            if (handler_)
                handler_->on_data(*this, std::string_view(plain, size_t(n)));
            continue;
        }
        int err = SSL_get_error(ssl_, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
            break;
        if (err == SSL_ERROR_ZERO_RETURN)
            close("peer closed the TLS session");
        else
            close("TLS error: " + openssl_error_text());
        return;
    }
    flush_tls_output();
}

void Connection::flush_tls_output() {
    while (wbio_ && BIO_ctrl_pending(wbio_) > 0) {
        std::string chunk(BIO_ctrl_pending(wbio_), '\0');
        int n = BIO_read(wbio_, chunk.data(), int(chunk.size()));
        if (n <= 0)
            break;
        chunk.resize(size_t(n));
        raw_write(std::move(chunk));
    }
}

void Connection::write(std::string_view data) {
    if (closing_ || flush_close_ || data.empty())
        return;
    if (!ssl_) {
        raw_write(std::string(data));
        return;
    }
    if (!handshake_done_) {
        pending_plain_.append(data);
        return;
    }
    ERR_clear_error();
    // Memory BIOs grow as needed, so SSL_write takes everything at once.
    if (SSL_write(ssl_, data.data(), int(data.size())) <= 0) {
        close("TLS write error: " + openssl_error_text());
        return;
    }
    flush_tls_output();
}

void Connection::write(std::string&& data) {
    if (ssl_) {
        write(std::string_view(data));
        return;
    }
    if (closing_ || flush_close_ || data.empty())
        return;
    raw_write(std::move(data));
}

void Connection::raw_write(std::string data) {
    if (!tcp_open_ || data.empty())
        return;
    auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
    if (writes_in_flight_ == 0) {
        uv_buf_t b = uv_buf_init(data.data(), unsigned(data.size()));
        int n = uv_try_write(stream, &b, 1);
        if (n == int(data.size()))
            return;
        if (n > 0)
            data.erase(0, size_t(n));
        else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            close(std::string("write error: ") + uv_strerror(n));
            return;
        }
    }
    auto* w = new WriteReq;
    w->data = std::move(data);
    w->req.data = this;
    uv_buf_t b = uv_buf_init(w->data.data(), unsigned(w->data.size()));
    int rc = uv_write(&w->req, stream, &b, 1, &Connection::on_write);
    if (rc < 0) {
        delete w;
        close(std::string("write error: ") + uv_strerror(rc));
        return;
    }
    queued_bytes_ += w->data.size();
    ++writes_in_flight_;
    if (queued_bytes_ > kHighWater)
        above_high_water_ = true;
}

void Connection::on_write(uv_write_t* req, int status) noexcept {
    auto* w = reinterpret_cast<WriteReq*>(req);
    auto* c = static_cast<Connection*>(req->data);
    c->queued_bytes_ -= w->data.size();
    --c->writes_in_flight_;
    delete w;
    if (status < 0 && status != UV_ECANCELED) {
        c->close(std::string("write error: ") + uv_strerror(status));
        return;
    }
    if (c->closing_)
        return;
    if (c->flush_close_) {
        c->maybe_finish_flush_close();
        return;
    }
    if (c->above_high_water_ && c->queued_bytes_ <= kLowWater) {
        c->above_high_water_ = false;
        if (c->handler_)
            c->handler_->on_drain(*c);
    }
}

void Connection::close_after_flush(std::string_view reason) {
    if (closing_ || flush_close_)
        return;
    flush_close_ = true;
    close_reason_ = std::string(reason);
    pause_reading();
    if (ssl_ && handshake_done_) {
        SSL_shutdown(ssl_);
        flush_tls_output();
    }
    // A peer that never reads must not keep us forever.
    set_idle_timeout(std::chrono::seconds(10));
    maybe_finish_flush_close();
}

void Connection::maybe_finish_flush_close() {
    if (writes_in_flight_ > 0 || closing_)
        return;
    auto* req = new uv_shutdown_t{};
    req->data = this;
    if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), &Connection::on_shutdown) < 0) {
        delete req;
        close(close_reason_);
    }
}

void Connection::on_shutdown(uv_shutdown_t* req, int) noexcept {
    auto* c = static_cast<Connection*>(req->data);
    delete req;
    c->close(c->close_reason_);
}

void Connection::close(std::string_view reason) {
    if (closing_)
        return;
    closing_ = true;
    if (!flush_close_ || close_reason_.empty())
        close_reason_ = std::string(reason);
    if (tcp_open_) {
        tcp_open_ = false;
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::on_handle_closed);
    }
    if (timer_open_) {
        timer_open_ = false;
        uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::on_handle_closed);
    }
    stop_connect_timer();
}

void Connection::on_handle_closed(uv_handle_t* handle) noexcept {
    auto* c = static_cast<Connection*>(handle->data);
    if (--c->open_handles_ == 0)
        c->finish_close();
}

void Connection::finish_close() {
    if (close_reported_)
        return;
    close_reported_ = true;
    ConnectionHandler* h = handler_;
    handler_ = nullptr;
    if (h)
        h->on_closed(*this, close_reason_);
    delete this;
}

void Connection::set_idle_timeout(std::chrono::milliseconds timeout) {
    if (closing_)
        return;
    idle_timeout_ = timeout;
    if (!timer_open_) {
        if (timeout.count() <= 0)
            return;
        uv_timer_init(loop_, &timer_);
        timer_.data = this;
        timer_open_ = true;
        ++open_handles_;
    }
    if (timeout.count() <= 0) {
        uv_timer_stop(&timer_);
        return;
    }
    uint64_t ms = uint64_t(timeout.count());
    uv_timer_start(&timer_, &Connection::on_idle_timer, ms, ms);
}

void Connection::on_idle_timer(uv_timer_t* timer) noexcept {
    auto* c = static_cast<Connection*>(timer->data);
    c->close(c->flush_close_ ? std::string_view("peer did not read before close")
                             : std::string_view("idle timeout"));
}

} // namespace popbridge::proxy
