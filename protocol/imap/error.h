#pragma once
// Error model of the IMAP protocol library (STYLE.md, Errors).
//
// Backends report failures as a neutral StorageErrc; the session turns it into an IMAP
// response with exactly one function, imap_response_for() (response.h), so the mapping to
// [NONEXISTENT], [TRYCREATE], [SERVERBUG]... lives in one place.

#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace popbridge::protocol::imap {

// Storage-neutral failure reasons. The proxy maps store::Errc onto these.
enum class StorageErrc {
    NotFound,      // mailbox or message does not exist
    AlreadyExists, // mailbox already exists
    NoPermission,  // the user may not do this (e.g. write a read-only mailbox)
    OverQuota,     // quota exceeded
    TooBig,        // message or request exceeds a configured size
    Expunged,      // the message vanished meanwhile (another session expunged it)
    InUse,         // temporarily locked by another operation; retry later
    HasChildren,   // the mailbox has child mailboxes (DELETE refused)
    Unavailable,   // storage temporarily unavailable (disk, I/O error)
    Internal,      // bug or corrupt data on the server side
};

constexpr std::string_view to_string(StorageErrc e) {
    switch (e) {
    case StorageErrc::NotFound:
        return "NotFound";
    case StorageErrc::AlreadyExists:
        return "AlreadyExists";
    case StorageErrc::NoPermission:
        return "NoPermission";
    case StorageErrc::OverQuota:
        return "OverQuota";
    case StorageErrc::TooBig:
        return "TooBig";
    case StorageErrc::Expunged:
        return "Expunged";
    case StorageErrc::InUse:
        return "InUse";
    case StorageErrc::HasChildren:
        return "HasChildren";
    case StorageErrc::Unavailable:
        return "Unavailable";
    case StorageErrc::Internal:
        return "Internal";
    }
    return "?";
}

struct Error {
    StorageErrc code = StorageErrc::Internal;
    std::string message;           // human text; sent to the client after the response code
    bool close_connection = false; // the session must send BYE and close after replying
};

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> make_error(StorageErrc code, std::string message,
                                        bool close_connection = false) {
    return tl::unexpected<Error>(Error{code, std::move(message), close_connection});
}

} // namespace popbridge::protocol::imap
