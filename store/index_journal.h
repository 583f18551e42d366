// The on-disk journal format shared by the per-folder index (popbridge.index)
// and the per-user folder registry (popbridge.folders).
//
// File   := magic(8 bytes) Record*
// Record := u32 payload_len | u32 crc32(payload) | payload      (little-endian)
// payload:= u8 RecordType | fields (u8/u32/u64/i64 little-endian; strings as u16 len + bytes)
//
// A record whose length runs past the end of the file, whose length is 0 or over
// kMaxRecordPayload, or whose CRC does not match ends the valid part of the file
// (a torn tail from a crash mid-append): open_journal() truncates the file there.
// A record that passes its CRC but does not decode is Errc::Corrupt.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "store/errc.h"
#include "store/types.h"

namespace popbridge::store {

inline constexpr std::string_view kIndexMagic = "PBINDEX1";
inline constexpr std::string_view kRegistryMagic = "PBFOLDR1";
inline constexpr std::uint32_t kMaxRecordPayload = 1u << 20;
inline constexpr std::size_t kRecordFrame = 8;

enum class RecordType : std::uint8_t {
    FolderHeader = 1,    // first record of an index: uid_validity, created_at, uid_next, modseq
    MessageAdded = 2,    // a committed message (also the UIDL ledger entry for its origin)
    FlagsChanged = 3,    // absolute flags + keywords of one message after a change
    Expunged = 4,        // UIDs removed from the folder (their origins stay in the ledger)
    OriginsRetired = 5,  // ledger entries of expunged messages whose MessageAdded records are
                         // gone (snapshot, deleted folder); index or registry
    OriginNoted = 6,     // INBOX index only: a ledger entry without a message of its own, either
                         // "seen upstream, deliberately not stored" or an alias (another UIDL
                         // naming an already stored message, after a UIDL reset)
    FolderCreated = 16,  // registry: folder id, uid_validity, name, special-use; for a live id
                         // it replaces the folder's record (recovery bumping UIDVALIDITY)
    FolderDeleted = 17,  // registry: folder id
    FoldersRenamed = 18, // registry: (id, new name) pairs, one atomic rename with children
    Subscribed = 19,     // registry: a name added to the subscription list
    Unsubscribed = 20,   // registry: a name removed from it
};

std::string_view to_string(RecordType type) noexcept;

struct FolderHeaderRec {
    std::uint32_t uid_validity = 0;
    std::int64_t created_at = 0;
    Uid uid_next = 1;          // lower bound; a later snapshot carries the real value
    ModSeq highest_modseq = 1; // lower bound, as above
};
struct MessageAddedRec {
    MessageRecord message;
};
struct FlagsChangedRec {
    Uid uid = 0;
    ModSeq modseq = 0;
    Flags flags;
    std::vector<std::string> keywords;
};
struct ExpungedRec {
    ModSeq modseq = 0;
    std::vector<Uid> uids;
};
struct OriginsRetiredRec {
    std::vector<OriginEntry> entries; // folder and expunged are implied (the journal's, true)
};
struct OriginNotedRec {
    Origin origin;
    std::int64_t time = 0; // seen: when it was seen; alias: when the alias was recorded
    Origin alias_of;       // empty: seen, not stored; else the origin of the stored message
};
struct FolderCreatedRec {
    FolderId id = 0;
    std::uint32_t uid_validity = 0;
    std::int64_t created_at = 0;
    std::string name;
    SpecialUse special_use = SpecialUse::None; // trailing byte; absent in old records
};
struct FolderDeletedRec {
    FolderId id = 0;
};
struct FoldersRenamedRec {
    std::vector<std::pair<FolderId, std::string>> renames;
};
struct SubscribedRec {
    std::string name;
};
struct UnsubscribedRec {
    std::string name;
};

using JournalRecord =
    std::variant<FolderHeaderRec, MessageAddedRec, FlagsChangedRec, ExpungedRec, FolderCreatedRec,
                 FolderDeletedRec, FoldersRenamedRec, SubscribedRec, UnsubscribedRec,
                 OriginsRetiredRec, OriginNotedRec>;

// Appends OriginsRetired records holding entries, split to stay under kMaxRecordPayload.
void append_retired_origins(std::string& out, const std::vector<OriginEntry>& entries);

// Appends the framed (length + CRC + payload) encoding of rec to out.
void append_record(std::string& out, const JournalRecord& rec);
// Decodes one payload (without the frame). Errc::Corrupt on any inconsistency.
Result<JournalRecord> decode_record(std::string_view payload);

struct JournalScan {
    std::uint64_t valid_size = 0; // bytes up to the end of the last good record
    std::uint64_t file_size = 0;
    std::size_t records = 0;
    // Byte ranges [first, second) of bad frames that good records FOLLOW: damage in the
    // middle, not a torn tail. Their records are lost; the caller must rebuild.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> damaged;
    bool torn() const { return valid_size != file_size; }
};

// Walks an in-memory image of a journal file, calling on_record for each good record.
// A bad frame (bad length or CRC) is a torn tail unless a good record starts somewhere
// after it: then the bad range is skipped, recorded in `damaged`, and the walk goes on.
// Errc::Corrupt if the magic is wrong or on_record fails.
Result<JournalScan> scan_journal(std::string_view file, std::string_view magic,
                                 const std::function<Result<void>(JournalRecord&&)>& on_record);

struct OpenedJournal {
    int fd = -1;                 // O_RDWR|O_CLOEXEC, owned by the caller
    std::uint64_t size = 0;      // append offset (valid size after truncation)
    std::uint64_t truncated = 0; // bytes of torn tail removed
    std::size_t records = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> damaged; // see JournalScan
};

// Opens an existing journal, replays it through on_record, truncates (and fsyncs) a
// torn tail. Damage in the middle: Errc::Corrupt unless allow_damage, in which case the
// good records are replayed, `damaged` is filled and the file is left as it is (the
// caller rebuilds it). Blocking; runs at folder open.
Result<OpenedJournal> open_journal(const std::filesystem::path& path, std::string_view magic,
                                   const std::function<Result<void>(JournalRecord&&)>& on_record,
                                   bool allow_damage = false);

// Creates a new journal atomically (tmp + fsync + rename + dir fsync) holding magic + records.
Result<void> create_journal(const std::filesystem::path& path, std::string_view magic,
                            const std::vector<JournalRecord>& records);

} // namespace popbridge::store
