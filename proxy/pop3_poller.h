#pragma once
// One poller per (local user, upstream POP3 account): schedules polls (poll_every with
// jitter, capped exponential backoff after failures), connects with libuv + OpenSSL,
// drives protocol/pop3's Client, streams each RETR into the store, and sends DELE only for
// messages the store reports durable (DESIGN.md, store invariant 1). QUIT is sent only
// after every retrieved message has its commit outcome.
//
// Lifetime: owned by the Daemon; all calls on the loop thread. stop() aborts a poll in
// progress by closing its connection without QUIT, so no DELE takes effect upstream.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include <uv.h>

#include "config/account.h"
#include "proxy/tls_context.h"
#include "proxy/uv/work.h"
#include "store/store.h"

namespace popbridge::proxy {

class StoreSync;

// Global cap on simultaneous upstream connections; pollers over the cap wait in FIFO order.
class ConnectionGate {
public:
    explicit ConnectionGate(unsigned max) : max_(max ? max : 1) {}
    // Calls `go` now or once a slot frees. Returns an id usable with cancel().
    uint64_t acquire(std::function<void()> go);
    void cancel(uint64_t id);
    void release();
    unsigned in_use() const { return in_use_; }
    void set_max(unsigned max) { max_ = max ? max : 1; }

private:
    unsigned max_;
    unsigned in_use_ = 0;
    uint64_t next_id_ = 1;
    std::deque<std::pair<uint64_t, std::function<void()>>> waiting_;
};

// Why the last poll ended; what an operator sees in logs and /status.
enum class PollOutcome {
    Never,   // no poll finished yet
    Ok,      // QUIT +OK after all commits
    Failed,  // connection, TLS, protocol or server error; retried with backoff
    AuthFailed, // credentials refused; retried rarely
};
std::string_view to_string(PollOutcome);

struct PollerStatus {
    PollOutcome last_outcome = PollOutcome::Never;
    std::string last_error;
    std::chrono::system_clock::time_point last_success{};
    std::chrono::system_clock::time_point last_attempt{};
    std::chrono::system_clock::time_point next_poll{};
    unsigned consecutive_failures = 0;
    uint64_t polls = 0;
    uint64_t messages_downloaded = 0;
    uint64_t bytes_downloaded = 0;
    uint64_t messages_deleted = 0;
    bool running = false;
};

struct PollerServices {
    uv_loop_t* loop = nullptr;
    store::Store* store = nullptr;
    StoreSync* sync = nullptr;
    ConnectionGate* gate = nullptr;
};

class Pop3Poller {
public:
    Pop3Poller(PollerServices services, std::string user, config::Upstream upstream);
    ~Pop3Poller();
    Pop3Poller(const Pop3Poller&) = delete;
    Pop3Poller& operator=(const Pop3Poller&) = delete;

    // Schedules the first poll after a short random delay.
    void start();
    // Polls as soon as a connection slot is free, unless a poll is already running or the
    // last one started less than `min_interval` ago.
    void poll_now(std::chrono::seconds min_interval = std::chrono::seconds(0));
    // Cancels timers and aborts a running poll (no QUIT, so nothing is deleted upstream).
    void stop();

    const std::string& user() const { return user_; }
    const config::Upstream& upstream() const { return upstream_; }
    const PollerStatus& status() const { return status_; }
    // "user/upstream", the name used in logs.
    const std::string& label() const { return label_; }

    class Session; // one POP3 connection; internal

private:
    friend class Session;
    void begin_poll();
    void poll_finished(PollOutcome outcome, const std::string& error);
    void schedule(std::chrono::milliseconds delay);

    PollerServices svc_;
    std::string user_;
    config::Upstream upstream_;
    std::string label_;
    PollerStatus status_;
    uv::Timer timer_;
    uint64_t gate_ticket_ = 0;
    bool waiting_for_gate_ = false;
    std::shared_ptr<Session> session_;
    SslCtxPtr tls_ctx_;
    std::string tls_ctx_error_;
    std::chrono::steady_clock::time_point last_start_{};
    bool stopped_ = false;
};

} // namespace popbridge::proxy
