#include "protocol/imap/search.h"

#include <algorithm>
#include <array>
#include <functional>

#include "protocol/imap/flags.h"

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

// ASCII lower case plus the Latin-1 Supplement capitals (U+00C0..U+00DE except U+00D7),
// which UTF-8 writes as C3 80..C3 9E.
std::string fold(std::string_view s) {
    std::string out(s);
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto u = static_cast<unsigned char>(out[i]);
        if (u == 0xC3 && i + 1 < out.size()) {
            auto v = static_cast<unsigned char>(out[i + 1]);
            if (v >= 0x80 && v <= 0x9E && v != 0x97)
                out[i + 1] = static_cast<char>(v + 0x20);
            ++i;
        } else {
            out[i] = ascii_lower(out[i]);
        }
    }
    return out;
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

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

std::string decode_base64(std::string_view in) {
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = b64_value(c);
        if (v < 0)
            continue; // line breaks, padding, junk
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

std::string decode_qp(std::string_view in, bool underscore_space) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '=') {
            std::string_view next = in.substr(i + 1, 2);
            if (next == "\r\n") { // soft line break
                i += 2;
                continue;
            }
            if (!next.empty() && next[0] == '\n') {
                i += 1;
                continue;
            }
            if (next.size() == 2 && hex_value(next[0]) >= 0 && hex_value(next[1]) >= 0) {
                out.push_back(static_cast<char>(hex_value(next[0]) * 16 + hex_value(next[1])));
                i += 2;
                continue;
            }
        }
        out.push_back(underscore_space && c == '_' ? ' ' : c);
    }
    return out;
}

// ISO-8859-1 -> UTF-8.
std::string latin1_to_utf8(std::string_view in) {
    std::string out;
    for (char c : in) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x80) {
            out.push_back(c);
        } else {
            out.push_back(static_cast<char>(0xC0 | (u >> 6)));
            out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
        }
    }
    return out;
}

struct Split {
    std::string_view header;
    std::string_view body;
};

Split split_message(std::string_view msg) {
    if (msg.substr(0, 2) == "\r\n")
        return {{}, msg.substr(2)};
    auto pos = msg.find("\r\n\r\n");
    if (pos == std::string_view::npos) {
        pos = msg.find("\n\n");
        if (pos == std::string_view::npos)
            return {msg, {}};
        return {msg.substr(0, pos + 1), msg.substr(pos + 2)};
    }
    return {msg.substr(0, pos + 2), msg.substr(pos + 4)};
}

std::string decoded_body(std::string_view message) {
    Split parts = split_message(message);
    auto cte = header_values(parts.header, "Content-Transfer-Encoding");
    std::string enc = cte.empty() ? std::string() : fold(cte.front());
    enc.erase(std::remove_if(enc.begin(), enc.end(), [](char c) { return c == ' ' || c == '\t'; }),
              enc.end());
    if (enc == "base64")
        return decode_base64(parts.body);
    if (enc == "quoted-printable")
        return decode_qp(parts.body, false);
    return std::string(parts.body);
}

bool text_in_header(std::string_view message, std::string_view field, std::string_view needle) {
    Split parts = split_message(message);
    for (const std::string& v : header_values(parts.header, field)) {
        // RFC 3501: HEADER with an empty string matches every message having the field.
        if (needle.empty() || contains_folded(decode_encoded_words(v), needle))
            return true;
    }
    return false;
}

std::int64_t internal_day(const SearchMessage& m) {
    return floor_div(m.internal_date + static_cast<std::int64_t>(m.tz_offset_minutes) * 60, 86400);
}

std::optional<std::int64_t> sent_day(const SearchMessage& m) {
    const std::string* body = m.load ? m.load() : nullptr;
    if (body == nullptr)
        return std::nullopt;
    auto dates = header_values(split_message(*body).header, "Date");
    if (dates.empty())
        return std::nullopt;
    return parse_rfc5322_date_days(dates.front());
}

} // namespace

bool contains_folded(std::string_view haystack, std::string_view needle) {
    if (needle.empty())
        return true;
    std::string h = fold(haystack), n = fold(needle);
    return std::search(h.begin(), h.end(),
                       std::boyer_moore_horspool_searcher(n.begin(), n.end())) != h.end();
}

