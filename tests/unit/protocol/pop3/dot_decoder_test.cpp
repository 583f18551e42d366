#include "protocol/pop3/dot_decoder.h"

#include <catch2/catch.hpp>

#include <string>

using popbridge::protocol::pop3::DotDecoder;

namespace {

struct Case {
    const char* name;
    std::string wire;     // body bytes after the +OK line, then possibly the next reply
    std::string expected; // decoded message
    std::size_t consumed; // where the body ends in `wire`
};

std::string s(const char* p, std::size_t n) {
    return std::string(p, n);
}

const Case kCases[] = {
    {"empty message", ".\r\n", "", 3},
    {"one line", "Hello\r\n.\r\n", "Hello\r\n", 10},
    {"stuffed dot line", "..\r\n.\r\n", ".\r\n", 7},
    {"stuffed leading dots", "..foo\r\n...bar\r\n.\r\n", ".foo\r\n..bar\r\n", 18},
    {"dot not at line start", "a.b\r\nc.\r\n.\r\n", "a.b\r\nc.\r\n", 12},
    {"CRLF.CRLF inside text is the end", "x\r\n.\r\ny\r\n", "x\r\n", 6},
    {"next reply follows", "A\r\n.\r\n+OK 2 octets\r\n", "A\r\n", 6},
    {"bare LF lines become CRLF", "a\nb\n.\n", "a\r\nb\r\n", 6},
    {"bare LF stuffed dot", "..x\n.\n", ".x\r\n", 6},
    {"mixed endings", "a\r\nb\nc\r\n.\r\n", "a\r\nb\r\nc\r\n", 11},
    {"bare CR kept", "a\rb\r\n.\r\n", "a\rb\r\n", 8},
    {"double CR kept", "a\r\r\n.\r\n", "a\r\r\n", 7},
    {"single dot then text is unstuffed (RFC 1939 3)", ".x\r\n.\r\n", "x\r\n", 7},
    {"dot CR then text", ".\rX\r\n.\r\n", "\rX\r\n", 8},
    {"dot dot CR LF is a line holding one dot", "a\r\n..\r\n.\r\n", "a\r\n.\r\n", 10},
    {"empty lines", "\r\n\r\n.\r\n", "\r\n\r\n", 7},
    {"NUL and high bytes pass through", s("\0\xff\r\n.\r\n", 7), s("\0\xff\r\n", 4), 7},
    {"line ending without CRLF before terminator is not the end", "abc.\r\n.\r\n", "abc.\r\n", 9},
};

// Feeds `wire` in chunks of `chunk` bytes (the decoder sees only what is left
// of each chunk); returns decoded bytes and total consumed.
std::pair<std::string, std::size_t> run(const std::string& wire, std::size_t chunk) {
    DotDecoder d;
    std::string out;
    std::size_t pos = 0;
    while (pos < wire.size() && !d.finished()) {
        const std::string_view piece = std::string_view(wire).substr(pos, chunk);
        const auto step = d.decode(piece, out);
        pos += step.consumed;
        if (step.consumed < piece.size()) {
            REQUIRE(step.finished);
        }
    }
    return {out, pos};
}

} // namespace

TEST_CASE("dot_decoder: table, whole input", "[pop3][dot_decoder]") {
    for (const auto& c : kCases) {
        INFO(c.name);
        DotDecoder d;
        std::string out;
        const auto step = d.decode(c.wire, out);
        CHECK(step.finished);
        CHECK(step.consumed == c.consumed);
        CHECK(out == c.expected);
    }
}

TEST_CASE("dot_decoder: table at every chunk size 1..64", "[pop3][dot_decoder]") {
    for (const auto& c : kCases) {
        for (std::size_t chunk = 1; chunk <= 64; ++chunk) {
            INFO(c.name << " chunk " << chunk);
            const auto [out, consumed] = run(c.wire, chunk);
            CHECK(out == c.expected);
            CHECK(consumed == c.consumed);
        }
    }
}

TEST_CASE("dot_decoder: split at every pair of byte boundaries", "[pop3][dot_decoder]") {
    const std::string wire = "..a\r\nb\r\n..\r\n.x\n.\r\n+OK";
    const std::string expected = ".a\r\nb\r\n.\r\nx\r\n";
    const std::size_t end = wire.size() - 3;
    for (std::size_t i = 0; i <= wire.size(); ++i) {
        for (std::size_t j = i; j <= wire.size(); ++j) {
            DotDecoder d;
            std::string out;
            std::size_t consumed = 0;
            for (auto [from, to] : {std::pair{std::size_t{0}, i}, {i, j}, {j, wire.size()}}) {
                if (d.finished()) {
                    break;
                }
                consumed += d.decode(std::string_view(wire).substr(from, to - from), out).consumed;
            }
            INFO("splits at " << i << " and " << j);
            REQUIRE(d.finished());
            CHECK(consumed == end);
            CHECK(out == expected);
        }
    }
}

TEST_CASE("dot_decoder: unterminated body needs more and keeps state", "[pop3][dot_decoder]") {
    DotDecoder d;
    std::string out;
    auto step = d.decode("line\r\n.", out);
    CHECK_FALSE(step.finished);
    CHECK(step.consumed == 7);
    CHECK(d.line_state() == DotDecoder::LineState::Dot);
    CHECK(out == "line\r\n");
    step = d.decode("\r", out);
    CHECK(d.line_state() == DotDecoder::LineState::DotCr);
    step = d.decode("\nrest", out);
    CHECK(step.finished);
    CHECK(step.consumed == 1);
    CHECK(out == "line\r\n");
    // Finished consumes nothing more until reset.
    CHECK(d.decode("more", out).consumed == 0);
    d.reset();
    CHECK(d.line_state() == DotDecoder::LineState::LineStart);
}

TEST_CASE("dot_decoder: LineState to_string names every state", "[pop3][dot_decoder]") {
    using S = DotDecoder::LineState;
    CHECK(to_string(S::LineStart) == "LineStart");
    CHECK(to_string(S::Dot) == "Dot");
    CHECK(to_string(S::DotCr) == "DotCr");
    CHECK(to_string(S::Middle) == "Middle");
    CHECK(to_string(S::Cr) == "Cr");
    CHECK(to_string(S::Finished) == "Finished");
}
