#include "config/secret.h"

#include <ostream>

namespace popbridge::config {

Secret::Secret(Secret&& other) : value_(other.value_) {
    // Copy then wipe: a moved-from std::string may keep its bytes in a short-string buffer.
    other.wipe();
}

Secret& Secret::operator=(const Secret& other) {
    if (this != &other) {
        wipe();
        value_ = other.value_;
    }
    return *this;
}

Secret& Secret::operator=(Secret&& other) {
    if (this != &other) {
        wipe();
        value_ = other.value_;
        other.wipe();
    }
    return *this;
}

Secret::~Secret() {
    wipe();
}

void Secret::wipe() noexcept {
    // volatile keeps the compiler from dropping stores to memory that is about to be freed.
    volatile char* p = value_.data();
    for (std::size_t i = 0; i < value_.size(); ++i) {
        p[i] = 0;
    }
    value_.clear();
}

std::ostream& operator<<(std::ostream& os, const Secret&) {
    return os << "***";
}

} // namespace popbridge::config
