#include "store/store.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <tuple>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/atomic_file.h"
#include "store/names.h"

namespace popbridge::store {

namespace fs = std::filesystem;
using detail::Batch;
using detail::PendingOp;

namespace {

constexpr std::string_view kIndexFile = "popbridge.index";
constexpr std::string_view kRegistryFile = "popbridge.folders";
constexpr std::string_view kInboxName = "INBOX";

std::string origin_key(std::string_view account, std::string_view uidl) {
    std::string key(account);
    key.push_back('\0');
    key.append(uidl);
    return key;
}

bool has_origin_fields(const Origin& o) {
    return !o.account.empty() || !o.uidl.empty();
}

// Maildir unique names must not contain '/', ':' or ','; keep hostnames readable.
std::string sanitize_host(std::string host) {
    for (char& c : host) {
        unsigned char u = static_cast<unsigned char>(c);
        if (!(std::isalnum(u) || c == '-' || c == '.' || c == '_')) {
            c = '_';
        }
    }
    return host.empty() ? std::string("localhost") : host;
}

// Lists a directory's entries except "." and "..". Errors: Io.
Result<std::vector<std::string>> list_dir(const fs::path& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return tl::unexpected(io_error("opendir", dir, errno));
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") {
            names.emplace_back(n);
        }
    }
    ::closedir(d);
    return names;
}

Result<void> make_maildir(const fs::path& dir) {
    for (const char* sub : {"", "cur", "new", "tmp"}) {
        if (auto r = make_dir(*sub ? dir / sub : dir); !r) {
            return r;
        }
    }
    return {};
}

std::vector<std::string> normalize_keywords(std::vector<std::string> k) {
    std::sort(k.begin(), k.end());
    k.erase(std::unique(k.begin(), k.end()), k.end());
    return k;
}

MessageRecord* find_message(std::vector<MessageRecord>& messages, Uid uid) {
    auto it = std::lower_bound(messages.begin(), messages.end(), uid,
                               [](const MessageRecord& m, Uid u) { return m.uid < u; });
    return (it != messages.end() && it->uid == uid) ? &*it : nullptr;
}

} // namespace

std::string_view to_string(OpKind kind) noexcept {
    switch (kind) {
    case OpKind::Ingest:
        return "Ingest";
    case OpKind::Flags:
        return "Flags";
    case OpKind::Expunge:
        return "Expunge";
    }
    return "Unknown";
}

const MessageRecord* FolderView::find(Uid uid) const {
    auto it = std::lower_bound(messages.begin(), messages.end(), uid,
                               [](const MessageRecord& m, Uid u) { return m.uid < u; });
    return (it != messages.end() && it->uid == uid) ? &*it : nullptr;
}

// ---------------------------------------------------------------------------------------
// In-memory state

struct Store::FolderState {
    struct Projected { // flags as queued-but-unapplied changes will leave them
        Flags flags;
        std::vector<std::string> keywords;
        ModSeq modseq = 0;
    };

    UserState* user = nullptr;
    FolderId id = kInbox;
    std::string name;
    fs::path dir;
    std::uint32_t uid_validity = 0;
    Uid uid_next = 1;           // applied: > every visible or once-visible UID
    Uid uid_reserved = 1;       // next UID to hand out; >= uid_next
    ModSeq highest_modseq = 1;  // applied
    ModSeq modseq_reserved = 1; // last modseq handed out; >= highest_modseq
    std::vector<MessageRecord> messages;
    int journal_fd = -1;
    std::uint64_t journal_size = 0;
    bool read_only = false;
    std::string read_only_reason;
    bool in_job = false;
    bool queued = false; // in Store::dirty_
    std::vector<PendingOp> pending;
    std::unordered_map<Uid, Projected> projected;
    std::unordered_set<Uid> expunging;
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
    fs::path dir;
    int registry_fd = -1;
    std::uint64_t registry_size = 0;
    FolderId next_folder_id = 1;
    std::uint32_t max_uid_validity = 0;
    std::map<FolderId, std::unique_ptr<FolderState>> folders;
    std::unordered_map<std::string, OriginEntry> ledger;     // key: account NUL uidl
    std::unordered_map<std::string, Ticket> pending_origins; // queued or uncertain

    ~UserState() {
        if (registry_fd >= 0) {
            ::close(registry_fd);
        }
    }
};

// ---------------------------------------------------------------------------------------
// Incoming

Incoming::Incoming(Incoming&& other) noexcept {
    *this = std::move(other);
}

Incoming& Incoming::operator=(Incoming&& other) noexcept {
    if (this != &other) {
        abort();
        owner_ = other.owner_;
        user_ = std::move(other.user_);
        folder_ = other.folder_;
        fd_ = std::exchange(other.fd_, -1);
        tmp_path_ = std::move(other.tmp_path_);
        base_name_ = std::move(other.base_name_);
        size_ = other.size_;
        max_size_ = other.max_size_;
        failed_ = other.failed_;
    }
    return *this;
}

Incoming::~Incoming() {
    abort();
}

