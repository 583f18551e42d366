#include "proxy/store_sync.h"

#include <spdlog/spdlog.h>

#include "proxy/uv/work.h"

namespace popbridge::proxy {

void StoreSync::kick() {
    if (store_.job_running() || !store_.has_pending())
        return;
    std::unique_ptr<store::SyncJob> job = store_.take_sync_job();
    if (!job)
        return;
    // The job crosses to a worker thread and back; only run() touches it there.
    auto* raw = job.release();
    auto started = std::chrono::steady_clock::now();
    uv::queue_work(
        loop_, [raw] { raw->run(); },
        [this, raw, started](bool ran) {
            std::unique_ptr<store::SyncJob> job(raw);
            if (!ran)
                job->run(); // the pool refused the work (loop closing): do it here
            last_job_ = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - started);
            ++jobs_run_;
            std::vector<store::Outcome> outcomes = store_.finish_sync_job(std::move(job));
            ops_committed_ += outcomes.size();
            for (const store::Outcome& o : outcomes) {
                if (!o.result)
                    spdlog::error("store commit failed: user={} op={} ticket={}: {}", o.user,
                                  store::to_string(o.kind), o.ticket, o.result.error().message);
                auto it = waiters_.find(o.ticket);
                if (it == waiters_.end())
                    continue;
                Callback cb = std::move(it->second);
                waiters_.erase(it);
                cb(o);
            }
            kick();
        });
}

void StoreSync::wait(store::Ticket ticket, Callback fn) {
    if (ticket <= store_.durable_ticket()) {
        store::Outcome o;
        o.ticket = ticket;
        fn(o);
        return;
    }
    waiters_.emplace(ticket, std::move(fn));
}

} // namespace popbridge::proxy
