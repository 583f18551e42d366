// The durable per-user folder store: Maildir message files plus a per-folder
// append-only index journal (store/index_journal.h) that also holds the UIDL ledger.
//
// Threads. A Store and everything it hands out (Incoming, FolderView spans) belong
// to ONE thread, the event loop; nothing here locks. The only object that may cross
// to another thread is a SyncJob, and only its run() may be called there.
//
// Mutations (commit_incoming, set_flags, expunge) follow one protocol:
//  1. loop:   the call validates, reserves UIDs/modseqs and queues a pending record;
//             it returns a Ticket. Readers do NOT see pending changes.
//  2. loop:   take_sync_job() moves ALL pending work of all users into one job
//             (group commit), or returns null if nothing is pending or a job is out.
//  3. worker: job->run() does the blocking I/O only (fsync files, journal append +
//             fsync, renames, directory fsyncs). It touches no Store state.
//  4. loop:   finish_sync_job(job) applies what became durable, advances
//             durable_ticket(), notifies Listeners, and returns one Outcome per ticket.
//             Then take the next job at once.
// A failed ingest never appears; its UID is burnt for this process (never shown to
// anyone, so it may be handed out again after a restart).
//
// Durability order of one job, per folder (see DESIGN.md "Store"):
//   {fdatasync each message in tmp/, fsync tmp/} (in parallel, see kMaxSyncThreads)
//   -> append journal records, fdatasync -> rename tmp/X -> cur/X,S=<size>:2, -> fsync cur/.
// A crash after the journal fsync leaves a journaled file in tmp/: open rolls it
// forward into cur/. Any other file in tmp/ at open is an orphan and is removed (its
// UIDL is not in the ledger, so the poller downloads it again). So cur/ never holds
// an unjournaled file written by us; files other tools drop into cur/ or new/ are
// ignored (not indexed). Flags live only in the index, not in Maildir file names.
//
// After a failed journal write/fsync or rename the folder becomes read-only
// (Errc::ReadOnly) until the process restarts and reopens the journal (an fsync error
// leaves the file's state unknown). Origins of such uncertain commits stay "pending"
// so the poller does not download them again meanwhile.
//
// Copy and move (copy(), move()). The target's new files are hard links of the source
// files (a copy + fdatasync where linking fails), made on the worker in the target's
// tmp/, then journaled and renamed like ingested messages. A move is ONE ticket with two
// parts in the same job: the target records first (each carries moved_from = source
// folder + UID), then, in a second pass after every batch of the job, one Expunged record
// in the source. A crash in between leaves the message in both journals; opening the user
// finishes the move (the moved_from UIDs still in their source are expunged there), so
// after any crash a moved message is in exactly one of source/target. A moved message
// keeps its origin; the UIDL ledger follows it to the target. Copies have no origin.
//
// Folder hierarchy. Names are opaque UTF-8 with '/' as the separator; the store only
// uses the prefix "<name>/" to know children. rename_folder() renames children in the
// same registry record (atomic). Renaming the INBOX is refused (InvalidState): RFC 3501
// INBOX rename is done by the proxy as create_folder() + move() of every message.
// delete_folder() refuses a folder with children (HasChildren): the client deletes the
// children first (simpler than RFC 3501's \Noselect residue). Subscriptions are a
// persisted set of names, independent of folders (they may name folders that do not
// exist, and rename/delete leave them alone, RFC 3501 6.3.6).
//
// New users get INBOX, Sent, Drafts, Trash, Junk and Archive (with their RFC 6154
// special-use roles), all subscribed. Loading a user creates (and subscribes) any of the five
// whose role no folder has, unless a folder without the role already has its name: users
// made before a default existed get it, and so does a user who deleted one.
//
// Recovery of a damaged index (a bad record with good ones after it, not a torn tail):
// the good records are replayed, messages whose file is gone are dropped, files of
// expunged records are removed, and the index is rewritten as a snapshot (the damaged
// file is kept as popbridge.index.damaged.<time>). If cur/ holds message files that no
// surviving record names, their UIDs are unknown: the folder gets a new UIDVALIDITY and
// those files get new UIDs above every old one (never renumbering under the old
// UIDVALIDITY). Every message gets a new modseq in both cases (lost flag changes). A
// damaged folder registry is Corrupt: the user does not load and nothing is touched.
//
// Compaction. When a folder's journal holds many more records than messages, the next
// take_sync_job() (with nothing else queued for that folder) adds a compaction: the
// snapshot bytes are built on the loop thread, the worker writes + fdatasyncs them to
// popbridge.index.compact and renames it over the index; finish_sync_job() swaps the fd.
//
// Blocking on the loop thread, by design for now: loading a user (first call naming
// that user: journal replay, tmp/ scan, move/damage recovery), create_folder(),
// rename_folder(), delete_folder() and the subscription calls (one registry fdatasync).
// The fsyncs a user load may do, all on the calling (loop) thread and only when there is
// something to repair or create:
//  - first use: every default folder's index (create_journal: file fsync, rename, dir
//    fsync), the registry, the user directory and data_dir/users;
//  - a torn tail (crash mid-append) in an index or the registry: ftruncate + fsync;
//  - journaled files left in tmp/ (crash between journal fsync and rename): renames, then
//    fsync of cur/ and tmp/ per folder;
//  - a damaged index: the rebuilt snapshot (fdatasync), rename, folder dir fsync, and a
//    registry FolderCreated record (fdatasync) when UIDVALIDITY changes;
//  - a move cut short: one Expunged record + fdatasync per source folder.
// A clean load after a clean shutdown does none of these (reads only). Why not a SyncJob:
// recovery must be finished before any reader sees the folder (a half-moved message would
// be visible twice, a damaged index would serve wrong UIDs), and the Store is single-
// threaded, so the load cannot itself move to the pool. The daemon opens every configured
// user in load_accounts() before uv_run() (proxy/daemon.cpp), so at start-up these run
// before the loop serves anyone (the listeners are bound, connections queue in the
// backlog); a user added by a SIGHUP/file-watch reload, or first named by an IMAP login,
// still loads on the running loop.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "store/errc.h"
#include "store/flags.h"
#include "store/index_journal.h"
#include "store/types.h"

