#include "proxy/password.h"

#include <crypt.h>

#include <cstring>
#include <memory>

#include <openssl/crypto.h>

namespace popbridge::proxy {

bool verify_password(std::string_view password, const std::string& hash) {
    if (hash.empty() || hash[0] != '$')
        return false;
    std::string pw(password);
    if (pw.find('\0') != std::string::npos)
        return false;
    auto data = std::make_unique<crypt_data>();
    std::memset(data.get(), 0, sizeof(crypt_data));
    const char* out = crypt_rn(pw.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
    OPENSSL_cleanse(pw.data(), pw.size());
    if (!out || out[0] == '*')
        return false;
    size_t n = std::strlen(out);
    if (n != hash.size())
        return false;
    return CRYPTO_memcmp(out, hash.data(), n) == 0;
}

tl::expected<std::string, std::string> hash_password(std::string_view password) {
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$y$", 0, nullptr, 0, setting, sizeof setting))
        return tl::unexpected(std::string("crypt_gensalt failed: ") + std::strerror(errno));
    std::string pw(password);
    auto data = std::make_unique<crypt_data>();
    std::memset(data.get(), 0, sizeof(crypt_data));
    const char* out = crypt_rn(pw.c_str(), setting, data.get(), sizeof(crypt_data));
    OPENSSL_cleanse(pw.data(), pw.size());
    if (!out || out[0] == '*')
        return tl::unexpected(std::string("crypt failed"));
    return std::string(out);
}

const std::string& dummy_password_hash() {
    static const std::string hash = [] {
        auto h = hash_password("popbridge-no-such-user-placeholder");
        return h ? *h : std::string("*");
    }();
    return hash;
}

} // namespace popbridge::proxy
