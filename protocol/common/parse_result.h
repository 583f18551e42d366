#pragma once
// Typed status for resumable parsers (STYLE.md, Errors): never int codes.

#include <string>
#include <string_view>

namespace popbridge::protocol {

enum class ParseStatus {
    Complete,         // a whole item was parsed; its value is ready
    NeedMore,         // input ended inside an item; feed more bytes
    NeedContinuation, // IMAP: a synchronizing literal needs "+ " before its bytes come
    Error,            // the input is invalid; see the error text
};

constexpr std::string_view to_string(ParseStatus s) {
    switch (s) {
    case ParseStatus::Complete: return "Complete";
    case ParseStatus::NeedMore: return "NeedMore";
    case ParseStatus::NeedContinuation: return "NeedContinuation";
    case ParseStatus::Error: return "Error";
    }
    return "?";
}

} // namespace popbridge::protocol