namespace popbridge::store {

class Store;

struct StoreOptions {
    std::filesystem::path data_dir; // users live in data_dir/users/<user>/
    // Seconds since the epoch; used for UIDVALIDITY, commit times and file names.
    // Default: the system clock. Tests inject one (e.g. one that goes back).
    std::function<std::int64_t()> clock;
    std::uint64_t max_message_size = 50'000'000; // Incoming::append refuses beyond this
    std::string hostname;                        // for Maildir names; default gethostname()
    // Test hook, called by SyncJob::run() on the worker thread before each blocking step
    // ("message_fsync", "tmp_dir_fsync", "journal_write", "journal_fsync", "rename",
    // "cur_dir_fsync"); returning true makes that step fail as if with EIO.
    std::function<bool(std::string_view step)> fault;
    // Warnings the store recovers from (damaged index rebuilt, a move finished at open,
    // compaction failed). Called on the loop thread. Default: none.
    std::function<void(std::string_view message)> log;
    // A folder's journal is compacted once it has more than this many records AND more
    // than twice as many records as messages.
    std::size_t compact_min_records = 4096;
};

// A message being received into a folder's tmp/ file. Move-only; owned by the caller
// (the poller), used on the loop thread. Destroying an uncommitted Incoming unlinks the
// file. Must not outlive the Store that made it.
class Incoming {
public:
    Incoming(Incoming&& other) noexcept;
    Incoming& operator=(Incoming&& other) noexcept;
    Incoming(const Incoming&) = delete;
    Incoming& operator=(const Incoming&) = delete;
    ~Incoming();

    static constexpr std::uint64_t kWriteBackChunk = 256 * 1024;

    // write(2)s the bytes (no fsync). TooLarge past max_message_size, Io on a write
    // error; after any error the Incoming can only be aborted. Every kWriteBackChunk
    // bytes (and at commit_incoming) it starts the kernel's write-back of what was
    // written (sync_file_range(SYNC_FILE_RANGE_WRITE), no waiting), so the disk works
    // while the rest arrives and the group commit's fdatasync finds clean pages.
    Result<void> append(std::span<const char> bytes);
    // Closes and unlinks the tmp file. Idempotent.
    void abort() noexcept;

