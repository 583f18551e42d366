#include <catch2/catch.hpp>

#include <string_view>

#include "store/crc32.h"

using popbridge::store::crc32;

TEST_CASE("crc32 matches the IEEE check values", "[store]") {
    std::string_view check = "123456789";
    CHECK(crc32(check) == 0xCBF43926u);
    CHECK(crc32(std::string_view()) == 0u);
    // Incremental == one shot.
    CHECK(crc32(check.substr(4), crc32(check.substr(0, 4))) == 0xCBF43926u);
}
