#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "protocol/imap/tokenizer.h"

using namespace popbridge::protocol;
using namespace popbridge::protocol::imap;

namespace {

std::string describe(const RawCommand& cmd) {
    std::string out = cmd.tag + ":";
    for (const Token& t : cmd.tokens) {
        if (t.space_before)
            out += "_";
        switch (t.kind) {
        case TokenKind::Atom:
            out += "A(" + t.text + ")";
            break;
        case TokenKind::Quoted:
            out += "Q(" + t.text + ")";
            break;
        case TokenKind::Literal:
            out += "L(" + t.text + ")";
            break;
        case TokenKind::ListOpen:
            out += "(";
            break;
        case TokenKind::ListClose:
            out += ")";
            break;
        }
    }
    return out + ";";
}

// Feeds `input` in pieces of `chunk` bytes and records every event.
std::string trace(std::string_view input, std::size_t chunk, const Limits& limits) {
    Tokenizer t(limits);
    std::string out;
    for (std::size_t pos = 0; pos < input.size(); pos += chunk) {
        std::string_view piece = input.substr(pos, chunk);
        while (!piece.empty()) {
            TokenizerStep step = t.feed(std::span<const char>(piece.data(), piece.size()));
            REQUIRE(step.consumed <= piece.size());
            piece.remove_prefix(step.consumed);
            switch (step.status) {
            case ParseStatus::Complete:
                out += describe(t.take_command());
                break;
            case ParseStatus::NeedContinuation:
                out += "+" + std::to_string(t.literal_size()) + ";";
                break;
            case ParseStatus::Error:
                out += "E(" + t.error().tag + "," + t.error().message +
                       (t.error().too_big ? ",big" : "") + (t.error().fatal ? ",fatal" : "") + ");";
                break;
            case ParseStatus::NeedMore:
                REQUIRE(piece.empty());
                break;
            }
        }
    }
    return out;
}

struct Case {
    std::string_view input;
    std::string_view expected;
};

void check_all_chunkings(const Case& c, const Limits& limits) {
    INFO("input: " << c.input);
    CHECK(trace(c.input, c.input.size() + 1, limits) == c.expected);
    for (std::size_t chunk = 1; chunk <= 64; ++chunk) {
        INFO("chunk " << chunk);
        REQUIRE(trace(c.input, chunk, limits) == c.expected);
    }
}

} // namespace

TEST_CASE("tokenizer: valid commands, every chunking", "[imap][tokenizer]") {
    static const Case kCases[] = {
        {"a1 NOOP\r\n", "a1:_A(NOOP);"},
        {"a1 NOOP\n", "a1:_A(NOOP);"},
        {"\r\n\r\nx CAPABILITY\r\n", "x:_A(CAPABILITY);"},
        {"t LOGIN alice \"p a\\\"s\\\\s\"\r\n", "t:_A(LOGIN)_A(alice)_Q(p a\"s\\s);"},
        {"t LOGIN {5}\r\nalice {3}\r\nabc\r\n", "+5;+3;t:_A(LOGIN)_L(alice)_L(abc);"},
        {"t LOGIN {5+}\r\nalice {0+}\r\n\r\n", "t:_A(LOGIN)_L(alice)_L();"},
        {"t LOGIN {0}\r\n \"\"\r\n", "+0;t:_A(LOGIN)_L()_Q();"},
        {"f FETCH 1:* (FLAGS UID)\r\n", "f:_A(FETCH)_A(1:*)_(A(FLAGS)_A(UID));"},
        {"f FETCH 1 BODY.PEEK[HEADER.FIELDS (From To)]<0.10>\r\n",
         "f:_A(FETCH)_A(1)_A(BODY.PEEK[HEADER.FIELDS)_(A(From)_A(To))A(]<0.10>);"},
        {"l LIST \"\" %\r\n", "l:_A(LIST)_Q()_A(%);"},
        {"s STORE 1 +FLAGS (\\Seen)\r\n", "s:_A(STORE)_A(1)_A(+FLAGS)_(A(\\Seen));"},
        {"i ID NIL\r\nj NOOP\r\n", "i:_A(ID)_A(NIL);j:_A(NOOP);"},
        {"t LOGIN {4}\r\na\r\nb x\r\n", "+4;t:_A(LOGIN)_L(a\r\nb)_A(x);"},
        {"tag\r\n", "tag:;"},
        {"a SELECT [Gmail]/Sent\r\n", "a:_A(SELECT)_A([Gmail]/Sent);"},
    };
    for (const Case& c : kCases)
        check_all_chunkings(c, post_auth_limits());
}

