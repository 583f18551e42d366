#pragma once
// The narrow interface through which an IMAP session reaches storage. The proxy implements
// it over store/ (proxy/store_backend); tests implement a fake.
//
// Contract:
//  - Every call happens on the event-loop thread, and every callback must be invoked on it.
//  - Asynchronous calls (login, store_flags, expunge, copy, append) invoke `done` exactly once,
//  either before they
//    return or later. The session guards against being destroyed meanwhile: a callback that
//    arrives after the Session is gone is ignored, so the backend may keep it alive freely.
//  - One Backend object serves one session: select() makes a mailbox "the selected one" for
//    read_message() and store_flags(); unselect() releases it.
//  - Mailbox names are UTF-8, INBOX already folded to upper case. Names are untrusted: the
//    backend must confine them to the logged-in user (DESIGN.md, Store invariant 5).
//  - Failures use the neutral StorageErrc; the session maps them to IMAP with
//    imap_response_for() (response.h).

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/imap/error.h"
#include "protocol/imap/flags.h"
#include "protocol/imap/message_index.h"
#include "protocol/imap/message_structure.h"

namespace popbridge::protocol::imap {

struct MailboxSnapshot {
    std::uint32_t uid_validity = 0;
    std::uint32_t uid_next = 0;
    std::uint64_t highest_modseq = 0;
    // The messages, sorted by uid, strictly ascending: a backend that shares one index per
    // folder between sessions sets `index` (and leaves `messages` empty); otherwise the
    // session builds its own index from `messages`.
    std::shared_ptr<const MessageIndex> index;
    std::vector<MessageMeta> messages;
    std::vector<std::string> keywords; // keywords defined in the mailbox (for FLAGS)
    bool read_only = false;            // true for EXAMINE or when the user may not write
};

// One mailbox as LIST shows it (RFC 3501 7.2.2, RFC 5258, RFC 6154).
struct MailboxInfo {
    std::string name;        // UTF-8, hierarchy separator '/', INBOX upper case
    bool subscribed = false; // RFC 5258 \Subscribed
    std::string special_use; // "\Sent", "\Trash"... (RFC 6154); empty if none
};

// STATUS data (RFC 3501 6.3.10, RFC 7162 3.1.6, RFC 8438).
struct MailboxStatus {
    std::uint32_t messages = 0;
    std::uint32_t recent = 0;
    std::uint32_t uid_next = 0;
    std::uint32_t uid_validity = 0;
    std::uint32_t unseen = 0;
    std::uint32_t deleted = 0;
    std::uint64_t highest_modseq = 0;
    std::uint64_t size = 0;
};

// UIDPLUS data (RFC 4315): APPENDUID / COPYUID.
struct AppendResult {
    std::uint32_t uid_validity = 0;
    std::uint32_t uid = 0;
};
struct CopyResult {
    std::uint32_t uid_validity = 0;         // of the destination
    std::vector<std::uint32_t> source_uids; // ascending; only messages that were copied
    std::vector<std::uint32_t> dest_uids;   // dest_uids[i] is the copy of source_uids[i]
};

// Result of a flag change: which UIDs failed UNCHANGEDSINCE (RFC 7162 3.1.3).
struct StoreResult {
    std::vector<std::uint32_t> modified; // ascending
};

// One stored message held open for reading in pieces (FETCH BODY[] of a large message is
// streamed from it, never held whole). Reads run off the loop in a real backend; `done` runs
// on the loop thread, exactly once, possibly before read() returns. The bytes stay readable
// while the object lives, even if the message is expunged meanwhile.
class MessageSource {
public:
    virtual ~MessageSource() = default;
    virtual std::uint64_t size() const = 0;
    // Up to `max` bytes from `offset` (fewer only at the end of the message).
    virtual void read(std::uint64_t offset, std::size_t max,
                      std::function<void(Result<std::string>)> done) = 0;
};

// A MessageSource over bytes already in memory (the default Backend::open_message, tests).
class StringMessageSource final : public MessageSource {
public:
    explicit StringMessageSource(std::string bytes) : bytes_(std::move(bytes)) {}
    std::uint64_t size() const override { return bytes_.size(); }
    void read(std::uint64_t offset, std::size_t max,
              std::function<void(Result<std::string>)> done) override {
        std::size_t off = static_cast<std::size_t>(std::min<std::uint64_t>(offset, bytes_.size()));
        done(bytes_.substr(off, max));
    }

private:
    std::string bytes_;
};

// SEARCH over message content (Backend::scan_messages). Called on a worker thread with
// the index into the scanned list and a loader that reads the message at most once
// (nullptr when it cannot be read, e.g. expunged meanwhile; the test may move the bytes
// out). It must touch only data it owns (copies); it never sees the session.
using ScanTest = std::function<bool(std::size_t index, const std::function<std::string*()>& load)>;

class Backend {
public:
    virtual ~Backend() = default;

