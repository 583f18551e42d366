#include "protocol/pop3/dot_decoder.h"

namespace popbridge::protocol::pop3 {

DotDecoder::Step DotDecoder::decode(std::string_view in, std::string& out) {
    std::size_t i = 0;
    while (i < in.size() && state_ != LineState::Finished) {
        const char c = in[i];
        switch (state_) {
        case LineState::LineStart:
            if (c == '.') {
                state_ = LineState::Dot;
                ++i;
            } else {
                state_ = LineState::Middle; // reprocess c as line content
            }
            break;
        case LineState::Dot:
            if (c == '\r') {
                state_ = LineState::DotCr;
                ++i;
            } else if (c == '\n') {
                // ".LF": a terminator from a server that sends bare LF.
                state_ = LineState::Finished;
                ++i;
            } else {
                // RFC 1939 3: a leading "." not followed by CRLF is dropped;
                // c itself is ordinary content (for ".." that is the 2nd dot).
                state_ = LineState::Middle;
            }
            break;
        case LineState::DotCr:
            if (c == '\n') {
                state_ = LineState::Finished;
                ++i;
            } else {
                // ".CR" then something else: the dot was stuffing, the CR is bare.
                out.push_back('\r');
                state_ = LineState::Middle;
            }
            break;
        case LineState::Middle: {
            // Copy the run up to the next CR or LF in one go.
            const std::size_t stop = in.find_first_of("\r\n", i);
            const std::size_t end = stop == std::string_view::npos ? in.size() : stop;
            out.append(in.data() + i, end - i);
            i = end;
            if (i < in.size()) {
                if (in[i] == '\r') {
                    out.push_back('\r');
                    state_ = LineState::Cr;
                } else {
                    out += "\r\n"; // bare LF becomes CRLF
                    state_ = LineState::LineStart;
                }
                ++i;
            }
            break;
        }
        case LineState::Cr:
            if (c == '\n') {
                out.push_back('\n');
                state_ = LineState::LineStart;
                ++i;
            } else {
                state_ = LineState::Middle; // bare CR already copied; c is content
            }
            break;
        case LineState::Finished:
            break;
        }
    }
    return Step{i, state_ == LineState::Finished};
}

std::string_view to_string(DotDecoder::LineState s) {
    switch (s) {
    case DotDecoder::LineState::LineStart:
        return "LineStart";
    case DotDecoder::LineState::Dot:
        return "Dot";
    case DotDecoder::LineState::DotCr:
        return "DotCr";
    case DotDecoder::LineState::Middle:
        return "Middle";
    case DotDecoder::LineState::Cr:
        return "Cr";
    case DotDecoder::LineState::Finished:
        return "Finished";
    }
    return "?";
}

} // namespace popbridge::protocol::pop3
