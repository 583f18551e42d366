#include "protocol/imap/tokenizer.h"

#include <limits>
#include <utility>

namespace popbridge::protocol::imap {

namespace {

// Characters that may appear inside an atom token: ATOM-CHAR plus list-wildcards, ']' (for
// astrings and "BODY[...]") and '\' (flags such as \Seen). Parsers narrow this down.
bool is_token_char(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f)
        return false;
    return c != '(' && c != ')' && c != '{' && c != '"';
}

bool append_digit(std::uint64_t& value, char c) {
    auto d = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - d) / 10)
        return false;
    value = value * 10 + d;
    return true;
}

} // namespace

TokenizerStep Tokenizer::feed(std::span<const char> input) {
    TokenizerStep result;
    for (std::size_t i = 0; i < input.size(); ++i) {
        ParseStatus event = ParseStatus::NeedMore;
        if (state_ == State::LiteralData) {
            // Copy literal bytes in bulk; they are not counted against the line limit.
            auto n =
                static_cast<std::size_t>(std::min<std::uint64_t>(literal_left_, input.size() - i));
            current_.append(input.data() + i, n);
            literal_left_ -= n;
            i += n - 1;
            if (literal_left_ == 0) {
                push_token(TokenKind::Literal);
                state_ = State::Between;
            }
            continue;
        }
        if (state_ == State::DiscardLiteral) {
            auto n =
                static_cast<std::size_t>(std::min<std::uint64_t>(discard_left_, input.size() - i));
            discard_left_ -= n;
            i += n - 1;
            if (discard_left_ == 0)
                state_ = State::Discard;
            continue;
        }
        if (step(input[i], event)) {
            result.status = event;
            result.consumed = i + 1;
            return result;
        }
    }
    result.consumed = input.size();
    return result;
}

RawCommand Tokenizer::take_command() {
    RawCommand cmd{std::move(tag_), std::move(tokens_)};
    reset_command();
    return cmd;
}

void Tokenizer::reset_command() {
    tag_.clear();
    tokens_.clear();
    current_.clear();
    space_before_ = false;
    tag_done_ = false;
    depth_ = 0;
    line_bytes_ = 0;
    literal_total_ = 0;
    state_ = State::Tag;
}

void Tokenizer::push_token(TokenKind kind) {
    tokens_.push_back(Token{kind, space_before_, std::move(current_)});
    current_.clear();
    space_before_ = false;
}

bool Tokenizer::fail(std::string message, bool too_big, bool at_line_end, ParseStatus& event) {
    error_ = TokenizerError{tag_done_ ? tag_ : std::string(), std::move(message), too_big, false};
    reset_command();
    disc_state_ = DiscardLit::None;
    state_ = at_line_end ? State::Tag : State::Discard;
    event = ParseStatus::Error;
    return true;
}

void Tokenizer::discard_scan(char c) {
    switch (c) {
    case '{':
        disc_state_ = DiscardLit::Open;
        disc_size_ = 0;
        disc_plus_ = false;
        return;
    case '+':
        disc_plus_ = disc_state_ == DiscardLit::Digits;
        disc_state_ = disc_plus_ ? DiscardLit::Plus : DiscardLit::None;
        return;
    case '}':
        disc_state_ = (disc_state_ == DiscardLit::Digits || disc_state_ == DiscardLit::Plus)
                          ? DiscardLit::Close
                          : DiscardLit::None;
        return;
    case '\r':
        disc_state_ = disc_state_ == DiscardLit::Close ? DiscardLit::Cr : DiscardLit::None;
        return;
    default:
        if (c >= '0' && c <= '9' &&
            (disc_state_ == DiscardLit::Open || disc_state_ == DiscardLit::Digits)) {
            // An overflowing size can only be skipped "forever"; saturate.
            if (!append_digit(disc_size_, c))
                disc_size_ = std::numeric_limits<std::uint64_t>::max();
            disc_state_ = DiscardLit::Digits;
            return;
        }
        disc_state_ = DiscardLit::None;
    }
}

