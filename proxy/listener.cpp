#include "proxy/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <spdlog/spdlog.h>

namespace popbridge::proxy {

tl::expected<Listener*, std::string> Listener::open(uv_loop_t* loop, const std::string& host,
                                                    uint16_t port, AcceptFn on_accept) {
    sockaddr_storage addr{};
    bool v6 = host.find(':') != std::string::npos;
    int rc = v6 ? uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr))
                : uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
    std::string shown = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    if (rc != 0)
        return tl::unexpected("cannot listen on " + shown + ": not an IP address");
    auto* l = new Listener;
    l->on_accept_ = std::move(on_accept);
    uv_tcp_init(loop, &l->tcp_);
    l->tcp_.data = l;
    rc = uv_tcp_bind(&l->tcp_, reinterpret_cast<sockaddr*>(&addr), 0);
    if (rc == 0)
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp_), 511, &Listener::on_connection);
    if (rc != 0) {
        l->close();
        return tl::unexpected("cannot listen on " + shown + ": " + uv_strerror(rc));
    }
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&l->tcp_, reinterpret_cast<sockaddr*>(&bound), &len);
    l->port_ = bound.ss_family == AF_INET6
                   ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                   : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    l->address_ = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(l->port_);
    return l;
}

void Listener::close() {
    if (closing_)
        return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_),
             [](uv_handle_t* h) noexcept { delete static_cast<Listener*>(h->data); });
}

void Listener::on_connection(uv_stream_t* server, int status) noexcept {
    auto* l = static_cast<Listener*>(server->data);
    if (status < 0) {
        spdlog::warn("accept on {} failed: {}", l->address_, uv_strerror(status));
        return;
    }
    if (l->closing_)
        return;
    Connection* c = Connection::accept(server);
    if (c)
        l->on_accept_(c);
}

} // namespace popbridge::proxy
