// SEARCH / UID SEARCH (RFC 3501 6.4.4, RFC 4731 ESEARCH, RFC 7162 MODSEQ).
#include <array>
#include <cstddef>
#include <string>

#include "protocol/imap/flags.h"
#include "protocol/imap/parse/parse.h"
#include "protocol/imap/search.h"

namespace popbridge::protocol::imap {

namespace {

constexpr unsigned kMaxSearchDepth = 32;
// A SEARCH is evaluated on the loop against every message of the mailbox, so its cost is
// messages x keys; without a cap "NOT (NOT TEXT a NOT TEXT b ...)" (an OR of thousands of
// full-text keys, no short cut) held the loop for seconds per few dozen messages. Keys that
// read the message (HEADER/FROM/.../BODY/TEXT/SENT*) are the expensive ones.
constexpr std::size_t kMaxSearchKeys = 1000;
constexpr std::size_t kMaxSearchContentKeys = 64;

void count_keys(const SearchKey& k, std::size_t& keys, std::size_t& content) {
    ++keys;
    if (search_key_reads_content(k.kind))
        ++content;
    for (const SearchKey& c : k.children)
        count_keys(c, keys, content);
}

// date = date-text / DQUOTE date-text DQUOTE ; date-text = date-day "-" date-month "-" date-year
Parsed<std::uint64_t> search_date(ArgCursor& args) {
    const Token* t = args.peek();
    if (t == nullptr || (t->kind != TokenKind::Atom && t->kind != TokenKind::Quoted))
        return parse_error("Expected a date");
    std::string_view s = t->text;
    static constexpr std::array<std::string_view, 12> kMonths = {
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
    auto d1 = s.find('-');
    auto d2 = d1 == std::string_view::npos ? d1 : s.find('-', d1 + 1);
    if (d2 == std::string_view::npos || d1 == 0 || d1 > 2 || d2 != d1 + 4 || s.size() != d2 + 5)
        return parse_error("Invalid date");
    unsigned day = 0, year = 0;
    for (char c : s.substr(0, d1)) {
        if (c < '0' || c > '9')
            return parse_error("Invalid date");
        day = day * 10 + static_cast<unsigned>(c - '0');
    }
    for (char c : s.substr(d2 + 1)) {
        if (c < '0' || c > '9')
            return parse_error("Invalid date");
        year = year * 10 + static_cast<unsigned>(c - '0');
    }
    std::string mon = to_upper(s.substr(d1 + 1, 3));
    unsigned month = 0;
    for (unsigned i = 0; i < 12; ++i)
        if (kMonths[i] == mon)
            month = i + 1;
    if (month == 0 || day < 1 || day > 31)
        return parse_error("Invalid date");
    args.advance();
    std::int64_t y = static_cast<std::int64_t>(year) - (month <= 2 ? 1 : 0);
    std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    auto yoe = static_cast<unsigned>(y - era * 400);
    unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    std::int64_t days = era * 146097 + static_cast<std::int64_t>(doe) - 719468;
    // Stored as an offset so dates before 1970 stay representable in the unsigned field.
    return static_cast<std::uint64_t>(days);
}

Parsed<SearchKey> search_key(ArgCursor& args, unsigned depth);

Parsed<SearchKey> with_string(ArgCursor& args, SearchKind kind, std::string field) {
    auto s = args.astring();
    if (!s)
        return tl::unexpected(s.error());
    SearchKey k;
    k.kind = kind;
    k.field = std::move(field);
    k.value = std::move(*s);
    return k;
}

Parsed<SearchKey> search_key(ArgCursor& args, unsigned depth) {
    if (depth > kMaxSearchDepth)
        return parse_error("Search key nested too deeply");
    SearchKey k;
    if (args.list_open()) {
        k.kind = SearchKind::And;
        while (!args.list_close()) {
            auto child = search_key(args, depth + 1);
            if (!child)
                return tl::unexpected(child.error());
            k.children.push_back(std::move(*child));
        }
        if (k.children.empty())
            return parse_error("Empty search key list");
        return k;
    }
    const Token* t = args.peek();
    if (t == nullptr || t->kind != TokenKind::Atom)
        return parse_error("Expected search key");
    // A sequence set starts with a digit or '*'.
    if (!t->text.empty() && ((t->text[0] >= '0' && t->text[0] <= '9') || t->text[0] == '*')) {
        auto set = SeqSet::parse(t->text);
        if (!set)
            return parse_error("Invalid sequence set");
        args.advance();
        k.kind = SearchKind::SeqSet;
        k.set = std::move(*set);
        return k;
    }
    std::string name = to_upper(t->text);
    args.advance();
    struct FlagKey {
        std::string_view name;
        SearchKind kind;
        std::uint32_t bit;
    };
    static constexpr std::array<FlagKey, 12> kFlagKeys{{
        {"ANSWERED", SearchKind::FlagSet, kFlagAnswered},
        {"DELETED", SearchKind::FlagSet, kFlagDeleted},
        {"DRAFT", SearchKind::FlagSet, kFlagDraft},
        {"FLAGGED", SearchKind::FlagSet, kFlagFlagged},
        {"SEEN", SearchKind::FlagSet, kFlagSeen},
        {"RECENT", SearchKind::FlagSet, kFlagRecent},
        {"UNANSWERED", SearchKind::FlagUnset, kFlagAnswered},
        {"UNDELETED", SearchKind::FlagUnset, kFlagDeleted},
        {"UNDRAFT", SearchKind::FlagUnset, kFlagDraft},
        {"UNFLAGGED", SearchKind::FlagUnset, kFlagFlagged},
        {"UNSEEN", SearchKind::FlagUnset, kFlagSeen},
        {"OLD", SearchKind::Old, 0},
    }};
    for (const FlagKey& f : kFlagKeys) {
        if (name == f.name) {
            k.kind = f.kind;
            k.number = f.bit;
            return k;
        }
    }
    if (name == "ALL") {
        k.kind = SearchKind::All;
        return k;
    }
    if (name == "NEW") {
        k.kind = SearchKind::New;
        return k;
    }
    if (name == "FROM" || name == "TO" || name == "CC" || name == "BCC" || name == "SUBJECT")
        return with_string(args, SearchKind::Header, name);
    if (name == "BODY")
        return with_string(args, SearchKind::Body, {});
    if (name == "TEXT")
        return with_string(args, SearchKind::Text, {});
    if (name == "HEADER") {
        auto field = args.astring();
        if (!field)
            return tl::unexpected(field.error());
        return with_string(args, SearchKind::Header, std::move(*field));
    }
    if (name == "KEYWORD" || name == "UNKEYWORD") {
        auto kw = args.atom();
        if (!kw)
            return tl::unexpected(kw.error());
        k.kind = name == "KEYWORD" ? SearchKind::Keyword : SearchKind::Unkeyword;
        k.field = std::move(*kw);
        return k;
    }
    if (name == "LARGER" || name == "SMALLER") {
        auto n = args.number(false);
        if (!n)
            return tl::unexpected(n.error());
        k.kind = name == "LARGER" ? SearchKind::Larger : SearchKind::Smaller;
        k.number = *n;
        return k;
    }
    static constexpr std::array<std::pair<std::string_view, SearchKind>, 6> kDates{{
        {"BEFORE", SearchKind::Before},
        {"ON", SearchKind::On},
        {"SINCE", SearchKind::Since},
        {"SENTBEFORE", SearchKind::SentBefore},
        {"SENTON", SearchKind::SentOn},
        {"SENTSINCE", SearchKind::SentSince},
    }};
    for (const auto& [dname, kind] : kDates) {
        if (name == dname) {
            auto d = search_date(args);
            if (!d)
                return tl::unexpected(d.error());
            k.kind = kind;
            k.number = *d;
            return k;
        }
    }
    if (name == "UID") {
        const Token* s = args.peek();
        if (s == nullptr || s->kind != TokenKind::Atom)
            return parse_error("Expected UID set");
        auto set = SeqSet::parse(s->text);
        if (!set)
            return parse_error("Invalid UID set");
        args.advance();
        k.kind = SearchKind::Uid;
        k.set = std::move(*set);
        return k;
    }
    if (name == "NOT") {
        auto child = search_key(args, depth + 1);
        if (!child)
            return tl::unexpected(child.error());
        k.kind = SearchKind::Not;
        k.children.push_back(std::move(*child));
        return k;
    }
    if (name == "OR") {
        k.kind = SearchKind::Or;
        for (int i = 0; i < 2; ++i) {
            auto child = search_key(args, depth + 1);
            if (!child)
                return tl::unexpected(child.error());
            k.children.push_back(std::move(*child));
        }
        return k;
    }
    if (name == "MODSEQ") {
        // MODSEQ [entry-name entry-type-req] mod-sequence-valzer
        const Token* n = args.peek();
        if (n != nullptr && n->kind == TokenKind::Quoted) {
            args.advance();
            auto type = args.atom();
            if (!type ||
                !(iequals(*type, "priv") || iequals(*type, "shared") || iequals(*type, "all")))
                return parse_error("Invalid MODSEQ entry type");
        }
        auto v = parse_number64(args);
        if (!v)
            return tl::unexpected(v.error());
        k.kind = SearchKind::ModSeq;
        k.number = *v;
        return k;
    }
    return parse_error("Unknown search key " + name);
}

} // namespace

// search = "SEARCH" [search-return-opts] [SP "CHARSET" SP charset] 1*(SP search-key)
Parsed<CommandArgs> parse_search(ArgCursor& args, bool uid) {
    SearchArgs out;
    out.uid = uid;
    const Token* t = args.peek();
    if (t != nullptr && t->kind == TokenKind::Atom && iequals(t->text, "RETURN")) {
        args.advance();
        if (!args.list_open())
            return parse_error("Expected RETURN (...)");
        SearchReturn ret;
        while (!args.list_close()) {
            auto opt = args.atom();
            if (!opt)
                return tl::unexpected(opt.error());
            if (iequals(*opt, "MIN"))
                ret.min = true;
            else if (iequals(*opt, "MAX"))
                ret.max = true;
            else if (iequals(*opt, "COUNT"))
                ret.count = true;
            else if (iequals(*opt, "ALL"))
                ret.all = true;
            else
                return parse_error("Unknown SEARCH return option " + *opt);
        }
        if (!ret.min && !ret.max && !ret.count && !ret.all)
            ret.all = true; // RFC 4731: "RETURN ()" means ALL
        out.ret = ret;
        t = args.peek();
    }
    if (t != nullptr && t->kind == TokenKind::Atom && iequals(t->text, "CHARSET")) {
        args.advance();
        auto cs = args.astring();
        if (!cs)
            return tl::unexpected(cs.error());
        out.unsupported_charset = !iequals(*cs, "UTF-8") && !iequals(*cs, "US-ASCII");
    }
    out.key.kind = SearchKind::And;
    while (!args.at_end()) {
        auto k = search_key(args, 0);
        if (!k)
            return tl::unexpected(k.error());
        out.key.children.push_back(std::move(*k));
    }
    if (out.key.children.empty())
        return parse_error("Missing search key");
    std::size_t keys = 0, content = 0;
    count_keys(out.key, keys, content);
    if (keys - 1 > kMaxSearchKeys || content > kMaxSearchContentKeys)
        return parse_error(
            "[LIMIT] Too many search keys (at most " + std::to_string(kMaxSearchKeys) + ", " +
            std::to_string(kMaxSearchContentKeys) + " of them reading message content)");
    return CommandArgs(std::move(out));
}

} // namespace popbridge::protocol::imap
