#pragma once
// The admin endpoint's HTTP server: a deliberately small HTTP/1.1 subset over
// proxy/connection.h. One request per connection (every answer carries
// "Connection: close"), no request bodies, no chunked encoding, GET/HEAD/POST only.
// Limits: request line plus headers at most kMaxRequestBytes (431 beyond), the whole
// request within kRequestTimeout (408 after), at most kMaxConnections at once (503 beyond).
//
// The server knows nothing of popbridge: the Daemon passes a Handler that maps a parsed
// request to a response (routes in daemon.cpp). parse_http_request() is pure and unit
// tested on its own.
//
// Lifetime: AdminServer::open() returns a server owned by the loop; close() stops
// listening and closes open admin connections; the object frees itself afterwards.
// Everything runs on the loop thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <tl/expected.hpp>
#include <uv.h>

namespace popbridge::proxy {

class Listener;

struct HttpRequest {
    std::string method;                         // "GET", "HEAD", "POST"
    std::string target;                         // as sent: "/poll-now?account=alice%2Fisp"
    std::string path;                           // percent-decoded path: "/poll-now"
    std::map<std::string, std::string> query;   // percent-decoded; '+' is a space
    std::map<std::string, std::string> headers; // names lower-cased
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; // extra headers

    static HttpResponse text(int status, std::string body);
};

enum class HttpParseStatus {
    NeedMore, // no complete header block yet (and under the size limit)
    Complete, // request parsed; `consumed` bytes used
    Error,    // malformed or over a limit; answer `error_status` and close
};
std::string_view to_string(HttpParseStatus);

struct HttpParseResult {
    HttpParseStatus status = HttpParseStatus::NeedMore;
    HttpRequest request;
    int error_status = 0; // 400, 405, 413, 414, 431, 501, 505
    std::string error;    // short reason for the log and the body
};

inline constexpr size_t kMaxRequestBytes = 8 * 1024;

// Parses the request head in `buffer` (everything received so far). Requests with a body
// (Content-Length > 0 or Transfer-Encoding) are refused with 413/501: no route takes one.
HttpParseResult parse_http_request(std::string_view buffer, size_t max_bytes = kMaxRequestBytes);

// "%2F" -> "/", '+' -> ' ' when plus_is_space. Invalid escapes are an error (nullopt).
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

// The response as bytes on the wire (status line, Content-Type, Content-Length,
// Connection: close, Cache-Control: no-store, extra headers, body; no body for HEAD).
std::string serialize_http_response(const HttpResponse& r, bool head_only);

std::string_view http_reason(int status);

// Minimal HTML escaping for text placed in element content or quoted attributes.
std::string html_escape(std::string_view s);

class AdminServer {
public:
    using Handler = std::function<HttpResponse(const HttpRequest&)>;

    static constexpr std::chrono::milliseconds kRequestTimeout{10'000};
    static constexpr size_t kMaxConnections = 64;

    // Listens on host:port (port 0: any free port). Errors name the address.
    static tl::expected<AdminServer*, std::string> open(uv_loop_t* loop, const std::string& host,
                                                        uint16_t port, Handler handler);
    // Stops listening and closes open connections; frees itself once all are closed.
    void close();
    // The bound address, e.g. "127.0.0.1:9143" (with the real port when 0 was asked).
    const std::string& address() const;
    uint16_t port() const;

    class Client; // one admin connection; internal

private:
    AdminServer() = default;
    ~AdminServer() = default;
    friend class Client;
    void client_closed(Client* c);
    void maybe_delete();

    Listener* listener_ = nullptr;
    std::string address_;
    uint16_t port_ = 0;
    Handler handler_;
    std::set<Client*> clients_;
    bool closing_ = false;
};

} // namespace popbridge::proxy
