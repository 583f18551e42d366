// The worker side of the group-commit protocol (store.h): blocking I/O only, touching
// nothing but the job.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include "store/atomic_file.h"
#include "store/store_internal.h"

namespace popbridge::store {

namespace fs = std::filesystem;
using detail::Batch;
using detail::kMaxSyncThreads;
using detail::PendingOp;
using detail::run_parallel;

namespace {

using State = PendingOp::State;

void fail(PendingOp& op, State state, Error e) {
    op.state = state;
    op.error = std::move(e);
}

Error injected(std::string_view step, const fs::path& p) {
    return Error{Errc::Io, "injected failure at " + std::string(step) + " (" + p.string() + ")"};
}

bool writes_files(const PendingOp& op) {
    return op.kind == OpKind::Ingest || op.kind == OpKind::Copy || op.kind == OpKind::Move;
}

// Copies from -> to (a new file) with fdatasync; for when link(2) cannot be used.
Result<void> copy_message_file(const fs::path& from, const fs::path& to) {
    int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return tl::unexpected(io_error("open", from, errno));
    }
    int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        int err = errno;
        ::close(in);
        return tl::unexpected(io_error("open", to, err));
    }
    Result<void> r;
    char buf[65536];
    while (r) {
        ssize_t n = ::read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            r = tl::unexpected(io_error("read", from, errno));
            break;
        }
        if (n == 0) {
            break;
        }
        r = write_all(out, std::span<const char>(buf, static_cast<std::size_t>(n)), to);
    }
    if (r && ::fdatasync(out) != 0) {
        r = tl::unexpected(io_error("fdatasync", to, errno));
    }
    ::close(in);
    ::close(out);
    if (!r) {
        ::unlink(to.c_str());
    }
    return r;
}

} // namespace

void detail::run_parallel(std::size_t tasks,
                          const std::function<void(std::size_t)>& task) noexcept {
    if (tasks == 0) {
        return;
    }
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
        for (std::size_t i = next.fetch_add(1); i < tasks; i = next.fetch_add(1)) {
            task(i);
        }
    };
    std::vector<std::thread> helpers;
    try {
        const std::size_t want = std::min(tasks, kMaxSyncThreads) - 1;
        helpers.reserve(want);
        for (std::size_t t = 0; t < want; ++t) {
            helpers.emplace_back(worker);
        }
    } catch (...) {
        // No thread (EAGAIN) or no memory: the helpers that did start, and this thread,
        // take every task anyway.
    }
    worker();
    for (auto& h : helpers) {
        h.join();
    }
}

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
    // Pass 1: everything but the source parts of moves; pass 2: those, once their
    // target part is durable. Expunged files go last, so a copy in this job can still
    // link a file that an expunge in this job removes.
    for (auto& batch : batches_) {
        if (batch.snapshot.empty()) {
            run_batch(batch, false);
        }
    }
    for (auto& batch : batches_) {
        if (batch.snapshot.empty()) {
            run_batch(batch, true);
        }
    }
    for (auto& batch : batches_) {
        if (!batch.snapshot.empty()) {
            run_compaction(batch);
        }
    }
    for (const auto& p : unlink_after_) {
        ::unlink(p.c_str());
    }
    ran_ = true;
}

void SyncJob::run_compaction(Batch& batch) {
    const fs::path tmp = batch.dir / kCompactFile;
    const fs::path index = batch.dir / kIndexFile;
    int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        batch.compact_error = io_error("open", tmp, errno).message;
        return;
    }
    Result<void> r;
    if (fault("compact_write")) {
        r = tl::unexpected(injected("compact_write", tmp));
    } else {
        r = write_all(fd, batch.snapshot, tmp);
    }
    if (r && fault("compact_fsync")) {
        r = tl::unexpected(injected("compact_fsync", tmp));
    } else if (r && ::fdatasync(fd) != 0) {
        r = tl::unexpected(io_error("fdatasync", tmp, errno));
    }
    if (r && ::rename(tmp.c_str(), index.c_str()) != 0) {
        r = tl::unexpected(io_error("rename", tmp, errno));
    }
    if (!r) {
        ::close(fd);
        ::unlink(tmp.c_str());
        batch.compact_error = r.error().message;
        return;
    }
    // Renamed: from now on the new file is the index, whatever happens next.
    batch.new_journal_fd = fd;
    batch.journal_size = batch.snapshot.size();
    if (auto d = fsync_dir(batch.dir); !d) {
        // The rename may not be durable; appending to the new file could be lost.
        batch.read_only = true;
        batch.read_only_reason = d.error().message;
    }
}

