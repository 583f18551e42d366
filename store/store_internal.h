// Internal to store/: the in-memory state behind Store and helpers shared by its .cpp
// files (store.cpp: ingest/flags/copy/group commit; store_folders.cpp: folders and
// subscriptions; store_load.cpp: loading and recovery; sync_job.cpp: the worker side).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <unistd.h>

#include "store/store.h"

namespace popbridge::store {

inline constexpr std::string_view kIndexFile = "popbridge.index";
inline constexpr std::string_view kCompactFile = "popbridge.index.compact";
inline constexpr std::string_view kRebuildFile = "popbridge.index.rebuild";
inline constexpr std::string_view kRegistryFile = "popbridge.folders";
inline constexpr std::string_view kInboxName = "INBOX";

struct Store::FolderState {
    struct Projected { // flags as queued-but-unapplied changes will leave them
        Flags flags;
        std::vector<std::string> keywords;
        ModSeq modseq = 0;
    };

    UserState* user = nullptr;
    FolderId id = kInbox;
    std::string name;
    SpecialUse special_use = SpecialUse::None;
    std::filesystem::path dir;
    std::uint32_t uid_validity = 0;
    std::int64_t created_at = 0;
    Uid uid_next = 1;           // applied: > every visible or once-visible UID
    Uid uid_reserved = 1;       // next UID to hand out; >= uid_next
    ModSeq highest_modseq = 1;  // applied
    ModSeq modseq_reserved = 1; // last modseq handed out; >= highest_modseq
    std::vector<MessageRecord> messages;
    int journal_fd = -1;
    std::uint64_t journal_size = 0;
    std::size_t records = 0;    // records in the journal file (for compaction)
    std::size_t compact_at = 0; // do not try compaction below this many records
    bool read_only = false;
    std::string read_only_reason;
    bool in_job = false;
    bool queued = false; // in Store::dirty_
    std::vector<detail::PendingOp> pending;
    std::unordered_map<Uid, Projected> projected;
    std::unordered_set<Uid> expunging; // queued for expunge or move; uncertain ones stay
    std::vector<Listener*> listeners;
    int delivering = 0;

    ~FolderState() {
        if (journal_fd >= 0) {
            ::close(journal_fd);
        }
        for (auto& op : pending) {
            if (op.fd >= 0) {
                ::close(op.fd);
            }
        }
    }
};

struct Store::UserState {
    std::string name;
    std::filesystem::path dir;
    int registry_fd = -1;
    std::uint64_t registry_size = 0;
    FolderId next_folder_id = 1;
    std::uint32_t max_uid_validity = 0;
    std::map<FolderId, std::unique_ptr<FolderState>> folders;
    std::unordered_map<std::string, OriginEntry> ledger;     // key: account NUL uidl
    std::unordered_map<std::string, Ticket> pending_origins; // queued or uncertain
    // Aliases (add_origin_alias), key: account NUL uidl of the alias; alias_of names an
    // entry of `ledger` (never another alias).
    std::unordered_map<std::string, OriginNotedRec> aliases;
    std::size_t noted = 0; // seen-only ledger entries + aliases: OriginNoted records in INBOX
    std::set<std::string, std::less<>> subscriptions;

    ~UserState() {
        if (registry_fd >= 0) {
            ::close(registry_fd);
        }
    }
};

namespace detail {

std::string origin_key(std::string_view account, std::string_view uidl);
bool has_origin_fields(const Origin& o);
// Lists a directory's entries except "." and "..". Errors: Io.
Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir);
// dir plus cur/ new/ tmp/ (0700; existing ones are fine).
Result<void> make_maildir(const std::filesystem::path& dir);
std::vector<std::string> normalize_keywords(std::vector<std::string> k);
MessageRecord* find_message(std::vector<MessageRecord>& messages, Uid uid);
// Records that m (with an origin) lives at (folder, m.uid). A live location replaces an
// expunged one; otherwise the first location recorded wins.
void ledger_put(std::unordered_map<std::string, OriginEntry>& ledger, const MessageRecord& m,
                FolderId folder, bool live);
void ledger_put_entry(std::unordered_map<std::string, OriginEntry>& ledger, OriginEntry e);
// Expunged entries pointing at folder (for a snapshot or a deleted folder's record).
std::vector<OriginEntry> retired_origins(const std::unordered_map<std::string, OriginEntry>& ledger,
                                         FolderId folder);
// Marks the ledger entry of m expunged if it points at (folder, m.uid): a message moved
// away keeps its entry at the target.
void ledger_expunged(std::unordered_map<std::string, OriginEntry>& ledger, const MessageRecord& m,
                     FolderId folder);

// SyncJob::run() spreads a batch's fdatasyncs (each message file, plus tmp/) over this many
// threads at most, its own included. They mostly wait on the disk, not on a CPU: ext4
// folds concurrent fsyncs into one journal commit and the block layer merges their cache
// flushes, so a group of N files costs about one flush instead of N in a row.
inline constexpr std::size_t kMaxSyncThreads = 16;
// Calls task(i) once for every i < tasks, on up to kMaxSyncThreads threads (this one
// included; helpers are started here and joined before returning). Each thread takes the
// next unclaimed index, so slow and fast tasks spread evenly. If a thread cannot be
// started, the others (at least this one) run every task anyway. task must not throw.
void run_parallel(std::size_t tasks, const std::function<void(std::size_t)>& task) noexcept;

} // namespace detail
} // namespace popbridge::store
