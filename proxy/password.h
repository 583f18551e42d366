#pragma once
// crypt(3) password hashes (yescrypt, bcrypt, sha512-crypt...). Both calls are slow on
// purpose and thread-safe: run them on the thread pool, never on the loop thread.

#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace popbridge::proxy {

// True when `password` hashes to `hash`. Compares in constant time. An unusable hash
// (unknown method, malformed) never matches.
bool verify_password(std::string_view password, const std::string& hash);

// A new yescrypt hash of `password` with a random salt.
tl::expected<std::string, std::string> hash_password(std::string_view password);

// A hash that no password matches, with the same cost as a real one, so that an unknown
// user takes as long to refuse as a wrong password.
const std::string& dummy_password_hash();

} // namespace popbridge::proxy
