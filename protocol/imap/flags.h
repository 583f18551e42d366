#pragma once
// System flags as bits (RFC 3501 section 2.3.2). Keywords travel as strings next to them.

#include <cstdint>
#include <optional>
#include <string_view>

namespace popbridge::protocol::imap {

enum FlagBit : std::uint32_t {
    kFlagSeen = 1u << 0,
    kFlagAnswered = 1u << 1,
    kFlagFlagged = 1u << 2,
    kFlagDeleted = 1u << 3,
    kFlagDraft = 1u << 4,
    kFlagRecent = 1u << 5, // session-specific; never stored by STORE
};

// Flags a client may set, in the order they are printed.
inline constexpr std::uint32_t kPermanentFlagBits =
    kFlagAnswered | kFlagFlagged | kFlagDeleted | kFlagSeen | kFlagDraft;

struct FlagName {
    std::uint32_t bit;
    std::string_view name;
};

inline constexpr FlagName kFlagNames[] = {
    {kFlagSeen, "\\Seen"},       {kFlagAnswered, "\\Answered"}, {kFlagFlagged, "\\Flagged"},
    {kFlagDeleted, "\\Deleted"}, {kFlagDraft, "\\Draft"},       {kFlagRecent, "\\Recent"},
};

// "\Seen" (any case) -> kFlagSeen; nullopt for keywords and unknown system flags.
std::optional<std::uint32_t> flag_from_name(std::string_view name);

enum class FlagOp {
    Add,     // +FLAGS
    Remove,  // -FLAGS
    Replace, // FLAGS
};

constexpr std::string_view to_string(FlagOp op) {
    switch (op) {
    case FlagOp::Add:
        return "Add";
    case FlagOp::Remove:
        return "Remove";
    case FlagOp::Replace:
        return "Replace";
    }
    return "?";
}

} // namespace popbridge::protocol::imap
