#pragma once
// Cursor over a RawCommand's tokens with the RFC 3501 grammar's basic productions.
// Each reader returns the value or a ParseError naming what was expected; the cursor moves
// only on success.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "protocol/imap/tokenizer.h"

namespace popbridge::protocol::imap {

struct ParseError {
    std::string message;
};

template <class T>
using Parsed = tl::expected<T, ParseError>;

inline tl::unexpected<ParseError> parse_error(std::string message) {
    return tl::unexpected<ParseError>(ParseError{std::move(message)});
}

class ArgCursor {
public:
    explicit ArgCursor(std::span<const Token> tokens) : tokens_(tokens) {}

    bool at_end() const { return pos_ >= tokens_.size(); }
    const Token* peek() const { return at_end() ? nullptr : &tokens_[pos_]; }
    void advance() { ++pos_; }

    // "SP"-separated argument: an Atom token made of ATOM-CHARs.
    Parsed<std::string> atom();
    // astring = 1*ASTRING-CHAR / string
    Parsed<std::string> astring();
    // string = quoted / literal
    Parsed<std::string> string();
    // nstring = string / NIL
    Parsed<std::optional<std::string>> nstring();
    // nz-number / number (32-bit)
    Parsed<std::uint32_t> number(bool nonzero);
    bool list_open();  // consumes '(' if next
    bool list_close(); // consumes ')' if next
    bool nil();        // consumes NIL if next

    // Fails when tokens are left.
    Parsed<void> end();

private:
    std::span<const Token> tokens_;
    std::size_t pos_ = 0;
};

bool iequals(std::string_view a, std::string_view b);
std::string to_upper(std::string_view s);

} // namespace popbridge::protocol::imap