void SyncJob::run_batch(Batch& batch, bool second_pass) {
    const fs::path tmp_dir = batch.dir / "tmp";
    const fs::path cur_dir = batch.dir / "cur";
    const fs::path journal = batch.dir / kIndexFile;

    std::vector<PendingOp*> ops;
    for (auto& op : batch.ops) {
        if (op.state == State::Queued && (op.move_source == second_pass)) {
            ops.push_back(&op);
        }
    }
    if (ops.empty()) {
        return;
    }
    if (second_pass) {
        for (PendingOp* op : ops) {
            if (op->after == nullptr) {
                fail(*op, State::Failed, Error{Errc::InvalidState, "move without its target"});
            } else if (op->after->state != State::Done) {
                fail(*op, State::Failed,
                     Error{op->after->error.code,
                           "not removed from the source: copy into the target failed: " +
                               op->after->error.message});
            }
        }
    }
    if (batch.read_only) {
        for (PendingOp* op : ops) {
            if (op->state == State::Queued) {
                fail(*op, State::Failed,
                     Error{Errc::ReadOnly, "folder is read-only: " + batch.read_only_reason});
            }
        }
    }

    // 1. Message contents durable and their tmp/ entries too (the journal will point at
    //    them). Copies are linked (or copied) here first, since that adds tmp/ entries.
    //    Then every ingested file's fdatasync and the one fsync of tmp/ run at once on
    //    up to kMaxSyncThreads threads: their order does not matter, only that all are
    //    done before the journal names the files (see run_parallel). Fault hooks are
    //    asked here, in op order, on this thread.
    std::vector<PendingOp*> file_syncs;
    for (PendingOp* op : ops) {
        if (op->state != State::Queued) {
            continue;
        }
        if (op->kind == OpKind::Ingest) {
            if (fault("message_fsync")) {
                fail(*op, State::Failed, injected("message_fsync", tmp_dir / op->tmp_name));
            } else {
                file_syncs.push_back(op);
            }
        } else if (op->kind == OpKind::Copy || op->kind == OpKind::Move) {
            // The source files were fdatasync'ed when they were committed; a link shares
            // those blocks, so only the new directory entry needs to become durable.
            std::size_t made = 0;
            for (auto& item : op->copies) {
                fs::path to = tmp_dir / item.tmp_name;
                Result<void> r;
                if (fault("copy_link")) {
                    r = tl::unexpected(injected("copy_link", to));
                } else if (::link(item.source.c_str(), to.c_str()) != 0) {
                    int err = errno;
                    if (err == EXDEV || err == EMLINK || err == EPERM || err == ENOTSUP) {
                        r = copy_message_file(item.source, to);
                    } else {
                        r = tl::unexpected(io_error("link", item.source, err));
                    }
                }
                if (!r) {
                    fail(*op, State::Failed, r.error());
                    break;
                }
                ++made;
            }
            if (op->state == State::Failed) {
                for (std::size_t i = 0; i < made; ++i) {
                    ::unlink((tmp_dir / op->copies[i].tmp_name).c_str());
                }
            }
        }
    }
    bool any_files = std::any_of(ops.begin(), ops.end(), [](const PendingOp* op) {
        return writes_files(*op) && op->state == State::Queued;
    });
    Result<void> tmp_synced;
    if (any_files && fault("tmp_dir_fsync")) {
        tmp_synced = tl::unexpected(injected("tmp_dir_fsync", tmp_dir));
    }
    const bool sync_tmp = any_files && tmp_synced.has_value();
    run_parallel(file_syncs.size() + (sync_tmp ? 1 : 0), [&](std::size_t i) {
        if (i == file_syncs.size()) {
            tmp_synced = fsync_dir(tmp_dir);
            return;
        }
        // Each op is touched by exactly one thread here.
        PendingOp& op = *file_syncs[i];
        fs::path p = tmp_dir / op.tmp_name;
        if (op.fd < 0) {
            op.fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC);
        }
        if (op.fd < 0) {
            fail(op, State::Failed, io_error("open", p, errno));
        } else if (::fdatasync(op.fd) != 0) {
            fail(op, State::Failed, io_error("fdatasync", p, errno));
        }
        if (op.fd >= 0) {
            ::close(op.fd); // at most kMaxSyncThreads descriptors, whatever the group size
            op.fd = -1;
        }
    });
    if (!tmp_synced) {
        for (PendingOp* op : ops) {
            if (writes_files(*op) && op->state == State::Queued) {
                fail(*op, State::Failed, tmp_synced.error());
                for (const auto& item : op->copies) {
                    ::unlink((tmp_dir / item.tmp_name).c_str());
                }
            }
        }
    }
    for (PendingOp* op : ops) {
        if (op->fd >= 0) {
            ::close(op->fd);
            op->fd = -1;
        }
        if (op->kind == OpKind::Ingest && op->state == State::Failed) {
            ::unlink((tmp_dir / op->tmp_name).c_str());
        }
    }

    // 3. One journal append + fdatasync for the whole pass.
    std::string bytes;
    for (const PendingOp* op : ops) {
        if (op->state == State::Queued) {
            bytes += op->journal_bytes;
        }
    }
    auto journal_failed = [&](Error e) {
        batch.read_only = true;
        batch.read_only_reason = e.message;
        for (PendingOp* op : ops) {
            if (op->state == State::Queued) {
                fail(*op, State::Uncertain, e);
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
    auto rename_in = [&](const std::string& tmp_name, const std::string& file_name) {
        fs::path from = tmp_dir / tmp_name;
        fs::path to = cur_dir / file_name;
        if (fault("rename")) {
            journal_failed(injected("rename", from));
            return false;
        }
        if (::rename(from.c_str(), to.c_str()) != 0) {
            journal_failed(io_error("rename", from, errno));
            return false;
        }
        renamed = true;
        return true;
    };
    for (PendingOp* op : ops) {
        if (op->state != State::Queued) {
            continue;
        }
        if (op->kind == OpKind::Ingest) {
            if (!rename_in(op->tmp_name, op->message.file_name)) {
                return;
            }
        }
        for (const auto& item : op->copies) {
            if (!rename_in(item.tmp_name, item.message.file_name)) {
                return;
            }
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
    for (PendingOp* op : ops) {
        if (op->state == State::Queued) {
            op->state = State::Done;
        }
    }
    // Unlinking after the journal says "expunged": a crash in between leaves only an
    // unreferenced file in cur/, never a record without its file. No fsync needed.
    for (const PendingOp* op : ops) {
        if (op->kind == OpKind::Expunge && op->state == State::Done) {
            for (const auto& name : op->expunged_files) {
                unlink_after_.push_back(cur_dir / name);
            }
        }
    }
}

} // namespace popbridge::store
