#include "config/parse.h"

#include <catch2/catch.hpp>

using namespace popbridge::config;
using namespace std::chrono_literals;

TEST_CASE("parse_duration accepts integer + unit and bare seconds", "[config]") {
    struct Case {
        const char* text;
        std::chrono::seconds expected;
    };
    const Case cases[] = {
        {"0", 0s},     {"300", 300s},        {"90s", 90s},       {"5m", 300s},
        {"2h", 7200s}, {"14d", 14 * 86400s}, {"1w", 7 * 86400s}, {"10s", 10s},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        auto got = parse_duration(c.text);
        REQUIRE(got.has_value());
        CHECK(*got == c.expected);
    }
}

TEST_CASE("parse_duration rejects everything else with the input quoted", "[config]") {
    const char* bad[] = {"",
                         "s",
                         "5x",
                         "5 m",
                         "-5m",
                         "+5m",
                         "1.5h",
                         "5mm",
                         "m5",
                         " 5m",
                         "5M",
                         "1h30m",
                         "99999999999999999999s"};
    for (const char* text : bad) {
        INFO(text);
        auto got = parse_duration(text);
        REQUIRE_FALSE(got.has_value());
    }
    CHECK(parse_duration("5x").error() ==
          "expected a duration such as 90s, 5m, 2h, 14d or 1w, got \"5x\"");
    CHECK(parse_duration("9999999w").error() ==
          "expected a duration of at most 100 years, got \"9999999w\"");
}

TEST_CASE("parse_duration_ms: milliseconds and every parse_duration form", "[config]") {
    CHECK(parse_duration_ms("250ms").value() == 250ms);
    CHECK(parse_duration_ms("0ms").value() == 0ms);
    CHECK(parse_duration_ms("2s").value() == 2000ms);
    CHECK(parse_duration_ms("15").value() == 15000ms);
    CHECK(parse_duration_ms("1m").value() == 60000ms);
    for (const char* text : {"", "ms", "1.5s", "-1ms", "5 ms", "5msx", "5mss", "5MS", "5us"}) {
        INFO(text);
        CHECK_FALSE(parse_duration_ms(text).has_value());
    }
    CHECK(parse_duration_ms("5x").error() ==
          "expected a duration such as 250ms, 2s or 1m, got \"5x\"");
    CHECK(format_duration_ms(250ms) == "250ms");
    CHECK(format_duration_ms(2000ms) == "2s");
    CHECK(format_duration_ms(120000ms) == "2m");
}