    std::uint64_t size() const { return size_; }
    // True until committed or aborted.
    bool active() const { return fd_ >= 0; }
    const std::filesystem::path& tmp_path() const { return tmp_path_; }

private:
    friend class Store;
    Incoming() = default;

    const Store* owner_ = nullptr;
    std::string user_;
    FolderId folder_ = kInbox;
    int fd_ = -1;
    std::filesystem::path tmp_path_;
    std::string base_name_;
    std::uint64_t size_ = 0;
    std::uint64_t written_back_ = 0; // bytes handed to start_write_back() so far
    std::uint64_t max_size_ = 0;
    bool failed_ = false;

    void start_write_back() noexcept;
};

// Receives a folder's committed changes, on the loop thread, from inside
// finish_sync_job() (and delete_folder()). A listener may call read functions and
// queue mutations, may unsubscribe itself, but must not call take/finish_sync_job.
class Listener {
public:
    virtual ~Listener() = default;
    virtual void on_added(const MessageRecord& message) = 0;
    virtual void on_flags(Uid uid, Flags flags, const std::vector<std::string>& keywords,
                          ModSeq modseq) = 0;
    virtual void on_expunged(Uid uid) = 0;
    // The folder was deleted; the listener has been unsubscribed already.
    virtual void on_folder_deleted() {}
};

// A read-only view of a folder's committed state. The span points into the Store and
// stays valid until the next finish_sync_job(), delete_folder() or Store destruction.
struct FolderView {
    FolderId id = kInbox;
    std::uint32_t uid_validity = 0;
    Uid uid_next = 1; // greater than every UID ever shown; never decreases
    ModSeq highest_modseq = 1;
    bool read_only = false;
    std::span<const MessageRecord> messages; // sorted by uid

    // Binary search; null if absent.
    const MessageRecord* find(Uid uid) const;
};

struct FolderInfo {
    FolderId id = kInbox;
    std::string name;
    std::uint32_t uid_validity = 0;
    SpecialUse special_use = SpecialUse::None;
    bool has_children = false; // another folder is named "<name>/..."
};

enum class OpKind : std::uint8_t {
    Ingest,  // commit_incoming, append
    Flags,   // set_flags
    Expunge, // expunge
    Copy,    // copy
    Move,    // move
    Origin,  // record_seen_origin, add_origin_alias (a ledger entry only; folder is kInbox)
};
std::string_view to_string(OpKind kind) noexcept;

// Per-ticket result of a finished job.
struct Outcome {
    Ticket ticket = 0;
    OpKind kind = OpKind::Ingest;
    std::string user;
    FolderId folder = kInbox;
    Origin origin; // Ingest, Origin: the origin now committed (if result has a value)
    Uid uid = 0;   // Ingest: the UID assigned
    // Copy/Move: source UID -> target UID, ascending by source UID (UIDPLUS COPYUID).
    // folder above is the SOURCE folder; target is the target folder.
    std::vector<std::pair<Uid, Uid>> uid_map;
    FolderId target = kInbox;
    // Flags: UIDs that failed UNCHANGEDSINCE (RFC 7162 MODIFIED); they were not changed.
    std::vector<Uid> modified;
    // Error: nothing of this ticket is visible, except for a Move whose copies are
    // durable but whose source removal failed: then uid_map is filled and the source
    // removal is finished when the user is next loaded.
    Result<void> result;
};

namespace detail {
// One queued mutation. Internal to the store; public only so SyncJob is complete.
struct CopyItem {
    std::filesystem::path source; // the source file in the source folder's cur/
    std::string tmp_name;         // name in the target's tmp/
    Uid source_uid = 0;
    MessageRecord message; // the record in the target
};
struct PendingOp {
    enum class State : std::uint8_t { Queued, Done, Failed, Uncertain };
    Ticket ticket = 0;
    OpKind kind = OpKind::Ingest; // Copy/Move: the target part; Move source part: Expunge
    int fd = -1;                  // Ingest: the tmp file, closed by run()
    std::string tmp_name;         // Ingest: name in tmp/
    MessageRecord message;        // Ingest: the record as it will be visible
    std::vector<FlagsChangedRec> flag_changes; // Flags
    ExpungedRec expunged;                      // Expunge
    std::vector<std::string> expunged_files;   // Expunge: cur/ names, unlinked by run()
    std::vector<CopyItem> copies;              // Copy/Move target part
    FolderId source_folder = 0;                // Copy/Move target part
    std::vector<Uid> modified;                 // Flags: failed UNCHANGEDSINCE
    OriginNotedRec noted;                      // Origin
    bool move_source = false;                  // the Expunge part of a Move (same ticket)
    const PendingOp* after = nullptr; // move_source: the target part; runs only if it is Done
    std::string journal_bytes;        // framed records to append
    State state = State::Queued;
    Error error;
};
struct Batch {
    std::string user;
    FolderId folder = kInbox;
    std::filesystem::path dir; // the Maildir (holds cur/ tmp/ and the index)
    int journal_fd = -1;       // borrowed from the folder while the job is out
    std::uint64_t journal_size = 0;
    bool read_only = false; // in: folder already read-only; out: became read-only
    std::string read_only_reason;
    std::vector<PendingOp> ops;
    std::string snapshot; // compaction: the whole new index (ops is empty then)
    std::size_t snapshot_records = 0;
    int new_journal_fd = -1;   // compaction done: the fd of the new index
    std::string compact_error; // compaction failed: why
};
} // namespace detail

// A group of pending mutations. Made by take_sync_job(), run once on any thread,
// handed back to finish_sync_job() on the loop thread.
class SyncJob {
public:
    SyncJob(const SyncJob&) = delete;
    SyncJob& operator=(const SyncJob&) = delete;
    ~SyncJob();

