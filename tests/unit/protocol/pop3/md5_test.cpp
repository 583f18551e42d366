#include "protocol/pop3/md5.h"

#include <catch2/catch.hpp>

#include <string>

using popbridge::protocol::pop3::Md5;
using popbridge::protocol::pop3::md5_hex;

namespace {

struct Vector {
    std::string input;
    std::string hex;
};

// RFC 1321 appendix A.5 test suite.
const Vector kRfc1321[] = {
    {"", "d41d8cd98f00b204e9800998ecf8427e"},
    {"a", "0cc175b9c0f1b6a831c399e269772661"},
    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "d174ab98d277d9f5a5611c2c9f419d9f"},
    {"12345678901234567890123456789012345678901234567890"
     "123456789012345678901234567890",
     "57edf4a22be3c955ac49da2e2107b67a"},
};

std::string hex(const Md5::Digest& d) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (auto b : d) {
        s.push_back(kHex[b >> 4]);
        s.push_back(kHex[b & 15]);
    }
    return s;
}

} // namespace

TEST_CASE("md5: RFC 1321 test vectors, one update", "[pop3][md5]") {
    for (const auto& v : kRfc1321) {
        INFO("input: " << v.input);
        CHECK(md5_hex(v.input) == v.hex);
    }
}

TEST_CASE("md5: RFC 1321 vectors fed at every chunk size", "[pop3][md5]") {
    for (const auto& v : kRfc1321) {
        for (std::size_t chunk = 1; chunk <= 64; ++chunk) {
            Md5 md5;
            for (std::size_t i = 0; i < v.input.size(); i += chunk) {
                md5.update(std::string_view(v.input).substr(i, chunk));
            }
            INFO("input: " << v.input << " chunk " << chunk);
            CHECK(hex(md5.finish()) == v.hex);
        }
    }
}

TEST_CASE("md5: padding boundaries 55, 56, 63, 64, 65 bytes", "[pop3][md5]") {
    // Expected values computed with Python hashlib.md5 for runs of "a".
    CHECK(md5_hex(std::string(55, 'a')) == "ef1772b6dff9a122358552954ad0df65");
    CHECK(md5_hex(std::string(56, 'a')) == "3b0c8ac703f828b04c6c197006d17218");
    CHECK(md5_hex(std::string(63, 'a')) == "b06521f39153d618550606be297466d5");
    CHECK(md5_hex(std::string(64, 'a')) == "014842d480b571495a4a0363793f7367");
    CHECK(md5_hex(std::string(65, 'a')) == "c743a45e0d2e6a95cb859adae0248435");
    CHECK(md5_hex(std::string(1000000, 'a')) == "7707d6ae4e027c70eea2a935c2296f21");
}

TEST_CASE("md5: reset() makes the object reusable", "[pop3][md5]") {
    Md5 md5;
    md5.update("garbage");
    (void)md5.finish();
    md5.reset();
    md5.update("abc");
    CHECK(hex(md5.finish()) == "900150983cd24fb0d6963f7d28e17f72");
}
