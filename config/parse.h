// Value syntaxes shared by the daemon and account files: durations, sizes, endpoints, dates
// and certificate fingerprints. Pure functions over strings; no YAML, no I/O.
//
// Every parser returns the value or a message of the form
//   expected <what>, got "<input>"
// ready to follow "file:line:col: field: " in a Diagnostic. Do not pass secrets to them: the
// input is quoted in the message.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace popbridge::config {

template <typename T>
using ParseResult = tl::expected<T, std::string>;

// "90s", "5m", "2h", "14d", "1w", or a bare integer meaning seconds ("300"). No sign, no
// fraction, no spaces, one unit. Zero is accepted here; callers apply their own minimum.
// Values above 100 years are refused as a likely mistake (and to stay far from overflow).
ParseResult<std::chrono::seconds> parse_duration(std::string_view text);
// parse_duration, plus milliseconds: "250ms". Used where sub-second values make sense.
ParseResult<std::chrono::milliseconds> parse_duration_ms(std::string_view text);

// "1024", "512B", "50MB", "10MiB": an integer, optional spaces, then B, KB, MB, GB (powers of
// 1000) or KiB, MiB, GiB (powers of 1024); no unit means bytes. Units are case-sensitive.
// Values that do not fit in 64 bits are refused.
ParseResult<std::uint64_t> parse_size(std::string_view text);

// A listening or connecting address: "host:port", "[v6-address]:port". The port is
// 0..65535 (0 lets the OS pick one, used by tests). The host is kept as written (no
// resolution, no brackets for IPv6).
struct Endpoint {
    std::string host;
    std::uint16_t port = 0;

    // "host:port", or "[host]:port" when host contains ':'.
    std::string to_string() const;
    // 127.0.0.0/8, ::1 or "localhost".
    bool is_loopback() const;

    friend bool operator==(const Endpoint&, const Endpoint&) = default;
};
ParseResult<Endpoint> parse_endpoint(std::string_view text);

// A calendar date "YYYY-MM-DD" (must exist: 2023-02-29 is refused).
ParseResult<std::chrono::year_month_day> parse_date(std::string_view text);

// A SHA-256 fingerprint as 64 hex digits, either plain or as 32 colon-separated pairs
// ("AB:CD:..."), any case: the form `openssl x509 -noout -fingerprint -sha256` prints.
using Sha256 = std::array<std::uint8_t, 32>;
ParseResult<Sha256> parse_sha256_fingerprint(std::string_view text);

// Inverse helpers for messages and describe(): "5m", "14d", "90s" (largest exact unit);
// "50MB", "10MiB", "1000B" (largest exact unit); lowercase hex without colons.
std::string format_duration(std::chrono::seconds value);
std::string format_duration_ms(std::chrono::milliseconds value); // "250ms", or as above
std::string format_size(std::uint64_t bytes);
std::string format_sha256(const Sha256& digest);

// `"text"` with quotes, backslashes and control characters escaped and long input cut at 64
// characters, for the `got "..."` part of messages.
std::string quote(std::string_view text);

} // namespace popbridge::config
