#pragma once
// RFC 5322 / RFC 2045-2046 message structure with byte offsets (DESIGN.md, protocol/mime).
//
// parse_message() walks the stored message once, in time linear in its size, and returns a
// part tree whose every node records where its header and body lie in the original bytes, so
// that FETCH BODY[section] is served as a slice of the stored file without copying.
//
// Ownership: a Message does not own the bytes; it holds a std::string_view into them. The
// caller keeps the bytes alive (and unchanged) for as long as it uses the Message. Offsets are
// plain numbers, so a Message may also be kept and used with another copy of the same bytes
// (message().bytes is only a convenience).
//
// Bad input never fails and never throws (except std::bad_alloc): missing boundaries, bare LF
// line ends, NUL bytes, 8-bit headers, headers without a blank line, unterminated multiparts
// all give a tree whose ranges are still inside the message and whose BODY[] is the whole
// file. Over a Limit the structure is cut consistently: a multipart or message/rfc822 part
// that would nest deeper than max_depth (or whose inner message would exceed max_parts)
// becomes an application/octet-stream leaf (Part::truncated); once max_parts is reached no
// further boundary is followed and the remaining bytes stay in the enclosing entities' bodies.
// Every range and size stays correct, and Message::truncated is set so the caller can log it.
//
// Matches Dovecot 2.3 where the RFCs leave room (checked by
// tests/integration/test_mime_differential.py): the line break after a close delimiter
// belongs to the enclosing part; a part header that runs into a boundary ends without its
// empty line; a multipart without boundary has no parts.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace popbridge::protocol::mime {

// Limits from DESIGN.md ("Bad input"). All are configurable per call.
struct Limits {
    std::uint32_t max_depth = 100;              // multipart / message/rfc822 nesting levels
    std::uint32_t max_parts = 10'000;           // Part nodes in one message (root included)
    std::size_t max_header_field = 1024 * 1024; // bytes of one field that are interpreted
    std::uint32_t max_addresses = 10'000;       // addresses per list in ENVELOPE
    std::uint32_t max_parameters = 1'000;       // parameters per Content-* field
};

// A half-open byte range [begin, end) into the message bytes.
struct Range {
    std::size_t begin = 0;
    std::size_t end = 0;

    std::size_t size() const { return end - begin; }
    bool empty() const { return end == begin; }
    std::string_view in(std::string_view bytes) const { return bytes.substr(begin, end - begin); }
    bool operator==(const Range&) const = default;
};

enum class PartKind {
    Leaf,      // a body that is not followed further (text, image, ..., or truncated)
    Multipart, // multipart/*: children are the body parts, in order
    Message,   // message/rfc822 (and message/global): one child, the encapsulated message
};

constexpr std::string_view to_string(PartKind k) {
    switch (k) {
    case PartKind::Leaf:
        return "Leaf";
    case PartKind::Multipart:
        return "Multipart";
    case PartKind::Message:
        return "Message";
    }
    return "?";
}

inline constexpr std::uint32_t kNoPart = 0xffffffffu;

// One MIME entity: the top-level message, a body part of a multipart, or the message inside
// a message/rfc822 part.
struct Part {
    // The header fields plus the empty line that ends them (when there is one). For the root
    // this is BODY[HEADER]; for a body part it is BODY[n.MIME].
    Range header;
    // Everything after the header up to the end of the entity. For a body part of a multipart
    // the line break before the next boundary line belongs to the boundary, not to the part
    // (RFC 2046 5.1.1). BODY[TEXT] of a message, BODY[n] of a part.
    Range body;

    // Content-Type, lower-cased; defaults per RFC 2045 5.2 (text/plain, or message/rfc822
    // inside multipart/digest). A part cut by a limit reports application/octet-stream.
    std::string type = "text";
    std::string subtype = "plain";
    PartKind kind = PartKind::Leaf;
    bool truncated = false;        // a limit turned what would have been a container into a leaf
    bool is_message = false;       // the root or an encapsulated message: has RFC 5322 fields
    bool has_content_type = false; // a Content-Type field with a valid type/subtype was seen

    std::uint32_t parent = kNoPart;      // index into Message::parts; kNoPart for the root
    std::uint32_t depth = 0;             // 0 for the root
    std::vector<std::uint32_t> children; // indices into Message::parts

    std::uint64_t body_lines = 0; // LF characters in body (RFC 3501 body-fld-lines)
};

struct Message {
    std::string_view bytes;  // the parsed bytes (not owned)
    std::vector<Part> parts; // parts[0] is the root; parents come before children
    bool truncated = false;  // some Limit was reached somewhere

    const Part& root() const { return parts.front(); }
    const Part& part(std::uint32_t i) const { return parts[i]; }
};

// Parses the whole message. Never fails; see the file comment.
Message parse_message(std::string_view bytes, const Limits& limits = {});
// A temporary std::string would leave the Message pointing at freed memory.
Message parse_message(std::string&& bytes, const Limits& limits = {}) = delete;

// What an IMAP section spec addresses (RFC 3501 6.4.5). Ranges are into Message::bytes.
struct SectionRanges {
    std::uint32_t part = 0; // the Part the path led to
    Range whole;            // BODY[path]: the part's body (or the whole message for path {})
    Range mime;             // BODY[path.MIME]: the part's MIME header (empty for path {})
    // BODY[path.HEADER] / BODY[path.TEXT] (and HEADER.FIELDS): only when the path addresses a
    // message: the top level (path {}) or a message/rfc822 part.
    std::optional<Range> header;
    std::optional<Range> text;
};

// Resolves a part path ({} = the whole message, {1, 2} = "1.2") per RFC 3501 6.4.5:
// - a multipart's parts are numbered from 1;
// - a message whose body is not multipart has one part, 1, which is its body;
// - after a message/rfc822 part, numbers continue inside the encapsulated message.
// Returns nullopt when the path names no part (then IMAP answers with an empty string,
// as Dovecot does, or NO; that choice is the caller's).
std::optional<SectionRanges> find_section(const Message& msg, std::span<const std::uint32_t> path);

} // namespace popbridge::protocol::mime
