#include "protocol/mime/encoded_word.h"

#include "protocol/common/utf8.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>

namespace popbridge::protocol::mime {

namespace {

enum class Charset { Utf8, Ascii, Latin1, Latin9, Cp1252, Unknown };

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
    return out;
}

Charset lookup_charset(std::string_view name) {
    std::string n = lower(name);
    if (n == "utf-8" || n == "utf8")
        return Charset::Utf8;
    if (n == "us-ascii" || n == "ascii" || n == "ansi_x3.4-1968" || n == "iso646-us")
        return Charset::Ascii;
    if (n == "iso-8859-1" || n == "iso8859-1" || n == "iso_8859-1" || n == "latin1" || n == "l1" ||
        n == "cp819" || n == "iso_8859-1:1987")
        return Charset::Latin1;
    if (n == "iso-8859-15" || n == "iso8859-15" || n == "iso_8859-15" || n == "latin9" ||
        n == "latin-9")
        return Charset::Latin9;
    if (n == "windows-1252" || n == "cp1252" || n == "x-cp1252")
        return Charset::Cp1252;
    return Charset::Unknown;
}

// windows-1252 0x80..0x9F; the five unassigned bytes map to the C1 control of the same value.
constexpr std::array<std::uint16_t, 32> kCp1252High{
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

std::uint32_t latin9(unsigned char c) {
    switch (c) {
    case 0xA4:
        return 0x20AC;
    case 0xA6:
        return 0x0160;
    case 0xA8:
        return 0x0161;
    case 0xB4:
        return 0x017D;
    case 0xB8:
        return 0x017E;
    case 0xBC:
        return 0x0152;
    case 0xBD:
        return 0x0153;
    case 0xBE:
        return 0x0178;
    default:
        return c;
    }
}

std::string convert(std::string_view text, Charset cs) {
    if (cs == Charset::Utf8 || cs == Charset::Ascii || cs == Charset::Unknown)
        return std::string(text);
    std::string out;
    out.reserve(text.size() + text.size() / 4);
    for (unsigned char c : text) {
        std::uint32_t cp = c;
        if (cs == Charset::Cp1252 && c >= 0x80 && c <= 0x9F)
            cp = kCp1252High[c - 0x80];
        else if (cs == Charset::Latin9)
            cp = latin9(c);
        append_utf8(out, cp);
    }
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int base64_value(char c) {
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

// RFC 2047 4.2 "Q": like quoted-printable, with '_' for space. nullopt on a bad escape.
std::optional<std::string> decode_q(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '_') {
            out.push_back(' ');
        } else if (c == '=') {
            if (i + 2 >= in.size())
                return std::nullopt;
            int h = hex_value(in[i + 1]);
            int l = hex_value(in[i + 2]);
            if (h < 0 || l < 0)
                return std::nullopt;
            out.push_back(static_cast<char>(h * 16 + l));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

// Longest run of bytes an encoded word may span; bounds the work per "=?" candidate.
constexpr std::size_t kMaxEncodedWord = 2048;

struct Word {
    std::size_t end = 0; // index after "?="
    std::string text;    // decoded, UTF-8
};

// Tries to read an encoded word at `pos` ("=?"). nullopt when it is not a decodable one.
std::optional<Word> read_word(std::string_view s, std::size_t pos) {
    std::size_t limit = std::min(s.size(), pos + kMaxEncodedWord);
    std::size_t q1 = pos + 2;
    std::size_t q2 = s.find('?', q1);
    if (q2 == std::string_view::npos || q2 >= limit || q2 == q1)
        return std::nullopt;
    if (q2 + 2 >= limit || s[q2 + 2] != '?')
        return std::nullopt;
    char enc = ascii_lower(s[q2 + 1]);
    if (enc != 'b' && enc != 'q')
        return std::nullopt;
    std::size_t tstart = q2 + 3;
    std::size_t tend = s.find("?=", tstart);
    if (tend == std::string_view::npos || tend + 2 > limit)
        return std::nullopt;
    std::string_view encoded = s.substr(tstart, tend - tstart);
    if (encoded.find_first_of(" \t\r\n") != std::string_view::npos)
        return std::nullopt;
    std::string_view charset = s.substr(q1, q2 - q1);
    if (auto star = charset.find('*'); star != std::string_view::npos)
        charset = charset.substr(0, star); // RFC 2231 5: charset*language
    Charset cs = lookup_charset(charset);
    if (cs == Charset::Unknown)
        return std::nullopt;
    std::string raw;
    if (enc == 'b') {
        raw = decode_base64(encoded);
    } else {
        auto q = decode_q(encoded);
        if (!q)
            return std::nullopt;
        raw = std::move(*q);
    }
    return Word{tend + 2, convert(raw, cs)};
}

std::uint32_t fold_cp(std::uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp < 0xC0)
        return cp;
    if (cp <= 0xDE && cp != 0xD7)
        return cp + 32;
    if (cp >= 0x100 && cp <= 0x137)
        return cp | 1;
    if (cp >= 0x139 && cp <= 0x148)
        return (cp & 1) ? cp + 1 : cp;
    if (cp >= 0x14A && cp <= 0x177)
        return cp | 1;
    if (cp == 0x178)
        return 0xFF;
    if (cp >= 0x179 && cp <= 0x17E)
        return (cp & 1) ? cp + 1 : cp;
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2)
        return cp + 32; // Greek
    if (cp >= 0x410 && cp <= 0x42F)
        return cp + 32; // Cyrillic
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 80;
    return cp;
}

} // namespace

bool charset_known(std::string_view charset) {
    return lookup_charset(charset) != Charset::Unknown;
}

std::optional<std::string> charset_to_utf8(std::string_view text, std::string_view charset) {
    Charset cs = lookup_charset(charset);
    if (cs == Charset::Unknown)
        return std::nullopt;
    return convert(text, cs);
}

std::string decode_encoded_words(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    std::size_t pos = 0;
    std::size_t after_word = std::string_view::npos; // out.size() right after the last word
    std::size_t copied_from = 0;
    while (pos < value.size()) {
        std::size_t at = value.find("=?", pos);
        if (at == std::string_view::npos)
            break;
        auto w = read_word(value, at);
        if (!w) {
            pos = at + 2;
            continue;
        }
        std::string_view between = value.substr(copied_from, at - copied_from);
        bool only_blanks = between.find_first_not_of(" \t\r\n") == std::string_view::npos;
        if (!(after_word == out.size() && only_blanks))
            out.append(between);
        out.append(w->text);
        after_word = out.size();
        copied_from = w->end;
        pos = w->end;
    }
    out.append(value.substr(copied_from));
    return out;
}

std::string decode_base64(std::string_view in) {
    std::string out;
    out.reserve(in.size() / 4 * 3 + 3);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=')
            break;
        int v = base64_value(c);
        if (v < 0)
            continue;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

std::string decode_quoted_printable(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c != '=') {
            out.push_back(c);
            continue;
        }
        // Soft line break: '=' then optional blanks then CRLF / LF.
        std::size_t j = i + 1;
        while (j < in.size() && (in[j] == ' ' || in[j] == '\t'))
            ++j;
        if (j < in.size() && (in[j] == '\r' || in[j] == '\n')) {
            if (in[j] == '\r' && j + 1 < in.size() && in[j + 1] == '\n')
                ++j;
            i = j;
            continue;
        }
        if (j == in.size()) {
            i = j;
            continue; // '=' at the very end: a soft break with the line end cut off
        }
        if (i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2])));
            i += 2;
            continue;
        }
        out.push_back('='); // not an escape: keep it (RFC 2045 6.7 note 1)
    }
    return out;
}

