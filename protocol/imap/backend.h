#pragma once
// The narrow interface through which an IMAP session reaches storage. The proxy implements
// it over store/ (proxy/store_backend); tests implement a fake.
//
// Contract:
//  - Every call happens on the event-loop thread, and every callback must be invoked on it.
//  - Asynchronous calls (login, store_flags) invoke `done` exactly once, either before they
//    return or later. The session guards against being destroyed meanwhile: a callback that
//    arrives after the Session is gone is ignored, so the backend may keep it alive freely.
//  - One Backend object serves one session: select() makes a mailbox "the selected one" for
//    read_message() and store_flags(); unselect() releases it.
//  - Mailbox names are UTF-8, INBOX already folded to upper case. Names are untrusted: the
//    backend must confine them to the logged-in user (DESIGN.md, Store invariant 5).
//  - Failures use the neutral StorageErrc; the session maps them to IMAP with
//    imap_response_for() (response.h).

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/imap/error.h"
#include "protocol/imap/flags.h"

namespace popbridge::protocol::imap {

struct MessageMeta {
    std::uint32_t uid = 0;
    std::uint64_t size = 0;            // RFC822.SIZE: bytes of the stored (CRLF) message
    std::int64_t internal_date = 0;    // unix seconds, UTC
    int tz_offset_minutes = 0;         // zone the internal date is shown in
    std::uint32_t flags = 0;           // FlagBit mask (flags.h)
    std::vector<std::string> keywords; // keyword flags, as stored
    std::uint64_t modseq = 0;
};

struct MailboxSnapshot {
    std::uint32_t uid_validity = 0;
    std::uint32_t uid_next = 0;
    std::uint64_t highest_modseq = 0;
    std::vector<MessageMeta> messages; // sorted by uid, strictly ascending
    std::vector<std::string> keywords; // keywords defined in the mailbox (for FLAGS)
    bool read_only = false;            // true for EXAMINE or when the user may not write
};

class Backend {
public:
    virtual ~Backend() = default;

    // Checks credentials. Password hashing is slow and runs off the loop: `done(ok)` is
    // called exactly once, possibly later. The session accepts no other input meanwhile.
    virtual void login(std::string_view user, std::string_view password,
                       std::function<void(bool ok)> done) = 0;

    // Opens a mailbox (read_only for EXAMINE) and returns its current state. Errors:
    // NotFound -> NO [NONEXISTENT], NoPermission -> NO [NOPERM], etc.
    virtual Result<MailboxSnapshot> select(std::string_view mailbox_utf8, bool read_only) = 0;

    // Whole message bytes (CRLF) of the selected mailbox. Expunged -> the session skips it.
    virtual Result<std::string> read_message(std::uint32_t uid) = 0;

    // Changes flags of messages in the selected mailbox. `done` runs once the change is
    // durable (after fsync): only then does the session acknowledge it to the client.
    // Flag bits outside kPermanentFlagBits are ignored.
    virtual void store_flags(std::vector<std::uint32_t> uids, FlagOp op, std::uint32_t flags,
                             std::vector<std::string> keywords,
                             std::function<void(Result<void>)> done) = 0;

    // Leaves the selected mailbox; stops change notifications for it.
    virtual void unselect() = 0;
};

} // namespace popbridge::protocol::imap
