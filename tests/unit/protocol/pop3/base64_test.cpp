#include "protocol/pop3/base64.h"

#include <catch2/catch.hpp>

#include <string>

using popbridge::protocol::pop3::base64_encode;

TEST_CASE("base64: RFC 4648 section 10 test vectors", "[pop3][base64]") {
    const std::pair<std::string, std::string> table[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [in, out] : table) {
        INFO(in);
        CHECK(base64_encode(in) == out);
    }
}

TEST_CASE("base64: high bytes and NULs use the whole alphabet", "[pop3][base64]") {
    CHECK(base64_encode(std::string("\xff\xff\xff", 3)) == "////");
    CHECK(base64_encode(std::string("\xfb\xef\xbe", 3)) == "++++");
    CHECK(base64_encode(std::string("\0\0\0", 3)) == "AAAA");
    // RFC 4616 example shape: NUL user NUL pass.
    CHECK(base64_encode(std::string("\0tim\0tanstaaftanstaaf", 21)) ==
          "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
}
