#include "protocol/imap/parse/arg_cursor.h"

namespace popbridge::protocol::imap {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z')
            x = static_cast<char>(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z')
            y = static_cast<char>(y - 'a' + 'A');
        if (x != y)
            return false;
    }
    return true;
}

std::string to_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return out;
}

Parsed<std::string> ArgCursor::atom() {
    const Token* t = peek();
    if (t == nullptr || t->kind != TokenKind::Atom)
        return parse_error("Expected an atom");
    for (char c : t->text)
        if (!is_atom_char(c))
            return parse_error("Invalid character in atom");
    ++pos_;
    return t->text;
}

Parsed<std::string> ArgCursor::astring() {
    const Token* t = peek();
    if (t == nullptr)
        return parse_error("Missing argument");
    if (t->kind == TokenKind::Atom) {
        for (char c : t->text)
            if (!is_astring_char(c))
                return parse_error("Invalid character in astring");
        ++pos_;
        return t->text;
    }
    return string();
}

Parsed<std::string> ArgCursor::string() {
    const Token* t = peek();
    if (t == nullptr || (t->kind != TokenKind::Quoted && t->kind != TokenKind::Literal))
        return parse_error("Expected a string");
    ++pos_;
    return t->text;
}

Parsed<std::optional<std::string>> ArgCursor::nstring() {
    if (nil())
        return std::optional<std::string>();
    auto s = string();
    if (!s)
        return tl::unexpected(s.error());
    return std::optional<std::string>(std::move(*s));
}

Parsed<std::uint32_t> ArgCursor::number(bool nonzero) {
    const Token* t = peek();
    if (t == nullptr || t->kind != TokenKind::Atom || t->text.empty() || t->text.size() > 10)
        return parse_error("Expected a number");
    std::uint64_t v = 0;
    for (char c : t->text) {
        if (c < '0' || c > '9')
            return parse_error("Expected a number");
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v > 0xffffffffULL || (nonzero && v == 0) || (t->text.size() > 1 && t->text[0] == '0'))
        return parse_error("Number out of range");
    ++pos_;
    return static_cast<std::uint32_t>(v);
}

bool ArgCursor::list_open() {
    const Token* t = peek();
    if (t == nullptr || t->kind != TokenKind::ListOpen)
        return false;
    ++pos_;
    return true;
}

bool ArgCursor::list_close() {
    const Token* t = peek();
    if (t == nullptr || t->kind != TokenKind::ListClose)
        return false;
    ++pos_;
    return true;
}

bool ArgCursor::nil() {
    const Token* t = peek();
    if (t == nullptr || t->kind != TokenKind::Atom || !iequals(t->text, "NIL"))
        return false;
    ++pos_;
    return true;
}

Parsed<void> ArgCursor::end() {
    if (!at_end())
        return parse_error("Unexpected extra arguments");
    return {};
}

} // namespace popbridge::protocol::imap
