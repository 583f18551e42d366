#pragma once
// SEARCH keys (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 7162 3.1.5) as a tree, and their
// evaluation against one message.
//
// Parsing (parse/search.cpp) turns the token list into a SearchKey; the session evaluates it
// per message with a SearchMessage that loads the message bytes only when a key needs them
// (header and body text keys), so flag/size/UID searches never touch the disk.
//
// Text matching uses protocol/mime/search.h: needles are UTF-8 and compared case-insensitively
// (mime::contains_folded) with header field values RFC 2047-decoded, and with every leaf text
// part (nested message/rfc822 included) decoded from quoted-printable / base64 and its charset.
//
// Sequence sets of SeqSet / Uid keys are resolved once per SEARCH (resolve_search_sets), not
// once per message.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/imap/seq_set.h"
#include "protocol/mime/message.h"

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
    SeqSet set;               // SeqSet / Uid: as sent, or resolved when `resolved`
    bool resolved = false;    // `set` has '*' replaced and is sorted (resolve_search_sets)
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
    // CHARSET other than UTF-8/US-ASCII: the keys parsed, but the answer is
    // NO [BADCHARSET (UTF-8 US-ASCII)] (RFC 3501 6.4.4).
    bool unsupported_charset = false;
};

// A message's bytes and its MIME structure, which points into `bytes`: build it in place
// and never move it.
struct SearchBody {
    std::string bytes;
    mime::Message mime;
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
    // The message bytes, parsed; nullptr when unavailable (expunged meanwhile). Called only
    // by keys that need the content; the caller loads and parses at most once.
    std::function<const SearchBody*()> load;
};

// Context for resolving '*' in sequence sets.
struct SearchScope {
    std::uint32_t max_seq = 0;
    std::uint32_t max_uid = 0;
};

// Resolves the sets of every SeqSet / Uid key of the tree in place, for `scope`.
void resolve_search_sets(SearchKey& key, const SearchScope& scope);
// Unresolved sets are resolved on the fly (slower: once per message).
bool search_matches(const SearchKey& key, const SearchMessage& msg, const SearchScope& scope);
// True when this key itself (children aside) reads the message bytes: header or text search,
// SENT* dates.
bool search_key_reads_content(SearchKind kind);
// True when some key needs the message bytes (header or text search or SENT* dates).
bool search_needs_body(const SearchKey& key);
// True when the key uses MODSEQ (the response then carries "(MODSEQ n)").
bool search_uses_modseq(const SearchKey& key);

// Days since 1970-01-01 of an RFC 5322 Date: value, in the zone it was written in.
std::optional<std::int64_t> parse_rfc5322_date_days(std::string_view value);

} // namespace popbridge::protocol::imap
