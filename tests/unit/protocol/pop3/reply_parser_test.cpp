#include "protocol/pop3/reply_parser.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using popbridge::protocol::ParseStatus;
using namespace popbridge::protocol::pop3;

namespace {

struct Case {
    const char* name;
    std::string wire;
    ReplyShape shape;
    Reply expected;
    std::size_t consumed; // end of the reply in `wire`
};

Reply ok(std::string text, std::vector<std::string> lines = {}, std::string code = {}) {
    return Reply{ReplyStatus::Ok, std::move(code), std::move(text), std::move(lines)};
}
Reply err(std::string text, std::string code = {}) {
    return Reply{ReplyStatus::Err, std::move(code), std::move(text), {}};
}
Reply cont(std::string text) {
    return Reply{ReplyStatus::Continue, {}, std::move(text), {}};
}

const std::vector<Case>& cases() {
    static const std::vector<Case> kCases = {
        {"greeting", "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n",
         ReplyShape::StatusLine, ok("POP3 server ready <1896.697170952@dbc.mtview.ca.us>"), 57},
        {"bare +OK", "+OK\r\n", ReplyShape::StatusLine, ok(""), 5},
        {"lower-case status", "+ok fine\r\n", ReplyShape::StatusLine, ok("fine"), 10},
        {"-ERR with text", "-ERR no such message\r\n", ReplyShape::StatusLine,
         err("no such message"), 22},
        {"-ERR with resp-code", "-ERR [IN-USE] Do you have another POP session running?\r\n",
         ReplyShape::StatusLine, err("Do you have another POP session running?", "IN-USE"), 56},
        {"-ERR with hierarchical code", "-ERR [SYS/TEMP] try later\r\n", ReplyShape::StatusLine,
         err("try later", "SYS/TEMP"), 27},
        {"code without text", "-ERR [AUTH]\r\n", ReplyShape::StatusLine, err("", "AUTH"), 13},
        {"unclosed bracket stays text", "-ERR [AUTH oops\r\n", ReplyShape::StatusLine,
         err("[AUTH oops"), 17},
        {"+OK with code", "+OK [LOGIN-DELAY] x\r\n", ReplyShape::StatusLine,
         ok("x", {}, "LOGIN-DELAY"), 21},
        {"SASL empty challenge", "+ \r\n", ReplyShape::StatusLine, cont(""), 4},
        {"SASL lone plus", "+\r\n", ReplyShape::StatusLine, cont(""), 3},
        {"SASL challenge", "+ eyJzdGF0dXMiOiI0MDEifQ==\r\n", ReplyShape::StatusLine,
         cont("eyJzdGF0dXMiOiI0MDEifQ=="), 28},
        {"bare LF status line", "+OK hi\n", ReplyShape::StatusLine, ok("hi"), 7},
        {"status only leaves body", "+OK 120 octets\r\nFrom: a\r\n", ReplyShape::StatusLine,
         ok("120 octets"), 16},
        {"multi-line CAPA",
         "+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN XOAUTH2\r\n.\r\n",
         ReplyShape::MultiLineIfOk,
         ok("Capability list follows", {"TOP", "USER", "SASL PLAIN XOAUTH2"}), 63},
        {"multi-line empty", "+OK\r\n.\r\n", ReplyShape::MultiLineIfOk, ok(""), 8},
        {"multi-line -ERR has no body", "-ERR not supported\r\n+OK next\r\n",
         ReplyShape::MultiLineIfOk, err("not supported"), 20},
        {"multi-line dot-unstuffed", "+OK\r\n..hidden\r\n.x\r\n..\r\n.\r\n",
         ReplyShape::MultiLineIfOk, ok("", {".hidden", "x", "."}), 26},
        {"multi-line bare LF", "+OK\n1 abc\n2 def\n.\n", ReplyShape::MultiLineIfOk,
         ok("", {"1 abc", "2 def"}), 18},
        {"multi-line keeps odd bytes", "+OK\r\n1 \x01\xff\ttab\r\n.\r\n", ReplyShape::MultiLineIfOk,
         ok("", {"1 \x01\xff\ttab"}), 18},
        {"multi-line followed by pipelined reply", "+OK\r\n1 2\r\n.\r\n+OK\r\n",
         ReplyShape::MultiLineIfOk, ok("", {"1 2"}), 13},
    };
    return kCases;
}

// Feeds in `chunk`-sized pieces; after Complete, checks where the reply ended.
void run_chunked(const Case& c, std::size_t chunk) {
    ReplyParser p;
    std::size_t pos = 0;
    ParseStatus st = ParseStatus::NeedMore;
    while (pos < c.wire.size()) {
        const std::string_view piece = std::string_view(c.wire).substr(pos, chunk);
        std::size_t used = 0;
        st = p.parse(piece, c.shape, used);
        pos += used;
        if (st != ParseStatus::NeedMore) {
            break;
        }
        REQUIRE(used == piece.size());
    }
    REQUIRE(st == ParseStatus::Complete);
    CHECK(pos == c.consumed);
    CHECK(p.take() == c.expected);
}

} // namespace