    // Checks credentials. Password hashing is slow and runs off the loop: `done(ok)` is
    // called exactly once, possibly later. The session accepts no other input meanwhile.
    // `password` is wiped when login() returns: copy it if it is needed later.
    virtual void login(std::string_view user, std::string_view password,
                       std::function<void(bool ok)> done) = 0;

    // Opens a mailbox (read_only for EXAMINE) and returns its current state. Errors:
    // NotFound -> NO [NONEXISTENT], NoPermission -> NO [NOPERM], etc.
    virtual Result<MailboxSnapshot> select(std::string_view mailbox_utf8, bool read_only) = 0;

    // Whole message bytes (CRLF) of the selected mailbox. Expunged -> the session skips it.
    virtual Result<std::string> read_message(std::uint32_t uid) = 0;

    // ENVELOPE / BODYSTRUCTURE / BODY of a message of the selected mailbox (FETCH). `loaded`
    // is the message's bytes when the caller already read them (saves a read on a miss), else
    // nullptr. Errors as read_message(). MIME trouble is never an error: the structure is
    // best effort. The default parses the message on every call; a real backend caches the
    // result (proxy/store_backend shares one byte-bounded cache across sessions).
    virtual Result<std::shared_ptr<const MessageStructure>>
    message_structure(std::uint32_t uid, const std::string* loaded) {
        if (loaded != nullptr)
            return std::make_shared<const MessageStructure>(compute_message_structure(*loaded));
        auto bytes = read_message(uid);
        if (!bytes)
            return tl::unexpected(bytes.error());
        return std::make_shared<const MessageStructure>(compute_message_structure(*bytes));
    }

    // ---- the same off the loop (DESIGN.md "Concurrency") ----
    // The session uses these; `done` runs exactly once on the loop thread, before the call
    // returns or later (a real backend reads in the thread pool). The defaults call the
    // synchronous versions above at once.

    // read_message() off the loop.
    virtual void read_message_async(std::uint32_t uid,
                                    std::function<void(Result<std::string>)> done) {
        done(read_message(uid));
    }
    // message_structure() off the loop; `loaded` as there (shared so a worker may parse it).
    virtual void message_structure_async(
        std::uint32_t uid, std::shared_ptr<const std::string> loaded,
        std::function<void(Result<std::shared_ptr<const MessageStructure>>)> done) {
        done(message_structure(uid, loaded.get()));
    }
    // Opens a message for reading in pieces (streamed FETCH BODY[]).
    virtual void open_message(std::uint32_t uid,
                              std::function<void(Result<std::shared_ptr<MessageSource>>)> done) {
        auto bytes = read_message(uid);
        if (!bytes)
            done(tl::unexpected(bytes.error()));
        else
            done(std::shared_ptr<MessageSource>(
                std::make_shared<StringMessageSource>(std::move(*bytes))));
    }
    // Runs `test` over the messages `uids` of the selected mailbox (SEARCH on content) and
    // gives back one verdict per uid, in order. A real backend runs it in the thread pool in
    // batches; a message that cannot be read is tested with a loader that returns nullptr.
    virtual void scan_messages(std::vector<std::uint32_t> uids, ScanTest test,
                               std::function<void(std::vector<bool>)> done) {
        std::vector<bool> verdicts(uids.size());
        for (std::size_t i = 0; i < uids.size(); ++i) {
            std::optional<std::string> bytes;
            bool tried = false;
            std::function<std::string*()> load = [&]() -> std::string* {
                if (!tried) {
                    tried = true;
                    if (auto r = read_message(uids[i]))
                        bytes = std::move(*r);
                }
                return bytes ? &*bytes : nullptr;
            };
            verdicts[i] = test(i, load);
        }
        done(std::move(verdicts));
    }

