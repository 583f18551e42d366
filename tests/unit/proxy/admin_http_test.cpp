// Unit tests for proxy/admin_http.h: the pure request parser and response serializer.

#include <catch2/catch.hpp>

#include <string>

#include "proxy/admin_http.h"

using namespace popbridge::proxy;

namespace {

HttpParseResult parse(const std::string& s) {
    return parse_http_request(s);
}

} // namespace

TEST_CASE("admin_http: a complete GET with query and headers", "[admin_http]") {
    auto r = parse("GET /poll-now?account=alice%2Fisp&x=a+b HTTP/1.1\r\nHost: h\r\n"
                   "X-Thing:  v1 \r\nx-thing: v2\r\n\r\n");
    REQUIRE(r.status == HttpParseStatus::Complete);
    CHECK(r.request.method == "GET");
    CHECK(r.request.path == "/poll-now");
    CHECK(r.request.target == "/poll-now?account=alice%2Fisp&x=a+b");
    CHECK(r.request.query.at("account") == "alice/isp");
    CHECK(r.request.query.at("x") == "a b");
    CHECK(r.request.headers.at("host") == "h");
    CHECK(r.request.headers.at("x-thing") == "v1, v2");
}

TEST_CASE("admin_http: byte by byte needs more until the empty line", "[admin_http]") {
    std::string req = "GET /healthz HTTP/1.0\r\nA: b\r\n\r\n";
    for (size_t n = 0; n < req.size(); ++n) {
        INFO("prefix " << n);
        CHECK(parse(req.substr(0, n)).status == HttpParseStatus::NeedMore);
    }
    CHECK(parse(req).status == HttpParseStatus::Complete);
    CHECK(parse("GET / HTTP/1.1\n\n").status == HttpParseStatus::Complete); // bare LF
}

TEST_CASE("admin_http: invalid requests and limits", "[admin_http]") {
    struct Case {
        std::string in;
        int status;
    };
    std::string long_target = "GET /" + std::string(kMaxRequestBytes, 'a') + " HTTP/1.1\r\n\r\n";
    std::string long_header =
        "GET / HTTP/1.1\r\nX: " + std::string(kMaxRequestBytes, 'b') + "\r\n\r\n";
    const Case cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"GET  / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1 extra\r\n\r\n", 400},
        {"G@T / HTTP/1.1\r\n\r\n", 400},
        {"GET / FTP/1.0\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"GET http://x/ HTTP/1.1\r\n\r\n", 400},
        {"DELETE / HTTP/1.1\r\n\r\n", 405},
        {"GET /%zz HTTP/1.1\r\n\r\n", 400},
        {"GET /%00 HTTP/1.1\r\n\r\n", 400},
        {"GET /?a=%4 HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nA: \x01\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 413},
        {"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        {long_target, 414},
        {long_header, 431},
    };
    for (const auto& c : cases) {
        INFO(c.in.substr(0, 60));
        auto r = parse(c.in);
        CHECK(r.status == HttpParseStatus::Error);
        CHECK(r.error_status == c.status);
        CHECK_FALSE(r.error.empty());
    }
    // Incomplete but already over the limit: refused without waiting for more.
    CHECK(parse("GET / HTTP/1.1\r\nX: " + std::string(kMaxRequestBytes, 'c')).error_status == 431);
    CHECK(parse(std::string(kMaxRequestBytes + 1, 'd')).error_status == 414);
    CHECK(parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status ==
          HttpParseStatus::Complete);
}

TEST_CASE("admin_http: percent_decode", "[admin_http]") {
    CHECK(percent_decode("a%2Fb%41", false) == "a/bA");
    CHECK(percent_decode("a+b", false) == "a+b");
    CHECK(percent_decode("a+b", true) == "a b");
    CHECK_FALSE(percent_decode("%", false));
    CHECK_FALSE(percent_decode("%4", false));
    CHECK_FALSE(percent_decode("%4g", false));
    CHECK_FALSE(percent_decode("%+1", false));
}

TEST_CASE("admin_http: response bytes", "[admin_http]") {
    HttpResponse r = HttpResponse::text(404, "nope");
    r.headers.emplace_back("Allow", "GET");
    CHECK(serialize_http_response(r, false) ==
          "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 5\r\nConnection: close\r\nCache-Control: no-store\r\n"
          "X-Content-Type-Options: nosniff\r\nAllow: GET\r\n\r\nnope\n");
    std::string head = serialize_http_response(r, true);
    CHECK(head.ends_with("\r\n\r\n"));
    CHECK(head.find("Content-Length: 5") != std::string::npos);
}

TEST_CASE("admin_http: html_escape", "[admin_http]") {
    CHECK(html_escape("<a href=\"x\">&'</a>") ==
          "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
}
