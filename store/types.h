// Value types shared by the store's API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "store/flags.h"

namespace popbridge::store {

using Uid = std::uint32_t;      // RFC 9051 2.3.1.1; 0 is never a valid UID
using Ticket = std::uint64_t;   // identifies one queued mutation; grows by 1 per mutation
using FolderId = std::uint32_t; // store-generated; never derived from a mailbox name
using ModSeq = std::uint64_t;   // RFC 7162 mod-sequence; grows per change, never reused
inline constexpr FolderId kInbox = 0;

// RFC 6154 special-use role of a folder. Recorded at creation; survives renames.
enum class SpecialUse : std::uint8_t {
    None = 0,
    Sent = 1,
    Drafts = 2,
    Trash = 3,
    Junk = 4,
    Archive = 5,
};
// "\\Sent", "\\Drafts", ... (the RFC 6154 attribute, backslash included); "" for None.
std::string_view to_string(SpecialUse use) noexcept;

// Where a message came from: the upstream account name and its POP3 UIDL. Opaque to the store.
struct Origin {
    std::string account;
    std::string uidl;
    friend bool operator==(const Origin&, const Origin&) = default;
};

// One message as readers see it once committed.
struct MessageRecord {
    Uid uid = 0;
    std::string file_name;          // name inside the folder's cur/ directory
    std::uint64_t size = 0;         // exact byte size of the file (RFC822.SIZE)
    std::int64_t internal_date = 0; // seconds since the epoch, as given at commit
    Flags flags;
    std::vector<std::string> keywords; // sorted, unique
    ModSeq modseq = 0;
    Origin origin;                // empty account/uidl for messages not from a poller
    std::int64_t commit_time = 0; // store clock when the commit was queued
    // Set on a message created by move(): where it came from. Recovery uses it to finish
    // a move cut short by a crash (expunge moved_from_uid from moved_from_folder if it is
    // still there). 0 = not moved.
    FolderId moved_from_folder = 0;
    Uid moved_from_uid = 0;
};

// One entry of the per-user UIDL ledger: a committed origin and where it lives.
// Entries stay after the message is expunged (so the poller never downloads it again).
// stored == false: "seen upstream, deliberately not stored" (Store::record_seen_origin);
// folder is kInbox, uid 0, commit_time the seen time, and there is no message to delete
// upstream on its behalf. An alias (Store::add_origin_alias) carries the folder, UID,
// commit_time, expunged and stored of the entry it aliases, as they are now.
struct OriginEntry {
    Origin origin;
    FolderId folder = kInbox;
    Uid uid = 0;
    std::int64_t commit_time = 0;
    bool expunged = false;
    bool stored = true;
};

} // namespace popbridge::store