Result<void> Incoming::append(std::span<const char> bytes) {
    if (fd_ < 0) {
        return make_error(Errc::InvalidState, "append to an inactive Incoming");
    }
    if (failed_) {
        return make_error(Errc::InvalidState, "append after a failed append");
    }
    if (bytes.size() > max_size_ - size_) {
        failed_ = true;
        return make_error(Errc::TooLarge,
                          "message exceeds " + std::to_string(max_size_) + " bytes");
    }
    if (auto r = write_all(fd_, bytes, tmp_path_); !r) {
        failed_ = true;
        return r;
    }
    size_ += bytes.size();
    return {};
}

void Incoming::abort() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(tmp_path_.c_str());
        fd_ = -1;
    }
}

// ---------------------------------------------------------------------------------------
// SyncJob (worker thread)

SyncJob::~SyncJob() {
    for (auto& b : batches_) {
        for (auto& op : b.ops) {
            if (op.fd >= 0) {
                ::close(op.fd);
            }
        }
    }
}

std::size_t SyncJob::operations() const {
    std::size_t n = 0;
    for (const auto& b : batches_) {
        n += b.ops.size();
    }
    return n;
}

void SyncJob::run() noexcept {
    for (auto& batch : batches_) {
        run_batch(batch);
    }
    ran_ = true;
}

