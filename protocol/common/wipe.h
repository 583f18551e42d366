#pragma once
// Overwrites a buffer that held a secret (password, SASL response) before it is freed, in a
// way the compiler may not drop as a dead store. Only the bytes in [0, size()) are wiped:
// copies made by earlier reallocations are not reachable here.

#include <string.h> // explicit_bzero (glibc >= 2.25)

#include <string>

namespace popbridge::protocol {

inline void wipe(std::string& s) {
    if (!s.empty())
        explicit_bzero(s.data(), s.size());
    s.clear();
}

} // namespace popbridge::protocol
