#include "store/crc32.h"

#include <array>

namespace popbridge::store {

namespace {

// Slicing-by-8 tables: kTables[0] is the classic byte table; kTables[k][i] is the CRC
// of byte i followed by k zero bytes. Index replay checksums every record at open.
using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables make_tables() {
    Tables t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i) {
        for (std::size_t k = 1; k < 8; ++k) {
            t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFFu];
        }
    }
    return t;
}

constexpr Tables kTables = make_tables();

inline std::uint32_t byte_at(const char* p, int i) {
    return static_cast<unsigned char>(p[i]);
}

} // namespace

std::uint32_t crc32(std::span<const char> bytes, std::uint32_t seed) noexcept {
    std::uint32_t c = seed ^ 0xFFFFFFFFu;
    const char* p = bytes.data();
    std::size_t n = bytes.size();
    while (n >= 8) {
        std::uint32_t lo =
            c ^ (byte_at(p, 0) | byte_at(p, 1) << 8 | byte_at(p, 2) << 16 | byte_at(p, 3) << 24);
        c = kTables[7][lo & 0xFFu] ^ kTables[6][(lo >> 8) & 0xFFu] ^
            kTables[5][(lo >> 16) & 0xFFu] ^ kTables[4][lo >> 24] ^ kTables[3][byte_at(p, 4)] ^
            kTables[2][byte_at(p, 5)] ^ kTables[1][byte_at(p, 6)] ^ kTables[0][byte_at(p, 7)];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) {
        c = kTables[0][(c ^ byte_at(p++, 0)) & 0xFFu] ^ (c >> 8);
    }
    return c ^ 0xFFFFFFFFu;
}

} // namespace popbridge::store