void SyncJob::run_batch(Batch& batch) {
    const fs::path tmp_dir = batch.dir / "tmp";
    const fs::path cur_dir = batch.dir / "cur";
    const fs::path journal = batch.dir / kIndexFile;
    using State = PendingOp::State;

    auto fail = [](PendingOp& op, State state, Error e) {
        op.state = state;
        op.error = std::move(e);
    };
    auto injected = [](std::string_view step, const fs::path& p) {
        return Error{Errc::Io,
                     "injected failure at " + std::string(step) + " (" + p.string() + ")"};
    };

    if (batch.read_only) {
        for (auto& op : batch.ops) {
            fail(op, State::Failed,
                 Error{Errc::ReadOnly, "folder is read-only: " + batch.read_only_reason});
        }
    }

    // 1. Message contents durable.
    for (auto& op : batch.ops) {
        if (op.kind != OpKind::Ingest || op.state != State::Queued) {
            continue;
        }
        fs::path p = tmp_dir / op.tmp_name;
        if (fault("message_fsync")) {
            fail(op, State::Failed, injected("message_fsync", p));
        } else if (::fdatasync(op.fd) != 0) {
            fail(op, State::Failed, io_error("fdatasync", p, errno));
        }
    }
    // 2. Their directory entries in tmp/ durable (the journal will point at them).
    bool any_ingest = std::any_of(batch.ops.begin(), batch.ops.end(), [](const PendingOp& op) {
        return op.kind == OpKind::Ingest && op.state == State::Queued;
    });
    if (any_ingest) {
        Result<void> r;
        if (fault("tmp_dir_fsync")) {
            r = tl::unexpected(injected("tmp_dir_fsync", tmp_dir));
        } else {
            r = fsync_dir(tmp_dir);
        }
        if (!r) {
            for (auto& op : batch.ops) {
                if (op.kind == OpKind::Ingest && op.state == State::Queued) {
                    fail(op, State::Failed, r.error());
                }
            }
        }
    }
    for (auto& op : batch.ops) {
        if (op.fd >= 0) {
            ::close(op.fd);
            op.fd = -1;
        }
        if (op.kind == OpKind::Ingest && op.state == State::Failed) {
            ::unlink((tmp_dir / op.tmp_name).c_str());
        }
    }

    // 3. One journal append + fdatasync for the whole batch.
    std::string bytes;
    for (const auto& op : batch.ops) {
        if (op.state == State::Queued) {
            bytes += op.journal_bytes;
        }
    }
    auto journal_failed = [&](Error e) {
        batch.read_only = true;
        batch.read_only_reason = e.message;
        for (auto& op : batch.ops) {
            if (op.state == State::Queued) {
                fail(op, State::Uncertain, e);
            }
        }
    };
    if (!bytes.empty()) {
        Result<void> r;
        if (fault("journal_write")) {
            r = tl::unexpected(injected("journal_write", journal));
        } else {
            r = pwrite_all(batch.journal_fd, bytes, batch.journal_size, journal);
        }
        if (r && fault("journal_fsync")) {
            r = tl::unexpected(injected("journal_fsync", journal));
        } else if (r && ::fdatasync(batch.journal_fd) != 0) {
            r = tl::unexpected(io_error("fdatasync", journal, errno));
        }
        if (!r) {
            journal_failed(r.error());
            return;
        }
        batch.journal_size += bytes.size();
    }

    // 4. Journaled messages move into cur/; expunged files go away.
    bool renamed = false;
    for (auto& op : batch.ops) {
        if (op.state != State::Queued) {
            continue;
        }
        if (op.kind == OpKind::Ingest) {
            fs::path from = tmp_dir / op.tmp_name;
            fs::path to = cur_dir / op.message.file_name;
            if (fault("rename")) {
                journal_failed(injected("rename", from));
                return;
            }
            if (::rename(from.c_str(), to.c_str()) != 0) {
                journal_failed(io_error("rename", from, errno));
                return;
            }
            renamed = true;
        }
    }
    if (renamed) {
        if (fault("cur_dir_fsync")) {
            journal_failed(injected("cur_dir_fsync", cur_dir));
            return;
        }
        if (auto r = fsync_dir(cur_dir); !r) {
            journal_failed(r.error());
            return;
        }
    }
    for (auto& op : batch.ops) {
        if (op.state == State::Queued) {
            op.state = State::Done;
        }
    }
    // Unlinking after the journal says "expunged": a crash in between leaves only an
    // unreferenced file in cur/, never a record without its file. No fsync needed.
    for (const auto& op : batch.ops) {
        if (op.kind == OpKind::Expunge && op.state == State::Done) {
            for (const auto& name : op.expunged_files) {
                ::unlink((cur_dir / name).c_str());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Store

Store::Store(StoreOptions options) : options_(std::move(options)) {}

Store::~Store() {
    for (auto& [name, user] : users_) {
        for (auto& [id, folder] : user->folders) {
            for (auto& op : folder->pending) {
                if (op.fd >= 0) {
                    ::close(op.fd);
                    op.fd = -1;
                    ::unlink((folder->dir / "tmp" / op.tmp_name).c_str());
                }
            }
        }
    }
}

Result<std::unique_ptr<Store>> Store::open(StoreOptions options) {
    if (options.data_dir.empty()) {
        return make_error(Errc::InvalidName, "empty data_dir");
    }
    if (!options.clock) {
        options.clock = [] {
            return static_cast<std::int64_t>(
                std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count());
        };
    }
    if (options.hostname.empty()) {
        char host[256] = {};
        if (::gethostname(host, sizeof host - 1) == 0) {
            options.hostname = host;
        }
    }
    options.hostname = sanitize_host(options.hostname);
    if (auto r = make_dir(options.data_dir); !r) {
        return tl::unexpected(r.error());
    }
    if (auto r = make_dir(options.data_dir / "users"); !r) {
        return tl::unexpected(r.error());
    }
    return std::unique_ptr<Store>(new Store(std::move(options)));
}

std::int64_t Store::now() const {
    return options_.clock();
}

fs::path Store::folder_dir(const UserState& user, FolderId id) const {
    if (id == kInbox) {
        return user.dir;
    }
    return user.dir / ("." + std::to_string(id));
}

std::uint32_t Store::next_uid_validity(UserState& user) {
    std::int64_t t = now();
    std::uint32_t v = t < 1 ? 1u : t > UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(t);
    if (v <= user.max_uid_validity) {
        v = user.max_uid_validity + 1; // the clock went back, or two creations in a second
    }
    user.max_uid_validity = v;
    return v;
}

Result<void> Store::append_registry(UserState& user, const JournalRecord& rec) {
    std::string bytes;
    append_record(bytes, rec);
    fs::path path = user.dir / kRegistryFile;
    if (auto r = pwrite_all(user.registry_fd, bytes, user.registry_size, path); !r) {
        return r;
    }
    if (::fdatasync(user.registry_fd) != 0) {
        return tl::unexpected(io_error("fdatasync", path, errno));
    }
    user.registry_size += bytes.size();
    return {};
}

Result<void> Store::open_user(std::string_view user) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    return {};
}

Result<Store::UserState*> Store::load_user(std::string_view name) {
    if (auto it = users_.find(name); it != users_.end()) {
        return it->second.get();
    }
    if (auto v = validate_user_name(name); !v) {
        return tl::unexpected(v.error());
    }
    auto user = std::make_unique<UserState>();
    user->name = std::string(name);
    user->dir = options_.data_dir / "users" / user->name;
    const fs::path registry = user->dir / kRegistryFile;

    if (::access(registry.c_str(), F_OK) != 0) {
        // First use (or a crash before the registry was written: nothing can have been
        // committed then, so starting over is safe).
        if (auto r = make_maildir(user->dir); !r) {
            return tl::unexpected(r.error());
        }
        std::uint32_t uidv = next_uid_validity(*user);
        std::int64_t t = now();
        if (auto r = create_journal(user->dir / kIndexFile, kIndexMagic,
                                    {FolderHeaderRec{uidv, t, 1, 1}});
            !r) {
            return tl::unexpected(r.error());
        }
        if (auto r = create_journal(registry, kRegistryMagic,
                                    {FolderCreatedRec{kInbox, uidv, t, std::string(kInboxName)}});
            !r) {
            return tl::unexpected(r.error());
        }
        if (auto r = fsync_dir(options_.data_dir / "users"); !r) {
            return tl::unexpected(r.error());
        }
        user->max_uid_validity = 0;
    }

    std::map<FolderId, FolderCreatedRec> live;
    auto opened = open_journal(registry, kRegistryMagic, [&](JournalRecord&& rec) -> Result<void> {
        if (auto* c = std::get_if<FolderCreatedRec>(&rec)) {
            user->max_uid_validity = std::max(user->max_uid_validity, c->uid_validity);
            user->next_folder_id = std::max(user->next_folder_id, c->id + 1);
            live[c->id] = std::move(*c);
        } else if (auto* d = std::get_if<FolderDeletedRec>(&rec)) {
            live.erase(d->id);
        } else {
            return make_error(Errc::Corrupt, "unexpected record in folder registry");
        }
        return {};
    });
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    user->registry_fd = opened->fd;
    user->registry_size = opened->size;
    if (!live.count(kInbox)) {
        return make_error(Errc::Corrupt, "folder registry of " + user->name + " has no INBOX");
    }

    UserState* u = user.get();
    users_.emplace(user->name, std::move(user));
    for (auto& [id, rec] : live) {
        if (auto r = load_folder(*u, id, rec.name, rec.uid_validity); !r) {
            std::string key = u->name; // erase() destroys u->name
            users_.erase(key);
            return tl::unexpected(r.error());
        }
    }
    // Folder directories the registry does not list are leftovers of a crash during
    // create_folder/delete_folder (ids are never reused, so nothing refers to them).
    if (auto names = list_dir(u->dir)) {
        for (const auto& n : *names) {
            if (n.size() < 2 || n[0] != '.' ||
                !std::all_of(n.begin() + 1, n.end(), [](char c) { return c >= '0' && c <= '9'; })) {
                continue;
            }
            FolderId id = static_cast<FolderId>(std::strtoul(n.c_str() + 1, nullptr, 10));
            if (!live.count(id)) {
                std::error_code ec;
                fs::remove_all(u->dir / n, ec);
            }
        }
    }
    return u;
}

Result<void> Store::load_folder(UserState& user, FolderId id, std::string name,
                                std::uint32_t uid_validity) {
    auto folder = std::make_unique<FolderState>();
    FolderState& f = *folder;
    f.user = &user;
    f.id = id;
    f.name = std::move(name);
    f.dir = folder_dir(user, id);

    // Replay. Expunges are applied after the scan so 100k records stay linear.
    std::unordered_set<Uid> expunged;
    bool have_header = false;
    auto on_record = [&](JournalRecord&& rec) -> Result<void> {
        if (auto* h = std::get_if<FolderHeaderRec>(&rec)) {
            if (have_header) {
                return make_error(Errc::Corrupt, "second FolderHeader");
            }
            have_header = true;
            f.uid_validity = h->uid_validity;
            f.uid_next = std::max(f.uid_next, h->uid_next);
            f.highest_modseq = std::max(f.highest_modseq, h->highest_modseq);
            return {};
        }
        if (!have_header) {
            return make_error(Errc::Corrupt, "index does not start with a FolderHeader");
        }
        if (auto* a = std::get_if<MessageAddedRec>(&rec)) {
            MessageRecord& m = a->message;
            if (m.uid < f.uid_next) {
                return make_error(Errc::Corrupt, "UID " + std::to_string(m.uid) +
                                                     " not above UIDNEXT " +
                                                     std::to_string(f.uid_next));
            }
            f.uid_next = m.uid + 1;
            f.highest_modseq = std::max(f.highest_modseq, m.modseq);
            if (has_origin_fields(m.origin)) {
                user.ledger.try_emplace(origin_key(m.origin.account, m.origin.uidl),
                                        OriginEntry{m.origin, id, m.uid, m.commit_time, false});
            }
            f.messages.push_back(std::move(m));
        } else if (auto* c = std::get_if<FlagsChangedRec>(&rec)) {
            f.highest_modseq = std::max(f.highest_modseq, c->modseq);
            if (MessageRecord* m = find_message(f.messages, c->uid)) {
                m->flags = c->flags;
                m->keywords = std::move(c->keywords);
                m->modseq = c->modseq;
            }
        } else if (auto* e = std::get_if<ExpungedRec>(&rec)) {
            f.highest_modseq = std::max(f.highest_modseq, e->modseq);
            expunged.insert(e->uids.begin(), e->uids.end());
        } else {
            return make_error(Errc::Corrupt, "registry record in a folder index");
        }
        return {};
    };
    // Size the containers once: ~80 bytes per MessageAdded record is a low estimate.
    std::error_code size_ec;
    auto journal_bytes = fs::file_size(f.dir / kIndexFile, size_ec);
    if (!size_ec) {
        std::size_t estimate = static_cast<std::size_t>(journal_bytes / 80);
        f.messages.reserve(estimate);
        user.ledger.reserve(user.ledger.size() + estimate);
    }
    auto opened = open_journal(f.dir / kIndexFile, kIndexMagic, on_record);
    if (!opened) {
        return tl::unexpected(opened.error());
    }
    f.journal_fd = opened->fd;
    f.journal_size = opened->size;
    if (!have_header) {
        return make_error(Errc::Corrupt, "index without a FolderHeader in " + f.dir.string());
    }
    if (f.uid_validity != uid_validity) {
        return make_error(Errc::Corrupt,
                          "UIDVALIDITY of " + f.dir.string() + " differs from the folder registry");
    }
    if (!expunged.empty()) {
        for (const auto& m : f.messages) {
            if (expunged.count(m.uid) && has_origin_fields(m.origin)) {
                user.ledger[origin_key(m.origin.account, m.origin.uidl)].expunged = true;
            }
        }
        std::erase_if(f.messages, [&](const MessageRecord& m) { return expunged.count(m.uid); });
    }
    f.uid_reserved = f.uid_next;
    f.modseq_reserved = f.highest_modseq;

    // tmp/: journaled-but-not-renamed files roll forward; anything else is an orphan.
    const fs::path tmp_dir = f.dir / "tmp";
    auto tmp_names = list_dir(tmp_dir);
    if (!tmp_names) {
        return tl::unexpected(tmp_names.error());
    }
    if (!tmp_names->empty()) {
        std::unordered_map<std::string_view, const MessageRecord*> by_base;
        for (const auto& m : f.messages) {
            by_base.emplace(std::string_view(m.file_name).substr(0, m.file_name.find(',')), &m);
        }
        for (const auto& n : *tmp_names) {
            fs::path from = tmp_dir / n;
            auto it = by_base.find(n);
            if (it != by_base.end()) {
                fs::path to = f.dir / "cur" / it->second->file_name;
                if (::rename(from.c_str(), to.c_str()) != 0) {
                    return tl::unexpected(io_error("rename", from, errno));
                }
            } else if (::unlink(from.c_str()) != 0 && errno != ENOENT) {
                return tl::unexpected(io_error("unlink", from, errno));
            }
        }
        if (auto r = fsync_dir(f.dir / "cur"); !r) {
            return r;
        }
        if (auto r = fsync_dir(tmp_dir); !r) {
            return r;
        }
    }
    user.folders.emplace(id, std::move(folder));
    return {};
}

Result<Store::FolderState*> Store::folder_state(std::string_view user, FolderId folder) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    auto it = (*u)->folders.find(folder);
    if (it == (*u)->folders.end()) {
        return make_error(Errc::NotFound,
                          "no folder " + std::to_string(folder) + " for " + std::string(user));
    }
    return it->second.get();
}

// --- folders ---------------------------------------------------------------------------

Result<FolderId> Store::find_folder(std::string_view user, std::string_view name) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    for (const auto& [id, f] : (*u)->folders) {
        if (f->name == name) {
            return id;
        }
    }
    return make_error(Errc::NotFound, "no such folder");
}

Result<std::vector<FolderInfo>> Store::list_folders(std::string_view user) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    std::vector<FolderInfo> out;
    for (const auto& [id, f] : (*u)->folders) {
        out.push_back(FolderInfo{id, f->name, f->uid_validity});
    }
    return out;
}

