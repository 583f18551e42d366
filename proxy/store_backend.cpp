#include "proxy/store_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <tuple>

#include <spdlog/spdlog.h>

#include <openssl/crypto.h>

#include "proxy/login_throttle.h"
#include "proxy/metrics.h"
#include "proxy/password.h"
#include "proxy/store_sync.h"
#include "proxy/uv/work.h"

namespace popbridge::proxy {

namespace imap = protocol::imap;

namespace {

bool is_inbox_name(std::string_view n) {
    return n == "INBOX";
}

imap::MessageMeta to_meta(const store::MessageRecord& m) {
    imap::MessageMeta meta;
    meta.uid = m.uid;
    meta.size = m.size;
    meta.internal_date = m.internal_date;
    meta.tz_offset_minutes = 0;
    meta.flags = m.flags.bits; // store and IMAP use the same bit values for system flags
    meta.keywords = m.keywords;
    meta.modseq = m.modseq;
    return meta;
}

} // namespace

class SharedFolder final : public store::Listener,
                           public std::enable_shared_from_this<SharedFolder> {
public:
    using Key = std::tuple<store::Store*, std::string, store::FolderId>;

    // The folder's SharedFolder, made (and subscribed) when no session has it open.
    static store::Result<std::shared_ptr<SharedFolder>> get(store::Store* st,
                                                            const std::string& user,
                                                            store::FolderId id,
                                                            const store::FolderView& view) {
        Key key{st, user, id};
        auto& reg = registry();
        if (auto it = reg.find(key); it != reg.end())
            if (auto live = it->second.lock())
                return live;
        std::vector<imap::MessageMeta> metas;
        metas.reserve(view.messages.size());
        for (const store::MessageRecord& m : view.messages)
            metas.push_back(to_meta(m));
        auto f = std::make_shared<SharedFolder>(st, key);
        f->current_ = imap::MessageIndex::build(std::move(metas));
        if (auto sub = st->subscribe(user, id, f.get()); !sub)
            return tl::unexpected(sub.error());
        f->subscribed_ = true;
        reg[key] = f;
        return f;
    }

    SharedFolder(store::Store* st, Key key) : store_(st), key_(std::move(key)) {}
    ~SharedFolder() override {
        if (subscribed_)
            store_->unsubscribe(std::get<1>(key_), std::get<2>(key_), this);
        auto& reg = registry();
        if (auto it = reg.find(key_); it != reg.end() && it->second.expired())
            reg.erase(it);
    }

    const std::shared_ptr<const imap::MessageIndex>& current() const { return current_; }

    // Keywords used in the folder (SELECT's FLAGS), computed once per version.
    const std::vector<std::string>& keywords() {
        if (!keywords_) {
            std::set<std::string> all;
            for (const imap::MessageMeta& m : *current_)
                all.insert(m.keywords.begin(), m.keywords.end());
            keywords_.emplace(all.begin(), all.end());
        }
        return *keywords_;
    }

    void attach(StoreBackend* b) {
        b->member_slot_ = members_.size();
        members_.push_back(b);
    }
    void detach(StoreBackend* b) {
        std::size_t i = b->member_slot_;
        if (i >= members_.size() || members_[i] != b)
            return;
        if (delivering_ > 0) {
            members_[i] = nullptr; // compacted after delivery
            return;
        }
        members_[i] = members_.back();
        members_[i]->member_slot_ = i;
        members_.pop_back();
    }

    void on_added(const store::MessageRecord& message) override {
        change(imap::ChangeKind::Added, to_meta(message));
    }
    void on_flags(store::Uid uid, store::Flags flags, const std::vector<std::string>& keywords,
                  store::ModSeq modseq) override {
        imap::MessageMeta m;
        m.uid = uid;
        m.flags = flags.bits;
        m.keywords = keywords;
        m.modseq = modseq;
        change(imap::ChangeKind::Flags, m);
    }
    void on_expunged(store::Uid uid) override {
        imap::MessageMeta m;
        m.uid = uid;
        change(imap::ChangeKind::Expunged, m);
    }
    void on_folder_deleted() override {
        subscribed_ = false; // the store dropped us already
        auto self = shared_from_this();
        registry().erase(key_);
        deliver([](StoreBackend& b) { b.on_folder_deleted(); });
    }

private:
    static std::map<Key, std::weak_ptr<SharedFolder>>& registry() {
        static std::map<Key, std::weak_ptr<SharedFolder>> reg;
        return reg;
    }

    void change(imap::ChangeKind kind, const imap::MessageMeta& meta) {
        auto self = shared_from_this(); // a member may close the last session meanwhile
        std::shared_ptr<const imap::MessageIndex> before = current_;
        imap::MessageIndex::Editor ed(before);
        imap::apply_change(ed, kind, meta);
        current_ = ed.finish();
        if (current_ != before)
            keywords_.reset();
        std::shared_ptr<const imap::MessageIndex> after = current_;
        deliver([&](StoreBackend& b) { b.on_change(kind, meta, before, after); });
    }

    template <class F>
    void deliver(F&& fn) {
        ++delivering_;
        // Members that join during delivery already have the new version: not called.
        std::size_t n = members_.size();
        for (std::size_t i = 0; i < n; ++i)
            if (StoreBackend* b = members_[i])
                fn(*b);
        if (--delivering_ == 0 &&
            std::find(members_.begin(), members_.end(), nullptr) != members_.end()) {
            std::erase(members_, nullptr);
            for (std::size_t i = 0; i < members_.size(); ++i)
                members_[i]->member_slot_ = i;
        }
    }

    store::Store* store_;
    Key key_;
    bool subscribed_ = false;
    std::shared_ptr<const imap::MessageIndex> current_;
    std::optional<std::vector<std::string>> keywords_;
    std::vector<StoreBackend*> members_;
    int delivering_ = 0;
    friend std::size_t shared_folder_count();
};

std::size_t shared_folder_count() {
    std::size_t n = 0;
    for (const auto& [k, w] : SharedFolder::registry())
        n += w.expired() ? 0 : 1;
    return n;
}

imap::StructureCache& shared_structure_cache() {
    static imap::StructureCache cache(kStructureCacheBytes);
    return cache;
}

imap::Error to_imap_error(const store::Error& e) {
    using store::Errc;
    imap::StorageErrc code = imap::StorageErrc::Internal;
    switch (e.code) {
    case Errc::NotFound:
        code = imap::StorageErrc::NotFound;
        break;
    case Errc::AlreadyExists:
        code = imap::StorageErrc::AlreadyExists;
        break;
    case Errc::InvalidName:
        code = imap::StorageErrc::NoPermission;
        break;
    case Errc::TooLarge:
        code = imap::StorageErrc::TooBig;
        break;
    case Errc::ReadOnly:
        code = imap::StorageErrc::NoPermission;
        break;
    case Errc::Io:
        code = imap::StorageErrc::Unavailable;
        break;
    case Errc::Busy:
        code = imap::StorageErrc::InUse;
        break;
    case Errc::HasChildren:
        code = imap::StorageErrc::HasChildren;
        break;
    case Errc::InvalidState:
        code = imap::StorageErrc::NoPermission;
        break;
    default:
        code = imap::StorageErrc::Internal;
        break;
    }
    return imap::Error{code, e.message, false};
}

StoreBackend::StoreBackend(BackendServices services, std::string remote)
    : svc_(services), remote_(std::move(remote)) {}

StoreBackend::~StoreBackend() {
    *alive_ = false;
    unselect();
}

void StoreBackend::login(std::string_view user, std::string_view password,
                         std::function<void(bool ok)> done) {
    auto job = std::make_shared<LoginJob>();
    job->user = std::string(user);
    job->password = std::string(password);
    job->done = std::move(done);
    wait_then_check(std::move(job));
}

// Waits out the pending delay of this account and address before the password is looked
// at (login_throttle.h): a client with many connections, or one that hangs up instead of
// waiting for the NO, gets no faster answers than one that waits. Asks again after each
// wait, since another check may have started meanwhile; never longer than the cap in total.
void StoreBackend::wait_then_check(std::shared_ptr<LoginJob> job) {
    LoginThrottle& throttle = login_throttle();
    auto now = std::chrono::steady_clock::now();
    std::string address = throttle_address_key(remote_);
    auto wait = std::min(throttle.wait_before_check(job->user, address, now),
                         throttle.limits().max - job->waited);
    if (wait.count() > 0) {
        job->waited += wait;
        delay_ = std::make_unique<uv::Timer>(svc_.loop);
        delay_->start(static_cast<std::uint64_t>(wait.count()), 0,
                      [this, job]() mutable { wait_then_check(std::move(job)); });
        return;
    }
    throttle.begin_check(job->user, address, now);
    check_login(std::move(job));
}

void StoreBackend::check_login(std::shared_ptr<LoginJob> job) {
    std::optional<std::string> hash = svc_.accounts->password_hash(job->user);
    // An unknown user is checked against a dummy hash so both failures take as long.
    std::string h = hash ? *hash : dummy_password_hash();
    bool known = hash.has_value();
    uv::queue_work(
        svc_.loop, [job, h] { job->ok = verify_password(job->password, h); },
        [this, alive = alive_, job, known](bool) {
            OPENSSL_cleanse(job->password.data(), job->password.size());
            job->password.clear();
            if (!*alive)
                return;
            const std::string& name = job->user;
            bool ok = known && job->ok;
            if (ok) {
                auto opened = svc_.store->open_user(name);
                if (!opened) {
                    spdlog::error("imap login remote={} user={} result=store_error: {}",
                                  remote_host(remote_), log_quote(name), opened.error().message);
                    ok = false;
                }
            }
            metrics().imap.login(ok);
            auto now = std::chrono::steady_clock::now();
            std::string address = throttle_address_key(remote_);
            if (ok) {
                login_throttle().succeeded(name, address, now);
                spdlog::info("imap login remote={} user={} result=ok", remote_host(remote_),
                             log_quote(name));
                user_ = name;
                job->done(true);
                return;
            }
            // The same delay rule for both causes, so timing tells nothing about which it was.
            auto delay = login_throttle().failed(name, address, now);
            // The fail2ban line (README.md "fail2ban"): remote= comes first and the untrusted
            // name is quoted, so nothing in it can pass for another field.
            spdlog::warn("imap auth failed remote={} user={} reason={} delay_ms={} "
                         "failures_user={} failures_remote={}",
                         remote_host(remote_), log_quote(name),
                         !known    ? "unknown_user"
                         : job->ok ? "store_error"
                                   : "bad_password",
                         delay.count(), login_throttle().failures_for_user(name, now),
                         login_throttle().failures_for_address(address, now));
            delay_ = std::make_unique<uv::Timer>(svc_.loop);
            delay_->start(static_cast<std::uint64_t>(delay.count()), 0,
                          [job] { job->done(false); });
        });
}

imap::Result<imap::MailboxSnapshot> StoreBackend::select(std::string_view mailbox_utf8,
                                                         bool read_only) {
    unselect();
    if (user_.empty())
        return imap::make_error(imap::StorageErrc::NoPermission, "not logged in");
    auto folder = svc_.store->find_folder(user_, mailbox_utf8);
    if (!folder)
        return tl::unexpected(to_imap_error(folder.error()));
    auto view = svc_.store->view(user_, *folder);
    if (!view)
        return tl::unexpected(to_imap_error(view.error()));
    auto shared = SharedFolder::get(svc_.store, user_, *folder, *view);
    if (!shared)
        return tl::unexpected(to_imap_error(shared.error()));
    imap::MailboxSnapshot snap;
    snap.uid_validity = view->uid_validity;
    snap.uid_next = view->uid_next;
    snap.highest_modseq = view->highest_modseq;
    snap.read_only = read_only || view->read_only;
    snap.index = (*shared)->current();
    snap.keywords = (*shared)->keywords();
    folder_ = std::move(*shared);
    folder_->attach(this);
    selected_ = *folder;
    selected_uid_validity_ = view->uid_validity;
    selected_name_ = std::string(mailbox_utf8);
    svc_.accounts->folder_opened(user_, selected_name_);
    return snap;
}

namespace {

imap::Error read_error(int e) {
    if (e == ENOENT)
        return imap::Error{imap::StorageErrc::Expunged, "message is gone", false};
    return imap::Error{imap::StorageErrc::Unavailable,
                       std::string("cannot read message: ") + std::strerror(e), false};
}

// Whole file from an open fd, which it closes; any thread.
imap::Result<std::string> read_whole_fd(int fd) {
    std::string out;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0)
        out.reserve(static_cast<std::size_t>(st.st_size));
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return tl::unexpected(read_error(e));
        }
        if (n == 0)
            break;
        out.append(buf, size_t(n));
    }
    ::close(fd);
    return out;
}

