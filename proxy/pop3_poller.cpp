#include "proxy/pop3_poller.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "protocol/pop3/client.h"
#include "proxy/connection.h"
#include "proxy/store_sync.h"

namespace popbridge::proxy {

namespace pop3 = protocol::pop3;
using namespace std::chrono_literals;

namespace {

constexpr auto kReadTimeout = 60s;
constexpr auto kBackoffBase = 30s;
constexpr auto kBackoffCap = 1h;

std::mt19937_64& rng() {
    static std::mt19937_64 r{std::random_device{}()};
    return r;
}

// `d` scaled by a random factor in [0.9, 1.1].
std::chrono::milliseconds jittered(std::chrono::milliseconds d) {
    std::uniform_real_distribution<double> f(0.9, 1.1);
    return std::chrono::milliseconds(int64_t(double(d.count()) * f(rng())));
}

pop3::AuthMethod to_pop3(config::AuthMethod m) {
    switch (m) {
    case config::AuthMethod::Pass: return pop3::AuthMethod::UserPass;
    case config::AuthMethod::Apop: return pop3::AuthMethod::Apop;
    case config::AuthMethod::Plain: return pop3::AuthMethod::Plain;
    case config::AuthMethod::XOAuth2: return pop3::AuthMethod::XOAuth2;
    case config::AuthMethod::OAuthBearer: return pop3::AuthMethod::OAuthBearer;
    }
    return pop3::AuthMethod::UserPass;
}

std::string hex(const config::Sha256& d) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (uint8_t b : d) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

} // namespace

std::string_view to_string(PollOutcome o) {
    switch (o) {
    case PollOutcome::Never: return "never";
    case PollOutcome::Ok: return "ok";
    case PollOutcome::Failed: return "failed";
    case PollOutcome::AuthFailed: return "auth_failed";
    }
    return "?";
}

uint64_t ConnectionGate::acquire(std::function<void()> go) {
    uint64_t id = next_id_++;
    if (in_use_ < max_ && waiting_.empty()) {
        ++in_use_;
        go();
    } else {
        waiting_.emplace_back(id, std::move(go));
    }
    return id;
}

void ConnectionGate::cancel(uint64_t id) {
    std::erase_if(waiting_, [id](const auto& w) { return w.first == id; });
}

void ConnectionGate::release() {
    if (in_use_ > 0)
        --in_use_;
    while (in_use_ < max_ && !waiting_.empty()) {
        auto go = std::move(waiting_.front().second);
        waiting_.pop_front();
        ++in_use_;
        go();
    }
}

// One POP3 connection. Kept alive by `self_` while its connection is open and by the
// commit callbacks it is waiting for; reports to its poller once (`owner_` is cleared
// when the poller stops caring).
class Pop3Poller::Session : public ConnectionHandler,
                            public std::enable_shared_from_this<Pop3Poller::Session> {
public:
    Session(Pop3Poller& owner, pop3::ClientOptions options)
        : owner_(&owner), svc_(owner.svc_), user_(owner.user_), upstream_(owner.upstream_),
          label_(owner.label_), client_(std::move(options)),
          started_(std::chrono::steady_clock::now()) {}

    void start(SSL_CTX* tls_ctx) {
        tls_ctx_ = tls_ctx;
        auto folder = svc_.store->find_folder(user_, upstream_.folder);
        if (!folder && folder.error().code == store::Errc::NotFound)
            folder = svc_.store->create_folder(user_, upstream_.folder);
        if (!folder) {
            finish(PollOutcome::Failed,
                   "cannot open folder " + upstream_.folder + ": " + folder.error().message);
            return;
        }
        folder_ = *folder;
        self_ = shared_from_this();
        spdlog::debug("poll account={} connecting to {}:{} tls={}", label_, upstream_.host,
                      upstream_.port, config::to_string(upstream_.tls));
        conn_ = Connection::connect(svc_.loop, upstream_.host, upstream_.port, this);
        conn_->set_idle_timeout(kReadTimeout);
    }

    // The poller is going away or stopping: close without QUIT, report nothing more.
    void detach() {
        owner_ = nullptr;
        if (conn_)
            conn_->close("poller stopped");
    }

    void on_connected(Connection& c) override {
        if (upstream_.tls == config::TlsMode::Implicit)
            c.start_tls_client(tls_ctx_, upstream_.host, !upstream_.pin_sha256.has_value());
    }

    void on_tls_ready(Connection& c) override {
        if (upstream_.pin_sha256) {
            std::string got = peer_certificate_sha256(c.ssl());
            if (got != hex(*upstream_.pin_sha256)) {
                fail(PollOutcome::Failed, "certificate does not match pin_sha256 (got " + got + ")");
                return;
            }
        }
        if (client_.state() == pop3::Client::State::TlsHandshake) {
            client_.tls_established();
            pump();
        }
    }

    void on_data(Connection&, std::string_view data) override {
        client_.feed(std::span<const char>(data.data(), data.size()));
        pump();
    }

    void on_closed(Connection&, std::string_view reason) override {
        conn_ = nullptr;
        // Report the connection's own reason (TLS failure, timeout...) before the
        // client's generic "disconnected".
        if (!reported_)
            finish(PollOutcome::Failed, std::string(reason));
        client_.connection_closed();
        pump();
        incoming_.reset(); // a message cut off mid-RETR is discarded, never committed
        self_.reset();     // may destroy this
    }

private:
    void pump() {
        if (conn_) {
            std::string out = client_.take_output();
            if (!out.empty())
                conn_->write(out);
        }
        while (auto ev = client_.next_event()) {
            std::visit([this](auto& e) { handle(e); }, *ev);
            if (conn_) {
                std::string out = client_.take_output();
                if (!out.empty())
                    conn_->write(out);
            }
        }
    }

    void handle(pop3::NeedTls&) {
        if (conn_)
            conn_->start_tls_client(tls_ctx_, upstream_.host, !upstream_.pin_sha256.has_value());
    }
    void handle(pop3::Authenticated&) { spdlog::debug("poll account={} logged in", label_); }

    void handle(pop3::Listing& l) {
        if (!l.uidl_supported) {
            fail(PollOutcome::Failed, "server does not support UIDL; cannot download safely");
            return;
        }
        std::unordered_map<std::string, uint32_t> first;
        for (const auto& e : l.entries) {
            auto [it, inserted] = first.emplace(e.uidl, e.msgno);
            if (!inserted)
                duplicate_uidls_.insert(e.uidl);
        }
        std::vector<uint32_t> want;
        uint64_t too_large = 0;
        for (const auto& e : l.entries) {
            if (e.uidl.empty())
                continue;
            uidl_of_[e.msgno] = e.uidl;
            if (duplicate_uidls_.count(e.uidl)) {
                if (first[e.uidl] != e.msgno)
                    continue; // the same UIDL again: download one copy only
            } else {
                msgno_of_[e.uidl] = e.msgno;
            }
            if (svc_.store->has_origin(user_, upstream_.name, e.uidl))
                continue;
            if (e.size > upstream_.max_message_size) {
                ++too_large;
                spdlog::warn("poll account={} message {} (uidl {}) is {} bytes, over "
                             "max_message_size {}: skipped, left on the server",
                             label_, e.msgno, e.uidl, e.size, upstream_.max_message_size);
                continue;
            }
            want.push_back(e.msgno);
            listed_size_[e.msgno] = e.size;
        }
        if (!duplicate_uidls_.empty())
            spdlog::warn("poll account={} server listed {} duplicate UIDL(s); one copy of each "
                         "is downloaded and none is deleted",
                         label_, duplicate_uidls_.size());
        spdlog::debug("poll account={} listing: {} on server, {} new, {} too large", label_,
                      l.entries.size(), want.size(), too_large);
        listing_done_ = true;
        to_retrieve_ = want.size();
        if (want.empty())
            maybe_apply_retention();
        else
            client_.retrieve(want);
    }

    void handle(pop3::MessageBegin& b) {
        current_ = b.msgno;
        skip_current_ = false;
        auto in = svc_.store->begin_incoming(user_, folder_);
        if (!in) {
            fail(PollOutcome::Failed, "cannot store message: " + in.error().message);
            return;
        }
        incoming_.emplace(std::move(*in));
    }

    void handle(pop3::MessageData& d) {
        if (skip_current_ || !incoming_)
            return;
        auto r = incoming_->append(std::span<const char>(d.bytes.data(), d.bytes.size()));
        if (!r) {
            if (r.error().code == store::Errc::TooLarge) {
                spdlog::warn("poll account={} message {} grew past max_message_size while "
                             "downloading (LIST said {} bytes): skipped, left on the server",
                             label_, d.msgno, listed_size_[d.msgno]);
                skip_current_ = true;
                incoming_.reset();
                return;
            }
            fail(PollOutcome::Failed, "cannot store message: " + r.error().message);
        }
    }

    void handle(pop3::MessageEnd& e) {
        ++ended_;
        if (skip_current_ || !incoming_) {
            maybe_apply_retention();
            return;
        }
        store::Origin origin{upstream_.name, uidl_of_[e.msgno]};
        int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
        auto ticket = svc_.store->commit_incoming(std::move(*incoming_), origin, now);
        incoming_.reset();
        if (!ticket) {
            if (ticket.error().code != store::Errc::AlreadyExists)
                spdlog::error("poll account={} cannot commit message {}: {}", label_, e.msgno,
                              ticket.error().message);
            maybe_apply_retention();
            return;
        }
        ++commits_pending_;
        uint64_t bytes = e.total_bytes;
        auto self = shared_from_this();
        svc_.sync->wait(*ticket, [self, bytes](const store::Outcome& o) {
            self->on_committed(o, bytes);
        });
        svc_.sync->kick();
    }

    void on_committed(const store::Outcome& o, uint64_t bytes) {
        --commits_pending_;
        if (o.result) {
            ++new_messages_;
            new_bytes_ += bytes;
            if (owner_) {
                ++owner_->status_.messages_downloaded;
                owner_->status_.bytes_downloaded += bytes;
            }
        } else {
            commit_failed_ = true;
        }
        maybe_apply_retention();
    }

    void handle(pop3::RetrFailed& f) {
        ++ended_;
        spdlog::warn("poll account={} RETR {} failed: {}", label_, f.msgno, f.text);
        maybe_apply_retention();
    }
    void handle(pop3::Deleted&) { ++deleted_; }
    void handle(pop3::DeleteFailed& f) {
        spdlog::warn("poll account={} DELE {} failed: {}", label_, f.msgno, f.text);
    }
    void handle(pop3::Drained&) {}
    void handle(pop3::Finished&) {
        if (owner_)
            owner_->status_.messages_deleted += deleted_;
        finish(commit_failed_ ? PollOutcome::Failed : PollOutcome::Ok,
               commit_failed_ ? "some messages could not be stored" : "");
        if (conn_)
            conn_->close_after_flush("poll done");
    }
    void handle(pop3::Failed& f) {
        PollOutcome o = f.error == pop3::ErrorClass::Auth ? PollOutcome::AuthFailed
                                                          : PollOutcome::Failed;
        fail(o, std::string(pop3::to_string(f.error)) + ": " + f.text);
    }

    // Once every retrieved message has its commit outcome: DELE what the retention
    // policy allows (only committed origins), then QUIT.
    void maybe_apply_retention() {
        if (!listing_done_ || ended_ < to_retrieve_ || commits_pending_ > 0 || quit_sent_ ||
            reported_ || !conn_)
            return;
        quit_sent_ = true;
        std::vector<uint32_t> dele;
        auto entries = svc_.store->committed_origins(user_, upstream_.name);
        if (entries) {
            int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
            for (const store::OriginEntry& e : *entries) {
                auto it = msgno_of_.find(e.origin.uidl);
                if (it == msgno_of_.end())
                    continue; // not on the server, or listed twice: never deleted
                bool del = false;
                switch (upstream_.keep_on_server.kind) {
                case config::Retention::Kind::Keep: break;
                case config::Retention::Kind::DeleteAfterDownload: del = true; break;
                case config::Retention::Kind::DeleteAfterAge:
                    del = now - e.commit_time >= upstream_.keep_on_server.age.count();
                    break;
                }
                if (upstream_.delete_upstream_on_expunge && e.expunged)
                    del = true;
                if (del)
                    dele.push_back(it->second);
            }
        }
        std::sort(dele.begin(), dele.end());
        if (!dele.empty())
            client_.dele(dele);
        client_.quit();
        pump();
    }

    void fail(PollOutcome outcome, const std::string& error) {
        finish(outcome, error);
        if (conn_)
            conn_->close(error);
    }

    void finish(PollOutcome outcome, const std::string& error) {
        if (reported_)
            return;
        reported_ = true;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started_)
                      .count();
        if (outcome == PollOutcome::Ok)
            spdlog::info("poll account={} new={} bytes={} deleted={} duration={}ms outcome=ok",
                         label_, new_messages_, new_bytes_, deleted_, ms);
        else
            spdlog::warn("poll account={} new={} bytes={} deleted={} duration={}ms outcome={} "
                         "error=\"{}\"",
                         label_, new_messages_, new_bytes_, deleted_, ms, to_string(outcome),
                         error);
        if (owner_) {
            Pop3Poller* owner = owner_;
            owner_ = nullptr;
            owner->poll_finished(outcome, error);
        }
    }