Result<FolderId> Store::create_folder(std::string_view user, std::string_view name) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    if (auto v = validate_folder_name(name); !v) {
        return tl::unexpected(v.error());
    }
    UserState& us = **u;
    for (const auto& [id, f] : us.folders) {
        if (f->name == name) {
            return make_error(Errc::AlreadyExists, "folder exists");
        }
    }
    FolderId id = us.next_folder_id;
    fs::path dir = folder_dir(us, id);
    std::error_code ec;
    fs::remove_all(dir, ec); // a leftover of a crash mid-create; nothing refers to it
    if (auto r = make_maildir(dir); !r) {
        return tl::unexpected(r.error());
    }
    std::uint32_t previous_max = us.max_uid_validity;
    std::uint32_t uidv = next_uid_validity(us);
    std::int64_t t = now();
    auto fail = [&](Error e) -> Result<FolderId> {
        us.max_uid_validity = previous_max;
        fs::remove_all(dir, ec);
        return tl::unexpected(std::move(e));
    };
    if (auto r = create_journal(dir / kIndexFile, kIndexMagic, {FolderHeaderRec{uidv, t, 1, 1}});
        !r) {
        return fail(r.error());
    }
    if (auto r = fsync_dir(us.dir); !r) {
        return fail(r.error());
    }
    // The registry record is the commit point of the creation.
    if (auto r = append_registry(us, FolderCreatedRec{id, uidv, t, std::string(name)}); !r) {
        return fail(r.error());
    }
    us.next_folder_id = id + 1;
    if (auto r = load_folder(us, id, std::string(name), uidv); !r) {
        return tl::unexpected(r.error());
    }
    return id;
}

