#pragma once
// Streaming decoder for the body of a POP3 multi-line response (RFC 1939
// section 3): removes the byte-stuffed leading "." of each line and finds the
// terminating ".CRLF" line, whatever byte boundaries the input is split at.
//
// Line ends are normalised: a bare LF (from broken servers) becomes CRLF, so
// the stored message is CRLF throughout. A bare CR not followed by LF is
// passed through unchanged. Body lines have no length limit here; the caller
// bounds a message by the size LIST reported (see client.h).

#include <cstddef>
#include <string>
#include <string_view>

namespace popbridge::protocol::pop3 {

class DotDecoder {
public:
    struct Step {
        std::size_t consumed = 0; // bytes of the input used; the rest belong to the next reply
        bool finished = false;    // the terminating "." line was consumed
    };

    // Decodes as much of `in` as belongs to this body, appending the decoded
    // bytes to `out`. Holds no pointer into `in` after returning. Once finished
    // it consumes nothing until reset().
    Step decode(std::string_view in, std::string& out);

    void reset() { state_ = LineState::LineStart; }
    bool finished() const { return state_ == LineState::Finished; }

    // Where the decoder is inside the current line.
    enum class LineState {
        LineStart, // at the first byte of a line
        Dot,       // the line began with "."; it is stuffed or the terminator
        DotCr,     // the line began with ".CR"; LF next ends the body
        Middle,    // inside a line
        Cr,        // after a CR inside a line; LF next ends the line
        Finished,  // the terminator line was seen
    };
    LineState line_state() const { return state_; }

private:
    LineState state_ = LineState::LineStart;
};

std::string_view to_string(DotDecoder::LineState s);

} // namespace popbridge::protocol::pop3
