#include "store/crc32.h"

#include <array>

namespace popbridge::store {

namespace {

constexpr std::array<std::uint32_t, 256> make_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        table[i] = c;
    }
    return table;
}

constexpr auto kTable = make_table();

} // namespace

std::uint32_t crc32(std::span<const char> bytes, std::uint32_t seed) noexcept {
    std::uint32_t c = seed ^ 0xFFFFFFFFu;
    for (char ch : bytes) {
        c = kTable[(c ^ static_cast<unsigned char>(ch)) & 0xFFu] ^ (c >> 8);
    }
    return c ^ 0xFFFFFFFFu;
}

} // namespace popbridge::store
