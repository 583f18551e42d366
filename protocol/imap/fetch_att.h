#pragma once
// FETCH data items (RFC 3501 section 6.4.5, RFC 9051 section 6.4.5).
//
// The model covers BODY[section]<partial>: part paths, HEADER, HEADER.FIELDS[.NOT], TEXT
// and MIME. The session serves sections as byte ranges of the stored message located with
// protocol/mime (RFC 3501 6.4.5); ENVELOPE / BODYSTRUCTURE / BODY come from
// Backend::message_structure().

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace popbridge::protocol::imap {

enum class FetchItem {
    Flags,         // FLAGS
    Uid,           // UID
    Rfc822Size,    // RFC822.SIZE
    InternalDate,  // INTERNALDATE
    Envelope,      // ENVELOPE
    BodyStructure, // BODYSTRUCTURE
    Body,          // BODY (non-extensible BODYSTRUCTURE)
    BodySection,   // BODY[section]<partial> and BODY.PEEK[...]
    Rfc822,        // RFC822 (= BODY[], sets \Seen)
    Rfc822Header,  // RFC822.HEADER (= BODY.PEEK[HEADER])
    Rfc822Text,    // RFC822.TEXT (= BODY[TEXT], sets \Seen)
    ModSeq,        // MODSEQ (RFC 7162)
};

constexpr std::string_view to_string(FetchItem i) {
    switch (i) {
    case FetchItem::Flags:
        return "FLAGS";
    case FetchItem::Uid:
        return "UID";
    case FetchItem::Rfc822Size:
        return "RFC822.SIZE";
    case FetchItem::InternalDate:
        return "INTERNALDATE";
    case FetchItem::Envelope:
        return "ENVELOPE";
    case FetchItem::BodyStructure:
        return "BODYSTRUCTURE";
    case FetchItem::Body:
        return "BODY";
    case FetchItem::BodySection:
        return "BODY[]";
    case FetchItem::Rfc822:
        return "RFC822";
    case FetchItem::Rfc822Header:
        return "RFC822.HEADER";
    case FetchItem::Rfc822Text:
        return "RFC822.TEXT";
    case FetchItem::ModSeq:
        return "MODSEQ";
    }
    return "?";
}

enum class SectionText {
    None,            // the whole part (BODY[] or BODY[1.2])
    Header,          // HEADER
    HeaderFields,    // HEADER.FIELDS (list)
    HeaderFieldsNot, // HEADER.FIELDS.NOT (list)
    Text,            // TEXT
    Mime,            // MIME (only after a part number)
};

constexpr std::string_view to_string(SectionText t) {
    switch (t) {
    case SectionText::None:
        return "";
    case SectionText::Header:
        return "HEADER";
    case SectionText::HeaderFields:
        return "HEADER.FIELDS";
    case SectionText::HeaderFieldsNot:
        return "HEADER.FIELDS.NOT";
    case SectionText::Text:
        return "TEXT";
    case SectionText::Mime:
        return "MIME";
    }
    return "?";
}

struct Section {
    std::vector<std::uint32_t> part; // "1.2" -> {1, 2}; empty for the top level
    SectionText text = SectionText::None;
    std::vector<std::string> fields; // HEADER.FIELDS[.NOT] names, upper-cased

    bool operator==(const Section&) const = default;
};

struct Partial {
    std::uint32_t offset = 0;
    std::uint32_t length = 0; // nz-number

    bool operator==(const Partial&) const = default;
};

struct FetchAtt {
    FetchItem item = FetchItem::Flags;
    bool peek = false;              // BODY.PEEK[...]: does not set \Seen
    Section section;                // BodySection only
    std::optional<Partial> partial; // BodySection only

    bool operator==(const FetchAtt&) const = default;

    // True when serving this item sets \Seen on a read-write mailbox.
    bool sets_seen() const {
        return (item == FetchItem::BodySection && !peek) || item == FetchItem::Rfc822 ||
               item == FetchItem::Rfc822Text;
    }
};

// The section spec as it appears in a response: "BODY[1.HEADER.FIELDS (FROM)]<0>".
std::string fetch_att_response_name(const FetchAtt& att);

} // namespace popbridge::protocol::imap