TEST_CASE("reply_parser: table, whole input", "[pop3][reply_parser]") {
    for (const auto& c : cases()) {
        INFO(c.name);
        ReplyParser p;
        std::size_t used = 0;
        REQUIRE(p.parse(c.wire, c.shape, used) == ParseStatus::Complete);
        CHECK(used == c.consumed);
        const Reply r = p.take();
        CHECK(to_string(r.status) == to_string(c.expected.status));
        CHECK(r.resp_code == c.expected.resp_code);
        CHECK(r.text == c.expected.text);
        CHECK(r.lines == c.expected.lines);
    }
}

TEST_CASE("reply_parser: table at every chunk size 1..64", "[pop3][reply_parser]") {
    for (const auto& c : cases()) {
        for (std::size_t chunk = 1; chunk <= 64; ++chunk) {
            INFO(c.name << " chunk " << chunk);
            run_chunked(c, chunk);
        }
    }
}

TEST_CASE("reply_parser: invalid inputs are errors, not crashes", "[pop3][reply_parser]") {
    struct Bad {
        const char* name;
        std::string wire;
        bool too_long;
    };
    const std::string long_line = "+OK " + std::string(8200, 'x') + "\r\n";
    const std::string long_body = "+OK\r\n" + std::string(9000, 'y') + "\r\n.\r\n";
    const std::vector<Bad> bad = {
        {"no status", "hello\r\n", false},
        {"OK without sign", "OK\r\n", false},
        {"+OKAY", "+OKAY\r\n", false},
        {"-ERROR", "-ERROR x\r\n", false},
        {"empty line", "\r\n", false},
        {"NUL first", std::string("\0+OK\r\n", 6), false},
        {"status line over 8 KiB", long_line, true},
        {"body line over 8 KiB", long_body, true},
    };
    for (const auto& b : bad) {
        for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{64}, b.wire.size()}) {
            INFO(b.name << " chunk " << chunk);
            ReplyParser p;
            ParseStatus st = ParseStatus::NeedMore;
            for (std::size_t pos = 0; pos < b.wire.size() && st == ParseStatus::NeedMore;) {
                std::size_t used = 0;
                st = p.parse(std::string_view(b.wire).substr(pos, chunk), ReplyShape::MultiLineIfOk,
                             used);
                pos += used;
            }
            CHECK(st == ParseStatus::Error);
            CHECK(p.line_too_long() == b.too_long);
            CHECK_FALSE(p.error().empty());
            // Stays failed until reset.
            std::size_t used = 0;
            CHECK(p.parse("+OK\r\n", ReplyShape::StatusLine, used) == ParseStatus::Error);
            p.reset();
            CHECK(p.parse("+OK\r\n", ReplyShape::StatusLine, used) == ParseStatus::Complete);
        }
    }
}

TEST_CASE("reply_parser: line limit counts the CRLF", "[pop3][reply_parser]") {
    const std::size_t limit = 16;
    const std::string exact = "+OK " + std::string(limit - 6, 'a') + "\r\n"; // 16 bytes
    REQUIRE(exact.size() == limit);
    const std::string over = "+OK " + std::string(limit - 5, 'a') + "\r\n"; // 17 bytes
    for (std::size_t chunk = 1; chunk <= limit + 1; ++chunk) {
        INFO("chunk " << chunk);
        ReplyParser p(limit);
        ParseStatus st = ParseStatus::NeedMore;
        for (std::size_t pos = 0; pos < exact.size() && st == ParseStatus::NeedMore;) {
            std::size_t used = 0;
            st = p.parse(std::string_view(exact).substr(pos, chunk), ReplyShape::StatusLine, used);
            pos += used;
        }
        CHECK(st == ParseStatus::Complete);

        ReplyParser q(limit);
        st = ParseStatus::NeedMore;
        for (std::size_t pos = 0; pos < over.size() && st == ParseStatus::NeedMore;) {
            std::size_t used = 0;
            st = q.parse(std::string_view(over).substr(pos, chunk), ReplyShape::StatusLine, used);
            pos += used;
        }
        CHECK(st == ParseStatus::Error);
        CHECK(q.line_too_long());
    }
}

TEST_CASE("reply_parser: parse_status_line", "[pop3][reply_parser]") {
    Reply r;
    REQUIRE(parse_status_line("-ERR [SYS/PERM/QUOTA] gone", r));
    CHECK(r.status == ReplyStatus::Err);
    CHECK(r.resp_code == "SYS/PERM/QUOTA");
    CHECK(r.text == "gone");
    CHECK_FALSE(parse_status_line("*OK", r));
    CHECK_FALSE(parse_status_line("", r));
}

TEST_CASE("reply_parser: to_string for its enums", "[pop3][reply_parser]") {
    CHECK(to_string(ReplyStatus::Ok) == "Ok");
    CHECK(to_string(ReplyStatus::Err) == "Err");
    CHECK(to_string(ReplyStatus::Continue) == "Continue");
    CHECK(to_string(ReplyShape::StatusLine) == "StatusLine");
    CHECK(to_string(ReplyShape::MultiLineIfOk) == "MultiLineIfOk");
}