Result<void> Store::delete_folder(std::string_view user, FolderId folder) {
    auto f = folder_state(user, folder);
    if (!f) {
        return tl::unexpected(f.error());
    }
    FolderState& fs_ = **f;
    if (folder == kInbox) {
        return make_error(Errc::InvalidState, "the INBOX cannot be deleted");
    }
    if (fs_.in_job || !fs_.pending.empty()) {
        return make_error(Errc::Busy, "folder has uncommitted changes");
    }
    UserState& us = *fs_.user;
    if (auto r = append_registry(us, FolderDeletedRec{folder}); !r) {
        return r;
    }
    for (const auto& m : fs_.messages) {
        if (has_origin_fields(m.origin)) {
            auto it = us.ledger.find(origin_key(m.origin.account, m.origin.uidl));
            if (it != us.ledger.end()) {
                it->second.expunged = true;
            }
        }
    }
    std::vector<Listener*> listeners = std::move(fs_.listeners);
    fs::path dir = fs_.dir;
    us.folders.erase(folder);
    std::error_code ec;
    fs::remove_all(dir, ec); // failure leaves an orphan directory, removed at next open
    for (Listener* l : listeners) {
        if (l) {
            l->on_folder_deleted();
        }
    }
    return {};
}

// --- ingest ----------------------------------------------------------------------------