std::string decode_body_text(std::string_view body, std::string_view transfer_encoding,
                             std::string_view charset) {
    std::string enc = lower(transfer_encoding);
    std::string raw;
    if (enc == "base64")
        raw = decode_base64(body);
    else if (enc == "quoted-printable")
        raw = decode_quoted_printable(body);
    else
        raw = std::string(body);
    Charset cs = lookup_charset(charset);
    if (cs == Charset::Unknown)
        return raw;
    return convert(raw, cs);
}

std::string fold_case(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out.push_back(ascii_lower(static_cast<char>(c)));
            ++i;
            continue;
        }
        int len = (c >= 0xF0 && c < 0xF8) ? 4 : (c >= 0xE0) ? 3 : (c >= 0xC0) ? 2 : 0;
        if (len == 0 || i + len > s.size()) {
            out.push_back(static_cast<char>(c)); // invalid: kept as a byte
            ++i;
            continue;
        }
        std::uint32_t cp = c & (0x7F >> len);
        bool ok = true;
        for (int k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) {
                ok = false;
                break;
            }
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (!ok) {
            out.push_back(static_cast<char>(c));
            ++i;
            continue;
        }
        append_utf8(out, fold_cp(cp));
        i += len;
    }
    return out;
}

bool contains_folded(std::string_view haystack, std::string_view needle) {
    if (needle.empty())
        return true;
    std::string h = fold_case(haystack);
    std::string n = fold_case(needle);
    auto it =
        std::search(h.begin(), h.end(), std::boyer_moore_horspool_searcher(n.begin(), n.end()));
    return it != h.end();
}

} // namespace popbridge::protocol::mime
