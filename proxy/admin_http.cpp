#include "proxy/admin_http.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include <spdlog/spdlog.h>

#include "proxy/connection.h"
#include "proxy/listener.h"
#include "proxy/metrics.h"
#include "proxy/uv/work.h"

namespace popbridge::proxy {

namespace {

bool is_tchar(char c) {
    if (std::isalnum(static_cast<unsigned char>(c)))
        return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

HttpParseResult fail(int status, std::string why) {
    HttpParseResult r;
    r.status = HttpParseStatus::Error;
    r.error_status = status;
    r.error = std::move(why);
    return r;
}

} // namespace

std::string_view to_string(HttpParseStatus s) {
    switch (s) {
    case HttpParseStatus::NeedMore:
        return "NeedMore";
    case HttpParseStatus::Complete:
        return "Complete";
    case HttpParseStatus::Error:
        return "Error";
    }
    return "?";
}

HttpResponse HttpResponse::text(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    if (r.body.empty() || r.body.back() != '\n')
        r.body += '\n';
    return r;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size())
                return std::nullopt;
            unsigned v = 0;
            auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
            if (ec != std::errc() || p != s.data() + i + 3)
                return std::nullopt;
            out += char(v);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

HttpParseResult parse_http_request(std::string_view buf, size_t max_bytes) {
    // End of the header block: an empty line (CRLF CRLF; a bare LF is tolerated).
    size_t end = std::string_view::npos, body_at = 0;
    for (size_t i = buf.find('\n'); i != std::string_view::npos; i = buf.find('\n', i + 1)) {
        size_t next = i + 1;
        if (next < buf.size() && buf[next] == '\n') {
            end = i + 1;
            body_at = next + 1;
            break;
        }
        if (next + 1 < buf.size() && buf[next] == '\r' && buf[next + 1] == '\n') {
            end = i + 1;
            body_at = next + 2;
            break;
        }
    }
    if (end == std::string_view::npos || body_at > max_bytes) {
        if (buf.size() > max_bytes || body_at > max_bytes) {
            if (buf.find('\n') == std::string_view::npos || buf.find('\n') > max_bytes)
                return fail(414, "request line too long");
            return fail(431, "request header too large");
        }
        return {};
    }

    std::string_view head = buf.substr(0, end);
    auto next_line = [&head]() -> std::optional<std::string_view> {
        if (head.empty())
            return std::nullopt;
        size_t nl = head.find('\n');
        std::string_view line = head.substr(0, nl);
        head.remove_prefix(nl + 1);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        return line;
    };

    HttpParseResult r;
    std::string_view line = *next_line();
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return fail(400, "malformed request line");
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method))
        return fail(400, "malformed method");
    if (!version.starts_with("HTTP/"))
        return fail(400, "malformed HTTP version");
    if (version != "HTTP/1.1" && version != "HTTP/1.0")
        return fail(505, "HTTP version not supported");
    if (target.empty() || target.front() != '/')
        return fail(400, "request target must be an absolute path");
    for (char c : target)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return fail(400, "control character in request target");
    if (method != "GET" && method != "HEAD" && method != "POST")
        return fail(405, "method not allowed");
    r.request.method = std::string(method);
    r.request.target = std::string(target);

    size_t q = target.find('?');
    auto path = percent_decode(target.substr(0, q), false);
    if (!path || path->find('\0') != std::string::npos)
        return fail(400, "bad percent-encoding in path");
    r.request.path = std::move(*path);
    if (q != std::string_view::npos) {
        std::string_view qs = target.substr(q + 1);
        size_t frag = qs.find('#');
        if (frag != std::string_view::npos)
            qs = qs.substr(0, frag);
        while (!qs.empty()) {
            size_t amp = qs.find('&');
            std::string_view pair = qs.substr(0, amp);
            qs = amp == std::string_view::npos ? std::string_view{} : qs.substr(amp + 1);
            if (pair.empty())
                continue;
            size_t eq = pair.find('=');
            auto k = percent_decode(pair.substr(0, eq), true);
            auto v = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
            if (!k || !v)
                return fail(400, "bad percent-encoding in query");
            r.request.query.insert_or_assign(std::move(*k), std::move(*v));
        }
    }

    while (auto h = next_line()) {
        if (h->empty())
            break;
        if (h->front() == ' ' || h->front() == '\t')
            return fail(400, "obsolete header line folding");
        size_t colon = h->find(':');
        if (colon == std::string_view::npos || !is_token(h->substr(0, colon)))
            return fail(400, "malformed header line");
        std::string name = lower(h->substr(0, colon));
        std::string_view value = trim_ows(h->substr(colon + 1));
        for (char c : value)
            if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
                return fail(400, "control character in header value");
        if (r.request.headers.count(name)) {
            if (name == "content-length" || name == "host")
                return fail(400, "duplicate " + name + " header");
            r.request.headers[name] += ", ";
            r.request.headers[name] += value;
        } else {
            r.request.headers.emplace(std::move(name), std::string(value));
        }
    }
    if (r.request.headers.count("transfer-encoding"))
        return fail(501, "request bodies are not supported");
    if (auto it = r.request.headers.find("content-length"); it != r.request.headers.end()) {
        const std::string& v = it->second;
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || p != v.data() + v.size())
            return fail(400, "malformed Content-Length");
        if (n > 0)
            return fail(413, "request bodies are not supported");
    }
    r.status = HttpParseStatus::Complete;
    return r;
}

