#pragma once
// Input limits of one IMAP connection (DESIGN.md, "Bad input"). Two sets apply: one before
// login, a larger one after. The proxy may override them from configuration.

#include <cstddef>
#include <cstdint>

namespace popbridge::protocol::imap {

struct Limits {
    std::size_t max_line = 8 * 1024;      // non-literal bytes of one command, CRLFs included
    std::uint64_t max_literal = 8 * 1024; // one literal; also the total of a command's literals
    unsigned max_nesting = 1;             // parenthesized list depth
    unsigned max_bad_commands = 3;        // BAD replies before "* BYE" and close
};

inline constexpr Limits kPreAuthLimits{8 * 1024, 8 * 1024, 1, 3};

// After login the literal limit is the account's max_message_size (default 50 MB).
constexpr Limits post_auth_limits(std::uint64_t max_message_size = 50'000'000) {
    return Limits{64 * 1024, max_message_size, 64, 20};
}

} // namespace popbridge::protocol::imap