TEST_CASE("parse_size: decimal and binary units", "[config]") {
    struct Case {
        const char* text;
        std::uint64_t expected;
    };
    const Case cases[] = {
        {"0", 0},
        {"1024", 1024},
        {"512B", 512},
        {"1KB", 1000},
        {"50MB", 50'000'000},
        {"2GB", 2'000'000'000},
        {"1KiB", 1024},
        {"10MiB", 10 * 1024 * 1024},
        {"3GiB", 3ULL * 1024 * 1024 * 1024},
        {"50 MB", 50'000'000},
        {"18446744073709551615", 18446744073709551615ULL},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        auto got = parse_size(c.text);
        REQUIRE(got.has_value());
        CHECK(*got == c.expected);
    }
}

TEST_CASE("parse_size rejects unknown units, signs, fractions and overflow", "[config]") {
    const char* bad[] = {"",
                         "MB",
                         "50mb",
                         "50 MBs",
                         "1.5MB",
                         "-1",
                         "10TB",
                         "10k",
                         "5 ",
                         "10Mib",
                         "18446744073709551616",
                         "20000000000GB"};
    for (const char* text : bad) {
        INFO(text);
        CHECK_FALSE(parse_size(text).has_value());
    }
    CHECK(parse_size("50mb").error() ==
          "expected a size such as 1024, 50MB or 10MiB (units B, KB, MB, GB, KiB, MiB, GiB), "
          "got \"50mb\"");
    CHECK(parse_size("20000000000GB").error() ==
          "expected a size that fits in 64 bits, got \"20000000000GB\"");
}

TEST_CASE("parse_endpoint: host:port and [v6]:port", "[config]") {
    struct Case {
        const char* text;
        Endpoint expected;
        const char* round_trip;
    };
    const Case cases[] = {
        {"0.0.0.0:143", {"0.0.0.0", 143}, "0.0.0.0:143"},
        {"127.0.0.1:0", {"127.0.0.1", 0}, "127.0.0.1:0"},
        {"localhost:9143", {"localhost", 9143}, "localhost:9143"},
        {"[::1]:143", {"::1", 143}, "[::1]:143"},
        {"[::]:993", {"::", 993}, "[::]:993"},
        {"[fe80::1%eth0]:65535", {"fe80::1%eth0", 65535}, "[fe80::1%eth0]:65535"},
        {"mail.example.net:995", {"mail.example.net", 995}, "mail.example.net:995"},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        auto got = parse_endpoint(c.text);
        REQUIRE(got.has_value());
        CHECK(*got == c.expected);
        CHECK(got->to_string() == c.round_trip);
    }
}

TEST_CASE("parse_endpoint rejects malformed addresses", "[config]") {
    const char* bad[] = {"",        "143",      ":143",    "host:",       "host:65536",
                         "host:-1", "host:1a",  "::1:143", "[::1]143",    "[::1]:",
                         "[]:143",  "[::1:143", "a b:143", "host:000143", "[x y]:1"};
    for (const char* text : bad) {
        INFO(text);
        CHECK_FALSE(parse_endpoint(text).has_value());
    }
    CHECK(parse_endpoint("::1:143").error() ==
          "expected an IPv6 address in brackets, such as [::1]:143, got \"::1:143\"");
    CHECK(parse_endpoint("host:70000").error() ==
          "expected a port between 0 and 65535 in host:port, got \"host:70000\"");
}

TEST_CASE("Endpoint::is_loopback", "[config]") {
    CHECK(Endpoint{"127.0.0.1", 1}.is_loopback());
    CHECK(Endpoint{"127.1.2.3", 1}.is_loopback());
    CHECK(Endpoint{"::1", 1}.is_loopback());
    CHECK(Endpoint{"localhost", 1}.is_loopback());
    CHECK_FALSE(Endpoint{"0.0.0.0", 1}.is_loopback());
    CHECK_FALSE(Endpoint{"::", 1}.is_loopback());
    CHECK_FALSE(Endpoint{"10.0.0.1", 1}.is_loopback());
}

TEST_CASE("parse_date: YYYY-MM-DD that exists", "[config]") {
    using namespace std::chrono;
    auto d = parse_date("2024-02-29");
    REQUIRE(d.has_value());
    CHECK(*d == year_month_day{year{2024}, month{2}, day{29}});
    CHECK(parse_date("2023-02-29").error() ==
          "expected a date that exists, YYYY-MM-DD, got \"2023-02-29\"");
    const char* bad[] = {"2024-1-05",  "2024/01/05", "24-01-05",   "2024-13-01",
                         "2024-00-10", "2024-01-32", "2024-01-0x", ""};
    for (const char* text : bad) {
        INFO(text);
        CHECK_FALSE(parse_date(text).has_value());
    }
}

TEST_CASE("parse_sha256_fingerprint: plain hex or colon pairs, any case", "[config]") {
    const std::string hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    auto plain = parse_sha256_fingerprint(hex);
    REQUIRE(plain.has_value());
    CHECK((*plain)[0] == 0x00);
    CHECK((*plain)[10] == 0xaa);
    CHECK((*plain)[31] == 0xff);
    CHECK(format_sha256(*plain) ==
          "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");

    std::string colons;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        colons += (i ? ":" : "") + hex.substr(i, 2);
    }
    auto with_colons = parse_sha256_fingerprint(colons);
    REQUIRE(with_colons.has_value());
    CHECK(*with_colons == *plain);

    CHECK_FALSE(parse_sha256_fingerprint(hex.substr(0, 62)).has_value());
    CHECK_FALSE(parse_sha256_fingerprint(hex.substr(0, 63) + "g").has_value());
    CHECK_FALSE(parse_sha256_fingerprint(colons.substr(0, 94) + ";").has_value());
    CHECK_FALSE(parse_sha256_fingerprint("0:0112233445566778899aabbccddeeff00112233445566778899a"
                                         "abbccddeeff00112233445566778899aabbccddeeff001122")
                    .has_value());
    // base64 of a hash is not accepted: one syntax only.
    CHECK_FALSE(
        parse_sha256_fingerprint("ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=").has_value());
}

TEST_CASE("format_duration and format_size pick the largest exact unit", "[config]") {
    CHECK(format_duration(0s) == "0s");
    CHECK(format_duration(90s) == "90s");
    CHECK(format_duration(300s) == "5m");
    CHECK(format_duration(7200s) == "2h");
    CHECK(format_duration(86400s * 14) == "2w");
    CHECK(format_duration(86400s * 3) == "3d");
    CHECK(format_size(0) == "0B");
    CHECK(format_size(999) == "999B");
    CHECK(format_size(50'000'000) == "50MB");
    CHECK(format_size(10 * 1024 * 1024) == "10MiB");
    CHECK(format_size(1000) == "1KB");
    CHECK(format_size(1024) == "1KiB");
}

TEST_CASE("quote escapes and truncates", "[config]") {
    CHECK(quote("tsl") == "\"tsl\"");
    CHECK(quote("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(quote(std::string_view("a\nb\0c", 5)) == "\"a\\x0ab\\x00c\"");
    CHECK(quote(std::string(70, 'x')) == "\"" + std::string(64, 'x') + "...\"");
}