Result<Incoming> Store::begin_incoming(std::string_view user, FolderId folder) {
    auto f = folder_state(user, folder);
    if (!f) {
        return tl::unexpected(f.error());
    }
    if ((*f)->read_only) {
        return make_error(Errc::ReadOnly, "folder is read-only: " + (*f)->read_only_reason);
    }
    Incoming in;
    in.owner_ = this;
    in.user_ = std::string(user);
    in.folder_ = folder;
    in.max_size_ = options_.max_message_size;
    for (int attempt = 0; attempt < 100; ++attempt) {
        std::string base = std::to_string(now()) + ".P" + std::to_string(::getpid()) + "Q" +
                           std::to_string(++name_counter_) + "." + options_.hostname;
        fs::path path = (*f)->dir / "tmp" / base;
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            in.fd_ = fd;
            in.tmp_path_ = std::move(path);
            in.base_name_ = std::move(base);
            return in;
        }
        if (errno != EEXIST) {
            return tl::unexpected(io_error("open", path, errno));
        }
    }
    return make_error(Errc::Io, "could not create a unique tmp file");
}

Ticket Store::queue(FolderState& folder, PendingOp op) {
    op.ticket = next_ticket_++;
    Ticket t = op.ticket;
    folder.pending.push_back(std::move(op));
    if (!folder.queued) {
        folder.queued = true;
        dirty_.push_back(&folder);
    }
    return t;
}

Result<Ticket> Store::commit_incoming(Incoming&& incoming, const Origin& origin,
                                      std::int64_t internal_date) {
    if (incoming.owner_ != this || !incoming.active()) {
        return make_error(Errc::InvalidState, "Incoming is not active or not from this store");
    }
    if (incoming.failed_) {
        return make_error(Errc::InvalidState, "Incoming had a failed append");
    }
    auto f = folder_state(incoming.user_, incoming.folder_);
    if (!f) {
        return tl::unexpected(f.error());
    }
    FolderState& folder = **f;
    if (folder.read_only) {
        return make_error(Errc::ReadOnly, "folder is read-only: " + folder.read_only_reason);
    }
    std::string key;
    if (has_origin_fields(origin)) {
        for (const std::string* field : {&origin.account, &origin.uidl}) {
            if (auto v = validate_origin_field(*field); !v) {
                return tl::unexpected(v.error());
            }
        }
        key = origin_key(origin.account, origin.uidl);
        if (folder.user->ledger.count(key) || folder.user->pending_origins.count(key)) {
            return make_error(Errc::AlreadyExists, "origin already stored");
        }
    }
    PendingOp op;
    op.kind = OpKind::Ingest;
    op.fd = std::exchange(incoming.fd_, -1);
    op.tmp_name = incoming.base_name_;
    MessageRecord& m = op.message;
    m.uid = folder.uid_reserved++;
    m.modseq = ++folder.modseq_reserved;
    m.size = incoming.size_;
    m.internal_date = internal_date;
    m.origin = origin;
    m.commit_time = now();
    m.file_name = incoming.base_name_ + ",S=" + std::to_string(m.size) + ":2,";
    append_record(op.journal_bytes, MessageAddedRec{m});
    Ticket t = queue(folder, std::move(op));
    if (!key.empty()) {
        folder.user->pending_origins.emplace(std::move(key), t);
    }
    return t;
}

bool Store::has_origin(std::string_view user, std::string_view account, std::string_view uidl) {
    auto u = load_user(user);
    if (!u) {
        return false;
    }
    std::string key = origin_key(account, uidl);
    return (*u)->ledger.count(key) || (*u)->pending_origins.count(key);
}

Result<std::vector<OriginEntry>> Store::committed_origins(std::string_view user,
                                                          std::string_view account) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    std::vector<OriginEntry> out;
    for (const auto& [key, e] : (*u)->ledger) {
        if (e.origin.account == account) {
            out.push_back(e);
        }
    }
    std::sort(out.begin(), out.end(), [](const OriginEntry& a, const OriginEntry& b) {
        return std::tie(a.folder, a.uid) < std::tie(b.folder, b.uid);
    });
    return out;
}

// --- flags / expunge -------------------------------------------------------------------

