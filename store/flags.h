// System flag bits and flag-change operations. Keywords travel beside these as
// strings; the store never interprets IMAP syntax, it only bounds their size.
#pragma once

#include <cstdint>
#include <string_view>

namespace popbridge::store {

enum class Flag : std::uint8_t {
    Seen = 1u << 0,
    Answered = 1u << 1,
    Flagged = 1u << 2,
    Deleted = 1u << 3,
    Draft = 1u << 4,
};

std::string_view to_string(Flag flag) noexcept;

// A set of Flag bits. Plain value type; unknown bits are masked off on write.
struct Flags {
    std::uint8_t bits = 0;

    static constexpr std::uint8_t kAll = 0x1f;

    constexpr bool has(Flag f) const { return (bits & static_cast<std::uint8_t>(f)) != 0; }
    constexpr Flags& set(Flag f) {
        bits |= static_cast<std::uint8_t>(f);
        return *this;
    }
    friend constexpr bool operator==(Flags, Flags) = default;
};

constexpr Flags operator|(Flag a, Flag b) {
    return Flags{
        static_cast<std::uint8_t>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b))};
}
constexpr Flags operator|(Flags a, Flag b) {
    return a.set(b);
}

// How set_flags() combines the given flags/keywords with a message's current ones.
enum class FlagOp : std::uint8_t {
    Set,    // replace flags and keywords (IMAP STORE FLAGS)
    Add,    // union (IMAP STORE +FLAGS)
    Remove, // difference (IMAP STORE -FLAGS)
};

std::string_view to_string(FlagOp op) noexcept;

} // namespace popbridge::store