std::string_view http_reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

std::string serialize_http_response(const HttpResponse& r, bool head_only) {
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " ";
    out += http_reason(r.status);
    out += "\r\nContent-Type: " + r.content_type;
    out += "\r\nContent-Length: " + std::to_string(r.body.size());
    out += "\r\nConnection: close\r\nCache-Control: no-store\r\n";
    out += "X-Content-Type-Options: nosniff\r\n";
    for (const auto& [k, v] : r.headers)
        out += k + ": " + v + "\r\n";
    out += "\r\n";
    if (!head_only)
        out += r.body;
    return out;
}

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

// One admin connection: reads one request head, answers it, closes.
class AdminServer::Client final : public ConnectionHandler {
public:
    Client(AdminServer* server, Connection* conn, uv_loop_t* loop)
        : server_(server), conn_(conn), deadline_(loop) {
        conn_->set_handler(this);
        deadline_.start(uint64_t(kRequestTimeout.count()), 0, [this] {
            if (!answered_)
                answer_error(408, "request not complete within the time limit");
        });
    }

    void on_data(Connection&, std::string_view data) override {
        if (answered_)
            return;
        buf_.append(data);
        HttpParseResult r = parse_http_request(buf_);
        if (r.status == HttpParseStatus::NeedMore)
            return;
        if (r.status == HttpParseStatus::Error) {
            answer_error(r.error_status, r.error);
            return;
        }
        answer(r.request);
    }

    void on_closed(Connection&, std::string_view) override {
        deadline_.stop();
        server_->client_closed(this);
        delete this;
    }

    void close_now() { conn_->close("admin server closing"); }

    void answer_error(int status, const std::string& why) {
        spdlog::info("admin: {} from {}: {} {}", status, conn_->remote_address(),
                     http_reason(status), why);
        ++metrics().admin.requests;
        ++metrics().admin.bad_requests;
        send(HttpResponse::text(status, std::to_string(status) + " " +
                                            std::string(http_reason(status)) + ": " + why),
             false);
    }

private:
    void answer(const HttpRequest& req) {
        HttpResponse resp;
        try {
            resp = server_->handler_(req);
        } catch (const std::exception& e) {
            spdlog::error("admin: {} {} failed: {}", req.method, req.path, e.what());
            resp = HttpResponse::text(500, "internal error");
        }
        ++metrics().admin.requests;
        if (resp.status >= 400 && resp.status < 500)
            ++metrics().admin.bad_requests;
        spdlog::debug("admin: {} {} from {} -> {}", req.method, req.path, conn_->remote_address(),
                      resp.status);
        send(resp, req.method == "HEAD");
    }

    void send(const HttpResponse& resp, bool head_only) {
        answered_ = true;
        deadline_.stop();
        conn_->pause_reading();
        conn_->write(serialize_http_response(resp, head_only));
        conn_->close_after_flush("answered");
        // A client that never reads the answer is cut after the same time limit.
        deadline_.start(uint64_t(kRequestTimeout.count()), 0,
                        [this] { conn_->close("answer not read within the time limit"); });
    }

    AdminServer* server_;
    Connection* conn_;
    uv::Timer deadline_;
    std::string buf_;
    bool answered_ = false;
};

tl::expected<AdminServer*, std::string> AdminServer::open(uv_loop_t* loop, const std::string& host,
                                                          uint16_t port, Handler handler) {
    auto* s = new AdminServer;
    s->handler_ = std::move(handler);
    auto l = Listener::open(loop, host, port, [s, loop](Connection* c) {
        if (s->closing_) {
            c->close("admin server closing");
            return;
        }
        auto* client = new Client(s, c, loop);
        s->clients_.insert(client);
        if (s->clients_.size() > kMaxConnections)
            client->answer_error(503, "too many admin connections");
    });
    if (!l) {
        delete s;
        return tl::unexpected("admin endpoint: " + l.error());
    }
    s->listener_ = *l;
    s->address_ = (*l)->address();
    s->port_ = (*l)->port();
    return s;
}

const std::string& AdminServer::address() const {
    return address_;
}
uint16_t AdminServer::port() const {
    return port_;
}

void AdminServer::close() {
    if (closing_)
        return;
    closing_ = true;
    if (listener_) {
        listener_->close();
        listener_ = nullptr;
    }
    for (Client* c : std::set<Client*>(clients_))
        c->close_now();
    maybe_delete();
}

void AdminServer::client_closed(Client* c) {
    clients_.erase(c);
    maybe_delete();
}

void AdminServer::maybe_delete() {
    if (closing_ && clients_.empty())
        delete this;
}

} // namespace popbridge::proxy
