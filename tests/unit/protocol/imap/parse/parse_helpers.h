#pragma once
// Test helper: tokenizes a whole command (at a given chunk size, answering continuations
// implicitly) and parses it.

#include <catch2/catch.hpp>

#include <string_view>

#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap::test {

inline tl::expected<Command, CommandParseError> parse_text(std::string_view in,
                                                           std::size_t chunk = 0) {
    Tokenizer t(post_auth_limits());
    if (chunk == 0)
        chunk = in.size();
    for (std::size_t pos = 0; pos < in.size(); pos += chunk) {
        std::string_view piece = in.substr(pos, chunk);
        while (!piece.empty()) {
            auto step = t.feed(std::span<const char>(piece.data(), piece.size()));
            piece.remove_prefix(step.consumed);
            if (step.status == ParseStatus::Complete)
                return parse_command(t.take_command());
            if (step.status == ParseStatus::Error)
                return tl::unexpected(CommandParseError{"tokenizer: " + t.error().message});
        }
    }
    return tl::unexpected(CommandParseError{"incomplete"});
}

} // namespace popbridge::protocol::imap::test
