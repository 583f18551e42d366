#pragma once
// ENVELOPE (RFC 3501 7.4.2, RFC 9051 7.5.2) and RFC 5322 address lists (3.4, 4.4 obsolete
// forms). The returned strings are exact IMAP syntax, ready to follow "ENVELOPE ".

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/mime/message.h"

namespace popbridge::protocol::mime {

// One element of an IMAP address list. A group is a start marker (mailbox = group name,
// host unset), its members, and an end marker (everything unset).
struct Address {
    std::string name;    // display name, RFC 2047 words NOT decoded (IMAP sends raw)
    std::string route;   // obsolete source route "@a,@b" without the final ':'
    std::string mailbox; // local part (quotes removed), or group name for a group start
    std::string host;    // domain; empty with is_group_marker
    bool is_group_start = false;
    bool is_group_end = false;

    bool operator==(const Address&) const = default;
};

// Parses an unfolded address-list field value (From, To, Cc, ...). Comments are dropped
// (a comment is used as the display name of an addr-spec with no phrase, as Dovecot does);
// quoted local parts are unquoted; a bare word without '@' becomes a mailbox with an empty
// host; garbage is skipped to the next ',' so later addresses still appear. At most
// `max_addresses` entries are returned (group markers included), the rest dropped.
std::vector<Address> parse_address_list(std::string_view value, std::uint32_t max_addresses);

// An IMAP string for `s`: "NIL" when `nil_if_empty` and s is empty, a quoted string when
// every byte is 7-bit text without CR/LF/NUL, else a literal "{n}\r\n" + bytes.
std::string imap_string(std::string_view s, bool nil_if_empty = false);
// imap_string, or NIL when the optional is unset.
std::string imap_nstring(const std::string* s);

// IMAP address list for `list`: "NIL" when empty, else "((name route mailbox host)...)".
std::string imap_address_list(const std::vector<Address>& list);

// The ENVELOPE of the message entity `part` (the root by default, or the child of a
// message/rfc822 part): (date subject from sender reply-to to cc bcc in-reply-to
// message-id). Sender and Reply-To default to From when missing or empty. Date, Subject,
// In-Reply-To and Message-ID are sent unfolded but otherwise as written (no RFC 2047
// decoding), NIL when absent.
std::string envelope(const Message& msg, std::uint32_t part = 0, const Limits& limits = {});

} // namespace popbridge::protocol::mime
