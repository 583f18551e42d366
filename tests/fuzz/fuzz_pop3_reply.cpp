// libFuzzer target: the POP3 reply parser and the streaming dot decoder (protocol/pop3).
//
// Byte 0 picks the reply shape and a small or default line limit, byte 1 the chunking.
// Invariants:
//  - ReplyParser: progress on every call, the same replies whether fed whole or in chunks,
//    no line longer than the limit accepted;
//  - DotDecoder: the same output and the same end position whatever the chunking; output at
//    most twice the consumed input (bare LF -> CRLF); nothing consumed after the end.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/pop3/dot_decoder.h"
#include "protocol/pop3/reply_parser.h"
#include "tests/fuzz/fuzz_util.h"

using namespace popbridge::protocol::pop3;
using popbridge::protocol::ParseStatus;

namespace {

std::vector<std::string> parse_replies(std::string_view data, ReplyShape shape,
                                       std::size_t max_line, std::uint8_t seed) {
    ReplyParser parser(max_line);
    std::vector<std::string> events;
    std::string pending;
    popbridge::fuzz::Chunker chunks(data, seed);
    bool failed = false;
    while (!failed && (!chunks.done() || !pending.empty())) {
        if (!chunks.done()) {
            auto c = chunks.next();
            pending.append(c.data(), c.size());
        }
        while (!pending.empty()) {
            std::size_t consumed = 0;
            ParseStatus st = parser.parse(pending, shape, consumed);
            FUZZ_CHECK(consumed <= pending.size());
            pending.erase(0, consumed);
            if (st == ParseStatus::NeedMore) {
                FUZZ_CHECK(pending.empty());
                break;
            }
            if (st == ParseStatus::Error) {
                events.push_back("E " + parser.error() + (parser.line_too_long() ? " long" : ""));
                failed = true;
                break;
            }
            FUZZ_CHECK(st == ParseStatus::Complete);
            Reply r = parser.take();
            FUZZ_CHECK(r.text.size() < max_line);
            std::string e =
                "R " + std::string(to_string(r.status)) + " [" + r.resp_code + "] " + r.text;
            for (const auto& l : r.lines) {
                FUZZ_CHECK(l.size() < max_line);
                e += "|" + l;
            }
            events.push_back(std::move(e));
            parser.reset();
        }
    }
    return events;
}

struct Decoded {
    std::string out;
    std::size_t consumed = 0;
    bool finished = false;
    bool operator==(const Decoded&) const = default;
};

Decoded decode(std::string_view data, std::uint8_t seed) {
    DotDecoder dec;
    Decoded d;
    popbridge::fuzz::Chunker chunks(data, seed);
    while (!chunks.done()) {
        auto c = chunks.next();
        auto step = dec.decode(c, d.out);
        FUZZ_CHECK(step.consumed <= c.size());
        d.consumed += step.consumed;
        if (step.finished) {
            FUZZ_CHECK(dec.finished());
            d.finished = true;
            // Once finished, nothing more is consumed.
            std::string extra;
            FUZZ_CHECK(dec.decode("x\r\n", extra).consumed == 0 && extra.empty());
            break;
        }
        FUZZ_CHECK(step.consumed == c.size());
    }
    FUZZ_CHECK(d.out.size() <= 2 * d.consumed);
    return d;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    ReplyShape shape = (data[0] & 1) ? ReplyShape::MultiLineIfOk : ReplyShape::StatusLine;
    std::size_t max_line = (data[0] & 2) ? 16 : 8192;
    std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
    std::uint8_t seed = data[1] == 0 ? 1 : data[1];

    FUZZ_CHECK(parse_replies(input, shape, max_line, 0) ==
               parse_replies(input, shape, max_line, seed));
    FUZZ_CHECK(decode(input, 0) == decode(input, seed));

    Reply r;
    (void)parse_status_line(input, r);
    return 0;
}
