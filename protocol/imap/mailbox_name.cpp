#include "protocol/imap/mailbox_name.h"

#include "protocol/common/utf8.h"

#include <cstdint>
#include <vector>

namespace popbridge::protocol::imap {

namespace {

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int base64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == ',')
        return 63;
    return -1;
}

bool is_direct(char32_t cp) {
    return cp >= 0x20 && cp <= 0x7e;
}

// Strict UTF-8 decoding: no overlongs, no surrogates, nothing above U+10FFFF.
std::optional<std::vector<char32_t>> utf8_to_code_points(std::string_view s) {
    std::vector<char32_t> out;
    for (std::size_t i = 0; i < s.size();) {
        auto b = static_cast<unsigned char>(s[i]);
        int len = b < 0x80             ? 1
                  : (b & 0xe0) == 0xc0 ? 2
                  : (b & 0xf0) == 0xe0 ? 3
                  : (b & 0xf8) == 0xf0 ? 4
                                       : 0;
        if (len == 0 || i + static_cast<std::size_t>(len) > s.size())
            return std::nullopt;
        char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1f) : len == 3 ? (b & 0x0f) : (b & 0x07);
        for (int k = 1; k < len; ++k) {
            auto cb = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
            if ((cb & 0xc0) != 0x80)
                return std::nullopt;
            cp = (cp << 6) | (cb & 0x3f);
        }
        static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return std::nullopt;
        out.push_back(cp);
        i += static_cast<std::size_t>(len);
    }
    return out;
}

void flush_run(std::string& out, std::vector<std::uint16_t>& units) {
    if (units.empty())
        return;
    out.push_back('&');
    std::uint32_t bits = 0;
    int nbits = 0;
    for (std::uint16_t u : units) {
        bits = (bits << 16) | u;
        nbits += 16;
        while (nbits >= 6) {
            nbits -= 6;
            out.push_back(kBase64[(bits >> nbits) & 0x3f]);
        }
    }
    if (nbits > 0)
        out.push_back(kBase64[(bits << (6 - nbits)) & 0x3f]);
    out.push_back('-');
    units.clear();
}

// Decodes one base64 run (between '&' and '-') into code points appended to `out`.
bool decode_run(std::string_view run, std::string& out) {
    std::uint32_t bits = 0;
    int nbits = 0;
    char32_t high = 0;
    for (char c : run) {
        int v = base64_value(c);
        if (v < 0)
            return false;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        nbits += 6;
        if (nbits < 16)
            continue;
        nbits -= 16;
        auto unit = static_cast<char32_t>((bits >> nbits) & 0xffff);
        bits &= (1u << nbits) - 1;
        if (high != 0) {
            if (unit < 0xdc00 || unit > 0xdfff)
                return false;
            append_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
            high = 0;
        } else if (unit >= 0xd800 && unit <= 0xdbff) {
            high = unit;
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            return false;
        } else if (is_direct(unit) || unit < 0x20 || unit == 0x7f) {
            return false; // printable ASCII must be sent directly; controls never
        } else {
            append_utf8(out, unit);
        }
    }
    // Leftover bits must be padding (fewer than 6, all zero); no dangling high surrogate.
    return high == 0 && nbits < 6 && bits == 0;
}

} // namespace

std::optional<std::string> decode_mailbox_name(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (!is_direct(static_cast<unsigned char>(c)))
            return std::nullopt;
        if (c != '&') {
            out.push_back(c);
            continue;
        }
        auto end = in.find('-', i + 1);
        if (end == std::string_view::npos)
            return std::nullopt;
        if (end == i + 1) {
            out.push_back('&');
        } else if (!decode_run(in.substr(i + 1, end - i - 1), out)) {
            return std::nullopt;
        }
        i = end;
    }
    // Canonical form only: catches adjacent runs ("&AOk-&AOk-") and similar aliases.
    auto again = encode_mailbox_name(out);
    if (!again || *again != in)
        return std::nullopt;
    return out;
}

std::optional<std::string> encode_mailbox_name(std::string_view utf8) {
    auto cps = utf8_to_code_points(utf8);
    if (!cps)
        return std::nullopt;
    std::string out;
    std::vector<std::uint16_t> units;
    for (char32_t cp : *cps) {
        if (cp < 0x20 || cp == 0x7f)
            return std::nullopt;
        if (is_direct(cp)) {
            flush_run(out, units);
            if (cp == '&')
                out += "&-";
            else
                out.push_back(static_cast<char>(cp));
        } else if (cp >= 0x10000) {
            char32_t v = cp - 0x10000;
            units.push_back(static_cast<std::uint16_t>(0xd800 + (v >> 10)));
            units.push_back(static_cast<std::uint16_t>(0xdc00 + (v & 0x3ff)));
        } else {
            units.push_back(static_cast<std::uint16_t>(cp));
        }
    }
    flush_run(out, units);
    return out;
}

bool is_inbox(std::string_view s) {
    static constexpr std::string_view kInbox = "INBOX";
    if (s.size() != kInbox.size())
        return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
        if (c != kInbox[i])
            return false;
    }
    return true;
}

std::optional<std::string> mailbox_from_wire(std::string_view mutf7) {
    auto name = decode_mailbox_name(mutf7);
    if (name && is_inbox(*name))
        return std::string("INBOX");
    return name;
}

} // namespace popbridge::protocol::imap
