#include "store/store.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <random>
#include <tuple>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/atomic_file.h"
#include "store/names.h"
#include "store/store_internal.h"

namespace popbridge::store {

namespace fs = std::filesystem;
using namespace detail;

namespace detail {

std::string origin_key(std::string_view account, std::string_view uidl) {
    std::string key(account);
    key.push_back('\0');
    key.append(uidl);
    return key;
}

bool has_origin_fields(const Origin& o) {
    return !o.account.empty() || !o.uidl.empty();
}

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

void ledger_put_entry(std::unordered_map<std::string, OriginEntry>& ledger, OriginEntry e) {
    auto [it, inserted] = ledger.try_emplace(origin_key(e.origin.account, e.origin.uidl), e);
    if (!inserted && !e.expunged && it->second.expunged) {
        it->second = std::move(e);
    }
}

void ledger_put(std::unordered_map<std::string, OriginEntry>& ledger, const MessageRecord& m,
                FolderId folder, bool live) {
    if (has_origin_fields(m.origin)) {
        ledger_put_entry(ledger, OriginEntry{m.origin, folder, m.uid, m.commit_time, !live});
    }
}

std::vector<OriginEntry> retired_origins(const std::unordered_map<std::string, OriginEntry>& ledger,
                                         FolderId folder) {
    std::vector<OriginEntry> out;
    for (const auto& [key, e] : ledger) {
        if (e.expunged && e.folder == folder) {
            out.push_back(e);
        }
    }
    std::sort(out.begin(), out.end(),
              [](const OriginEntry& a, const OriginEntry& b) { return a.uid < b.uid; });
    return out;
}

void ledger_expunged(std::unordered_map<std::string, OriginEntry>& ledger, const MessageRecord& m,
                     FolderId folder) {
    if (!has_origin_fields(m.origin)) {
        return;
    }
    auto it = ledger.find(origin_key(m.origin.account, m.origin.uidl));
    if (it != ledger.end() && it->second.folder == folder && it->second.uid == m.uid) {
        it->second.expunged = true;
    }
}

} // namespace detail

namespace {

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

} // namespace

std::string_view to_string(OpKind kind) noexcept {
    switch (kind) {
    case OpKind::Ingest:
        return "Ingest";
    case OpKind::Flags:
        return "Flags";
    case OpKind::Expunge:
        return "Expunge";
    case OpKind::Copy:
        return "Copy";
    case OpKind::Move:
        return "Move";
    case OpKind::Origin:
        return "Origin";
    }
    return "Unknown";
}

const MessageRecord* FolderView::find(Uid uid) const {
    auto it = std::lower_bound(messages.begin(), messages.end(), uid,
                               [](const MessageRecord& m, Uid u) { return m.uid < u; });
    return (it != messages.end() && it->uid == uid) ? &*it : nullptr;
}

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
        written_back_ = other.written_back_;
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
    if (size_ - written_back_ >= kWriteBackChunk) {
        start_write_back();
    }
    return {};
}

void Incoming::start_write_back() noexcept {
    // Only a hint: errors are ignored here (EINVAL on file systems without it), the
    // SyncJob's fdatasync reports real ones. The call queues the dirty pages for writing
    // and returns; it waits only if the device's request queue is full.
#ifdef __linux__
    if (fd_ >= 0 && size_ > written_back_) {
        ::sync_file_range(fd_, static_cast<off_t>(written_back_),
                          static_cast<off_t>(size_ - written_back_), SYNC_FILE_RANGE_WRITE);
    }
#endif
    written_back_ = size_;
}

void Incoming::abort() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(tmp_path_.c_str());
        fd_ = -1;
    }
}

// ---------------------------------------------------------------------------------------
// Store

Store::Store(StoreOptions options) : options_(std::move(options)) {
    // Names are <time>.P<pid>R<salt>Q<counter>.<host>. Time, pid and counter alone repeat
    // when a restarted process gets the same pid within the same second (PID 1 of a
    // container restarted after a crash): a new file could then be renamed over a
    // committed one, and recovery could take an orphan in tmp/ for a journaled file.
    std::random_device rd;
    std::uint64_t salt = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(salt));
    name_salt_ = hex;
}

std::string Store::unique_base_name() {
    return std::to_string(now()) + ".P" + std::to_string(::getpid()) + "R" + name_salt_ + "Q" +
           std::to_string(++name_counter_) + "." + options_.hostname;
}