// Returns true when `c` produced an event (stored in `event`).
bool Tokenizer::step(char c, ParseStatus& event) {
    if (state_ == State::Discard) {
        if (c != '\n') {
            discard_scan(c);
            return false;
        }
        bool literal =
            (disc_state_ == DiscardLit::Close || disc_state_ == DiscardLit::Cr) && disc_plus_;
        disc_state_ = DiscardLit::None;
        if (literal && disc_size_ > 0) {
            discard_left_ = disc_size_;
            state_ = State::DiscardLiteral;
        } else {
            state_ = State::Tag;
        }
        return false;
    }

    if (++line_bytes_ > limits_.max_line)
        return fail("Command line too long", true, c == '\n', event);

    switch (state_) {
    case State::Tag:
        if (is_tag_char(c)) {
            tag_.push_back(c);
            return false;
        }
        if (c == ' ' && !tag_.empty()) {
            tag_done_ = true;
            space_before_ = true;
            state_ = State::Between;
            return false;
        }
        if ((c == '\r' || c == '\n') && tag_.empty()) {
            // Empty lines are ignored, as most servers do.
            line_bytes_ = 0;
            return false;
        }
        if (c == '\r' || c == '\n') {
            tag_done_ = true;
            if (c == '\r') {
                state_ = State::LineLf;
                return false;
            }
            event = ParseStatus::Complete;
            return true;
        }
        return fail("Invalid tag", false, c == '\n', event);

    case State::Between:
        switch (c) {
        case ' ':
            space_before_ = true;
            return false;
        case '(':
            if (depth_ >= limits_.max_nesting)
                return fail("Too deeply nested lists", false, false, event);
            ++depth_;
            push_token(TokenKind::ListOpen);
            return false;
        case ')':
            if (depth_ == 0)
                return fail("Unbalanced parentheses", false, false, event);
            --depth_;
            push_token(TokenKind::ListClose);
            return false;
        case '"':
            state_ = State::Quoted;
            return false;
        case '{':
            literal_size_ = 0;
            literal_plus_ = false;
            literal_digits_ = false;
            state_ = State::LiteralSize;
            return false;
        case '\r':
            state_ = State::LineLf;
            return false;
        case '\n':
            if (depth_ != 0)
                return fail("Unbalanced parentheses", false, true, event);
            event = ParseStatus::Complete;
            return true;
        default:
            if (!is_token_char(c))
                return fail("Invalid character in command", false, false, event);
            current_.push_back(c);
            state_ = State::Atom;
            return false;
        }

    case State::Atom:
        if (is_token_char(c)) {
            current_.push_back(c);
            return false;
        }
        if (c == ' ' || c == '(' || c == ')' || c == '\r' || c == '\n') {
            push_token(TokenKind::Atom);
            state_ = State::Between;
            --line_bytes_; // re-counted by the Between state
            return step(c, event);
        }
        return fail("Invalid character in atom", false, c == '\n', event);

    case State::Quoted:
        if (c == '"') {
            push_token(TokenKind::Quoted);
            state_ = State::Between;
            return false;
        }
        if (c == '\\') {
            state_ = State::QuotedEscape;
            return false;
        }
        if (c == '\r' || c == '\n' || c == '\0')
            return fail("Invalid character in quoted string", false, c == '\n', event);
        current_.push_back(c);
        return false;

    case State::QuotedEscape:
        if (c != '"' && c != '\\')
            return fail("Invalid escape in quoted string", false, c == '\n', event);
        current_.push_back(c);
        state_ = State::Quoted;
        return false;

    case State::LiteralSize:
        if (c >= '0' && c <= '9') {
            literal_digits_ = true;
            // Saturate on overflow; the size check after '}' refuses it.
            if (!append_digit(literal_size_, c))
                literal_size_ = std::numeric_limits<std::uint64_t>::max();
            return false;
        }
        if (c == '+' && literal_digits_) {
            literal_plus_ = true;
            state_ = State::LiteralClose;
            return false;
        }
        if (c == '}' && literal_digits_) {
            state_ = State::LiteralCr;
            break;
        }
        return fail("Invalid literal size", false, c == '\n', event);

    case State::LiteralClose:
        if (c == '}') {
            state_ = State::LiteralCr;
            break;
        }
        return fail("Invalid literal size", false, c == '\n', event);

    case State::LiteralCr:
        if (c == '\r') {
            state_ = State::LiteralLf;
            return false;
        }
        [[fallthrough]];
    case State::LiteralLf:
        if (c != '\n')
            return fail("Literal must be followed by CRLF", false, false, event);
        current_.clear();
        if (literal_size_ == 0) {
            push_token(TokenKind::Literal);
            state_ = State::Between;
        } else {
            current_.reserve(static_cast<std::size_t>(literal_size_));
            literal_left_ = literal_size_;
            state_ = State::LiteralData;
        }
        if (!literal_plus_) {
            event = ParseStatus::NeedContinuation;
            return true;
        }
        return false;

    case State::LineLf:
        if (c != '\n')
            return fail("Expected LF after CR", false, false, event);
        if (depth_ != 0)
            return fail("Unbalanced parentheses", false, true, event);
        event = ParseStatus::Complete;
        return true;

    case State::LiteralData:
    case State::Discard:
    case State::DiscardLiteral:
        break; // handled in feed()/above
    }

    // Only reached right after '}': check the announced size before any allocation.
    if (literal_size_ > limits_.max_literal ||
        literal_size_ > limits_.max_literal - literal_total_) {
        std::uint64_t size = literal_size_;
        bool plus = literal_plus_;
        bool overflow = size == std::numeric_limits<std::uint64_t>::max();
        fail(overflow ? "Literal size out of range" : "Literal too big", true, false, event);
        // Data of an unrepresentable non-synchronizing literal cannot be skipped reliably.
        error_.fatal = overflow && plus;
        // Resync: the discard scanner has "seen" this literal header already.
        disc_state_ = DiscardLit::Close;
        disc_size_ = size;
        disc_plus_ = plus;
        return true;
    }
    literal_total_ += literal_size_;
    return false;
}

} // namespace popbridge::protocol::imap