// Whole file; any thread.
imap::Result<std::string> read_whole_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tl::unexpected(read_error(errno));
    return read_whole_fd(fd);
}

// [offset, offset + max) of `fd` if the page cache holds all of it: preadv2(RWF_NOWAIT)
// never waits for the disk, so the loop may call it. nullopt when some of it is not cached
// (EAGAIN) or the kernel cannot tell; the caller then reads in the thread pool.
std::optional<std::string> read_cached(int fd, std::uint64_t offset, std::size_t max) {
    std::string out(max, '\0');
    std::size_t got = 0;
    while (got < max) {
        iovec iov{out.data() + got, max - got};
        ssize_t n = ::preadv2(fd, &iov, 1, static_cast<off_t>(offset + got), RWF_NOWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return std::nullopt;
        if (n == 0)
            break;
        got += size_t(n);
    }
    out.resize(got);
    return out;
}

// Messages up to this size are read on the loop when the page cache has them (a pool
// round trip costs more than the copy); larger ones, and any not cached, in the pool.
constexpr std::uint64_t kLoopReadMax = 256 * 1024;

// A message file held open; pieces are read with pread() in the thread pool. The fd is
// closed when the last holder (the session's FetchJob or a running read) lets go.
class FileMessageSource final : public imap::MessageSource,
                                public std::enable_shared_from_this<FileMessageSource> {
public:
    FileMessageSource(uv_loop_t* loop, int fd, std::uint64_t size)
        : loop_(loop), fd_(fd), size_(size) {}
    ~FileMessageSource() override { ::close(fd_); }
    std::uint64_t size() const override { return size_; }
    void read(std::uint64_t offset, std::size_t max,
              std::function<void(imap::Result<std::string>)> done) override {
        if (max <= kLoopReadMax)
            if (auto cached = read_cached(fd_, offset, max)) {
                done(std::move(*cached));
                return;
            }
        struct Job {
            imap::Result<std::string> result;
        };
        auto job = std::make_shared<Job>();
        auto self = shared_from_this();
        uv::queue_work(
            loop_,
            [self, job, offset, max] {
                std::string out(max, '\0');
                std::size_t got = 0;
                while (got < max) {
                    ssize_t n = ::pread(self->fd_, out.data() + got, max - got,
                                        static_cast<off_t>(offset + got));
                    if (n < 0 && errno == EINTR)
                        continue;
                    if (n < 0) {
                        job->result = tl::unexpected(read_error(errno));
                        return;
                    }
                    if (n == 0)
                        break;
                    got += size_t(n);
                }
                out.resize(got);
                job->result = std::move(out);
            },
            [job, done = std::move(done)](bool ran) {
                if (!ran)
                    job->result = imap::make_error(imap::StorageErrc::Unavailable, "shutting down");
                done(std::move(job->result));
            });
    }

private:
    uv_loop_t* loop_;
    int fd_;
    std::uint64_t size_;
};

} // namespace

