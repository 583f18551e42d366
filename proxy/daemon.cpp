#include "proxy/daemon.h"

#include <csignal>

#include <spdlog/spdlog.h>

#include "proxy/imap_session.h"

namespace popbridge::proxy {

using namespace std::chrono_literals;

Daemon::Daemon(config::DaemonConfig config) : config_(std::move(config)) {
    uv_loop_init(&loop_);
    loop_.data = this;
}

Daemon::~Daemon() {
    // Everything was closed by finish_shutdown(); run once more for stragglers.
    uv_run(&loop_, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop_) != 0)
        spdlog::warn("event loop closed with handles still open");
}

std::optional<std::string> Daemon::password_hash(const std::string& user) const {
    auto it = accounts_.find(user);
    if (it == accounts_.end())
        return std::nullopt;
    return it->second.account.password_hash;
}

void Daemon::folder_opened(const std::string& user, const std::string& folder) {
    auto it = accounts_.find(user);
    if (it == accounts_.end())
        return;
    // A device looking at a folder an upstream delivers to gets fresh mail now, at most
    // once a minute per upstream.
    for (auto& p : it->second.pollers)
        if (p->upstream().folder == folder)
            p->poll_now(60s);
}

int Daemon::run() {
    store::StoreOptions so;
    so.data_dir = config_.data_dir;
    auto store = store::Store::open(so);
    if (!store) {
        spdlog::critical("cannot open the store in {}: {}", config_.data_dir.string(),
                         store.error().message);
        return 1;
    }
    store_ = std::move(*store);
    sync_ = std::make_unique<StoreSync>(&loop_, *store_);
    gate_ = std::make_unique<ConnectionGate>(config_.poll.max_connections);

    if (config_.imap.tls) {
        auto ctx = make_server_tls_context(config_.imap.tls->cert.string(),
                                           config_.imap.tls->key.string());
        if (!ctx) {
            spdlog::critical("{}", ctx.error());
            return 1;
        }
        server_tls_ = std::move(*ctx);
    }
    if (!start_listeners()) {
        for (Listener* l : listeners_)
            l->close();
        listeners_.clear();
        return 1;
    }
    load_accounts(true);

    auto on_signal = [](uv_signal_t* h, int signum) noexcept {
        auto* d = static_cast<Daemon*>(h->data);
        if (signum == SIGHUP) {
            spdlog::info("SIGHUP: reloading account files from {}",
                         d->config_.accounts_dir.string());
            d->load_accounts(false);
        } else {
            d->begin_shutdown(signum == SIGINT ? "SIGINT" : "SIGTERM");
        }
    };
    for (auto [h, sig] : {std::pair{&sigint_, SIGINT}, {&sigterm_, SIGTERM}, {&sighup_, SIGHUP}}) {
        uv_signal_init(&loop_, h);
        h->data = this;
        uv_signal_start(h, on_signal, sig);
    }
    std::signal(SIGPIPE, SIG_IGN);
    spdlog::info("popbridge {} running: data_dir={} accounts={}", POPBRIDGE_VERSION,
                 config_.data_dir.string(), accounts_.size());
    uv_run(&loop_, UV_RUN_DEFAULT);
    return exit_code_;
}

bool Daemon::start_listeners() {
    auto open = [&](const config::Endpoint& ep, bool tls) {
        ImapSessionOptions opts;
        opts.implicit_tls = tls;
        opts.tls = server_tls_.get();
        opts.allow_plaintext_auth = config_.imap.allow_plaintext_auth;
        BackendServices services{&loop_, store_.get(), sync_.get(), this};
        auto l = Listener::open(&loop_, ep.host, ep.port, [this, opts, services](Connection* c) {
            if (shutting_down_) {
                c->close("shutting down");
                return;
            }
            ImapSession::start(c, services, opts, [this](ImapSession* s, bool added) {
                if (added)
                    sessions_.insert(s);
                else
                    sessions_.erase(s);
            });
        });
        if (!l) {
            spdlog::critical("{}", l.error());
            return false;
        }
        listeners_.push_back(*l);
        spdlog::info("imap listening on {}{}", (*l)->address(), tls ? " (TLS)" : "");
        return true;
    };
    for (const auto& ep : config_.imap.listen)
        if (!open(ep, false))
            return false;
    for (const auto& ep : config_.imap.listen_tls)
        if (!open(ep, true))
            return false;
    return true;
}

