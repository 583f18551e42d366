// Neutral storage errors. proxy/ maps them to IMAP response codes in one place.
#pragma once

#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace popbridge::store {

enum class Errc {
    NotFound,      // user, folder or UID does not exist
    AlreadyExists, // folder name taken; origin (account, uidl) already committed or pending
    InvalidName,   // user, folder name, keyword or account/uidl fails validation
    Io,            // a system call failed; message carries the call, path and errno text
    Corrupt,       // an index file is inconsistent beyond a torn tail
    TooLarge,      // message over max_message_size, or a record over the format limits
    Busy,          // operation needs the folder idle (no pending work, no running job)
    ReadOnly,      // folder stopped accepting writes after a failed fsync (until restart)
    InvalidState,  // API misuse: e.g. Incoming already committed/aborted, wrong store
    HasChildren,   // delete_folder on a folder that has child folders ("a" while "a/b" exists)
};

std::string_view to_string(Errc code) noexcept;

struct Error {
    Errc code;
    std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> make_error(Errc code, std::string message) {
    return tl::unexpected<Error>(Error{code, std::move(message)});
}

} // namespace popbridge::store
