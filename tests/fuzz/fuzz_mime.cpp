// libFuzzer target: the MIME structure parser (protocol/mime/message.h) and what FETCH builds
// from it: ENVELOPE, BODYSTRUCTURE, BODY section ranges, RFC 2047 words.
//
// Byte 0 picks default or tiny limits (so depth/part/parameter cuts are reached with short
// inputs); the rest is the stored message. Invariants (message.h contract):
//  - at least the root part; parents come before children; depth and part count within the
//    limits; every header and body range inside the message, header before body;
//  - the root's body ends at the end of the message (BODY[] is always the whole file);
//  - every part's body lies inside its parent's body;
//  - find_section() ranges stay inside the message, for every part path of the tree;
//  - ENVELOPE and BODYSTRUCTURE never crash and start with '('.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/mime/bodystructure.h"
#include "protocol/mime/encoded_word.h"
#include "protocol/mime/envelope.h"
#include "protocol/mime/message.h"
#include "tests/fuzz/fuzz_util.h"

using namespace popbridge::protocol::mime;

namespace {

bool inside(const Range& r, std::size_t size) {
    return r.begin <= r.end && r.end <= size;
}

// The IMAP part path of parts[i] ({} for the root), or empty optional when not addressable.
std::vector<std::uint32_t> path_of(const Message& m, std::uint32_t i) {
    std::vector<std::uint32_t> rev;
    while (m.parts[i].parent != kNoPart) {
        const Part& parent = m.parts[m.parts[i].parent];
        if (parent.kind == PartKind::Multipart) {
            std::uint32_t n = 1;
            for (std::uint32_t c : parent.children) {
                if (c == i)
                    break;
                ++n;
            }
            rev.push_back(n);
        }
        i = m.parts[i].parent;
    }
    return {rev.rbegin(), rev.rend()};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    Limits limits;
    if (data[0] & 1)
        limits = Limits{3, 8, 64, 4, 4};
    std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

    Message m = parse_message(bytes, limits);
    FUZZ_CHECK(!m.parts.empty());
    FUZZ_CHECK(m.parts.size() <= limits.max_parts);
    FUZZ_CHECK(m.root().body.end == bytes.size());
    FUZZ_CHECK(m.root().header.begin == 0);
    for (std::uint32_t i = 0; i < m.parts.size(); ++i) {
        const Part& p = m.parts[i];
        FUZZ_CHECK(inside(p.header, bytes.size()));
        FUZZ_CHECK(inside(p.body, bytes.size()));
        FUZZ_CHECK(p.header.end <= p.body.begin);
        FUZZ_CHECK(p.depth <= limits.max_depth);
        if (i == 0) {
            FUZZ_CHECK(p.parent == kNoPart);
        } else {
            FUZZ_CHECK(p.parent < i);
            const Part& parent = m.parts[p.parent];
            FUZZ_CHECK(p.depth == parent.depth + 1);
            FUZZ_CHECK(parent.body.begin <= p.header.begin && p.body.end <= parent.body.end);
        }
        for (std::uint32_t c : p.children)
            FUZZ_CHECK(c > i && c < m.parts.size() && m.parts[c].parent == i);
        if (p.truncated)
            FUZZ_CHECK(m.truncated && p.kind == PartKind::Leaf);
    }

    // Sections, ENVELOPE and BODYSTRUCTURE for the first parts (bounded work per input).
    const std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(m.parts.size(), 64));
    for (std::uint32_t i = 0; i < n; ++i) {
        auto path = path_of(m, i);
        if (auto s = find_section(m, path)) {
            FUZZ_CHECK(s->part < m.parts.size());
            FUZZ_CHECK(inside(s->whole, bytes.size()));
            FUZZ_CHECK(inside(s->mime, bytes.size()));
            if (s->header)
                FUZZ_CHECK(inside(*s->header, bytes.size()));
            if (s->text)
                FUZZ_CHECK(inside(*s->text, bytes.size()));
        }
        if (m.parts[i].is_message) {
            FUZZ_CHECK(envelope(m, i, limits).starts_with("("));
        }
        FUZZ_CHECK(bodystructure(m, true, i, limits).starts_with("("));
        FUZZ_CHECK(bodystructure(m, false, i, limits).starts_with("("));
    }
    // A path that names nothing must be refused, not read out of bounds.
    std::vector<std::uint32_t> bogus{0xffffffffu, 1};
    if (auto s = find_section(m, bogus))
        FUZZ_CHECK(inside(s->whole, bytes.size()));

    (void)decode_encoded_words(m.root().header.in(bytes).substr(0, 4096));
    return 0;
}