void Daemon::load_accounts(bool initial) {
    config::AccountsLoad loaded = config::load_accounts(config_.accounts_dir);
    for (const auto& d : loaded.errors)
        spdlog::error("account config: {}", d.to_string());
    for (const auto& f : loaded.disabled_files)
        spdlog::error("account file {} disabled: fix the errors above and send SIGHUP", f);

    std::map<std::string, config::Account> next;
    for (auto& a : loaded.accounts)
        next.emplace(a.user, std::move(a));
    // A file that failed to load keeps its previous, working version running: a typo in an
    // edit must not stop a user's mail.
    if (!initial) {
        for (const auto& f : loaded.disabled_files) {
            for (auto& [user, st] : accounts_) {
                if (st.account.source_file == f && !next.count(user)) {
                    spdlog::warn("account {} keeps its previous configuration", user);
                    next.emplace(user, st.account);
                }
            }
        }
    }
    // Remove accounts that are gone.
    for (auto it = accounts_.begin(); it != accounts_.end();) {
        if (!next.count(it->first)) {
            spdlog::info("account {} removed", it->first);
            it = accounts_.erase(it); // pollers stop in their destructors
        } else {
            ++it;
        }
    }
    PollerServices ps{&loop_, store_.get(), sync_.get(), gate_.get()};
    for (auto& [user, account] : next) {
        auto it = accounts_.find(user);
        if (it != accounts_.end() && it->second.account == account)
            continue; // unchanged: keep pollers and their schedule
        bool is_new = it == accounts_.end();
        AccountState st;
        st.account = account;
        if (auto r = store_->open_user(user); !r) {
            spdlog::error("account {} disabled: cannot open its store: {}", user,
                          r.error().message);
            if (!is_new)
                accounts_.erase(it);
            continue;
        }
        for (const auto& up : account.upstreams) {
            auto p = std::make_unique<Pop3Poller>(ps, user, up);
            p->start();
            st.pollers.push_back(std::move(p));
        }
        spdlog::info("account {} {}: {} upstream(s)", user, is_new ? "loaded" : "reloaded",
                     account.upstreams.size());
        accounts_.insert_or_assign(user, std::move(st));
    }
}

void Daemon::begin_shutdown(const char* why) {
    if (shutting_down_)
        return;
    shutting_down_ = true;
    spdlog::info("{}: shutting down", why);
    for (Listener* l : listeners_)
        l->close();
    listeners_.clear();
    for (auto& [user, st] : accounts_)
        for (auto& p : st.pollers)
            p->stop();
    std::set<ImapSession*> sessions = sessions_;
    for (ImapSession* s : sessions)
        s->shutdown("popbridge shutting down");
    // Let sessions flush their BYE and the running commit finish, but not forever.
    shutdown_timer_ = std::make_unique<uv::Timer>(&loop_);
    shutdown_timer_->start(50, 50, [this, deadline = uv_now(&loop_) + 5000] {
        if ((sessions_.empty() && !sync_->busy()) || uv_now(&loop_) >= deadline)
            finish_shutdown();
    });
}

void Daemon::finish_shutdown() {
    shutdown_timer_.reset();
    accounts_.clear();
    uv_signal_stop(&sigint_);
    uv_signal_stop(&sigterm_);
    uv_signal_stop(&sighup_);
    for (uv_signal_t* h : {&sigint_, &sigterm_, &sighup_})
        uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
    // Sessions still open after the grace period are cut now.
    for (ImapSession* s : std::set<ImapSession*>(sessions_))
        s->abort();
    spdlog::info("popbridge stopped");
}

} // namespace popbridge::proxy