    Pop3Poller* owner_;
    PollerServices svc_;
    std::string user_;
    config::Upstream upstream_;
    std::string label_;
    pop3::Client client_;
    std::chrono::steady_clock::time_point started_;
    SSL_CTX* tls_ctx_ = nullptr;
    Connection* conn_ = nullptr;
    std::shared_ptr<Session> self_;
    store::FolderId folder_ = store::kInbox;

    std::unordered_map<uint32_t, std::string> uidl_of_;
    std::unordered_map<std::string, uint32_t> msgno_of_; // UIDLs listed exactly once
    std::unordered_set<std::string> duplicate_uidls_;
    std::unordered_map<uint32_t, uint64_t> listed_size_;
    bool listing_done_ = false;
    size_t to_retrieve_ = 0;
    size_t ended_ = 0;
    size_t commits_pending_ = 0;
    bool commit_failed_ = false;
    bool quit_sent_ = false;
    bool reported_ = false;
    uint32_t current_ = 0;
    bool skip_current_ = false;
    std::optional<store::Incoming> incoming_;
    uint64_t new_messages_ = 0, new_bytes_ = 0, deleted_ = 0;
};

Pop3Poller::Pop3Poller(PollerServices services, std::string user, config::Upstream upstream)
    : svc_(services), user_(std::move(user)), upstream_(std::move(upstream)),
      label_(user_ + "/" + upstream_.name), timer_(svc_.loop) {
    if (upstream_.tls != config::TlsMode::None) {
        auto ctx = make_client_tls_context(upstream_.ca_file ? upstream_.ca_file->string() : "");
        if (ctx)
            tls_ctx_ = std::move(*ctx);
        else
            tls_ctx_error_ = ctx.error();
    }
}

