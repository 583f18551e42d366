// Content-* field values with parameters (RFC 2045 5.1, RFC 2183, RFC 2231).
#include <algorithm>
#include <map>

#include "protocol/mime/bodystructure.h"
#include "protocol/mime/encoded_word.h"

namespace popbridge::protocol::mime {

namespace {

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), ascii_lower);
    return s;
}

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string trim(std::string_view s) {
    std::size_t b = 0;
    while (b < s.size() && is_blank(s[b]))
        ++b;
    std::size_t e = s.size();
    while (e > b && is_blank(s[e - 1]))
        --e;
    return std::string(s.substr(b, e - b));
}

// Skips a comment starting at s[pos] == '('; returns the index after it.
std::size_t skip_comment(std::string_view s, std::size_t pos) {
    int depth = 0;
    for (; pos < s.size(); ++pos) {
        char c = s[pos];
        if (c == '\\') {
            ++pos;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')') {
            if (--depth == 0)
                return pos + 1;
        }
    }
    return s.size();
}

// Text up to the next ';' outside quotes and comments; comments dropped, quotes kept.
std::string read_until_semicolon(std::string_view s, std::size_t& pos) {
    std::string out;
    while (pos < s.size() && s[pos] != ';') {
        char c = s[pos];
        if (c == '(') {
            pos = skip_comment(s, pos);
            continue;
        }
        if (c == '"') {
            out.push_back(c);
            ++pos;
            while (pos < s.size() && s[pos] != '"') {
                if (s[pos] == '\\' && pos + 1 < s.size())
                    out.push_back(s[pos++]);
                out.push_back(s[pos++]);
            }
            if (pos < s.size())
                out.push_back(s[pos++]);
            continue;
        }
        out.push_back(c);
        ++pos;
    }
    return out;
}

std::string unquote(std::string_view v) {
    std::string t = trim(v);
    if (t.size() < 1 || t[0] != '"')
        return t;
    std::string out;
    for (std::size_t i = 1; i < t.size(); ++i) {
        if (t[i] == '\\' && i + 1 < t.size()) {
            out.push_back(t[++i]);
        } else if (t[i] == '"') {
            break;
        } else {
            out.push_back(t[i]);
        }
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = ascii_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
            hex_value(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

struct Segment {
    bool extended = false;
    std::string value;
};

struct Collected {
    std::size_t order = 0;
    std::string raw_name; // attribute as first written, suffixes removed
    bool has_plain = false;
    std::string plain;
    bool has_single_ext = false; // name*=...
    std::string single_ext;
    std::map<unsigned, Segment> sections; // name*0, name*1*, ...
};

// "us-ascii'en'This%20is" -> bytes converted to UTF-8 when the charset is known.
std::string decode_extended(std::string_view v, bool first_has_charset) {
    std::string charset;
    if (first_has_charset) {
        std::size_t q1 = v.find('\'');
        std::size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
        if (q2 != std::string_view::npos) {
            charset = std::string(v.substr(0, q1));
            v = v.substr(q2 + 1);
        }
    }
    std::string bytes = percent_decode(v);
    if (!charset.empty()) {
        if (auto u = charset_to_utf8(bytes, charset))
            return *u;
    }
    return bytes;
}

} // namespace

FieldWithParams parse_field_with_params(std::string_view s, std::uint32_t max_parameters) {
    FieldWithParams out;
    std::size_t pos = 0;
    out.raw_value = trim(read_until_semicolon(s, pos));
    // Drop blanks inside "text / plain".
    out.raw_value.erase(std::remove_if(out.raw_value.begin(), out.raw_value.end(), is_blank),
                        out.raw_value.end());
    out.value = lower(out.raw_value);

    std::map<std::string, Collected> by_name;
    std::size_t count = 0;
    while (pos < s.size() && count < max_parameters) {
        ++pos; // ';'
        std::string item = read_until_semicolon(s, pos);
        std::size_t eq = item.find('=');
        if (eq == std::string::npos)
            continue;
        std::string raw_attr = trim(std::string_view(item).substr(0, eq));
        std::string attr = lower(raw_attr);
        std::string raw_value = trim(std::string_view(item).substr(eq + 1));
        if (attr.empty())
            continue;
        ++count;
        bool extended = attr.back() == '*';
        if (extended)
            attr.pop_back();
        long section = -1;
        if (std::size_t star = attr.rfind('*');
            star != std::string::npos && star + 1 < attr.size()) {
            std::string_view digits = std::string_view(attr).substr(star + 1);
            if (digits.size() <= 6 && std::all_of(digits.begin(), digits.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; })) {
                section = std::stol(std::string(digits));
                attr.resize(star);
            }
        }
        auto [it, inserted] = by_name.try_emplace(attr);
        Collected& c = it->second;
        if (inserted) {
            c.order = by_name.size();
            c.raw_name = raw_attr.substr(0, attr.size());
        }
        std::string value = extended ? raw_value : unquote(raw_value);
        if (extended && !value.empty() && value[0] == '"')
            value = unquote(value); // tolerated: a quoted extended value
        if (section >= 0) {
            auto sec = static_cast<unsigned>(section);
            if (!c.sections.count(sec))
                c.sections[sec] = Segment{extended, std::move(value)};
        } else if (extended) {
            if (!c.has_single_ext) {
                c.has_single_ext = true;
                c.single_ext = std::move(value);
            }
        } else if (!c.has_plain) {
            c.has_plain = true;
            c.plain = std::move(value);
        }
    }

    std::vector<std::pair<std::size_t, Parameter>> ordered;
    for (auto& [name, c] : by_name) {
        Parameter p;
        p.name = name;
        p.wire_name = c.raw_name;
        if (c.has_single_ext) {
            p.value = decode_extended(c.single_ext, true);
            p.wire_name += '*';
            p.wire_value = c.single_ext;
        } else if (!c.sections.empty() && c.sections.begin()->first == 0) {
            // Join sections 0, 1, 2... until the first gap; percent-decode the extended ones
            // and convert with the charset named in section 0.
            std::string bytes;
            std::string charset;
            unsigned expect = 0;
            bool any_extended = false;
            for (auto& [n, seg] : c.sections) {
                if (n != expect)
                    break;
                ++expect;
                p.wire_value += seg.value;
                any_extended = any_extended || seg.extended;
                std::string_view v = seg.value;
                if (seg.extended) {
                    if (n == 0) {
                        std::size_t q1 = v.find('\'');
                        std::size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
                        if (q2 != std::string_view::npos) {
                            charset = std::string(v.substr(0, q1));
                            v = v.substr(q2 + 1);
                        }
                    }
                    bytes += percent_decode(v);
                } else {
                    bytes += v;
                }
            }
            std::optional<std::string> u;
            if (!charset.empty())
                u = charset_to_utf8(bytes, charset);
            p.value = u ? *u : bytes;
            if (any_extended)
                p.wire_name += '*';
        } else if (c.has_plain) {
            p.value = c.plain;
            p.wire_value = c.plain;
        } else {
            continue;
        }
        ordered.emplace_back(c.order, std::move(p));
    }
    std::sort(ordered.begin(), ordered.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [order, p] : ordered)
        out.params.push_back(std::move(p));
    return out;
}

} // namespace popbridge::protocol::mime
