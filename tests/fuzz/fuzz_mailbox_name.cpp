// libFuzzer target: mailbox names in modified UTF-7 (protocol/imap/mailbox_name.h).
//
// Invariants (the header's contract):
//  - decode is canonical: a name decodes only if encoding the result gives the name back;
//  - encode round-trips: whatever UTF-8 encodes, decodes back to the same bytes;
//  - encoded names are 7-bit printable ASCII; decoded names contain no control characters;
//  - mailbox_from_wire agrees with decode, except that it folds INBOX.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/imap/mailbox_name.h"
#include "tests/fuzz/fuzz_util.h"

using namespace popbridge::protocol::imap;

namespace {

bool printable_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7e)
            return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);

    if (auto utf8 = decode_mailbox_name(in)) {
        FUZZ_CHECK(printable_ascii(in));
        for (unsigned char c : *utf8)
            FUZZ_CHECK(c >= 0x20 && c != 0x7f);
        auto again = encode_mailbox_name(*utf8);
        FUZZ_CHECK(again.has_value());
        FUZZ_CHECK(*again == in);
        auto wire = mailbox_from_wire(in);
        FUZZ_CHECK(wire.has_value());
        FUZZ_CHECK(is_inbox(*utf8) ? *wire == "INBOX" : *wire == *utf8);
    } else {
        FUZZ_CHECK(!mailbox_from_wire(in).has_value());
    }

    if (auto mutf7 = encode_mailbox_name(in)) {
        FUZZ_CHECK(printable_ascii(*mutf7));
        auto back = decode_mailbox_name(*mutf7);
        FUZZ_CHECK(back.has_value());
        FUZZ_CHECK(*back == in);
    }
    return 0;
}
