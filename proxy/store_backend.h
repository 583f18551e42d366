#pragma once
// protocol/imap's Backend over the real store: one object per IMAP connection. It checks
// logins against the account files' password hashes (off the loop thread), confines every
// mailbox name to the logged-in user's store, and forwards the store's change events for
// the selected folder to the session.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <uv.h>

#include "protocol/imap/backend.h"
#include "protocol/imap/server.h"
#include "proxy/uv/work.h"
#include "store/store.h"

namespace popbridge::proxy {

class StoreSync;
class SharedFolder;

// What the IMAP side needs to know about the configured users.
class AccountDirectory {
public:
    virtual ~AccountDirectory() = default;
    // The crypt(3) hash of `user`'s password, or nullopt for an unknown or disabled user.
    virtual std::optional<std::string> password_hash(const std::string& user) const = 0;
    // A device opened or is watching `folder` of `user`: a chance to poll upstream now.
    virtual void folder_opened(const std::string& user, const std::string& folder) = 0;
};

struct BackendServices {
    uv_loop_t* loop = nullptr;
    store::Store* store = nullptr;
    StoreSync* sync = nullptr;
    AccountDirectory* accounts = nullptr;
};

// Change events of a folder reach its sessions through one SharedFolder per (store, user,
// folder) that some session has selected: it alone subscribes to the store, keeps the
// folder's current protocol::imap::MessageIndex (shared by all those sessions, replaced
// copy-on-write on every change) and hands each event with the versions before and after
// it to every member.
class StoreBackend final : public protocol::imap::Backend {
public:
    StoreBackend(BackendServices services, std::string remote);
    ~StoreBackend() override;

    // The session to notify of changes; set once, right after both are made.
    void attach(protocol::imap::Session* session) { session_ = session; }

    void login(std::string_view user, std::string_view password,
               std::function<void(bool ok)> done) override;
    protocol::imap::Result<protocol::imap::MailboxSnapshot> select(std::string_view mailbox_utf8,
                                                                   bool read_only) override;
    protocol::imap::Result<std::string> read_message(std::uint32_t uid) override;
    // From shared_structure_cache(), computed (and logged when a MIME limit cut it) on a miss.
    protocol::imap::Result<std::shared_ptr<const protocol::imap::MessageStructure>>
    message_structure(std::uint32_t uid, const std::string* loaded) override;
    // The same in the thread pool (DESIGN.md "Concurrency"): the file is read (and parsed)
    // there, the structure cache is used and filled on the loop.
    void read_message_async(std::uint32_t uid,
                            std::function<void(protocol::imap::Result<std::string>)> done) override;
    void message_structure_async(
        std::uint32_t uid, std::shared_ptr<const std::string> loaded,
        std::function<
            void(protocol::imap::Result<std::shared_ptr<const protocol::imap::MessageStructure>>)>
            done) override;
    void open_message(
        std::uint32_t uid,
        std::function<void(protocol::imap::Result<std::shared_ptr<protocol::imap::MessageSource>>)>
            done) override;
    void scan_messages(std::vector<std::uint32_t> uids, protocol::imap::ScanTest test,
                       std::function<void(std::vector<bool>)> done) override;
    void store_flags(std::vector<std::uint32_t> uids, protocol::imap::FlagOp op,
                     std::uint32_t flags, std::vector<std::string> keywords,
                     std::function<void(protocol::imap::Result<void>)> done) override;
    void store_flags_ex(
        std::vector<std::uint32_t> uids, protocol::imap::FlagOp op, std::uint32_t flags,
        std::vector<std::string> keywords, std::optional<std::uint64_t> unchanged_since,
        std::function<void(protocol::imap::Result<protocol::imap::StoreResult>)> done) override;
    void unselect() override;
    protocol::imap::Result<std::vector<protocol::imap::MailboxInfo>> list_mailboxes() override;
    protocol::imap::Result<protocol::imap::MailboxStatus>
    status(std::string_view mailbox_utf8) override;
    protocol::imap::Result<void> create_mailbox(std::string_view mailbox_utf8) override;
    protocol::imap::Result<void> delete_mailbox(std::string_view mailbox_utf8) override;
    protocol::imap::Result<void> rename_mailbox(std::string_view from,
                                                std::string_view to) override;
    protocol::imap::Result<void> set_subscribed(std::string_view mailbox_utf8,
                                                bool subscribed) override;
    void
    append(std::string_view mailbox_utf8, std::string message, std::uint32_t flags,
           std::vector<std::string> keywords, std::optional<std::int64_t> date,
           std::function<void(protocol::imap::Result<protocol::imap::AppendResult>)> done) override;
    void
    copy(std::vector<std::uint32_t> uids, std::string_view dest_utf8, bool move,
         std::function<void(protocol::imap::Result<protocol::imap::CopyResult>)> done) override;
    void
    expunge(std::optional<std::vector<std::uint32_t>> uids,
            std::function<void(protocol::imap::Result<std::vector<std::uint32_t>>)> done) override;
    void idle_started() override;
    std::shared_ptr<const protocol::imap::MessageIndex> current_index() const override;

    // From the SharedFolder: a committed change of the selected folder.
    void on_change(protocol::imap::ChangeKind kind, const protocol::imap::MessageMeta& meta,
                   const std::shared_ptr<const protocol::imap::MessageIndex>& before,
                   const std::shared_ptr<const protocol::imap::MessageIndex>& after);
    void on_folder_deleted();

    const std::string& user() const { return user_; }

private:
    struct LoginJob {
        std::string user;
        std::string password; // wiped once checked
        bool ok = false;
        std::chrono::milliseconds waited{0}; // before the check, bounded by the throttle's cap
        std::function<void(bool ok)> done;
    };
    void wait_then_check(std::shared_ptr<LoginJob> job);
    void check_login(std::shared_ptr<LoginJob> job);

    BackendServices svc_;
    std::string remote_;
    std::string user_; // set once login succeeded
    std::optional<store::FolderId> selected_;
    std::shared_ptr<SharedFolder> folder_; // while selected
    std::size_t member_slot_ = 0;          // our place in folder_'s member list
    std::uint32_t selected_uid_validity_ = 0;
    std::string selected_name_;
    std::unique_ptr<uv::Timer> delay_; // login waits (login_throttle.h)
    protocol::imap::Session* session_ = nullptr;
    // Cleared on destruction so late thread-pool completions do nothing.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    friend class SharedFolder;
};

// Number of SharedFolders alive (tests, metrics).
std::size_t shared_folder_count();

// A SEARCH on message content reads about this much per thread-pool job before it yields
// back to the loop (and the next batch is queued behind other pool work).
inline constexpr std::uint64_t kScanBatchBytes = 8 * 1024 * 1024;

// ENVELOPE / BODYSTRUCTURE / BODY of every session of the process, bounded by bytes
// (kStructureCacheBytes until the daemon applies imap.structure_cache with set_max_bytes()),
// keyed by user, folder id, UIDVALIDITY and UID. Loop thread only.
inline constexpr std::size_t kStructureCacheBytes = 32 * 1024 * 1024;
protocol::imap::StructureCache& shared_structure_cache();

// Maps the store's error codes onto the IMAP library's neutral ones (the only place).
protocol::imap::Error to_imap_error(const store::Error& e);

} // namespace popbridge::proxy
