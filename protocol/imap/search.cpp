#include "protocol/imap/search.h"

#include <algorithm>
#include <array>

#include "protocol/imap/flags.h"
#include "protocol/mime/encoded_word.h"
#include "protocol/mime/header.h"
#include "protocol/mime/search.h"

namespace popbridge::protocol::imap {

std::string_view to_string(SearchKind k) {
    switch (k) {
    case SearchKind::All:
        return "All";
    case SearchKind::And:
        return "And";
    case SearchKind::Or:
        return "Or";
    case SearchKind::Not:
        return "Not";
    case SearchKind::SeqSet:
        return "SeqSet";
    case SearchKind::Uid:
        return "Uid";
    case SearchKind::FlagSet:
        return "FlagSet";
    case SearchKind::FlagUnset:
        return "FlagUnset";
    case SearchKind::New:
        return "New";
    case SearchKind::Old:
        return "Old";
    case SearchKind::Keyword:
        return "Keyword";
    case SearchKind::Unkeyword:
        return "Unkeyword";
    case SearchKind::Header:
        return "Header";
    case SearchKind::Body:
        return "Body";
    case SearchKind::Text:
        return "Text";
    case SearchKind::Before:
        return "Before";
    case SearchKind::On:
        return "On";
    case SearchKind::Since:
        return "Since";
    case SearchKind::SentBefore:
        return "SentBefore";
    case SearchKind::SentOn:
        return "SentOn";
    case SearchKind::SentSince:
        return "SentSince";
    case SearchKind::Larger:
        return "Larger";
    case SearchKind::Smaller:
        return "Smaller";
    case SearchKind::ModSeq:
        return "ModSeq";
    }
    return "?";
}

namespace {

char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequal_ascii(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    return a >= 0 ? a / b : (a - b + 1) / b;
}

std::int64_t internal_day(const SearchMessage& m) {
    return floor_div(m.internal_date + static_cast<std::int64_t>(m.tz_offset_minutes) * 60, 86400);
}

// SEARCH TEXT also looks at the header of every body part and of every encapsulated
// message (field names included, RFC 2047 decoded), as Dovecot does; mime::search_text
// covers the top-level header and the text bodies.
bool text_in_part_headers(const mime::Message& msg, std::string_view needle) {
    for (std::size_t i = 1; i < msg.parts.size(); ++i) {
        bool found = false;
        mime::for_each_field(msg.parts[i].header.in(msg.bytes), [&](const mime::HeaderField& f) {
            found = mime::contains_folded(mime::decode_encoded_words(mime::unfold(f.raw)), needle);
            return !found;
        });
        if (found)
            return true;
    }
    return false;
}

std::optional<std::int64_t> sent_day(const SearchMessage& m) {
    const SearchBody* body = m.load ? m.load() : nullptr;
    if (body == nullptr)
        return std::nullopt;
    auto date = mime::find_field(body->mime.root().header.in(body->bytes), "Date");
    if (!date)
        return std::nullopt;
    return parse_rfc5322_date_days(*date);
}

} // namespace

std::optional<std::int64_t> parse_rfc5322_date_days(std::string_view v) {
    static constexpr std::array<std::string_view, 12> kMonths = {
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
    // Skip an optional "Day," prefix.
    if (auto comma = v.find(','); comma != std::string_view::npos && comma < 10)
        v.remove_prefix(comma + 1);
    auto skip_ws = [&] {
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
            v.remove_prefix(1);
    };
    auto number = [&](unsigned max_digits) -> std::optional<unsigned> {
        skip_ws();
        unsigned n = 0, digits = 0;
        while (!v.empty() && v.front() >= '0' && v.front() <= '9' && digits < max_digits) {
            n = n * 10 + static_cast<unsigned>(v.front() - '0');
            v.remove_prefix(1);
            ++digits;
        }
        if (digits == 0)
            return std::nullopt;
        return n;
    };
    auto day = number(2);
    if (!day || *day < 1 || *day > 31)
        return std::nullopt;
    skip_ws();
    if (v.size() < 3)
        return std::nullopt;
    std::string mon(v.substr(0, 3));
    for (char& c : mon)
        c = ascii_lower(c);
    v.remove_prefix(3);
    unsigned month = 0;
    for (unsigned i = 0; i < 12; ++i)
        if (kMonths[i] == mon)
            month = i + 1;
    if (month == 0)
        return std::nullopt;
    // Skip the rest of a long month name.
    while (!v.empty() &&
           ((v.front() >= 'a' && v.front() <= 'z') || (v.front() >= 'A' && v.front() <= 'Z')))
        v.remove_prefix(1);
    auto year = number(4);
    if (!year)
        return std::nullopt;
    unsigned y = *year;
    if (y < 50)
        y += 2000; // RFC 5322 4.3 obsolete two-digit years
    else if (y < 1000)
        y += 1900;
    return days_from_civil(y, month, *day);
}

bool search_key_reads_content(SearchKind kind) {
    switch (kind) {
    case SearchKind::Header:
    case SearchKind::Body:
    case SearchKind::Text:
    case SearchKind::SentBefore:
    case SearchKind::SentOn:
    case SearchKind::SentSince:
        return true;
    default:
        return false;
    }
}

bool search_needs_body(const SearchKey& key) {
    return search_key_reads_content(key.kind) ||
           std::any_of(key.children.begin(), key.children.end(),
                       [](const SearchKey& k) { return search_needs_body(k); });
}

bool search_uses_modseq(const SearchKey& key) {
    if (key.kind == SearchKind::ModSeq)
        return true;
    return std::any_of(key.children.begin(), key.children.end(),
                       [](const SearchKey& k) { return search_uses_modseq(k); });
}

void resolve_search_sets(SearchKey& key, const SearchScope& scope) {
    if (!key.resolved && (key.kind == SearchKind::SeqSet || key.kind == SearchKind::Uid)) {
        key.set = key.set.resolve(key.kind == SearchKind::SeqSet ? scope.max_seq : scope.max_uid);
        key.resolved = true;
    }
    for (SearchKey& child : key.children)
        resolve_search_sets(child, scope);
}

bool search_matches(const SearchKey& key, const SearchMessage& m, const SearchScope& scope) {
    switch (key.kind) {
    case SearchKind::All:
        return true;
    case SearchKind::And:
        for (const SearchKey& k : key.children)
            if (!search_matches(k, m, scope))
                return false;
        return true;
    case SearchKind::Or:
        for (const SearchKey& k : key.children)
            if (search_matches(k, m, scope))
                return true;
        return false;
    case SearchKind::Not:
        return key.children.empty() || !search_matches(key.children.front(), m, scope);
    case SearchKind::SeqSet:
        return key.resolved ? key.set.contains(m.seq)
                            : key.set.resolve(scope.max_seq).contains(m.seq);
    case SearchKind::Uid:
        return key.resolved ? key.set.contains(m.uid)
                            : key.set.resolve(scope.max_uid).contains(m.uid);
    case SearchKind::FlagSet:
        return (m.flags & key.number) != 0;
    case SearchKind::FlagUnset:
        return (m.flags & key.number) == 0;
    case SearchKind::New:
        return (m.flags & kFlagRecent) != 0 && (m.flags & kFlagSeen) == 0;
    case SearchKind::Old:
        return (m.flags & kFlagRecent) == 0;
    case SearchKind::Keyword:
    case SearchKind::Unkeyword: {
        bool has = m.keywords != nullptr &&
                   std::any_of(m.keywords->begin(), m.keywords->end(),
                               [&](const std::string& k) { return iequal_ascii(k, key.field); });
        return key.kind == SearchKind::Keyword ? has : !has;
    }
    case SearchKind::Header: {
        const SearchBody* body = m.load ? m.load() : nullptr;
        return body != nullptr && mime::search_header(body->mime, key.field, key.value);
    }
    case SearchKind::Body: {
        const SearchBody* body = m.load ? m.load() : nullptr;
        return body != nullptr && mime::search_body(body->mime, key.value);
    }
    case SearchKind::Text: {
        const SearchBody* body = m.load ? m.load() : nullptr;
        return body != nullptr && (mime::search_text(body->mime, key.value) ||
                                   text_in_part_headers(body->mime, key.value));
    }
    case SearchKind::Before:
        return internal_day(m) < static_cast<std::int64_t>(key.number);
    case SearchKind::On:
        return internal_day(m) == static_cast<std::int64_t>(key.number);
    case SearchKind::Since:
        return internal_day(m) >= static_cast<std::int64_t>(key.number);
    case SearchKind::SentBefore:
    case SearchKind::SentOn:
    case SearchKind::SentSince: {
        auto d = sent_day(m);
        if (!d)
            return false;
        auto want = static_cast<std::int64_t>(key.number);
        return key.kind == SearchKind::SentBefore ? *d < want
               : key.kind == SearchKind::SentOn   ? *d == want
                                                  : *d >= want;
    }
    case SearchKind::Larger:
        return m.size > key.number;
    case SearchKind::Smaller:
        return m.size < key.number;
    case SearchKind::ModSeq:
        return m.modseq >= key.number;
    }
    return false;
}

} // namespace popbridge::protocol::imap
