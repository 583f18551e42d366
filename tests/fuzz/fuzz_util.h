#pragma once
// Helpers shared by the libFuzzer targets: input splitting and a hard invariant check that
// survives NDEBUG (RelWithDebInfo builds define it, so assert() would vanish).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace popbridge::fuzz {

// Aborts with a message: libFuzzer records the input as a crash.
[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "fuzz invariant violated: %s (%s:%d)\n", what, file, line);
    std::abort();
}

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ::popbridge::fuzz::invariant_failed(#cond, __FILE__, __LINE__);                        \
    } while (0)

// Splits the input into chunks whose sizes come from a small PRNG seeded by `seed`: seed 0
// means "all at once", otherwise chunks of 1..(seed % 64 + 1) bytes, so the parsers are fed
// across every kind of boundary, as a socket would.
class Chunker {
public:
    Chunker(std::string_view data, std::uint8_t seed)
        : data_(data), state_(seed), max_(seed % 64 + 1) {}

    bool done() const { return pos_ >= data_.size(); }

    std::string_view next() {
        std::size_t n = data_.size() - pos_;
        if (state_ != 0) {
            state_ = state_ * 1103515245u + 12345u;
            std::size_t want = (state_ >> 16) % max_ + 1;
            if (want < n)
                n = want;
        }
        auto chunk = data_.substr(pos_, n);
        pos_ += n;
        return chunk;
    }

private:
    std::string_view data_;
    std::size_t pos_ = 0;
    std::uint32_t state_;
    std::size_t max_;
};

} // namespace popbridge::fuzz
