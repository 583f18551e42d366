#include "protocol/pop3/md5.h"

#include <cmath>

namespace popbridge::protocol::pop3 {
namespace {

// RFC 1321 3.4: T[i] is the integer part of 2^32 * |sin(i)|, i = 1..64.
// Computed once rather than typed in; IEEE double is exact enough for all 64.
const std::array<std::uint32_t, 64>& sine_table() {
    static const std::array<std::uint32_t, 64> table = [] {
        std::array<std::uint32_t, 64> t{};
        for (int i = 0; i < 64; ++i) {
            t[i] = static_cast<std::uint32_t>(
                std::floor(std::fabs(std::sin(static_cast<double>(i + 1))) * 4294967296.0));
        }
        return t;
    }();
    return table;
}

constexpr std::array<int, 16> kShifts = {7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21};

constexpr std::uint32_t rotl(std::uint32_t x, int n) {
    return (x << n) | (x >> (32 - n));
}

} // namespace

void Md5::reset() {
    state_ = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    block_len_ = 0;
    total_len_ = 0;
}

void Md5::compress(const std::uint8_t* block) {
    std::uint32_t m[16];
    for (int i = 0; i < 16; ++i) {
        m[i] = static_cast<std::uint32_t>(block[4 * i]) |
               (static_cast<std::uint32_t>(block[4 * i + 1]) << 8) |
               (static_cast<std::uint32_t>(block[4 * i + 2]) << 16) |
               (static_cast<std::uint32_t>(block[4 * i + 3]) << 24);
    }
    const auto& t = sine_table();
    std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
    for (int i = 0; i < 64; ++i) {
        std::uint32_t f = 0;
        int g = 0;
        switch (i / 16) {
        case 0:
            f = (b & c) | (~b & d);
            g = i;
            break;
        case 1:
            f = (b & d) | (c & ~d);
            g = (5 * i + 1) % 16;
            break;
        case 2:
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
            break;
        default:
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
            break;
        }
        const std::uint32_t sum = a + f + t[i] + m[g];
        a = d;
        d = c;
        c = b;
        b = b + rotl(sum, kShifts[(i / 16) * 4 + i % 4]);
    }
    state_[0] += a;
    state_[1] += b;
    state_[2] += c;
    state_[3] += d;
}

void Md5::update(std::string_view bytes) {
    total_len_ += bytes.size();
    for (char ch : bytes) {
        block_[block_len_++] = static_cast<std::uint8_t>(ch);
        if (block_len_ == 64) {
            compress(block_.data());
            block_len_ = 0;
        }
    }
}

Md5::Digest Md5::finish() {
    const std::uint64_t bit_len = total_len_ * 8;
    // RFC 1321 3.1-3.2: one 0x80 byte, zeros up to 56 mod 64, then the length.
    const char one = static_cast<char>(0x80);
    update(std::string_view(&one, 1));
    const char zero = 0;
    while (block_len_ != 56) {
        update(std::string_view(&zero, 1));
    }
    for (int i = 0; i < 8; ++i) {
        block_[56 + i] = static_cast<std::uint8_t>(bit_len >> (8 * i));
    }
    compress(block_.data());
    block_len_ = 0;

    Digest out{};
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
            out[4 * i + j] = static_cast<std::uint8_t>(state_[i] >> (8 * j));
        }
    }
    return out;
}

std::string md5_hex(std::string_view bytes) {
    Md5 md5;
    md5.update(bytes);
    const auto digest = md5.finish();
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(32);
    for (auto byte : digest) {
        hex.push_back(kHex[byte >> 4]);
        hex.push_back(kHex[byte & 0x0f]);
    }
    return hex;
}

} // namespace popbridge::protocol::pop3