imap::Result<std::string> StoreBackend::read_message(std::uint32_t uid) {
    if (!selected_)
        return imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected");
    auto path = svc_.store->message_path(user_, *selected_, uid);
    if (!path)
        return tl::unexpected(to_imap_error(path.error()));
    return read_whole_file(path->string());
}

void StoreBackend::read_message_async(std::uint32_t uid,
                                      std::function<void(imap::Result<std::string>)> done) {
    if (!selected_)
        return done(imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected"));
    auto path = svc_.store->message_path(user_, *selected_, uid);
    if (!path)
        return done(tl::unexpected(to_imap_error(path.error())));
    // Small and cached: read now. Otherwise the pool reads it (from the fd opened here).
    int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return done(tl::unexpected(read_error(errno)));
    struct stat st {};
    if (::fstat(fd, &st) == 0 && std::uint64_t(st.st_size) <= kLoopReadMax)
        if (auto cached = read_cached(fd, 0, std::size_t(st.st_size) + 1)) {
            ::close(fd);
            return done(std::move(*cached));
        }
    auto result = std::make_shared<imap::Result<std::string>>();
    uv::queue_work(
        svc_.loop, [result, fd] { *result = read_whole_fd(fd); },
        [result, done = std::move(done), alive = alive_](bool ran) {
            if (!*alive)
                return;
            if (!ran)
                *result = imap::make_error(imap::StorageErrc::Unavailable, "shutting down");
            done(std::move(*result));
        });
}

imap::Result<std::shared_ptr<const imap::MessageStructure>>
StoreBackend::message_structure(std::uint32_t uid, const std::string* loaded) {
    if (!selected_)
        return imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected");
    imap::StructureKey key{user_, *selected_, selected_uid_validity_, uid};
    imap::StructureCache& cache = shared_structure_cache();
    if (auto hit = cache.find(key))
        return hit;
    std::string read;
    if (loaded == nullptr) {
        auto bytes = read_message(uid);
        if (!bytes)
            return tl::unexpected(bytes.error());
        read = std::move(*bytes);
        loaded = &read;
    }
    auto computed =
        std::make_shared<const imap::MessageStructure>(imap::compute_message_structure(*loaded));
    if (computed->truncated)
        spdlog::warn("imap mime user={} mailbox={} uid={} size={}: MIME limits reached, "
                     "structure cut (BODY[] is still served whole)",
                     user_, selected_name_, uid, loaded->size());
    cache.insert(key, computed);
    return computed;
}

void StoreBackend::message_structure_async(
    std::uint32_t uid, std::shared_ptr<const std::string> loaded,
    std::function<void(imap::Result<std::shared_ptr<const imap::MessageStructure>>)> done) {
    if (!selected_)
        return done(imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected"));
    imap::StructureKey key{user_, *selected_, selected_uid_validity_, uid};
    if (auto hit = shared_structure_cache().find(key))
        return done(hit);
    std::string path;
    if (!loaded) {
        auto p = svc_.store->message_path(user_, *selected_, uid);
        if (!p)
            return done(tl::unexpected(to_imap_error(p.error())));
        path = p->string();
    }
    struct Job {
        imap::Result<std::shared_ptr<const imap::MessageStructure>> result;
        std::uint64_t size = 0;
    };
    auto job = std::make_shared<Job>();
    uv::queue_work(
        svc_.loop,
        [job, loaded, path] {
            imap::Result<std::string> read;
            const std::string* bytes = loaded.get();
            if (bytes == nullptr) {
                read = read_whole_file(path);
                if (!read) {
                    job->result = tl::unexpected(read.error());
                    return;
                }
                bytes = &*read;
            }
            job->size = bytes->size();
            job->result = std::make_shared<const imap::MessageStructure>(
                imap::compute_message_structure(*bytes));
        },
        [job, key, done = std::move(done), alive = alive_, user = user_, name = selected_name_,
         uid](bool ran) {
            if (!ran)
                job->result = imap::make_error(imap::StorageErrc::Unavailable, "shutting down");
            if (job->result) {
                if ((*job->result)->truncated)
                    spdlog::warn("imap mime user={} mailbox={} uid={} size={}: MIME limits "
                                 "reached, structure cut (BODY[] is still served whole)",
                                 user, name, uid, job->size);
                shared_structure_cache().insert(key, *job->result);
            }
            if (*alive)
                done(std::move(job->result));
        });
}

void StoreBackend::open_message(
    std::uint32_t uid,
    std::function<void(imap::Result<std::shared_ptr<imap::MessageSource>>)> done) {
    if (!selected_)
        return done(imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected"));
    auto path = svc_.store->message_path(user_, *selected_, uid);
    if (!path)
        return done(tl::unexpected(to_imap_error(path.error())));
    struct Job {
        int fd = -1;
        std::uint64_t size = 0;
        int error = 0;
    };
    auto job = std::make_shared<Job>();
    uv::queue_work(
        svc_.loop,
        [job, p = path->string()] {
            job->fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
            if (job->fd < 0) {
                job->error = errno;
                return;
            }
            struct stat st {};
            if (::fstat(job->fd, &st) != 0) {
                job->error = errno;
                ::close(job->fd);
                job->fd = -1;
                return;
            }
            job->size = static_cast<std::uint64_t>(st.st_size);
        },
        [job, loop = svc_.loop, done = std::move(done), alive = alive_](bool ran) {
            std::shared_ptr<imap::MessageSource> source;
            if (job->fd >= 0)
                source = std::make_shared<FileMessageSource>(loop, job->fd, job->size);
            if (!*alive)
                return; // `source` closes the file
            if (source)
                done(std::move(source));
            else if (!ran)
                done(imap::make_error(imap::StorageErrc::Unavailable, "shutting down"));
            else
                done(tl::unexpected(read_error(job->error)));
        });
}

void StoreBackend::scan_messages(std::vector<std::uint32_t> uids, imap::ScanTest test,
                                 std::function<void(std::vector<bool>)> done) {
    // Paths are looked up now, on the loop (the index is loop-only); a message expunged
    // meanwhile fails to open and is tested without content. The pool works through the
    // list in batches, one at a time, so one SEARCH takes one pool thread.
    struct Scan {
        std::vector<std::string> paths; // empty: not in the store
        imap::ScanTest test;
        std::vector<bool> verdicts;
        std::size_t next = 0;
        std::function<void(std::vector<bool>)> done;
    };
    auto scan = std::make_shared<Scan>();
    scan->paths.reserve(uids.size());
    for (std::uint32_t uid : uids) {
        std::string path;
        if (selected_)
            if (auto p = svc_.store->message_path(user_, *selected_, uid))
                path = p->string();
        scan->paths.push_back(std::move(path));
    }
    scan->test = std::move(test);
    scan->verdicts.assign(uids.size(), false);
    scan->done = std::move(done);
    auto step = std::make_shared<std::function<void()>>();
    *step = [scan, step_weak = std::weak_ptr<std::function<void()>>(step), loop = svc_.loop,
             alive = alive_] {
        if (!*alive)
            return;
        if (scan->next >= scan->paths.size()) {
            scan->done(std::move(scan->verdicts));
            return;
        }
        auto step = step_weak.lock();
        uv::queue_work(
            loop,
            [scan] {
                std::uint64_t bytes_read = 0;
                while (scan->next < scan->paths.size() && bytes_read < kScanBatchBytes) {
                    std::size_t i = scan->next++;
                    std::optional<std::string> bytes;
                    bool tried = false;
                    std::function<std::string*()> load = [&]() -> std::string* {
                        if (!tried) {
                            tried = true;
                            if (!scan->paths[i].empty())
                                if (auto r = read_whole_file(scan->paths[i])) {
                                    bytes = std::move(*r);
                                    bytes_read += bytes->size();
                                }
                        }
                        return bytes ? &*bytes : nullptr;
                    };
                    scan->verdicts[i] = scan->test(i, load);
                    bytes_read += 1024; // bounds a batch of messages that need no read
                }
            },
            [scan, step, alive](bool ran) {
                if (!*alive)
                    return;
                if (!ran)
                    scan->next = scan->paths.size();
                (*step)();
            });
    };
    (*step)();
}

void StoreBackend::store_flags(std::vector<std::uint32_t> uids, imap::FlagOp op,
                               std::uint32_t flags, std::vector<std::string> keywords,
                               std::function<void(imap::Result<void>)> done) {
    store_flags_ex(std::move(uids), op, flags, std::move(keywords), std::nullopt,
                   [done = std::move(done)](imap::Result<imap::StoreResult> r) {
                       if (r)
                           done({});
                       else
                           done(tl::unexpected(r.error()));
                   });
}

void StoreBackend::store_flags_ex(std::vector<std::uint32_t> uids, imap::FlagOp op,
                                  std::uint32_t flags, std::vector<std::string> keywords,
                                  std::optional<std::uint64_t> unchanged_since,
                                  std::function<void(imap::Result<imap::StoreResult>)> done) {
    if (!selected_) {
        done(imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected"));
        return;
    }
    store::FlagOp sop = op == imap::FlagOp::Add      ? store::FlagOp::Add
                        : op == imap::FlagOp::Remove ? store::FlagOp::Remove
                                                     : store::FlagOp::Set;
    store::Flags f{uint8_t(flags & imap::kPermanentFlagBits)};
    auto ticket = svc_.store->set_flags(user_, *selected_, uids, sop, f, keywords, unchanged_since);
    if (!ticket) {
        done(tl::unexpected(to_imap_error(ticket.error())));
        return;
    }
    svc_.sync->wait(*ticket, [alive = alive_, done = std::move(done)](const store::Outcome& o) {
        if (!*alive)
            return;
        if (!o.result) {
            done(tl::unexpected(to_imap_error(o.result.error())));
            return;
        }
        imap::StoreResult r;
        r.modified.assign(o.modified.begin(), o.modified.end());
        std::sort(r.modified.begin(), r.modified.end());
        done(std::move(r));
    });
    svc_.sync->kick();
}

imap::Result<std::vector<imap::MailboxInfo>> StoreBackend::list_mailboxes() {
    auto folders = svc_.store->list_folders(user_);
    if (!folders)
        return tl::unexpected(to_imap_error(folders.error()));
    auto subs = svc_.store->list_subscribed(user_);
    if (!subs)
        return tl::unexpected(to_imap_error(subs.error()));
    std::set<std::string, std::less<>> subscribed(subs->begin(), subs->end());
    std::vector<imap::MailboxInfo> out;
    for (const store::FolderInfo& f : *folders) {
        imap::MailboxInfo mb;
        mb.name = f.name;
        mb.subscribed = subscribed.count(f.name) != 0;
        mb.special_use = std::string(store::to_string(f.special_use));
        out.push_back(std::move(mb));
    }
    return out;
}

imap::Result<imap::MailboxStatus> StoreBackend::status(std::string_view mailbox_utf8) {
    auto folder = svc_.store->find_folder(user_, mailbox_utf8);
    if (!folder)
        return tl::unexpected(to_imap_error(folder.error()));
    auto view = svc_.store->view(user_, *folder);
    if (!view)
        return tl::unexpected(to_imap_error(view.error()));
    imap::MailboxStatus st;
    st.messages = static_cast<std::uint32_t>(view->messages.size());
    st.uid_next = view->uid_next;
    st.uid_validity = view->uid_validity;
    st.highest_modseq = view->highest_modseq;
    for (const store::MessageRecord& m : view->messages) {
        if ((m.flags.bits & imap::kFlagSeen) == 0)
            ++st.unseen;
        if ((m.flags.bits & imap::kFlagDeleted) != 0)
            ++st.deleted;
        st.size += m.size;
    }
    return st;
}

imap::Result<void> StoreBackend::create_mailbox(std::string_view mailbox_utf8) {
    auto r = svc_.store->create_folder(user_, mailbox_utf8);
    if (!r)
        return tl::unexpected(to_imap_error(r.error()));
    spdlog::info("imap create user={} mailbox={}", user_, mailbox_utf8);
    return {};
}

imap::Result<void> StoreBackend::delete_mailbox(std::string_view mailbox_utf8) {
    auto folder = svc_.store->find_folder(user_, mailbox_utf8);
    if (!folder)
        return tl::unexpected(to_imap_error(folder.error()));
    auto r = svc_.store->delete_folder(user_, *folder);
    if (!r) {
        imap::Error e = to_imap_error(r.error());
        if (r.error().code == store::Errc::HasChildren)
            e.message = "Delete the mailboxes below it first";
        return tl::unexpected(std::move(e));
    }
    spdlog::info("imap delete user={} mailbox={}", user_, mailbox_utf8);
    return {};
}

imap::Result<void> StoreBackend::rename_mailbox(std::string_view from, std::string_view to) {
    auto folder = svc_.store->find_folder(user_, from);
    if (!folder)
        return tl::unexpected(to_imap_error(folder.error()));
    if (!is_inbox_name(from)) {
        auto r = svc_.store->rename_folder(user_, *folder, to);
        if (!r)
            return tl::unexpected(to_imap_error(r.error()));
        spdlog::info("imap rename user={} from={} to={}", user_, from, to);
        return {};
    }
    // RFC 3501 6.3.5: renaming INBOX moves its messages to the new mailbox; INBOX stays.
    auto target = svc_.store->create_folder(user_, to);
    if (!target)
        return tl::unexpected(to_imap_error(target.error()));
    auto view = svc_.store->view(user_, *folder);
    if (!view)
        return tl::unexpected(to_imap_error(view.error()));
    std::vector<store::Uid> uids;
    for (const store::MessageRecord& m : view->messages)
        uids.push_back(m.uid);
    if (!uids.empty()) {
        auto ticket = svc_.store->move(user_, *folder, uids, *target);
        if (!ticket)
            return tl::unexpected(to_imap_error(ticket.error()));
        svc_.sync->kick();
    }
    spdlog::info("imap rename user={} from=INBOX to={} messages={}", user_, to, uids.size());
    return {};
}

imap::Result<void> StoreBackend::set_subscribed(std::string_view mailbox_utf8, bool subscribed) {
    auto r = subscribed ? svc_.store->subscribe_name(user_, mailbox_utf8)
                        : svc_.store->unsubscribe_name(user_, mailbox_utf8);
    if (!r)
        return tl::unexpected(to_imap_error(r.error()));
    return {};
}

void StoreBackend::append(std::string_view mailbox_utf8, std::string message, std::uint32_t flags,
                          std::vector<std::string> keywords, std::optional<std::int64_t> date,
                          std::function<void(imap::Result<imap::AppendResult>)> done) {
    auto folder = svc_.store->find_folder(user_, mailbox_utf8);
    if (!folder) {
        done(tl::unexpected(to_imap_error(folder.error())));
        return;
    }
    auto view = svc_.store->view(user_, *folder);
    if (!view) {
        done(tl::unexpected(to_imap_error(view.error())));
        return;
    }
    std::uint32_t validity = view->uid_validity;
    std::int64_t when = date ? *date : static_cast<std::int64_t>(std::time(nullptr));
    store::Flags f{uint8_t(flags & imap::kPermanentFlagBits)};
    auto ticket = svc_.store->append(user_, *folder, message, f, keywords, when);
    if (!ticket) {
        done(tl::unexpected(to_imap_error(ticket.error())));
        return;
    }
    svc_.sync->wait(*ticket,
                    [alive = alive_, validity, done = std::move(done)](const store::Outcome& o) {
                        if (!*alive)
                            return;
                        if (!o.result) {
                            done(tl::unexpected(to_imap_error(o.result.error())));
                            return;
                        }
                        done(imap::AppendResult{validity, o.uid});
                    });
    svc_.sync->kick();
}

void StoreBackend::copy(std::vector<std::uint32_t> uids, std::string_view dest_utf8, bool move,
                        std::function<void(imap::Result<imap::CopyResult>)> done) {
    if (!selected_) {
        done(imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected"));
        return;
    }
    auto target = svc_.store->find_folder(user_, dest_utf8);
    if (!target) {
        done(tl::unexpected(to_imap_error(target.error())));
        return;
    }
    auto view = svc_.store->view(user_, *target);
    if (!view) {
        done(tl::unexpected(to_imap_error(view.error())));
        return;
    }
    std::uint32_t validity = view->uid_validity;
    auto ticket = move ? svc_.store->move(user_, *selected_, uids, *target)
                       : svc_.store->copy(user_, *selected_, uids, *target);
    if (!ticket) {
        done(tl::unexpected(to_imap_error(ticket.error())));
        return;
    }
    svc_.sync->wait(*ticket,
                    [alive = alive_, validity, done = std::move(done)](const store::Outcome& o) {
                        if (!*alive)
                            return;
                        if (!o.result && o.uid_map.empty()) {
                            done(tl::unexpected(to_imap_error(o.result.error())));
                            return;
                        }
                        imap::CopyResult r;
                        r.uid_validity = validity;
                        for (const auto& [src, dst] : o.uid_map) {
                            r.source_uids.push_back(src);
                            r.dest_uids.push_back(dst);
                        }
                        done(std::move(r));
                    });
    svc_.sync->kick();
}

void StoreBackend::expunge(std::optional<std::vector<std::uint32_t>> uids,
                           std::function<void(imap::Result<std::vector<std::uint32_t>>)> done) {
    if (!selected_) {
        done(imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected"));
        return;
    }
    auto view = svc_.store->view(user_, *selected_);
    if (!view) {
        done(tl::unexpected(to_imap_error(view.error())));
        return;
    }
    std::vector<store::Uid> doomed;
    for (const store::MessageRecord& m : view->messages) {
        if ((m.flags.bits & imap::kFlagDeleted) == 0)
            continue;
        if (uids && !std::binary_search(uids->begin(), uids->end(), m.uid))
            continue;
        doomed.push_back(m.uid);
    }
    if (doomed.empty()) {
        done(std::vector<std::uint32_t>{});
        return;
    }
    auto ticket = svc_.store->expunge(user_, *selected_, doomed);
    if (!ticket) {
        done(tl::unexpected(to_imap_error(ticket.error())));
        return;
    }
    svc_.sync->wait(*ticket,
                    [alive = alive_, doomed, done = std::move(done)](const store::Outcome& o) {
                        if (!*alive)
                            return;
                        if (!o.result) {
                            done(tl::unexpected(to_imap_error(o.result.error())));
                            return;
                        }
                        done(std::vector<std::uint32_t>(doomed.begin(), doomed.end()));
                    });
    svc_.sync->kick();
}

void StoreBackend::idle_started() {
    if (selected_)
        svc_.accounts->folder_opened(user_, selected_name_);
}

void StoreBackend::unselect() {
    if (folder_) {
        folder_->detach(this);
        folder_.reset();
    }
    selected_.reset();
}

std::shared_ptr<const imap::MessageIndex> StoreBackend::current_index() const {
    return folder_ ? folder_->current() : nullptr;
}

void StoreBackend::on_change(imap::ChangeKind kind, const imap::MessageMeta& meta,
                             const std::shared_ptr<const imap::MessageIndex>& before,
                             const std::shared_ptr<const imap::MessageIndex>& after) {
    if (!session_)
        return;
    switch (kind) {
    case imap::ChangeKind::Added:
        session_->on_message_added(meta, before, after);
        break;
    case imap::ChangeKind::Flags:
        session_->on_flags_changed(meta.uid, meta.flags, meta.keywords, meta.modseq, before, after);
        break;
    case imap::ChangeKind::Expunged:
        session_->on_expunged(meta.uid, before, after);
        break;
    }
}

void StoreBackend::on_folder_deleted() {
    if (folder_) {
        folder_->detach(this);
        folder_.reset();
    }
    selected_.reset();
}

} // namespace popbridge::proxy
