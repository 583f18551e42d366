#include "protocol/pop3/reply_parser.h"

#include <utility>

namespace popbridge::protocol::pop3 {
namespace {

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char c = s[i];
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
        if (c != prefix[i]) {
            return false;
        }
    }
    return true;
}

// The status word must end the line or be followed by a space.
bool status_word(std::string_view line, std::string_view word, std::string_view& rest) {
    if (!starts_with_nocase(line, word)) {
        return false;
    }
    rest = line.substr(word.size());
    if (rest.empty()) {
        return true;
    }
    if (rest.front() != ' ') {
        return false;
    }
    rest.remove_prefix(1);
    return true;
}

} // namespace

std::string_view to_string(ReplyStatus s) {
    switch (s) {
    case ReplyStatus::Ok:
        return "Ok";
    case ReplyStatus::Err:
        return "Err";
    case ReplyStatus::Continue:
        return "Continue";
    }
    return "?";
}

std::string_view to_string(ReplyShape s) {
    switch (s) {
    case ReplyShape::StatusLine:
        return "StatusLine";
    case ReplyShape::MultiLineIfOk:
        return "MultiLineIfOk";
    }
    return "?";
}

std::string_view to_string(ReplyParser::Phase p) {
    switch (p) {
    case ReplyParser::Phase::Status:
        return "Status";
    case ReplyParser::Phase::Body:
        return "Body";
    case ReplyParser::Phase::Done:
        return "Done";
    case ReplyParser::Phase::Failed:
        return "Failed";
    }
    return "?";
}

bool parse_status_line(std::string_view line, Reply& out) {
    out = Reply{};
    std::string_view rest;
    if (status_word(line, "+OK", rest)) {
        out.status = ReplyStatus::Ok;
    } else if (status_word(line, "-ERR", rest)) {
        out.status = ReplyStatus::Err;
    } else if (status_word(line, "+", rest)) {
        out.status = ReplyStatus::Continue;
        out.text = std::string(rest); // the base64 challenge; never has a resp-code
        return true;
    } else {
        return false;
    }
    // RFC 2449 8: resp-code = "[" resp-level *("/" resp-level) "]" at the start of the text.
    if (!rest.empty() && rest.front() == '[') {
        const std::size_t close = rest.find(']');
        if (close != std::string_view::npos) {
            out.resp_code = std::string(rest.substr(1, close - 1));
            rest.remove_prefix(close + 1);
            while (!rest.empty() && rest.front() == ' ') {
                rest.remove_prefix(1);
            }
        }
    }
    out.text = std::string(rest);
    return true;
}

void ReplyParser::reset() {
    phase_ = Phase::Status;
    line_.clear();
    reply_ = Reply{};
    error_.clear();
    too_long_ = false;
}

Reply ReplyParser::take() {
    Reply r = std::move(reply_);
    reset();
    return r;
}

ParseStatus ReplyParser::fail(std::string why, bool too_long) {
    phase_ = Phase::Failed;
    error_ = std::move(why);
    too_long_ = too_long;
    line_.clear();
    return ParseStatus::Error;
}

ParseStatus ReplyParser::parse(std::string_view in, ReplyShape shape, std::size_t& consumed) {
    consumed = 0;
    if (phase_ == Phase::Failed) {
        return ParseStatus::Error;
    }
    if (phase_ == Phase::Done) {
        return ParseStatus::Complete;
    }
    while (consumed < in.size()) {
        const std::string_view rest = in.substr(consumed);
        const std::size_t lf = rest.find('\n');
        if (lf == std::string_view::npos) {
            // Checked before copying, so a hostile server can grow line_ only to max_line.
            if (line_.size() + rest.size() >= max_line_) {
                consumed = in.size();
                return fail("response line longer than " + std::to_string(max_line_) + " bytes",
                            true);
            }
            line_.append(rest);
            consumed = in.size();
            return ParseStatus::NeedMore;
        }
        if (line_.size() + lf + 1 > max_line_) {
            consumed += lf + 1;
            return fail("response line longer than " + std::to_string(max_line_) + " bytes", true);
        }
        line_.append(rest.substr(0, lf));
        consumed += lf + 1;
        if (!line_.empty() && line_.back() == '\r') {
            line_.pop_back(); // CRLF, or a bare LF from a broken server
        }
        const std::string line = std::move(line_);
        line_.clear();
        const ParseStatus st = on_line(line, shape);
        if (st != ParseStatus::NeedMore) {
            return st;
        }
    }
    return ParseStatus::NeedMore;
}

ParseStatus ReplyParser::on_line(std::string_view line, ReplyShape shape) {
    if (phase_ == Phase::Status) {
        if (!parse_status_line(line, reply_)) {
            return fail("response does not start with +OK or -ERR", false);
        }
        if (shape == ReplyShape::MultiLineIfOk && reply_.status == ReplyStatus::Ok) {
            phase_ = Phase::Body;
            return ParseStatus::NeedMore;
        }
        phase_ = Phase::Done;
        return ParseStatus::Complete;
    }
    // Body line (RFC 1939 3): "." alone ends it; otherwise drop one leading ".".
    if (line == ".") {
        phase_ = Phase::Done;
        return ParseStatus::Complete;
    }
    if (!line.empty() && line.front() == '.') {
        line.remove_prefix(1);
    }
    reply_.lines.emplace_back(line);
    return ParseStatus::NeedMore;
}

} // namespace popbridge::protocol::pop3
