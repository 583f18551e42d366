#pragma once
// Drives the store's group-commit protocol (store/store.h) on the event loop: whenever
// mutations are queued, one SyncJob runs on libuv's thread pool; when it finishes, the
// next job is taken at once, so every mutation queued meanwhile shares one set of fsyncs.
//
// Callers queue a mutation, then call wait(ticket, fn): fn runs on the loop thread with
// that ticket's Outcome once it is durable (or failed). Nothing here blocks the loop.

#include <chrono>
#include <functional>
#include <memory>
#include <unordered_map>

#include <uv.h>

#include "store/store.h"

namespace popbridge::proxy {

class StoreSync {
public:
    using Callback = std::function<void(const store::Outcome&)>;

    StoreSync(uv_loop_t* loop, store::Store& store) : loop_(loop), store_(store) {}

    // Starts a job if work is pending and none is running. Call after queuing mutations.
    void kick();
    // Runs `fn` with the outcome of `ticket`. A ticket already delivered gets an outcome
    // saying it was already durable. Returns immediately.
    void wait(store::Ticket ticket, Callback fn);
    // True while a job is on the thread pool.
    bool busy() const { return store_.job_running(); }

    // Statistics for the admin endpoint.
    uint64_t jobs_run() const { return jobs_run_; }
    uint64_t ops_committed() const { return ops_committed_; }
    std::chrono::microseconds last_job_duration() const { return last_job_; }

private:
    uv_loop_t* loop_;
    store::Store& store_;
    std::unordered_map<store::Ticket, Callback> waiters_;
    uint64_t jobs_run_ = 0;
    uint64_t ops_committed_ = 0;
    std::chrono::microseconds last_job_{0};
};

} // namespace popbridge::proxy