    // Blocking I/O only; never throws; touches nothing but this job.
    void run() noexcept;
    std::size_t operations() const;
    std::size_t folders() const { return batches_.size(); }

private:
    friend class Store;
    SyncJob() = default;
    bool fault(std::string_view step) const { return fault_ && fault_(step); }
    void run_batch(detail::Batch& batch, bool second_pass);
    void run_compaction(detail::Batch& batch);

    std::vector<detail::Batch> batches_;
    std::vector<std::filesystem::path> unlink_after_; // expunged files, removed at the end
    std::function<bool(std::string_view)> fault_;
    Ticket last_ticket_ = 0;
    const Store* owner_ = nullptr;
    bool ran_ = false;
};

class Store {
public:
    // Creates data_dir and data_dir/users if missing. Users load lazily.
    static Result<std::unique_ptr<Store>> open(StoreOptions options);
    // Precondition: no SyncJob is out. Queued work that was never taken is dropped
    // (its tmp files are orphans, removed at the next open).
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Loads (creating on first use, with INBOX, Sent, Drafts, Trash, Junk, Archive) the user. Every
    // call naming a user does this implicitly; blocking the first time. InvalidName for bad user
    // names.
    Result<void> open_user(std::string_view user);

    // Folders. Names are opaque bytes (the proxy canonicalises "INBOX" and encodings);
    // the INBOX is kInbox and is named "INBOX". Blocking (rare operations).
    Result<FolderId> find_folder(std::string_view user, std::string_view name);
    // Sorted by name.
    Result<std::vector<FolderInfo>> list_folders(std::string_view user);
    // New id, new UIDVALIDITY > every UIDVALIDITY this user ever had. AlreadyExists.
    // Parents need not exist (the proxy may create them first, RFC 3501 6.3.3).
    Result<FolderId> create_folder(std::string_view user, std::string_view name,
                                   SpecialUse special_use = SpecialUse::None);
    // Renames the folder and every folder under "<old>/" (keeping ids, UIDVALIDITY and
    // messages). InvalidState for the INBOX (see top of file), AlreadyExists if any new
    // name is taken, InvalidName if new_name is bad or lies under the folder itself.
    Result<void> rename_folder(std::string_view user, FolderId folder, std::string_view new_name);
    // Busy while the folder has queued work or a job; InvalidState for the INBOX;
    // HasChildren while another folder is named "<name>/...".
    // Ledger entries of its messages stay (marked expunged).
    Result<void> delete_folder(std::string_view user, FolderId folder);

