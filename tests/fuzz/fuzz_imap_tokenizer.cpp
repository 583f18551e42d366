// libFuzzer target: the IMAP command tokenizer (protocol/imap/tokenizer.h), literals included.
//
// Byte 0 picks the limits (pre- or post-login), byte 1 the chunking; the rest is the client's
// byte stream. Invariants:
//  - every feed() makes progress or reports NeedMore having consumed all of its input;
//  - framed commands respect the limits (line length, literal size, nesting);
//  - the sequence of events is the same whatever the input is split into (resumability).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/imap/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

using namespace popbridge::protocol::imap;
using popbridge::protocol::ParseStatus;

namespace {

// One observable event, flattened to a string so two runs can be compared.
std::string describe_command(const RawCommand& c) {
    std::string s = "C " + c.tag;
    for (const Token& t : c.tokens) {
        s += ' ';
        s += std::string(to_string(t.kind));
        s += t.space_before ? "+" : "-";
        s += std::to_string(t.text.size());
        s += ':';
        s += t.text;
    }
    return s;
}

std::vector<std::string> run(std::string_view data, const Limits& limits, std::uint8_t seed) {
    Tokenizer tok(limits);
    std::vector<std::string> events;
    std::string pending; // bytes handed over but not consumed yet
    popbridge::fuzz::Chunker chunks(data, seed);
    while (!chunks.done() || !pending.empty()) {
        if (!chunks.done()) {
            auto c = chunks.next();
            pending.append(c.data(), c.size());
        }
        while (!pending.empty()) {
            TokenizerStep st = tok.feed(std::span<const char>(pending.data(), pending.size()));
            FUZZ_CHECK(st.consumed <= pending.size());
            if (st.status == ParseStatus::NeedMore) {
                FUZZ_CHECK(st.consumed == pending.size());
                pending.clear();
                break;
            }
            FUZZ_CHECK(st.consumed > 0);
            pending.erase(0, st.consumed);
            switch (st.status) {
            case ParseStatus::Complete: {
                RawCommand cmd = tok.take_command();
                FUZZ_CHECK(!cmd.tag.empty());
                std::size_t text = cmd.tag.size();
                std::uint64_t literals = 0;
                int depth = 0, max_depth = 0;
                for (const Token& t : cmd.tokens) {
                    if (t.kind == TokenKind::Literal)
                        literals += t.text.size();
                    else
                        text += t.text.size();
                    if (t.kind == TokenKind::ListOpen)
                        max_depth = std::max(max_depth, ++depth);
                    if (t.kind == TokenKind::ListClose)
                        --depth;
                }
                FUZZ_CHECK(text <= limits.max_line);
                FUZZ_CHECK(literals <= limits.max_literal);
                FUZZ_CHECK(static_cast<unsigned>(max_depth) <= limits.max_nesting);
                events.push_back(describe_command(cmd));
                break;
            }
            case ParseStatus::NeedContinuation:
                FUZZ_CHECK(tok.literal_size() <= limits.max_literal);
                events.push_back("+ " + std::to_string(tok.literal_size()));
                break;
            case ParseStatus::Error:
                events.push_back("E " + tok.error().tag + " " + tok.error().message +
                                 (tok.error().fatal ? " fatal" : ""));
                break;
            case ParseStatus::NeedMore:
                break;
            }
        }
    }
    return events;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    // Small limits in some runs let the fuzzer reach every limit with short inputs.
    Limits limits;
    switch (data[0] % 3) {
    case 0:
        limits = kPreAuthLimits;
        break;
    case 1:
        limits = post_auth_limits(1'000'000);
        break;
    default:
        limits = Limits{64, 32, 3, 3};
        break;
    }
    std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
    auto whole = run(input, limits, 0);
    auto split = run(input, limits, data[1] == 0 ? 1 : data[1]);
    FUZZ_CHECK(whole == split);
    return 0;
}
