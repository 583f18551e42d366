#pragma once
// Resumable IMAP command tokenizer (RFC 3501 section 9 / RFC 9051 section 9, RFC 7888).
//
// Bytes come in arbitrary chunks through feed(); the tokenizer frames one command at a time
// (tag, then tokens up to the final CRLF, with literal bytes in between) and never looks
// past the event it reports. It knows no command names: typed parsing happens afterwards
// on the token list (parse/*.cpp).
//
// Limits (limits.h) are enforced while reading: a line longer than max_line, a literal over
// max_literal (checked from the announced size, before any allocation), or lists nested
// deeper than max_nesting yield ParseStatus::Error. After an error the tokenizer resyncs:
// it discards input up to the next LF; when the discarded line ends with a non-synchronizing
// literal "{n+}" it also discards those n bytes, so literal data is never read as commands.
// A refused synchronizing literal "{n}" gets no "+ ", so a conforming client sends no data.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/common/parse_result.h"
#include "protocol/imap/limits.h"

namespace popbridge::protocol::imap {

enum class TokenKind {
    Atom,      // a run of ATOM-CHARs plus '%', '*', ']' (also covers tags, numbers, NIL, sets)
    Quoted,    // quoted string, escapes removed
    Literal,   // {n} or {n+} literal, raw bytes
    ListOpen,  // '('
    ListClose, // ')'
};

constexpr std::string_view to_string(TokenKind k) {
    switch (k) {
    case TokenKind::Atom:
        return "Atom";
    case TokenKind::Quoted:
        return "Quoted";
    case TokenKind::Literal:
        return "Literal";
    case TokenKind::ListOpen:
        return "ListOpen";
    case TokenKind::ListClose:
        return "ListClose";
    }
    return "?";
}

struct Token {
    TokenKind kind = TokenKind::Atom;
    bool space_before = false; // preceded by SP; lets parsers see "BODY[...]<0.10>" adjacency
    std::string text;          // atom text, unescaped quoted content or literal bytes

    bool operator==(const Token&) const = default;
};

// One framed command: the tag and every token after it.
struct RawCommand {
    std::string tag;
    std::vector<Token> tokens;
};

struct TokenizerError {
    std::string tag;      // the command's tag, empty when no valid tag was read
    std::string message;  // human text for the BAD response
    bool too_big = false; // a size limit was hit: answer with [TOOBIG]
    bool fatal = false;   // resync is impossible: send BYE and close
};

struct TokenizerStep {
    ParseStatus status = ParseStatus::NeedMore;
    std::size_t consumed = 0; // bytes of the input used, up to and including the event
};

class Tokenizer {
public:
    explicit Tokenizer(const Limits& limits = kPreAuthLimits) : limits_(limits) {}

    // New limits apply from the next command on (used after login).
    void set_limits(const Limits& limits) { limits_ = limits; }
    const Limits& limits() const { return limits_; }

    // Consumes input up to the first event and reports it:
    //  Complete         - a command is ready: take_command()
    //  NeedContinuation - a synchronizing literal was accepted: the caller sends "+ ..." and
    //                     keeps feeding; literal_size() tells its size
    //  Error            - error() describes it; feeding more input resyncs as described above
    //  NeedMore         - all input was consumed without an event
    // Bytes after `consumed` were not looked at; pass them again.
    TokenizerStep feed(std::span<const char> input);

    RawCommand take_command();
    const TokenizerError& error() const { return error_; }
    std::uint64_t literal_size() const { return literal_size_; }

    // True between commands (nothing of a command has been read yet).
    bool at_command_start() const { return state_ == State::Tag && tag_.empty(); }

private:
    enum class State {
        Tag,            // reading the tag
        Between,        // between tokens
        Atom,           // inside an atom
        Quoted,         // inside a quoted string
        QuotedEscape,   // after a backslash inside a quoted string
        LiteralSize,    // after '{': digits, then optional '+', then '}'
        LiteralClose,   // after "{n+": expecting '}'
        LiteralCr,      // after '}': expecting CR or LF
        LiteralLf,      // after "}\r": expecting LF
        LiteralData,    // reading literal bytes
        LineLf,         // after CR at the end of the command: expecting LF
        Discard,        // resyncing: skipping up to LF
        DiscardLiteral, // resyncing: skipping the data of a non-synchronizing literal
    };

    bool step(char c, ParseStatus& event);
    bool fail(std::string message, bool too_big, bool at_line_end, ParseStatus& event);
    void push_token(TokenKind kind);
    void reset_command();
    void discard_scan(char c);

    Limits limits_;
    State state_ = State::Tag;
    std::string tag_;
    std::vector<Token> tokens_;
    std::string current_;
    bool space_before_ = false;
    bool tag_done_ = false;
    unsigned depth_ = 0;
    std::size_t line_bytes_ = 0;
    std::uint64_t literal_total_ = 0;
    std::uint64_t literal_size_ = 0;
    std::uint64_t literal_left_ = 0;
    bool literal_plus_ = false;
    bool literal_digits_ = false;
    TokenizerError error_;

    // Literal-header recognizer used while discarding ("{digits[+]}" right before LF).
    enum class DiscardLit { None, Open, Digits, Plus, Close, Cr };
    DiscardLit disc_state_ = DiscardLit::None;
    std::uint64_t disc_size_ = 0;
    bool disc_plus_ = false;
    std::uint64_t discard_left_ = 0;
};

// RFC 3501 ATOM-CHAR: any CHAR except atom-specials.
constexpr bool is_atom_char(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f)
        return false;
    switch (c) {
    case '(':
    case ')':
    case '{':
    case '%':
    case '*':
    case '"':
    case '\\':
    case ']':
        return false;
    default:
        return true;
    }
}

// ASTRING-CHAR: ATOM-CHAR or resp-specials (']').
constexpr bool is_astring_char(char c) {
    return is_atom_char(c) || c == ']';
}

// Tag: 1*<any ASTRING-CHAR except "+">.
constexpr bool is_tag_char(char c) {
    return is_astring_char(c) && c != '+';
}

} // namespace popbridge::protocol::imap