    // Changes flags of messages in the selected mailbox. `done` runs once the change is
    // durable (after fsync): only then does the session acknowledge it to the client.
    // Flag bits outside kPermanentFlagBits are ignored.
    virtual void store_flags(std::vector<std::uint32_t> uids, FlagOp op, std::uint32_t flags,
                             std::vector<std::string> keywords,
                             std::function<void(Result<void>)> done) = 0;

    // Changes flags of messages in the selected mailbox. `done` runs once the change is
    // durable (after fsync): only then does the session acknowledge it to the client.
    // Flag bits outside kPermanentFlagBits are ignored. With `unchanged_since`, messages
    // whose current modseq is above it are left alone and listed in StoreResult::modified.
    // The default implementation forwards to the simple overload (no UNCHANGEDSINCE).
    virtual void store_flags_ex(std::vector<std::uint32_t> uids, FlagOp op, std::uint32_t flags,
                                std::vector<std::string> keywords,
                                std::optional<std::uint64_t> unchanged_since,
                                std::function<void(Result<StoreResult>)> done) {
        (void)unchanged_since;
        store_flags(std::move(uids), op, flags, std::move(keywords),
                    [done = std::move(done)](Result<void> r) {
                        if (r)
                            done(StoreResult{});
                        else
                            done(tl::unexpected(r.error()));
                    });
    }

    // Leaves the selected mailbox; stops change notifications for it.
    virtual void unselect() = 0;

    // ---- mailbox management (authenticated state) ----

    // Every mailbox of the user, any order. Parents that do not exist are not listed.
    virtual Result<std::vector<MailboxInfo>> list_mailboxes() = 0;
    // NotFound for a missing mailbox.
    virtual Result<MailboxStatus> status(std::string_view mailbox_utf8) = 0;
    // AlreadyExists; NoPermission for names the store refuses.
    virtual Result<void> create_mailbox(std::string_view mailbox_utf8) = 0;
    // NotFound; NoPermission for INBOX; InUse while it is busy.
    virtual Result<void> delete_mailbox(std::string_view mailbox_utf8) = 0;
    // Renames `from` and every mailbox below it (RFC 3501 6.3.5). Renaming INBOX moves its
    // messages into the new mailbox and leaves INBOX empty.
    virtual Result<void> rename_mailbox(std::string_view from, std::string_view to) = 0;
    // Adds or removes a subscription. Unsubscribing a name that is not subscribed is fine.
    virtual Result<void> set_subscribed(std::string_view mailbox_utf8, bool subscribed) = 0;

    // Stores a new message in `mailbox_utf8` with the given flags and internal date
    // (unix seconds; nullopt = now). `done` runs once it is durable. NotFound -> TRYCREATE.
    virtual void append(std::string_view mailbox_utf8, std::string message, std::uint32_t flags,
                        std::vector<std::string> keywords, std::optional<std::int64_t> date,
                        std::function<void(Result<AppendResult>)> done) = 0;

    // Copies (or moves) messages of the selected mailbox into `dest_utf8`, keeping flags and
    // internal dates. A move expunges the sources once the copies are durable; the session
    // learns of that expunge through on_expunged() like of any other. NotFound -> TRYCREATE.
    virtual void copy(std::vector<std::uint32_t> uids, std::string_view dest_utf8, bool move,
                      std::function<void(Result<CopyResult>)> done) = 0;

    // Expunges the messages of the selected mailbox that carry \Deleted; only those in
    // `uids` when given (UID EXPUNGE). `done` gets the UIDs removed, ascending.
    virtual void expunge(std::optional<std::vector<std::uint32_t>> uids,
                         std::function<void(Result<std::vector<std::uint32_t>>)> done) = 0;

    // A client is watching the selected mailbox (IDLE): a chance to fetch fresh mail.
    virtual void idle_started() {}

    // The shared index of the selected mailbox as of the last change event delivered to the
    // session, or nullptr when the backend shares none. A session whose own view has the
    // same content (after its own STORE, or once a delayed EXPUNGE went out) switches to it
    // and drops its private copy.
    virtual std::shared_ptr<const MessageIndex> current_index() const { return nullptr; }
};

} // namespace popbridge::protocol::imap
