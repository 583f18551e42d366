#include "config/parse.h"

#include <cstdio>
#include <limits>

namespace popbridge::config {

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Reads the leading run of decimal digits of `text` into `out`; returns how many characters
// were used, or 0 when there is no digit or the number does not fit in 64 bits.
std::size_t read_uint(std::string_view text, std::uint64_t& out) {
    std::uint64_t value = 0;
    std::size_t i = 0;
    for (; i < text.size() && is_digit(text[i]); ++i) {
        auto digit = static_cast<std::uint64_t>(text[i] - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
            return 0;
        }
        value = value * 10 + digit;
    }
    out = value;
    return i;
}

std::string got(std::string_view what, std::string_view text) {
    return "expected " + std::string(what) + ", got " + quote(text);
}

} // namespace

std::string quote(std::string_view text) {
    constexpr std::size_t kMaxShown = 64;
    std::string out = "\"";
    std::size_t shown = 0;
    for (char c : text) {
        if (shown++ == kMaxShown) {
            out += "...";
            break;
        }
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

ParseResult<std::chrono::seconds> parse_duration(std::string_view text) {
    constexpr std::string_view kWhat = "a duration such as 90s, 5m, 2h, 14d or 1w";
    constexpr std::uint64_t kMaxSeconds = 100ULL * 366 * 86400;
    std::uint64_t n = 0;
    std::size_t used = read_uint(text, n);
    if (used == 0 || text.size() - used > 1) {
        return tl::make_unexpected(got(kWhat, text));
    }
    std::uint64_t unit = 1;
    if (used < text.size()) {
        switch (text[used]) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        case 'w':
            unit = 7 * 86400;
            break;
        default:
            return tl::make_unexpected(got(kWhat, text));
        }
    }
    if (n > kMaxSeconds / unit) {
        return tl::make_unexpected(got("a duration of at most 100 years", text));
    }
    return std::chrono::seconds(static_cast<std::int64_t>(n * unit));
}

ParseResult<std::chrono::milliseconds> parse_duration_ms(std::string_view text) {
    constexpr std::string_view kWhat = "a duration such as 250ms, 2s or 1m";
    if (text.size() > 2 && text.ends_with("ms")) {
        std::uint64_t n = 0;
        std::size_t used = read_uint(text, n);
        if (used == 0 || used != text.size() - 2) {
            return tl::make_unexpected(got(kWhat, text));
        }
        if (n > 100ULL * 366 * 86400 * 1000) {
            return tl::make_unexpected(got("a duration of at most 100 years", text));
        }
        return std::chrono::milliseconds(static_cast<std::int64_t>(n));
    }
    auto s = parse_duration(text);
    if (!s) {
        return tl::make_unexpected(s.error() == got("a duration of at most 100 years", text)
                                       ? s.error()
                                       : got(kWhat, text));
    }
    return std::chrono::milliseconds(*s);
}

ParseResult<std::uint64_t> parse_size(std::string_view text) {
    constexpr std::string_view kWhat =
        "a size such as 1024, 50MB or 10MiB (units B, KB, MB, GB, KiB, MiB, GiB)";
    std::uint64_t n = 0;
    std::size_t used = read_uint(text, n);
    if (used == 0) {
        return tl::make_unexpected(got(kWhat, text));
    }
    std::string_view unit = text.substr(used);
    while (!unit.empty() && unit.front() == ' ') {
        unit.remove_prefix(1);
    }
    struct Unit {
        std::string_view name;
        std::uint64_t factor;
    };
    static constexpr Unit kUnits[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1000},
        {"MB", 1000 * 1000},
        {"GB", 1000 * 1000 * 1000},
        {"KiB", 1024},
        {"MiB", 1024 * 1024},
        {"GiB", 1024 * 1024 * 1024},
    };
    for (const Unit& u : kUnits) {
        if (u.name == unit) {
            if (unit.empty() && used != text.size()) {
                break; // trailing spaces without a unit
            }
            if (n > std::numeric_limits<std::uint64_t>::max() / u.factor) {
                return tl::make_unexpected(got("a size that fits in 64 bits", text));
            }
            return n * u.factor;
        }
    }
    return tl::make_unexpected(got(kWhat, text));
}

std::string Endpoint::to_string() const {
    if (host.find(':') != std::string::npos) {
        return '[' + host + "]:" + std::to_string(port);
    }
    return host + ':' + std::to_string(port);
}

