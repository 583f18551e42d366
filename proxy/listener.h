#pragma once
// A TCP listening socket on the loop. Each accepted connection is handed to `on_accept`,
// which must give it a handler before returning.

#include <functional>
#include <string>

#include <tl/expected.hpp>
#include <uv.h>

#include "proxy/connection.h"

namespace popbridge::proxy {

class Listener {
public:
    using AcceptFn = std::function<void(Connection*)>;

    // Binds and listens on host:port (port 0: any free port). Errors name the address.
    static tl::expected<Listener*, std::string> open(uv_loop_t* loop, const std::string& host,
                                                     uint16_t port, AcceptFn on_accept);
    // Stops listening; the object frees itself once the handle is closed.
    void close();
    // The address actually bound ("127.0.0.1:1143"), with the real port when 0 was asked.
    const std::string& address() const { return address_; }
    uint16_t port() const { return port_; }

private:
    Listener() = default;
    static void on_connection(uv_stream_t* server, int status) noexcept;

    uv_tcp_t tcp_{};
    AcceptFn on_accept_;
    std::string address_;
    uint16_t port_ = 0;
    bool closing_ = false;
};

} // namespace popbridge::proxy
