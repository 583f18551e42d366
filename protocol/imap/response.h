#pragma once
// IMAP response builders and serializer (RFC 3501 section 7, RFC 9051 section 7).
//
// Every function appends exact wire bytes (CRLF line ends) to a caller-owned std::string;
// nothing here allocates beyond that string. Human text is sanitized (CR/LF become spaces),
// strings are sent quoted when that is safe and as literals otherwise.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/imap/error.h"

namespace popbridge::protocol::imap {

enum class RespStatus {
    Ok,      // OK
    No,      // NO
    Bad,     // BAD
    PreAuth, // PREAUTH (greeting only)
    Bye,     // BYE (untagged only)
};

constexpr std::string_view to_string(RespStatus s) {
    switch (s) {
    case RespStatus::Ok:
        return "OK";
    case RespStatus::No:
        return "NO";
    case RespStatus::Bad:
        return "BAD";
    case RespStatus::PreAuth:
        return "PREAUTH";
    case RespStatus::Bye:
        return "BYE";
    }
    return "?";
}

// resp-text-code atoms (RFC 3501 7.1, RFC 5530, RFC 9051 7.1).
enum class RespCode {
    None,                 // no code
    Alert,                // ALERT
    BadCharset,           // BADCHARSET [(<charsets>)]
    AlreadyExists,        // ALREADYEXISTS
    AuthenticationFailed, // AUTHENTICATIONFAILED
    Cannot,               // CANNOT
    Capability,           // CAPABILITY <caps>
    ClientBug,            // CLIENTBUG
    Closed,               // CLOSED
    AppendUid,            // APPENDUID <uidvalidity> <uid>
    CopyUid,              // COPYUID <uidvalidity> <source set> <dest set>
    Expunged,             // EXPUNGED
    HighestModSeq,        // HIGHESTMODSEQ <n>
    Modified,             // MODIFIED <set>
    NoModSeq,             // NOMODSEQ
    InUse,                // INUSE
    HasChildren,          // HASCHILDREN (RFC 5530)
    Limit,                // LIMIT
    NoPerm,               // NOPERM
    Nonexistent,          // NONEXISTENT
    OverQuota,            // OVERQUOTA
    Parse,                // PARSE
    PermanentFlags,       // PERMANENTFLAGS <flag list>
    PrivacyRequired,      // PRIVACYREQUIRED
    ReadOnly,             // READ-ONLY
    ReadWrite,            // READ-WRITE
    ServerBug,            // SERVERBUG
    TooBig,               // TOOBIG
    TryCreate,            // TRYCREATE
    UidNext,              // UIDNEXT <n>
    UidValidity,          // UIDVALIDITY <n>
    Unavailable,          // UNAVAILABLE
    UidNotSticky,         // UIDNOTSTICKY
    Unseen,               // UNSEEN <n>
};

std::string_view to_string(RespCode c);

struct ResponseCode {
    RespCode code = RespCode::None;
    std::string arg; // text after the atom, e.g. "42" for UIDNEXT; empty if none
};

// "tag OK [CODE arg] text\r\n"
void write_tagged(std::string& out, std::string_view tag, RespStatus status,
                  const ResponseCode& code, std::string_view text);
// "* OK [CODE arg] text\r\n" (also NO, BAD, BYE, PREAUTH)
void write_untagged_status(std::string& out, RespStatus status, const ResponseCode& code,
                           std::string_view text);
// "* <data>\r\n" - `data` is already serialized (e.g. "3 EXISTS", "CAPABILITY IMAP4rev1")
void write_untagged(std::string& out, std::string_view data);
// "+ text\r\n"
void write_continuation(std::string& out, std::string_view text);

// string: quoted when short and made of 7-bit TEXT-CHARs, else a literal "{n}\r\n<bytes>".
void write_string(std::string& out, std::string_view s);
// Always a literal.
void write_literal(std::string& out, std::string_view s);
// astring: an atom when every char is an ASTRING-CHAR (and not "NIL"), else write_string.
void write_astring(std::string& out, std::string_view s);
// "(\Seen \Answered kw)" in kFlagNames order, keywords after the system flags.
void write_flag_list(std::string& out, std::uint32_t flags,
                     const std::vector<std::string>& keywords);

// date-time: "\"dd-Mon-yyyy hh:mm:ss +zzzz\"" with date-day-fixed (" 5-Jan-...").
// `unix_seconds` is UTC; the printed wall time is shifted by `tz_offset_minutes`.
std::string format_internal_date(std::int64_t unix_seconds, int tz_offset_minutes);

// The one mapping from storage errors to IMAP (STYLE.md, Errors).
struct ImapFailure {
    RespStatus status;
    ResponseCode code;
};
ImapFailure imap_response_for(const Error& error);

} // namespace popbridge::protocol::imap