    // Subscriptions (RFC 3501 6.3.6/6.3.7): a persisted set of names. Subscribing twice
    // or unsubscribing an unknown name is a no-op. InvalidName as for folder names.
    Result<void> subscribe_name(std::string_view user, std::string_view name);
    Result<void> unsubscribe_name(std::string_view user, std::string_view name);
    // Sorted.
    Result<std::vector<std::string>> list_subscribed(std::string_view user);

    // Ingest. begin_incoming creates tmp/<unique> with O_EXCL.
    Result<Incoming> begin_incoming(std::string_view user, FolderId folder);
    // Queues the message (step 1). AlreadyExists if the origin is committed or pending
    // (an empty account+uidl means "no origin" and skips the ledger). On success the
    // Incoming is consumed (inactive); on error it is left as it was.
    // flags/keywords: the message's initial flags (IMAP APPEND); keywords as for set_flags.
    Result<Ticket> commit_incoming(Incoming&& incoming, const Origin& origin,
                                   std::int64_t internal_date, Flags flags = {},
                                   std::span<const std::string> keywords = {});
    // IMAP APPEND of a message held in memory: begin_incoming + append + commit_incoming
    // without an origin. The Outcome's uid is the new UID (UIDPLUS APPENDUID).
    Result<Ticket> append(std::string_view user, FolderId folder, std::string_view bytes,
                          Flags flags, std::span<const std::string> keywords,
                          std::int64_t internal_date);
    // Committed, pending, or uncertain (see header comment). False if the user can't load.
    bool has_origin(std::string_view user, std::string_view account, std::string_view uidl);
    // The ledger entries of one account (committed only), in commit order of UIDs per
    // folder. Used for retention (DELE after N days) and delete-upstream-on-expunge.
    // Includes seen-only entries (stored == false) and aliases (see below).
    Result<std::vector<OriginEntry>> committed_origins(std::string_view user,
                                                       std::string_view account);
    // A durable ledger entry meaning "seen upstream, deliberately not stored" (POP3
    // import_since): no folder, no UID. Queued like every mutation (Outcome kind Origin,
    // folder kInbox), made durable by SyncJob::run() in the INBOX index (OriginNoted
    // record), listed by committed_origins() with stored == false once finished. It
    // survives compaction and restart. has_origin() is true from this call on (pending),
    // and commit_incoming() of the origin is refused (AlreadyExists) from then on.
    // AlreadyExists if the origin is already known; InvalidName for bad fields; ReadOnly if
    // the INBOX is.
    Result<Ticket> record_seen_origin(std::string_view user, const Origin& origin,
                                      std::int64_t seen_time);
    // After an upstream changed its UIDLs wholesale: new_origin names the same message as
    // existing (a committed ledger entry: a stored message, a seen-only entry, or an alias,
    // which is resolved to the entry it aliases). Queued and made durable as above. Once
    // finished, committed_origins() lists new_origin with the folder, UID, commit_time,
    // expunged and stored flags of existing's entry AS THEY ARE at that moment: it follows
    // moves and expunges of the message. NotFound if existing is not committed;
    // AlreadyExists if new_origin is already known; InvalidName, ReadOnly as above.
    Result<Ticket> add_origin_alias(std::string_view user, const Origin& new_origin,
                                    const Origin& existing);

    // Queues a flag change on the given UIDs (unknown UIDs are skipped, as UID STORE
    // does). Each message whose flags/keywords actually change gets a new modseq.
    // unchanged_since (RFC 7162 UNCHANGEDSINCE): a message whose modseq (including
    // queued changes) is above it is left alone and listed in Outcome::modified.
    Result<Ticket> set_flags(std::string_view user, FolderId folder, std::span<const Uid> uids,
                             FlagOp op, Flags flags, std::span<const std::string> keywords,
                             std::optional<ModSeq> unchanged_since = std::nullopt);
    // Queues removal of the given UIDs (unknown ones skipped). Files are unlinked after
    // the journal record is durable. Origins stay in the ledger.
    Result<Ticket> expunge(std::string_view user, FolderId folder, std::span<const Uid> uids);
    // Queues a copy of the given committed UIDs (unknown, or being expunged/moved: skipped)
    // into target with their current flags and keywords and new UIDs; Outcome::uid_map
    // says which. ReadOnly if target is read-only. Source may equal target.
    Result<Ticket> copy(std::string_view user, FolderId source, std::span<const Uid> uids,
                        FolderId target);
    // As copy(), then the originals are expunged from source (see top of file). ReadOnly if
    // either folder is read-only.
    Result<Ticket> move(std::string_view user, FolderId source, std::span<const Uid> uids,
                        FolderId target);