Result<Ticket> Store::set_flags(std::string_view user, FolderId folder, std::span<const Uid> uids,
                                FlagOp op, Flags flags, std::span<const std::string> keywords) {
    auto f = folder_state(user, folder);
    if (!f) {
        return tl::unexpected(f.error());
    }
    FolderState& fs_ = **f;
    if (fs_.read_only) {
        return make_error(Errc::ReadOnly, "folder is read-only: " + fs_.read_only_reason);
    }
    for (const auto& k : keywords) {
        if (auto v = validate_keyword(k); !v) {
            return tl::unexpected(v.error());
        }
    }
    flags.bits &= Flags::kAll;
    std::vector<std::string> given =
        normalize_keywords(std::vector<std::string>(keywords.begin(), keywords.end()));

    PendingOp pending;
    pending.kind = OpKind::Flags;
    for (Uid uid : uids) {
        const MessageRecord* m = find_message(fs_.messages, uid);
        if (m == nullptr || fs_.expunging.count(uid)) {
            continue;
        }
        auto proj = fs_.projected.find(uid);
        Flags cur = proj != fs_.projected.end() ? proj->second.flags : m->flags;
        const std::vector<std::string>& cur_kw =
            proj != fs_.projected.end() ? proj->second.keywords : m->keywords;
        Flags next;
        std::vector<std::string> next_kw;
        switch (op) {
        case FlagOp::Set:
            next = flags;
            next_kw = given;
            break;
        case FlagOp::Add:
            next.bits = cur.bits | flags.bits;
            std::set_union(cur_kw.begin(), cur_kw.end(), given.begin(), given.end(),
                           std::back_inserter(next_kw));
            break;
        case FlagOp::Remove:
            next.bits = cur.bits & static_cast<std::uint8_t>(~flags.bits);
            std::set_difference(cur_kw.begin(), cur_kw.end(), given.begin(), given.end(),
                                std::back_inserter(next_kw));
            break;
        }
        if (next == cur && next_kw == cur_kw) {
            continue; // unchanged: no new modseq (RFC 7162 3.2)
        }
        if (next_kw.size() > kMaxKeywordsPerMessage) {
            return make_error(Errc::TooLarge, "too many keywords on one message");
        }
        pending.flag_changes.push_back(FlagsChangedRec{uid, 0, next, std::move(next_kw)});
    }
    // Reserve modseqs and update the projection only once nothing can fail any more.
    for (auto& c : pending.flag_changes) {
        c.modseq = ++fs_.modseq_reserved;
        fs_.projected[c.uid] = FolderState::Projected{c.flags, c.keywords, c.modseq};
        append_record(pending.journal_bytes, c);
    }
    return queue(fs_, std::move(pending));
}

Result<Ticket> Store::expunge(std::string_view user, FolderId folder, std::span<const Uid> uids) {
    auto f = folder_state(user, folder);
    if (!f) {
        return tl::unexpected(f.error());
    }
    FolderState& fs_ = **f;
    if (fs_.read_only) {
        return make_error(Errc::ReadOnly, "folder is read-only: " + fs_.read_only_reason);
    }
    PendingOp pending;
    pending.kind = OpKind::Expunge;
    for (Uid uid : uids) {
        const MessageRecord* m = find_message(fs_.messages, uid);
        if (m != nullptr && fs_.expunging.insert(uid).second) {
            pending.expunged.uids.push_back(uid);
            pending.expunged_files.push_back(m->file_name);
        }
    }
    if (!pending.expunged.uids.empty()) {
        pending.expunged.modseq = ++fs_.modseq_reserved;
        append_record(pending.journal_bytes, pending.expunged);
    }
    return queue(fs_, std::move(pending));
}

// --- reads -----------------------------------------------------------------------------

Result<FolderView> Store::view(std::string_view user, FolderId folder) {
    auto f = folder_state(user, folder);
    if (!f) {
        return tl::unexpected(f.error());
    }
    const FolderState& fs_ = **f;
    return FolderView{fs_.id,        fs_.uid_validity, fs_.uid_next, fs_.highest_modseq,
                      fs_.read_only, fs_.messages};
}

Result<fs::path> Store::message_path(std::string_view user, FolderId folder, Uid uid) {
    auto f = folder_state(user, folder);
    if (!f) {
        return tl::unexpected(f.error());
    }
    const MessageRecord* m = find_message((*f)->messages, uid);
    if (m == nullptr) {
        return make_error(Errc::NotFound, "no UID " + std::to_string(uid));
    }
    return (*f)->dir / "cur" / m->file_name;
}

Result<void> Store::subscribe(std::string_view user, FolderId folder, Listener* listener) {
    auto f = folder_state(user, folder);
    if (!f) {
        return tl::unexpected(f.error());
    }
    auto& ls = (*f)->listeners;
    if (std::find(ls.begin(), ls.end(), listener) == ls.end()) {
        ls.push_back(listener);
    }
    return {};
}

void Store::unsubscribe(std::string_view user, FolderId folder, Listener* listener) {
    auto u = users_.find(user);
    if (u == users_.end()) {
        return;
    }
    auto it = u->second->folders.find(folder);
    if (it == u->second->folders.end()) {
        return;
    }
    FolderState& f = *it->second;
    auto l = std::find(f.listeners.begin(), f.listeners.end(), listener);
    if (l == f.listeners.end()) {
        return;
    }
    if (f.delivering > 0) {
        *l = nullptr; // compacted after delivery
    } else {
        f.listeners.erase(l);
    }
}

void Store::notify(FolderState& folder, const std::function<void(Listener&)>& fn) {
    ++folder.delivering;
    // Index loop: listeners subscribed during delivery are appended and also called.
    for (std::size_t i = 0; i < folder.listeners.size(); ++i) {
        if (Listener* l = folder.listeners[i]) {
            fn(*l);
        }
    }
    if (--folder.delivering == 0) {
        std::erase(folder.listeners, nullptr);
    }
}

// --- group commit ----------------------------------------------------------------------

