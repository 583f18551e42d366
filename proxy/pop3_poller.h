#pragma once
// One poller per (local user, upstream POP3 account): schedules polls (poll_every with
// jitter, capped exponential backoff after failures), connects with libuv + OpenSSL,
// drives protocol/pop3's Client, streams each RETR into the store, and sends DELE only for
// messages the store reports durable (DESIGN.md, store invariant 1). QUIT is sent only
// after every retrieved message has its commit outcome.
//
// How a message is identified (its "key", the store's origin uidl):
//  - the server's UIDL when it is 1..70 printable ASCII bytes; a longer or odd UIDL gets
//    "pb-uidl:<sha256 of the UIDL>" (warning);
//  - without UIDL (UIDL -ERR): "pb-hdr:<sha256 of the header section>" read with
//    TOP n 0 (warning each poll). A server with neither UIDL nor TOP is refused: content
//    could only be identified by downloading every message on every poll;
//  - a UIDL listed twice: the first copy keeps the UIDL, a later copy whose header
//    section differs becomes "<uidl>#<hash prefix>"; none of them is ever deleted;
//  - a known UIDL whose LIST size differs from the stored message is checked with TOP:
//    same header section = the LIST size is wrong (kept as known); different = the UIDL
//    was reused for another message, imported as "<uidl>#<hash prefix>" and the stored
//    one is never deleted through the reused UIDL;
//  - none of the UIDLs the ledger expects on the server is listed any more (UIDLs changed
//    wholesale): every listed message is read with TOP and matched against the stored
//    messages of this upstream by size + header hash or size + Message-ID; matches are
//    not imported again (warning): each match is recorded durably as an alias of the
//    stored message (Store::add_origin_alias) before retention runs, so retention and
//    delete_upstream_on_expunge apply to it under its new UIDL. Unmatched messages older
//    than import_since are recorded as seen, as on the first sync.
// import_since: on the first sync (no ledger entry for this upstream yet) the Date: of
// every listed message is read with TOP; older ones are recorded durably as "seen, not
// stored" (Store::record_seen_origin) without being downloaded, and are never deleted.
// Both records are waited for like message commits; if one fails, the key is kept in
// memory (not downloaded by this process) and the poll reports a failure.
//
// Failures: [AUTH] (or three auth refusals in a row) stops the poller until the daemon
// recreates it (account file changed, SIGHUP); [IN-USE], [SYS/TEMP] and network errors
// back off exponentially (capped); [LOGIN-DELAY] and CAPA LOGIN-DELAY n keep polls at
// least n seconds apart.
//
// Lifetime: owned by the Daemon; all calls on the loop thread. stop() aborts a poll in
// progress by closing its connection without QUIT, so no DELE takes effect upstream.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include <uv.h>

#include "config/account.h"
#include "protocol/pop3/client.h"
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
    Never,      // no poll finished yet
    Ok,         // QUIT +OK after all commits
    Failed,     // connection, TLS, protocol or server error; retried with backoff
    AuthFailed, // credentials refused once without [AUTH]; retried with backoff
    Stopped,    // [AUTH] or repeated refusals: no more polls until the account file changes
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
    uint64_t messages_too_large = 0;    // skipped in the last poll: over max_message_size
    uint64_t messages_not_imported = 0; // older than import_since, recorded as seen
    uint64_t dele_ignored = 0;          // DELE'd earlier, listed again (server ignored DELE)
    uint64_t uidl_resets = 0;           // polls that found the UIDLs changed wholesale
    // Committed locally, wanted deleted by the retention policy (keep_on_server,
    // delete_upstream_on_expunge) and still upstream as of the last listing: DELE'd in
    // the last poll but not confirmed by QUIT, or not DELE'd because the poll failed.
    uint64_t messages_pending_deletion = 0;
    std::chrono::seconds login_delay{0}; // from CAPA LOGIN-DELAY
    bool running = false;
    bool stopped = false; // polling stopped until the account file changes (see last_error)
};

struct PollerServices {
    uv_loop_t* loop = nullptr;
    store::Store* store = nullptr;
    StoreSync* sync = nullptr;
    ConnectionGate* gate = nullptr;
    // poll.connect_timeout, poll.read_timeout, poll.token_command_timeout (daemon file).
    // POPBRIDGE_POP3_TIMEOUT_MS, when set, overrides read_timeout and caps connect_timeout
    // (tests).
    std::chrono::milliseconds connect_timeout{30'000};
    std::chrono::milliseconds read_timeout{60'000};
    std::chrono::milliseconds token_command_timeout{30'000};
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
    void poll_finished(PollOutcome outcome, const std::string& error,
                       std::optional<protocol::pop3::ErrorClass> error_class);
    void schedule(std::chrono::milliseconds delay);
    void start_session(std::string secret);
    void fail_before_session(const std::string& error);

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
    class TokenCommand; // token_command child process; internal
    TokenCommand* token_cmd_ = nullptr;
    unsigned auth_failures_ = 0; // consecutive auth refusals
    // Keys whose seen/alias ledger record could not be made durable: not downloaded again
    // by this process.
    std::unordered_set<std::string> seen_;
    std::unordered_set<std::string> deleted_last_poll_; // keys DELE'd in the last good poll
};

} // namespace popbridge::proxy
