#pragma once
// Resumable parser for POP3 server replies (RFC 1939 section 3, RFC 2449
// section 8 RESP-CODES, RFC 5034 section 4 SASL continuations).
//
// A reply is one status line ("+OK", "-ERR", or the SASL "+ " continuation),
// optionally followed, for +OK to a multi-line command, by body lines ending in
// a "." line. This parser collects the body lines itself (CAPA, UIDL, LIST are
// small); RETR bodies are streamed through DotDecoder instead, so for RETR the
// caller asks only for the status line.

#include "protocol/common/parse_result.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace popbridge::protocol::pop3 {

enum class ReplyStatus {
    Ok,       // "+OK"
    Err,      // "-ERR"
    Continue, // "+ " (or a lone "+"): a SASL server challenge, RFC 5034 section 4
};
std::string_view to_string(ReplyStatus s);

enum class ReplyShape {
    StatusLine,    // only the status line (single-line commands, and RETR)
    MultiLineIfOk, // +OK is followed by lines up to "."; -ERR stands alone
};
std::string_view to_string(ReplyShape s);

struct Reply {
    ReplyStatus status = ReplyStatus::Ok;
    std::string resp_code;          // inside "[...]" as sent, e.g. "SYS/TEMP"; empty if none
    std::string text;               // rest of the status line after status and code
    std::vector<std::string> lines; // multi-line body, dot-unstuffed, without line ends

    bool operator==(const Reply&) const = default;
};

// Splits a status line (without its line end) into a Reply. Returns false if
// it starts with none of "+OK", "-ERR", "+". Status words are matched without
// regard to case; a "[" that is not closed on the line is left in the text.
bool parse_status_line(std::string_view line, Reply& out);

class ReplyParser {
public:
    // max_line: the longest line accepted, counting its CRLF (DESIGN.md: 8 KiB).
    explicit ReplyParser(std::size_t max_line = 8192) : max_line_(max_line) {}

    // Consumes bytes of `in` (sets `consumed`) up to the end of one reply.
    // Complete: the reply is ready in take(); bytes after `consumed` belong to
    // whatever comes next. NeedMore: all of `in` was used, feed more.
    // Error: error() says why; line_too_long() tells an over-long line from
    // a malformed one. Partial lines are copied; no pointer into `in` is kept.
    ParseStatus parse(std::string_view in, ReplyShape shape, std::size_t& consumed);

    Reply take();
    const std::string& error() const { return error_; }
    bool line_too_long() const { return too_long_; }
    void reset();

private:
    enum class Phase {
        Status, // reading the status line
        Body,   // reading multi-line body lines until "."
        Done,   // a complete reply waits in reply_
        Failed, // an error was reported; reset() to reuse
    };
    friend std::string_view to_string(Phase p);

    ParseStatus on_line(std::string_view line, ReplyShape shape);
    ParseStatus fail(std::string why, bool too_long);

    std::size_t max_line_;
    Phase phase_ = Phase::Status;
    std::string line_; // the partial line so far
    Reply reply_;
    std::string error_;
    bool too_long_ = false;
};

} // namespace popbridge::protocol::pop3
