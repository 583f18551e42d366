#include "proxy/store_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <spdlog/spdlog.h>

#include "proxy/password.h"
#include "proxy/store_sync.h"
#include "proxy/uv/work.h"

namespace popbridge::proxy {

namespace imap = protocol::imap;

namespace {

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

imap::Error to_imap_error(const store::Error& e) {
    using store::Errc;
    imap::StorageErrc code = imap::StorageErrc::Internal;
    switch (e.code) {
    case Errc::NotFound: code = imap::StorageErrc::NotFound; break;
    case Errc::AlreadyExists: code = imap::StorageErrc::AlreadyExists; break;
    case Errc::InvalidName: code = imap::StorageErrc::NotFound; break;
    case Errc::TooLarge: code = imap::StorageErrc::TooBig; break;
    case Errc::ReadOnly: code = imap::StorageErrc::NoPermission; break;
    case Errc::Io: code = imap::StorageErrc::Unavailable; break;
    case Errc::Busy: code = imap::StorageErrc::InUse; break;
    default: code = imap::StorageErrc::Internal; break;
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
    std::string name(user);
    std::optional<std::string> hash = svc_.accounts->password_hash(name);
    // An unknown user is checked against a dummy hash so both failures take as long.
    auto job = std::make_shared<std::pair<std::string, bool>>(std::string(password), false);
    std::string h = hash ? *hash : dummy_password_hash();
    bool known = hash.has_value();
    uv::queue_work(
        svc_.loop, [job, h] { job->second = verify_password(job->first, h); },
        [this, alive = alive_, job, name, known, done = std::move(done)](bool) {
            std::fill(job->first.begin(), job->first.end(), '\0');
            if (!*alive)
                return;
            bool ok = known && job->second;
            if (ok) {
                auto opened = svc_.store->open_user(name);
                if (!opened) {
                    spdlog::error("imap login user={} remote={} result=store_error: {}", name,
                                  remote_, opened.error().message);
                    ok = false;
                }
            }
            spdlog::info("imap login user={} remote={} result={}", name, remote_,
                         ok ? "ok" : (known ? "bad_password" : "unknown_user"));
            if (ok)
                user_ = name;
            done(ok);
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
    imap::MailboxSnapshot snap;
    snap.uid_validity = view->uid_validity;
    snap.uid_next = view->uid_next;
    snap.highest_modseq = view->highest_modseq;
    snap.read_only = read_only || view->read_only;
    snap.messages.reserve(view->messages.size());
    std::set<std::string> keywords;
    for (const store::MessageRecord& m : view->messages) {
        snap.messages.push_back(to_meta(m));
        keywords.insert(m.keywords.begin(), m.keywords.end());
    }
    snap.keywords.assign(keywords.begin(), keywords.end());
    if (auto sub = svc_.store->subscribe(user_, *folder, this); !sub)
        return tl::unexpected(to_imap_error(sub.error()));
    selected_ = *folder;
    svc_.accounts->folder_opened(user_, std::string(mailbox_utf8));
    return snap;
}

imap::Result<std::string> StoreBackend::read_message(std::uint32_t uid) {
    if (!selected_)
        return imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected");
    auto path = svc_.store->message_path(user_, *selected_, uid);
    if (!path)
        return tl::unexpected(to_imap_error(path.error()));
    // Small synchronous read from the page cache; large messages should move to the thread
    // pool with streaming output (see NOTES).
    int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return imap::make_error(imap::StorageErrc::Expunged, "message is gone");
        return imap::make_error(imap::StorageErrc::Unavailable,
                                std::string("cannot read message: ") + std::strerror(errno));
    }
    std::string out;
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return imap::make_error(imap::StorageErrc::Unavailable,
                                    std::string("cannot read message: ") + std::strerror(e));
        }
        if (n == 0)
            break;
        out.append(buf, size_t(n));
    }
    ::close(fd);
    return out;
}

void StoreBackend::store_flags(std::vector<std::uint32_t> uids, imap::FlagOp op,
                               std::uint32_t flags, std::vector<std::string> keywords,
                               std::function<void(imap::Result<void>)> done) {
    if (!selected_) {
        done(imap::make_error(imap::StorageErrc::NotFound, "no mailbox selected"));
        return;
    }
    store::FlagOp sop = op == imap::FlagOp::Add      ? store::FlagOp::Add
                        : op == imap::FlagOp::Remove ? store::FlagOp::Remove
                                                     : store::FlagOp::Set;
    store::Flags f{uint8_t(flags & imap::kPermanentFlagBits)};
    auto ticket = svc_.store->set_flags(user_, *selected_, uids, sop, f, keywords);
    if (!ticket) {
        done(tl::unexpected(to_imap_error(ticket.error())));
        return;
    }
    svc_.sync->wait(*ticket, [alive = alive_, done = std::move(done)](const store::Outcome& o) {
        if (!*alive)
            return;
        if (o.result)
            done({});
        else
            done(tl::unexpected(to_imap_error(o.result.error())));
    });
    svc_.sync->kick();
}

void StoreBackend::unselect() {
    if (selected_) {
        svc_.store->unsubscribe(user_, *selected_, this);
        selected_.reset();
    }
}

void StoreBackend::on_added(const store::MessageRecord& message) {
    if (session_)
        session_->on_message_added(to_meta(message));
}

void StoreBackend::on_flags(store::Uid uid, store::Flags flags,
                            const std::vector<std::string>& keywords, store::ModSeq modseq) {
    if (session_)
        session_->on_flags_changed(uid, flags.bits, keywords, modseq);
}

void StoreBackend::on_expunged(store::Uid uid) {
    if (session_)
        session_->on_expunged(uid);
}

void StoreBackend::on_folder_deleted() { selected_.reset(); }

} // namespace popbridge::proxy