bool Endpoint::is_loopback() const {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

ParseResult<Endpoint> parse_endpoint(std::string_view text) {
    constexpr std::string_view kWhat = "an address host:port such as 0.0.0.0:993 or [::1]:143";
    Endpoint ep;
    std::string_view rest;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close == 1) {
            return tl::make_unexpected(got(kWhat, text));
        }
        ep.host = std::string(text.substr(1, close - 1));
        for (char c : ep.host) {
            bool alnum = hex_value(c) >= 0 || (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z');
            if (!alnum && c != ':' && c != '.' && c != '%') { // '%': zone, as in fe80::1%eth0
                return tl::make_unexpected(got(kWhat, text));
            }
        }
        rest = text.substr(close + 1);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos || colon == 0) {
            return tl::make_unexpected(got(kWhat, text));
        }
        ep.host = std::string(text.substr(0, colon));
        if (ep.host.find(':') != std::string::npos) {
            return tl::make_unexpected(got("an IPv6 address in brackets, such as [::1]:143", text));
        }
        for (char c : ep.host) {
            if (static_cast<unsigned char>(c) <= ' ' || c == '[' || c == ']' || c == '/' ||
                c == 0x7f) {
                return tl::make_unexpected(got(kWhat, text));
            }
        }
        rest = text.substr(colon);
    }
    if (rest.size() < 2 || rest.front() != ':') {
        return tl::make_unexpected(got(kWhat, text));
    }
    rest.remove_prefix(1);
    std::uint64_t port = 0;
    if (rest.size() > 5 || read_uint(rest, port) != rest.size() || port > 65535) {
        return tl::make_unexpected(got("a port between 0 and 65535 in host:port", text));
    }
    ep.port = static_cast<std::uint16_t>(port);
    return ep;
}

ParseResult<std::chrono::year_month_day> parse_date(std::string_view text) {
    constexpr std::string_view kWhat = "a date YYYY-MM-DD";
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') {
        return tl::make_unexpected(got(kWhat, text));
    }
    std::uint64_t y = 0, m = 0, d = 0;
    if (read_uint(text.substr(0, 4), y) != 4 || read_uint(text.substr(5, 2), m) != 2 ||
        read_uint(text.substr(8, 2), d) != 2) {
        return tl::make_unexpected(got(kWhat, text));
    }
    std::chrono::year_month_day date{std::chrono::year(static_cast<int>(y)),
                                     std::chrono::month(static_cast<unsigned>(m)),
                                     std::chrono::day(static_cast<unsigned>(d))};
    if (!date.ok()) {
        return tl::make_unexpected(got("a date that exists, YYYY-MM-DD", text));
    }
    return date;
}

ParseResult<Sha256> parse_sha256_fingerprint(std::string_view text) {
    constexpr std::string_view kWhat =
        "a SHA-256 fingerprint: 64 hex digits, optionally as colon-separated pairs";
    Sha256 out{};
    bool colons = text.find(':') != std::string_view::npos;
    std::size_t expected_size = colons ? 32 * 3 - 1 : 64;
    if (text.size() != expected_size) {
        return tl::make_unexpected(got(kWhat, text));
    }
    std::size_t step = colons ? 3 : 2;
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::size_t at = i * step;
        int hi = hex_value(text[at]);
        int lo = hex_value(text[at + 1]);
        if (hi < 0 || lo < 0 || (colons && i + 1 < out.size() && text[at + 2] != ':')) {
            return tl::make_unexpected(got(kWhat, text));
        }
        out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    return out;
}

std::string format_duration(std::chrono::seconds value) {
    auto s = value.count();
    struct Unit {
        std::int64_t factor;
        char name;
    };
    static constexpr Unit kUnits[] = {{7 * 86400, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}};
    for (const Unit& u : kUnits) {
        if (s != 0 && s % u.factor == 0) {
            return std::to_string(s / u.factor) + u.name;
        }
    }
    return std::to_string(s) + 's';
}

std::string format_duration_ms(std::chrono::milliseconds value) {
    if (value.count() % 1000 != 0) {
        return std::to_string(value.count()) + "ms";
    }
    return format_duration(std::chrono::duration_cast<std::chrono::seconds>(value));
}

std::string format_size(std::uint64_t bytes) {
    struct Unit {
        std::uint64_t factor;
        const char* name;
    };
    static constexpr Unit kUnits[] = {
        {1024ULL * 1024 * 1024, "GiB"},
        {1000ULL * 1000 * 1000, "GB"},
        {1024 * 1024, "MiB"},
        {1000 * 1000, "MB"},
        {1024, "KiB"},
        {1000, "KB"},
    };
    for (const Unit& u : kUnits) {
        if (bytes != 0 && bytes % u.factor == 0) {
            return std::to_string(bytes / u.factor) + u.name;
        }
    }
    return std::to_string(bytes) + 'B';
}

std::string format_sha256(const Sha256& digest) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (std::uint8_t b : digest) {
        out += kHex[b >> 4];
        out += kHex[b & 0xf];
    }
    return out;
}

} // namespace popbridge::config
