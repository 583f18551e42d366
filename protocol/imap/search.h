#pragma once
// SEARCH keys (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 7162 3.1.5) as a tree, and their
// evaluation against one message.
//
// Parsing (parse/search.cpp) turns the token list into a SearchKey; the session evaluates it
// per message with a SearchMessage that loads the message bytes only when a key needs them
// (header and body text keys), so flag/size/UID searches never touch the disk.
//
// Text matching is case-insensitive (ASCII and UTF-8 Latin letters via simple folding) on
// the header field values with RFC 2047 encoded words decoded, and on the body with
// quoted-printable and base64 transfer encodings of single-part text decoded.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/imap/seq_set.h"

namespace popbridge::protocol::imap {

enum class SearchKind {
    All,        // ALL
    And,        // implicit AND of children (a parenthesized list or the top level)
    Or,         // OR key key
    Not,        // NOT key
    SeqSet,     // sequence-set
    Uid,        // UID sequence-set
    FlagSet,    // ANSWERED/DELETED/DRAFT/FLAGGED/SEEN/RECENT: `number` holds the flag bit
    FlagUnset,  // UNANSWERED/... : `number` holds the flag bit
    New,        // NEW (RECENT UNSEEN)
    Old,        // OLD (NOT RECENT)
    Keyword,    // KEYWORD flag
    Unkeyword,  // UNKEYWORD flag
    Header,     // HEADER field string; also FROM/TO/CC/BCC/SUBJECT
    Body,       // BODY string
    Text,       // TEXT string
    Before,     // BEFORE date (internal date, day granularity)
    On,         // ON date
    Since,      // SINCE date
    SentBefore, // SENTBEFORE date (Date: header)
    SentOn,     // SENTON date
    SentSince,  // SENTSINCE date
    Larger,     // LARGER n
    Smaller,    // SMALLER n
    ModSeq,     // MODSEQ [entry type] n (RFC 7162)
};

std::string_view to_string(SearchKind k);

struct SearchKey {
    SearchKind kind = SearchKind::All;
    std::string field;        // Header: field name; Keyword: the keyword
    std::string value;        // text to find
    std::uint64_t number = 0; // size, flag bit, modseq, or date as days since 1970-01-01
    SeqSet set;               // SeqSet / Uid (unresolved)
    std::vector<SearchKey> children;
};

// ESEARCH return options (RFC 4731).
struct SearchReturn {
    bool min = false;
    bool max = false;
    bool count = false;
    bool all = false;
};

struct SearchArgs {
    bool uid = false;
    std::optional<SearchReturn> ret; // RETURN (...) given: answer with ESEARCH
    SearchKey key;                   // an And of the top-level keys
};

// What a key may ask of one message.
struct SearchMessage {
    std::uint32_t seq = 0;
    std::uint32_t uid = 0;
    std::uint32_t flags = 0;
    const std::vector<std::string>* keywords = nullptr;
    std::uint64_t size = 0;
    std::int64_t internal_date = 0; // unix seconds
    int tz_offset_minutes = 0;
    std::uint64_t modseq = 0;
    // Whole message bytes; empty optional when unavailable (expunged meanwhile).
    std::function<const std::string*()> load;
};

// Context for resolving '*' in sequence sets.
struct SearchScope {
    std::uint32_t max_seq = 0;
    std::uint32_t max_uid = 0;
};

bool search_matches(const SearchKey& key, const SearchMessage& msg, const SearchScope& scope);
// True when some key needs the message bytes (header or text search or SENT* dates).
bool search_needs_body(const SearchKey& key);
// True when the key uses MODSEQ (the response then carries "(MODSEQ n)").
bool search_uses_modseq(const SearchKey& key);

// Helpers shared with FETCH and tests.
// Days since 1970-01-01 of an RFC 5322 Date: value, in the zone it was written in.
std::optional<std::int64_t> parse_rfc5322_date_days(std::string_view value);
// Unfolded value of the first header field `name` (case-insensitive); nullopt if absent.
std::vector<std::string> header_values(std::string_view message, std::string_view name);
// RFC 2047 encoded words decoded to UTF-8 when they name UTF-8, US-ASCII or ISO-8859-1;
// other charsets are left as they are.
std::string decode_encoded_words(std::string_view text);
// Case-insensitive substring search (ASCII folding plus Latin-1 range letters in UTF-8).
bool contains_folded(std::string_view haystack, std::string_view needle);

} // namespace popbridge::protocol::imap
