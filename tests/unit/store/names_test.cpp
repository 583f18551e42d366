#include <catch2/catch.hpp>

#include <string>

#include "store/names.h"

using namespace popbridge::store;

TEST_CASE("user names: path-like, control and oversized names are refused", "[store]") {
    const std::string bad[] = {"",       "..",      ".",
                               "../etc", "a/b",     "a\\b",
                               "x..y",   ".hidden", std::string("a\0b", 3),
                               "a\nb",   "a\x7f",   std::string(65, 'u')};
    for (const auto& name : bad) {
        INFO("name: " << name);
        auto r = validate_user_name(name);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == Errc::InvalidName);
    }
    CHECK(validate_user_name("alice"));
    CHECK(validate_user_name("alice.smith@example.net"));
    CHECK(validate_user_name(std::string(64, 'u')));
}

TEST_CASE("keywords, folder names and origin fields are bounded", "[store]") {
    CHECK(validate_keyword("$Forwarded"));
    CHECK_FALSE(validate_keyword(""));
    CHECK_FALSE(validate_keyword("two words"));
    CHECK_FALSE(validate_keyword(std::string(256, 'k')));
    CHECK(validate_folder_name("Archive/2025"));
    CHECK_FALSE(validate_folder_name(std::string("a\0b", 3)));
    CHECK(validate_origin_field("isp"));
    CHECK_FALSE(validate_origin_field(""));
    CHECK_FALSE(validate_origin_field(std::string(256, 'x')));
    CHECK(to_string(Errc::InvalidName) == "InvalidName");
}
