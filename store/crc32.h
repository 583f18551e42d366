// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as used by zlib and PNG.
#pragma once

#include <cstdint>
#include <span>

namespace popbridge::store {

// crc32("123456789") == 0xCBF43926. Pass a previous result as `seed` to continue.
std::uint32_t crc32(std::span<const char> bytes, std::uint32_t seed = 0) noexcept;

} // namespace popbridge::store