std::vector<std::string> header_values(std::string_view header, std::string_view name) {
    std::vector<std::string> out;
    std::string* current = nullptr;
    while (!header.empty()) {
        auto eol = header.find('\n');
        std::string_view line =
            header.substr(0, eol == std::string_view::npos ? header.size() : eol);
        header.remove_prefix(eol == std::string_view::npos ? header.size() : eol + 1);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        if (line.empty())
            break; // end of the header
        if (line[0] == ' ' || line[0] == '\t') {
            if (current != nullptr)
                current->append(line);
            continue;
        }
        current = nullptr;
        auto colon = line.find(':');
        if (colon == std::string_view::npos)
            continue;
        std::string_view fname = line.substr(0, colon);
        while (!fname.empty() && (fname.back() == ' ' || fname.back() == '\t'))
            fname.remove_suffix(1);
        if (!iequal_ascii(fname, name))
            continue;
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
            value.remove_prefix(1);
        out.emplace_back(value);
        current = &out.back();
    }
    return out;
}

std::string decode_encoded_words(std::string_view text) {
    std::string out;
    std::size_t i = 0;
    bool last_was_word = false;
    std::size_t pending_ws_start = std::string::npos;
    while (i < text.size()) {
        if (text.compare(i, 2, "=?") == 0) {
            // =?charset?enc?data?=
            auto q1 = text.find('?', i + 2);
            auto q2 = q1 == std::string_view::npos ? q1 : text.find('?', q1 + 1);
            auto end = q2 == std::string_view::npos ? q2 : text.find("?=", q2 + 1);
            if (end != std::string_view::npos && q2 == q1 + 2) {
                std::string charset = fold(text.substr(i + 2, q1 - i - 2));
                if (auto star = charset.find('*'); star != std::string::npos)
                    charset.resize(star); // RFC 2231 language suffix
                char enc = ascii_lower(text[q1 + 1]);
                std::string_view data = text.substr(q2 + 1, end - q2 - 1);
                std::string decoded;
                bool ok = true;
                if (enc == 'b')
                    decoded = decode_base64(data);
                else if (enc == 'q')
                    decoded = decode_qp(data, true);
                else
                    ok = false;
                if (ok && (charset == "utf-8" || charset == "us-ascii" || charset == "iso-8859-1" ||
                           charset == "latin1" || charset == "windows-1252")) {
                    if (charset != "utf-8" && charset != "us-ascii")
                        decoded = latin1_to_utf8(decoded);
                    // Whitespace between two encoded words is dropped (RFC 2047 6.2).
                    if (last_was_word && pending_ws_start != std::string::npos)
                        out.resize(pending_ws_start);
                    out += decoded;
                    i = end + 2;
                    last_was_word = true;
                    pending_ws_start = std::string::npos;
                    continue;
                }
            }
        }
        char c = text[i++];
        if (c == ' ' || c == '\t') {
            if (pending_ws_start == std::string::npos)
                pending_ws_start = out.size();
        } else {
            last_was_word = false;
            pending_ws_start = std::string::npos;
        }
        out.push_back(c);
    }
    return out;
}

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
    std::string mon = fold(v.substr(0, 3));
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

bool search_needs_body(const SearchKey& key) {
    switch (key.kind) {
    case SearchKind::Header:
    case SearchKind::Body:
    case SearchKind::Text:
    case SearchKind::SentBefore:
    case SearchKind::SentOn:
    case SearchKind::SentSince:
        return true;
    default:
        return std::any_of(key.children.begin(), key.children.end(),
                           [](const SearchKey& k) { return search_needs_body(k); });
    }
}

bool search_uses_modseq(const SearchKey& key) {
    if (key.kind == SearchKind::ModSeq)
        return true;
    return std::any_of(key.children.begin(), key.children.end(),
                       [](const SearchKey& k) { return search_uses_modseq(k); });
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
        return key.set.resolve(scope.max_seq).contains(m.seq);
    case SearchKind::Uid:
        return key.set.resolve(scope.max_uid).contains(m.uid);
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
        const std::string* body = m.load ? m.load() : nullptr;
        return body != nullptr && text_in_header(*body, key.field, key.value);
    }
    case SearchKind::Body: {
        const std::string* body = m.load ? m.load() : nullptr;
        return body != nullptr && contains_folded(decoded_body(*body), key.value);
    }
    case SearchKind::Text: {
        const std::string* body = m.load ? m.load() : nullptr;
        if (body == nullptr)
            return false;
        Split parts = split_message(*body);
        return contains_folded(decode_encoded_words(parts.header), key.value) ||
               contains_folded(decoded_body(*body), key.value);
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
