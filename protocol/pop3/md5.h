#pragma once
// MD5 message digest (RFC 1321), needed only for APOP (RFC 1939 section 7).
// MD5 is broken for collision resistance; APOP uses it because the RFC says so,
// and nothing else in popbridge should.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace popbridge::protocol::pop3 {

// Incremental MD5. update() any number of times, then finish() once; after
// finish() the object must be reset() before reuse.
class Md5 {
public:
    using Digest = std::array<std::uint8_t, 16>;

    Md5() { reset(); }
    void reset();
    void update(std::string_view bytes);
    Digest finish();

private:
    void compress(const std::uint8_t* block);

    std::array<std::uint32_t, 4> state_{};
    std::array<std::uint8_t, 64> block_{};
    std::size_t block_len_ = 0;
    std::uint64_t total_len_ = 0; // bytes fed so far
};

// Digest of `bytes` in lower-case hex (32 characters).
std::string md5_hex(std::string_view bytes);

} // namespace popbridge::protocol::pop3
