#include "proxy/uv/work.h"

#include <memory>

namespace popbridge::proxy::uv {
namespace {

struct WorkReq {
    uv_work_t req{};
    std::function<void()> work;
    std::function<void(bool)> done;
};

} // namespace

void queue_work(uv_loop_t* loop, std::function<void()> work, std::function<void(bool)> done) {
    auto* w = new WorkReq;
    w->req.data = w;
    w->work = std::move(work);
    w->done = std::move(done);
    int rc = uv_queue_work(
        loop, &w->req, [](uv_work_t* r) noexcept { static_cast<WorkReq*>(r->data)->work(); },
        [](uv_work_t* r, int status) noexcept {
            std::unique_ptr<WorkReq> w(static_cast<WorkReq*>(r->data));
            w->done(status == 0);
        });
    if (rc != 0) {
        std::unique_ptr<WorkReq> owned(w);
        owned->done(false);
    }
}

struct Timer::Handle {
    uv_timer_t timer{};
    std::function<void()> cb;
    bool owner_gone = false;
};

Timer::Timer(uv_loop_t* loop) : h_(new Handle) {
    uv_timer_init(loop, &h_->timer);
    h_->timer.data = h_;
}

Timer::~Timer() {
    uv_timer_stop(&h_->timer);
    h_->owner_gone = true;
    // The callback may be the one running right now: keep it alive until the close callback.
    uv_close(reinterpret_cast<uv_handle_t*>(&h_->timer),
             [](uv_handle_t* h) noexcept { delete static_cast<Handle*>(h->data); });
}

void Timer::start(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> cb) {
    h_->cb = std::move(cb);
    uv_timer_start(
        &h_->timer,
        [](uv_timer_t* t) noexcept {
            auto* h = static_cast<Handle*>(t->data);
            if (h->owner_gone || !h->cb)
                return;
            // Copy: the callback may restart or destroy the timer.
            auto cb = h->cb;
            cb();
        },
        timeout_ms, repeat_ms);
}

void Timer::stop() { uv_timer_stop(&h_->timer); }

bool Timer::active() const { return uv_is_active(reinterpret_cast<const uv_handle_t*>(&h_->timer)); }

} // namespace popbridge::proxy::uv
