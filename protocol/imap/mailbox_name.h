#pragma once
// Mailbox names on the wire: modified UTF-7 (RFC 3501 section 5.1.3) and INBOX.
//
// Decoding is strict: 8-bit or control bytes, bad base64, non-zero padding bits, unpaired
// surrogates, printable ASCII hidden in base64, adjacent or otherwise non-canonical encoded
// runs are all rejected (a name is valid only if re-encoding its decoding gives it back).
// The store only ever sees UTF-8.

#include <optional>
#include <string>
#include <string_view>

namespace popbridge::protocol::imap {

// Modified UTF-7 -> UTF-8; nullopt when `mutf7` is not a canonical modified UTF-7 name.
std::optional<std::string> decode_mailbox_name(std::string_view mutf7);

// UTF-8 -> modified UTF-7; nullopt when `utf8` is not valid UTF-8 or holds control chars.
std::optional<std::string> encode_mailbox_name(std::string_view utf8);

// True for any case variant of "INBOX" (RFC 3501 section 5.1: INBOX is case-insensitive).
bool is_inbox(std::string_view utf8);

// Decodes a mailbox argument and folds INBOX to its canonical upper-case spelling.
std::optional<std::string> mailbox_from_wire(std::string_view mutf7);

} // namespace popbridge::protocol::imap