Store::~Store() {
    for (auto& [name, user] : users_) {
        for (auto& [id, folder] : user->folders) {
            for (auto& op : folder->pending) {
                if (op.fd >= 0) {
                    ::close(op.fd);
                    op.fd = -1;
                }
                if (op.kind == OpKind::Ingest && !op.tmp_name.empty())
                    ::unlink((folder->dir / "tmp" / op.tmp_name).c_str());
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
        std::string base = unique_base_name();
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

Ticket Store::queue(FolderState& folder, PendingOp op, Ticket ticket) {
    op.ticket = ticket != 0 ? ticket : next_ticket_++;
    Ticket t = op.ticket;
    folder.pending.push_back(std::move(op));
    if (!folder.queued) {
        folder.queued = true;
        dirty_.push_back(&folder);
    }
    return t;
}

Result<Ticket> Store::commit_incoming(Incoming&& incoming, const Origin& origin,
                                      std::int64_t internal_date, Flags flags,
                                      std::span<const std::string> keywords) {
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
    for (const auto& k : keywords) {
        if (auto v = validate_keyword(k); !v) {
            return tl::unexpected(v.error());
        }
    }
    std::vector<std::string> kw =
        normalize_keywords(std::vector<std::string>(keywords.begin(), keywords.end()));
    if (kw.size() > kMaxKeywordsPerMessage) {
        return make_error(Errc::TooLarge, "too many keywords on one message");
    }
    std::string key;
    if (has_origin_fields(origin)) {
        for (const std::string* field : {&origin.account, &origin.uidl}) {
            if (auto v = validate_origin_field(*field); !v) {
                return tl::unexpected(v.error());
            }
        }
        key = origin_key(origin.account, origin.uidl);
        if (origin_known(*folder.user, key)) {
            return make_error(Errc::AlreadyExists, "origin already stored");
        }
    }
    PendingOp op;
    op.kind = OpKind::Ingest;
    incoming.start_write_back();
    // The file is closed now and reopened by the SyncJob for its fdatasync: a queued
    // message must not hold a descriptor, or a fast upstream on a slow disk exhausts
    // RLIMIT_NOFILE. fdatasync flushes the inode whatever descriptor wrote it, and (Linux
    // >= 4.16) a writeback error not yet seen is reported to the new descriptor.
    if (::close(std::exchange(incoming.fd_, -1)) != 0) {
        int err = errno;
        ::unlink(incoming.tmp_path_.c_str());
        incoming.failed_ = true;
        return make_error(Errc::Io,
                          "close(" + incoming.tmp_path_.string() + "): " + std::strerror(err));
    }
    op.fd = -1;
    op.tmp_name = incoming.base_name_;
    MessageRecord& m = op.message;
    m.uid = folder.uid_reserved++;
    m.modseq = ++folder.modseq_reserved;
    m.size = incoming.size_;
    m.internal_date = internal_date;
    m.flags.bits = flags.bits & Flags::kAll;
    m.keywords = std::move(kw);
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

Result<Ticket> Store::append(std::string_view user, FolderId folder, std::string_view bytes,
                             Flags flags, std::span<const std::string> keywords,
                             std::int64_t internal_date) {
    auto in = begin_incoming(user, folder);
    if (!in) {
        return tl::unexpected(in.error());
    }
    if (auto r = in->append(bytes); !r) {
        return tl::unexpected(r.error()); // ~Incoming unlinks the tmp file
    }
    return commit_incoming(std::move(*in), Origin{}, internal_date, flags, keywords);
}

bool Store::has_origin(std::string_view user, std::string_view account, std::string_view uidl) {
    auto u = load_user(user);
    if (!u) {
        return false;
    }
    return origin_known(**u, origin_key(account, uidl));
}

bool Store::origin_known(const UserState& user, const std::string& key) {
    return user.ledger.count(key) || user.aliases.count(key) || user.pending_origins.count(key);
}

void Store::apply_noted(UserState& user, const OriginNotedRec& rec) {
    std::string key = origin_key(rec.origin.account, rec.origin.uidl);
    if (user.ledger.count(key) || user.aliases.count(key)) {
        return; // cannot happen through the API (AlreadyExists); first record wins
    }
    if (has_origin_fields(rec.alias_of)) {
        user.aliases.emplace(std::move(key), rec);
    } else {
        OriginEntry e{rec.origin, kInbox, 0, rec.time, false, false};
        user.ledger.emplace(std::move(key), std::move(e));
    }
    ++user.noted;
}

Result<Ticket> Store::queue_origin_note(std::string_view user, OriginNotedRec rec) {
    for (const Origin* o : {&rec.origin, &rec.alias_of}) {
        if (o == &rec.alias_of && !has_origin_fields(*o)) {
            continue;
        }
        for (const std::string* field : {&o->account, &o->uidl}) {
            if (auto v = validate_origin_field(*field); !v) {
                return tl::unexpected(v.error());
            }
        }
    }
    if (!has_origin_fields(rec.origin)) {
        return make_error(Errc::InvalidName, "empty origin");
    }
    auto f = folder_state(user, kInbox);
    if (!f) {
        return tl::unexpected(f.error());
    }
    FolderState& inbox = **f;
    UserState& us = *inbox.user;
    if (inbox.read_only) {
        return make_error(Errc::ReadOnly, "INBOX is read-only: " + inbox.read_only_reason);
    }
    std::string key = origin_key(rec.origin.account, rec.origin.uidl);
    if (origin_known(us, key)) {
        return make_error(Errc::AlreadyExists, "origin already known");
    }
    if (has_origin_fields(rec.alias_of)) {
        std::string target = origin_key(rec.alias_of.account, rec.alias_of.uidl);
        if (auto a = us.aliases.find(target); a != us.aliases.end()) {
            rec.alias_of = a->second.alias_of; // aliases always name a ledger entry
            target = origin_key(rec.alias_of.account, rec.alias_of.uidl);
        }
        if (!us.ledger.count(target)) {
            return make_error(Errc::NotFound, "alias of an origin that is not committed");
        }
    }
    PendingOp op;
    op.kind = OpKind::Origin;
    append_record(op.journal_bytes, rec);
    op.noted = std::move(rec);
    Ticket t = queue(inbox, std::move(op));
    us.pending_origins.emplace(std::move(key), t);
    return t;
}

Result<Ticket> Store::record_seen_origin(std::string_view user, const Origin& origin,
                                         std::int64_t seen_time) {
    return queue_origin_note(user, OriginNotedRec{origin, seen_time, Origin{}});
}

Result<Ticket> Store::add_origin_alias(std::string_view user, const Origin& new_origin,
                                       const Origin& existing) {
    if (!has_origin_fields(existing)) {
        return make_error(Errc::InvalidName, "alias of an empty origin");
    }
    return queue_origin_note(user, OriginNotedRec{new_origin, now(), existing});
}

Result<std::vector<OriginEntry>> Store::committed_origins(std::string_view user,
                                                          std::string_view account) {
    auto u = load_user(user);
    if (!u) {
        return tl::unexpected(u.error());
    }
    const UserState& us = **u;
    std::vector<OriginEntry> out;
    for (const auto& [key, e] : us.ledger) {
        if (e.origin.account == account) {
            out.push_back(e);
        }
    }
    for (const auto& [key, rec] : us.aliases) {
        if (rec.origin.account != account) {
            continue;
        }
        auto it = us.ledger.find(origin_key(rec.alias_of.account, rec.alias_of.uidl));
        OriginEntry e;
        if (it != us.ledger.end()) {
            e = it->second;
        } else { // unreachable through the API; never offer it for deletion
            e.commit_time = rec.time;
            e.stored = false;
        }
        e.origin = rec.origin;
        out.push_back(std::move(e));
    }
    std::sort(out.begin(), out.end(), [](const OriginEntry& a, const OriginEntry& b) {
        return std::tie(a.folder, a.uid) < std::tie(b.folder, b.uid);
    });
    return out;
}

// --- flags / expunge / copy / move -----------------------------------------------------

Result<Ticket> Store::set_flags(std::string_view user, FolderId folder, std::span<const Uid> uids,
                                FlagOp op, Flags flags, std::span<const std::string> keywords,
                                std::optional<ModSeq> unchanged_since) {
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
        ModSeq cur_modseq = proj != fs_.projected.end() ? proj->second.modseq : m->modseq;
        if (unchanged_since && cur_modseq > *unchanged_since) {
            pending.modified.push_back(uid); // RFC 7162 3.2: fails the condition
            continue;
        }
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

Result<Ticket> Store::copy(std::string_view user, FolderId source, std::span<const Uid> uids,
                           FolderId target) {
    return queue_copy(user, source, uids, target, false);
}

Result<Ticket> Store::move(std::string_view user, FolderId source, std::span<const Uid> uids,
                           FolderId target) {
    return queue_copy(user, source, uids, target, true);
}

Result<Ticket> Store::queue_copy(std::string_view user, FolderId source, std::span<const Uid> uids,
                                 FolderId target, bool move) {
    auto s = folder_state(user, source);
    if (!s) {
        return tl::unexpected(s.error());
    }
    auto t = folder_state(user, target);
    if (!t) {
        return tl::unexpected(t.error());
    }
    FolderState& src = **s;
    FolderState& dst = **t;
    if (dst.read_only) {
        return make_error(Errc::ReadOnly, "target folder is read-only: " + dst.read_only_reason);
    }
    if (move && src.read_only) {
        return make_error(Errc::ReadOnly, "source folder is read-only: " + src.read_only_reason);
    }
    std::vector<Uid> sorted(uids.begin(), uids.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());

    PendingOp op;
    op.kind = move ? OpKind::Move : OpKind::Copy;
    op.source_folder = source;
    PendingOp src_op;
    src_op.kind = OpKind::Expunge;
    src_op.move_source = true;
    std::int64_t t_now = now();
    for (Uid uid : sorted) {
        const MessageRecord* m = find_message(src.messages, uid);
        if (m == nullptr || src.expunging.count(uid)) {
            continue; // gone, or on its way out
        }
        CopyItem item;
        item.source = src.dir / "cur" / m->file_name;
        item.source_uid = uid;
        std::string base = unique_base_name();
        item.tmp_name = base;
        MessageRecord& c = item.message;
        c.uid = 0; // assigned below, once nothing can fail
        c.size = m->size;
        c.internal_date = m->internal_date; // RFC 3501 6.4.7: COPY keeps the internal date
        auto proj = src.projected.find(uid);
        c.flags = proj != src.projected.end() ? proj->second.flags : m->flags;
        c.keywords = proj != src.projected.end() ? proj->second.keywords : m->keywords;
        // A move keeps the download time: keep_on_server durations count from it, and a
        // reload must give the ledger the same time as memory does.
        c.commit_time = move ? m->commit_time : t_now;
        c.file_name = base + ",S=" + std::to_string(c.size) + ":2,";
        if (move) {
            c.origin = m->origin; // the ledger follows the message
            c.moved_from_folder = source;
            c.moved_from_uid = uid;
            src_op.expunged.uids.push_back(uid);
            src_op.expunged_files.push_back(m->file_name);
        }
        op.copies.push_back(std::move(item));
    }
    for (auto& item : op.copies) {
        item.message.uid = dst.uid_reserved++;
        item.message.modseq = ++dst.modseq_reserved;
        append_record(op.journal_bytes, MessageAddedRec{item.message});
    }
    Ticket ticket = queue(dst, std::move(op));
    if (move) {
        for (Uid uid : src_op.expunged.uids) {
            src.expunging.insert(uid);
        }
        if (!src_op.expunged.uids.empty()) {
            src_op.expunged.modseq = ++src.modseq_reserved;
            append_record(src_op.journal_bytes, src_op.expunged);
        }
        queue(src, std::move(src_op), ticket);
    }
    return ticket;
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

void Store::warn(std::string message) const {
    if (options_.log) {
        options_.log(message);
    }
}

std::string Store::snapshot_bytes(const FolderState& f) const {
    std::string out(kIndexMagic);
    out.reserve(out.size() + 64 + f.messages.size() * 96);
    append_record(out, FolderHeaderRec{f.uid_validity, f.created_at, f.uid_next, f.highest_modseq});
    for (const auto& m : f.messages) {
        append_record(out, MessageAddedRec{m});
    }
    // Expunged messages' UIDLs must stay known (never downloaded again).
    append_retired_origins(out, retired_origins(f.user->ledger, f.id));
    if (f.id == kInbox) { // the user's ledger entries without a message of their own
        std::vector<OriginNotedRec> noted;
        noted.reserve(f.user->noted);
        for (const auto& [key, e] : f.user->ledger) {
            if (!e.stored) {
                noted.push_back(OriginNotedRec{e.origin, e.commit_time, Origin{}});
            }
        }
        for (const auto& [key, rec] : f.user->aliases) {
            noted.push_back(rec);
        }
        std::sort(noted.begin(), noted.end(), [](const OriginNotedRec& a, const OriginNotedRec& b) {
            return std::tie(a.time, a.origin.account, a.origin.uidl) <
                   std::tie(b.time, b.origin.account, b.origin.uidl);
        });
        for (const auto& rec : noted) {
            append_record(out, rec);
        }
    }
    return out;
}

void Store::maybe_want_compaction(FolderState& f) {
    const std::size_t live = f.messages.size() + (f.id == kInbox ? f.user->noted : 0);
    if (f.read_only || f.records <= options_.compact_min_records || f.records < f.compact_at ||
        f.records <= 2 * live) {
        return;
    }
    for (const auto& [user, id] : compact_wanted_) {
        if (id == f.id && user == f.user->name) {
            return;
        }
    }
    compact_wanted_.emplace_back(f.user->name, f.id);
}

std::unique_ptr<SyncJob> Store::take_sync_job() {
    if (job_running_ || (dirty_.empty() && compact_wanted_.empty())) {
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
    // Compactions for idle folders; busy ones wait for a later job.
    std::vector<std::pair<std::string, FolderId>> later;
    for (auto& [user, id] : compact_wanted_) {
        auto u = users_.find(user);
        if (u == users_.end() || !u->second->folders.count(id)) {
            continue;
        }
        FolderState& f = *u->second->folders.at(id);
        if (f.read_only) {
            continue;
        }
        if (f.in_job || f.queued) {
            later.emplace_back(user, id);
            continue;
        }
        Batch b;
        b.user = user;
        b.folder = id;
        b.dir = f.dir;
        b.journal_fd = f.journal_fd;
        b.journal_size = f.journal_size;
        b.snapshot = snapshot_bytes(f);
        // + a few OriginsRetired: close enough
        b.snapshot_records = 1 + f.messages.size() + (id == kInbox ? f.user->noted : 0);
        f.in_job = true;
        job->batches_.push_back(std::move(b));
    }
    compact_wanted_ = std::move(later);
    if (job->batches_.empty()) {
        return nullptr;
    }
    // The source part of a move runs after its target part (SyncJob::run, pass 2).
    std::unordered_map<Ticket, const PendingOp*> targets;
    for (const Batch& b : job->batches_) {
        for (const PendingOp& op : b.ops) {
            if (op.kind == OpKind::Move) {
                targets.emplace(op.ticket, &op);
            }
        }
    }
    for (Batch& b : job->batches_) {
        for (PendingOp& op : b.ops) {
            if (op.move_source) {
                auto it = targets.find(op.ticket);
                op.after = it != targets.end() ? it->second : nullptr;
            }
        }
    }
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
    std::vector<std::pair<FolderState*, PendingOp*>> move_sources;
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
        if (!b.snapshot.empty()) {
            if (b.new_journal_fd >= 0) {
                ::close(f.journal_fd);
                f.journal_fd = b.new_journal_fd;
                b.new_journal_fd = -1;
                f.records = b.snapshot_records;
            } else {
                f.compact_at = f.records * 2; // do not retry at once
                warn("store: compaction of user " + us.name + " folder " + f.name +
                     " failed: " + b.compact_error);
            }
            continue;
        }
        for (PendingOp& op : b.ops) {
            if (op.state == State::Queued) { // run() was never called: nothing is durable
                op.state = State::Failed;
                op.error = Error{Errc::InvalidState, "sync job finished without run()"};
            }
            if (op.move_source) {
                move_sources.emplace_back(&f, &op);
                continue;
            }
            const bool ok = op.state == State::Done;
            if (ok) {
                f.records += op.journal_bytes.empty() ? 0 : 1;
            }
            Outcome out;
            out.ticket = op.ticket;
            out.kind = op.kind;
            out.user = b.user;
            out.folder = b.folder;
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
                ledger_put(us.ledger, op.message, f.id, true);
                f.uid_next = std::max(f.uid_next, op.message.uid + 1);
                f.highest_modseq = std::max(f.highest_modseq, op.message.modseq);
                f.messages.push_back(std::move(op.message));
                const MessageRecord& added = f.messages.back();
                notify(f, [&](Listener& l) { l.on_added(added); });
                break;
            }
            case OpKind::Origin: {
                out.origin = op.noted.origin;
                if (op.state != State::Uncertain) { // uncertain: blocked until a restart tells
                    us.pending_origins.erase(
                        origin_key(op.noted.origin.account, op.noted.origin.uidl));
                }
                if (ok) {
                    apply_noted(us, op.noted);
                }
                break;
            }
            case OpKind::Flags:
                out.modified = std::move(op.modified);
                if (ok) {
                    f.records += op.flag_changes.empty() ? 0 : op.flag_changes.size() - 1;
                }
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
            case OpKind::Expunge:
                apply_expunge(f, op);
                break;
            case OpKind::Copy:
            case OpKind::Move: {
                out.folder = op.source_folder;
                out.target = f.id;
                for (const auto& item : op.copies) {
                    out.uid_map.emplace_back(item.source_uid, item.message.uid);
                }
                if (!ok) {
                    break;
                }
                if (!op.copies.empty()) {
                    f.records += op.copies.size() - 1;
                }
                for (auto& item : op.copies) {
                    MessageRecord& m = item.message;
                    if (has_origin_fields(m.origin)) { // a move: the ledger follows it
                        us.ledger[origin_key(m.origin.account, m.origin.uidl)] =
                            OriginEntry{m.origin, f.id, m.uid, m.commit_time, false};
                    }
                    f.uid_next = std::max(f.uid_next, m.uid + 1);
                    f.highest_modseq = std::max(f.highest_modseq, m.modseq);
                    f.messages.push_back(std::move(m));
                    const MessageRecord& added = f.messages.back();
                    notify(f, [&](Listener& l) { l.on_added(added); });
                }
                break;
            }
            }
            outcomes.push_back(std::move(out));
        }
    }
    // Source parts of moves, after every target part has been applied.
    for (auto& source : move_sources) {
        // Not a structured binding: clang 14 does not let the lambda below capture one.
        auto& f = source.first;
        auto& op = source.second;
        auto out = std::find_if(outcomes.begin(), outcomes.end(),
                                [&](const Outcome& o) { return o.ticket == op->ticket; });
        const bool copied = op->after != nullptr && op->after->state == State::Done;
        if (op->state == State::Done) {
            f->records += op->journal_bytes.empty() ? 0 : 1;
        } else if (out != outcomes.end() && out->result) {
            out->result = tl::unexpected(Error{
                op->error.code, "moved, but removal from the source failed (finished when the "
                                "user is next loaded): " +
                                    op->error.message});
        }
        // Locks on the source UIDs stay if the message may now be in both places.
        bool keep_locks = op->state == State::Uncertain ||
                          (op->state != State::Done &&
                           (copied || (op->after && op->after->state == State::Uncertain)));
        apply_expunge(*f, *op, keep_locks);
    }
    for (Batch& b : job->batches_) {
        if (b.snapshot.empty()) {
            maybe_want_compaction(*users_.find(b.user)->second->folders.at(b.folder));
        }
    }
    durable_ticket_ = std::max(durable_ticket_, job->last_ticket_);
    job_running_ = false;
    std::sort(outcomes.begin(), outcomes.end(),
              [](const Outcome& a, const Outcome& b) { return a.ticket < b.ticket; });
    return outcomes;
}

void Store::apply_expunge(FolderState& f, PendingOp& op, bool keep_locks) {
    using State = PendingOp::State;
    if (op.state != State::Uncertain && !keep_locks) {
        for (Uid uid : op.expunged.uids) {
            f.expunging.erase(uid);
        }
    }
    if (op.state != State::Done || op.expunged.uids.empty()) {
        return;
    }
    f.highest_modseq = std::max(f.highest_modseq, op.expunged.modseq);
    std::unordered_set<Uid> gone(op.expunged.uids.begin(), op.expunged.uids.end());
    for (const MessageRecord& m : f.messages) {
        if (gone.count(m.uid)) {
            ledger_expunged(f.user->ledger, m, f.id);
        }
    }
    std::erase_if(f.messages, [&](const MessageRecord& m) { return gone.count(m.uid) != 0; });
    for (Uid uid : op.expunged.uids) {
        notify(f, [&](Listener& l) { l.on_expunged(uid); });
    }
}
} // namespace popbridge::store