Pop3Poller::~Pop3Poller() { stop(); }

void Pop3Poller::start() {
    stopped_ = false;
    std::uniform_int_distribution<int> d(100, 1500);
    schedule(std::chrono::milliseconds(d(rng())));
}

void Pop3Poller::schedule(std::chrono::milliseconds delay) {
    if (stopped_)
        return;
    status_.next_poll = std::chrono::system_clock::now() + delay;
    timer_.start(uint64_t(delay.count()), 0, [this] { begin_poll(); });
}

void Pop3Poller::poll_now(std::chrono::seconds min_interval) {
    if (stopped_ || session_ || waiting_for_gate_)
        return;
    if (last_start_.time_since_epoch().count() != 0 &&
        std::chrono::steady_clock::now() - last_start_ < min_interval)
        return;
    timer_.stop();
    begin_poll();
}

void Pop3Poller::begin_poll() {
    if (stopped_ || session_ || waiting_for_gate_)
        return;
    waiting_for_gate_ = true;
    gate_ticket_ = svc_.gate->acquire([this] {
        waiting_for_gate_ = false;
        last_start_ = std::chrono::steady_clock::now();
        status_.running = true;
        status_.last_attempt = std::chrono::system_clock::now();
        ++status_.polls;
        if (upstream_.tls != config::TlsMode::None && !tls_ctx_) {
            poll_finished(PollOutcome::Failed, tls_ctx_error_);
            return;
        }
        pop3::ClientOptions opts;
        opts.username = upstream_.username;
        opts.auth = to_pop3(upstream_.auth);
        opts.require_stls = upstream_.tls == config::TlsMode::StartTls;
        if (config::uses_token(upstream_.auth)) {
            if (upstream_.secret_source == config::SecretSource::TokenFile) {
                std::ifstream f(upstream_.secret_file);
                std::stringstream ss;
                ss << f.rdbuf();
                std::string token = ss.str();
                while (!token.empty() && (token.back() == '\n' || token.back() == '\r'))
                    token.pop_back();
                if (!f || token.empty()) {
                    poll_finished(PollOutcome::Failed,
                                  "cannot read token_file " + upstream_.secret_file.string());
                    return;
                }
                opts.password = std::move(token);
            } else {
                poll_finished(PollOutcome::Failed, "token_command is not supported yet");
                return;
            }
        } else {
            opts.password = std::string(upstream_.secret.reveal());
        }
        session_ = std::make_shared<Session>(*this, std::move(opts));
        auto s = session_; // start() may finish (and reset session_) at once
        s->start(tls_ctx_.get());
    });
}