    // Reads: committed state only.
    Result<FolderView> view(std::string_view user, FolderId folder);
    Result<std::filesystem::path> message_path(std::string_view user, FolderId folder, Uid uid);

    // Listener must stay alive until unsubscribed. Subscribing twice is a no-op.
    Result<void> subscribe(std::string_view user, FolderId folder, Listener* listener);
    void unsubscribe(std::string_view user, FolderId folder, Listener* listener);

    // The group-commit protocol (see top of file).
    std::unique_ptr<SyncJob> take_sync_job();
    // Precondition: job came from this store's take_sync_job() and has run().
    // Returns one Outcome per ticket of the job, sorted by ticket.
    std::vector<Outcome> finish_sync_job(std::unique_ptr<SyncJob> job);
    bool job_running() const { return job_running_; }
    // Queued work or a wanted compaction.
    bool has_pending() const { return !dirty_.empty() || !compact_wanted_.empty(); }
    // Every ticket <= durable_ticket() has its outcome delivered.
    Ticket durable_ticket() const { return durable_ticket_; }
    Ticket last_ticket() const { return next_ticket_ - 1; }

private:
    struct FolderState;
    struct UserState;

    explicit Store(StoreOptions options);
    std::int64_t now() const;
    // A Maildir base name (no ',' or ':') unique across processes and restarts.
    std::string unique_base_name();
    Result<UserState*> load_user(std::string_view user);
    void add_missing_default_folders(UserState& user);
    Result<FolderState*> folder_state(std::string_view user, FolderId folder);
    Result<void> load_folder(UserState& user, FolderId id, std::string name,
                             std::uint32_t uid_validity, SpecialUse special_use);
    Result<void> rebuild_folder(UserState& user, FolderState& folder,
                                const std::unordered_map<Uid, std::string>& expunged_files,
                                std::uint64_t damaged_at);
    Result<void> finish_moves(UserState& user);
    Result<void> create_user(UserState& user);
    Result<Ticket> queue_origin_note(std::string_view user, OriginNotedRec rec);
    // Applies a committed (or replayed) OriginNoted record to the user's ledger/aliases.
    static void apply_noted(UserState& user, const OriginNotedRec& rec);
    // Committed, alias, pending or uncertain.
    static bool origin_known(const UserState& user, const std::string& key);
    Result<Ticket> queue_copy(std::string_view user, FolderId source, std::span<const Uid> uids,
                              FolderId target, bool move);
    void maybe_want_compaction(FolderState& folder);
    void apply_expunge(FolderState& folder, detail::PendingOp& op, bool keep_locks = false);
    std::string snapshot_bytes(const FolderState& folder) const;
    void warn(std::string message) const;
    std::uint32_t next_uid_validity(UserState& user);
    Result<void> append_registry(UserState& user, const JournalRecord& rec);
    Result<void> append_registry_bytes(UserState& user, std::string_view bytes);
    std::filesystem::path folder_dir(const UserState& user, FolderId id) const;
    Ticket queue(FolderState& folder, detail::PendingOp op, Ticket ticket = 0);
    void notify(FolderState& folder, const std::function<void(Listener&)>& fn);

    StoreOptions options_;
    std::map<std::string, std::unique_ptr<UserState>, std::less<>> users_;
    std::vector<FolderState*> dirty_; // folders with queued ops, in first-queued order
    std::vector<std::pair<std::string, FolderId>> compact_wanted_;
    Ticket next_ticket_ = 1;
    Ticket durable_ticket_ = 0;
    bool job_running_ = false;
    std::uint64_t name_counter_ = 0;
    std::string name_salt_; // random per Store: file names never repeat across restarts
};

} // namespace popbridge::store