std::unique_ptr<SyncJob> Store::take_sync_job() {
    if (job_running_ || dirty_.empty()) {
        return nullptr;
    }
    std::unique_ptr<SyncJob> job(new SyncJob());
    job->owner_ = this;
    job->fault_ = options_.fault;
    for (FolderState* f : dirty_) {
        Batch b;
        b.user = f->user->name;
        b.folder = f->id;
        b.dir = f->dir;
        b.journal_fd = f->journal_fd;
        b.journal_size = f->journal_size;
        b.read_only = f->read_only;
        b.read_only_reason = f->read_only_reason;
        b.ops = std::move(f->pending);
        f->pending.clear();
        f->queued = false;
        f->in_job = true;
        job->batches_.push_back(std::move(b));
    }
    dirty_.clear();
    job->last_ticket_ = next_ticket_ - 1;
    job_running_ = true;
    return job;
}

std::vector<Outcome> Store::finish_sync_job(std::unique_ptr<SyncJob> job) {
    std::vector<Outcome> outcomes;
    if (!job || job->owner_ != this || !job_running_) {
        return outcomes;
    }
    using State = PendingOp::State;
    for (Batch& b : job->batches_) {
        auto u = users_.find(b.user);
        FolderState& f = *u->second->folders.at(b.folder); // pinned: in_job blocks deletion
        UserState& us = *f.user;
        f.in_job = false;
        f.journal_size = b.journal_size;
        if (b.read_only && !f.read_only) {
            f.read_only = true;
            f.read_only_reason = b.read_only_reason;
        }
        for (PendingOp& op : b.ops) {
            Outcome out;
            out.ticket = op.ticket;
            out.kind = op.kind;
            out.user = b.user;
            out.folder = b.folder;
            if (op.state == State::Queued) { // run() was never called: nothing is durable
                op.state = State::Failed;
                op.error = Error{Errc::InvalidState, "sync job finished without run()"};
            }
            const bool ok = op.state == State::Done;
            if (!ok) {
                out.result = tl::unexpected(op.error);
            }
            switch (op.kind) {
            case OpKind::Ingest: {
                out.origin = op.message.origin;
                out.uid = op.message.uid;
                std::string key =
                    has_origin_fields(op.message.origin)
                        ? origin_key(op.message.origin.account, op.message.origin.uidl)
                        : std::string();
                // Uncertain: the record may be durable; keep the origin blocked until a
                // restart reads the journal and tells.
                if (!key.empty() && op.state != State::Uncertain) {
                    us.pending_origins.erase(key);
                }
                if (!ok) {
                    break;
                }
                if (!key.empty()) {
                    us.ledger.emplace(key, OriginEntry{op.message.origin, f.id, op.message.uid,
                                                       op.message.commit_time, false});
                }
                f.uid_next = std::max(f.uid_next, op.message.uid + 1);
                f.highest_modseq = std::max(f.highest_modseq, op.message.modseq);
                f.messages.push_back(std::move(op.message));
                const MessageRecord& added = f.messages.back();
                notify(f, [&](Listener& l) { l.on_added(added); });
                break;
            }
            case OpKind::Flags:
                for (FlagsChangedRec& c : op.flag_changes) {
                    auto p = f.projected.find(c.uid);
                    if (p != f.projected.end() && p->second.modseq == c.modseq) {
                        f.projected.erase(p);
                    }
                    MessageRecord* m = ok ? find_message(f.messages, c.uid) : nullptr;
                    if (m == nullptr) {
                        continue;
                    }
                    m->flags = c.flags;
                    m->keywords = std::move(c.keywords);
                    m->modseq = c.modseq;
                    f.highest_modseq = std::max(f.highest_modseq, c.modseq);
                    notify(f, [&](Listener& l) {
                        l.on_flags(m->uid, m->flags, m->keywords, m->modseq);
                    });
                }
                break;
            case OpKind::Expunge: {
                if (op.state != State::Uncertain) {
                    for (Uid uid : op.expunged.uids) {
                        f.expunging.erase(uid);
                    }
                }
                if (!ok || op.expunged.uids.empty()) {
                    break;
                }
                f.highest_modseq = std::max(f.highest_modseq, op.expunged.modseq);
                std::unordered_set<Uid> gone(op.expunged.uids.begin(), op.expunged.uids.end());
                for (const MessageRecord& m : f.messages) {
                    if (gone.count(m.uid) && has_origin_fields(m.origin)) {
                        auto it = us.ledger.find(origin_key(m.origin.account, m.origin.uidl));
                        if (it != us.ledger.end()) {
                            it->second.expunged = true;
                        }
                    }
                }
                std::erase_if(f.messages,
                              [&](const MessageRecord& m) { return gone.count(m.uid) != 0; });
                for (Uid uid : op.expunged.uids) {
                    notify(f, [&](Listener& l) { l.on_expunged(uid); });
                }
                break;
            }
            }
            outcomes.push_back(std::move(out));
        }
    }
    durable_ticket_ = std::max(durable_ticket_, job->last_ticket_);
    job_running_ = false;
    std::sort(outcomes.begin(), outcomes.end(),
              [](const Outcome& a, const Outcome& b) { return a.ticket < b.ticket; });
    return outcomes;
}

} // namespace popbridge::store