void Pop3Poller::poll_finished(PollOutcome outcome, const std::string& error) {
    svc_.gate->release();
    session_.reset();
    status_.running = false;
    status_.last_outcome = outcome;
    if (outcome == PollOutcome::Ok) {
        status_.last_success = std::chrono::system_clock::now();
        status_.consecutive_failures = 0;
        status_.last_error.clear();
        schedule(jittered(std::chrono::duration_cast<std::chrono::milliseconds>(
            upstream_.poll_every)));
        return;
    }
    status_.last_error = error;
    ++status_.consecutive_failures;
    std::chrono::milliseconds delay = kBackoffCap;
    if (outcome != PollOutcome::AuthFailed) {
        unsigned n = std::min(status_.consecutive_failures, 16u);
        delay = std::min<std::chrono::milliseconds>(kBackoffBase * (1u << (n - 1)), kBackoffCap);
    }
    schedule(jittered(delay));
}

void Pop3Poller::stop() {
    stopped_ = true;
    timer_.stop();
    if (waiting_for_gate_) {
        svc_.gate->cancel(gate_ticket_);
        waiting_for_gate_ = false;
    }
    if (session_) {
        auto s = std::move(session_);
        s->detach();
        svc_.gate->release();
        status_.running = false;
    }
}

} // namespace popbridge::proxy
