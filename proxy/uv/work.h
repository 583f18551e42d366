#pragma once
// Thin helpers over libuv: thread-pool work with a completion on the loop thread, and a
// timer whose handle frees itself after close.

#include <cstdint>
#include <functional>

#include <uv.h>

namespace popbridge::proxy::uv {

// Runs `work` on libuv's thread pool, then `done` on the loop thread. Neither may throw.
// `done` always runs, even when the loop is being shut down (the work then may not have
// run: `done(false)`).
void queue_work(uv_loop_t* loop, std::function<void()> work, std::function<void(bool ran)> done);

// A one-shot or repeating timer. The uv handle lives on the heap and is freed in its close
// callback, so a Timer may be destroyed at any time, even from inside its own callback.
class Timer {
public:
    explicit Timer(uv_loop_t* loop);
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // Calls `cb` after `timeout_ms`, then every `repeat_ms` (0: once). Replaces any pending run.
    void start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb);
    void stop();
    bool active() const;

private:
    struct Handle;
    Handle* h_;
};

} // namespace popbridge::proxy::uv