TEST_CASE("tokenizer: invalid input resyncs at the next LF", "[imap][tokenizer]") {
    static const Case kCases[] = {
        {"a\x01 NOOP\r\nb NOOP\r\n", "E(,Invalid tag);b:_A(NOOP);"},
        {"+ NOOP\r\nb NOOP\r\n", "E(,Invalid tag);b:_A(NOOP);"},
        {"a \"unterminated\r\nb NOOP\r\n", "E(a,Invalid character in quoted string);b:_A(NOOP);"},
        {"a \"bad\\escape\"\r\nb NOOP\r\n", "E(a,Invalid escape in quoted string);b:_A(NOOP);"},
        {"a X)\r\nb NOOP\r\n", "E(a,Unbalanced parentheses);b:_A(NOOP);"},
        {"a X (\r\nb NOOP\r\n", "E(a,Unbalanced parentheses);b:_A(NOOP);"},
        {"a X ((1))\r\nb NOOP\r\n", "E(a,Too deeply nested lists);b:_A(NOOP);"},
        {"a X {abc}\r\nb NOOP\r\n", "E(a,Invalid literal size);b:_A(NOOP);"},
        {"a X {}\r\nb NOOP\r\n", "E(a,Invalid literal size);b:_A(NOOP);"},
        {"a X {3}x\r\nb NOOP\r\n", "E(a,Literal must be followed by CRLF);b:_A(NOOP);"},
        {"a X\ry\r\nb NOOP\r\n", "E(a,Expected LF after CR);b:_A(NOOP);"},
        {"a X\x7f\r\nb NOOP\r\n", "E(a,Invalid character in atom);b:_A(NOOP);"},
        // Oversize synchronizing literal: refused before "+", the next line is a command.
        {"a LOGIN {9000}\r\nb NOOP\r\n", "E(a,Literal too big,big);b:_A(NOOP);"},
        // An error earlier on a line that also announces a LITERAL+: the data is skipped too.
        {"a X) {10+}\r\n0123456789 rest\r\nb NOOP\r\n", "E(a,Unbalanced parentheses);b:_A(NOOP);"},
        // 2^64 and beyond: refused, no crash; a synchronizing one can resync.
        {"a X {18446744073709551616}\r\nb NOOP\r\n",
         "E(a,Literal size out of range,big);b:_A(NOOP);"},
        {"a X {99999999999999999999999999+}\r\nb NOOP\r\n",
         "E(a,Literal size out of range,big,fatal);"},
    };
    Limits limits = kPreAuthLimits;
    for (const Case& c : kCases)
        check_all_chunkings(c, limits);
}

TEST_CASE("tokenizer: oversize LITERAL+ data is skipped, never parsed", "[imap][tokenizer]") {
    // 9000 bytes of literal made of command lines, over the 8 KiB pre-login limit.
    std::string data;
    while (data.size() < 9000)
        data += "c NOOP\r\n";
    data.resize(9000);
    std::string in = "a LOGIN {9000+}\r\n" + data + "\r\nb NOOP\r\n";
    Case c{in, "E(a,Literal too big,big);b:_A(NOOP);"};
    check_all_chunkings(c, kPreAuthLimits);
}

TEST_CASE("tokenizer: line and literal limits", "[imap][tokenizer]") {
    Limits limits = kPreAuthLimits;
    std::string long_line = "a LOGIN " + std::string(9000, 'x') + "\r\nb NOOP\r\n";
    CHECK(trace(long_line, 4096, limits) == "E(a,Command line too long,big);b:_A(NOOP);");
    CHECK(trace(long_line, 1, limits) == "E(a,Command line too long,big);b:_A(NOOP);");

    // Exactly at the literal limit is fine; the sum of a command's literals is capped too.
    std::string at_limit = "a LOGIN {8192+}\r\n" + std::string(8192, 'p') + " x\r\n";
    CHECK(trace(at_limit, 100, limits).substr(0, 18) == "a:_A(LOGIN)_L(pppp");
    std::string two = "a LOGIN {5000+}\r\n" + std::string(5000, 'p') + " {5000}\r\nb NOOP\r\n";
    CHECK(trace(two, 100, limits) == "E(a,Literal too big,big);b:_A(NOOP);");

    // After login the limits grow.
    Limits post = post_auth_limits(1'000'000);
    std::string big = "a APPEND INBOX {100000}\r\n" + std::string(100000, 'm') + "\r\n";
    std::string t = trace(big, 4096, post);
    CHECK(t.substr(0, 8) == "+100000;");
    CHECK(t.size() > 100000);
    CHECK(trace("a X ((((1))))\r\n", 3, post) == "a:_A(X)_((((A(1)))));");
}

TEST_CASE("tokenizer: a refused literal allocates nothing", "[imap][tokenizer]") {
    // 4 GB announced: the tokenizer must refuse at '}' without reserving memory (this would
    // throw std::bad_alloc or be killed otherwise).
    Tokenizer t(post_auth_limits(50'000'000));
    std::string_view in = "a APPEND INBOX {4000000000}\r\n";
    TokenizerStep step = t.feed(std::span<const char>(in.data(), in.size()));
    CHECK(step.status == ParseStatus::Error);
    CHECK(t.error().too_big);
    CHECK(t.error().tag == "a");
}

TEST_CASE("tokenizer: stops at each event and reports what it consumed", "[imap][tokenizer]") {
    Tokenizer t(post_auth_limits());
    std::string_view in = "a NOOP\r\nb NOOP\r\n";
    TokenizerStep s1 = t.feed(std::span<const char>(in.data(), in.size()));
    CHECK(s1.status == ParseStatus::Complete);
    CHECK(s1.consumed == 8);
    CHECK(t.take_command().tag == "a");
    CHECK(t.at_command_start());
    TokenizerStep s2 = t.feed(std::span<const char>(in.data() + 8, in.size() - 8));
    CHECK(s2.status == ParseStatus::Complete);
    CHECK(t.take_command().tag == "b");
}
