#include "proxy/daemon.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <ctime>
#include <fstream>

#include <spdlog/spdlog.h>

#include "proxy/imap_session.h"
#include "proxy/metrics.h"

namespace popbridge::proxy {

using namespace std::chrono_literals;

namespace {
// A device opening or IDLEing a folder polls its upstreams at most this often (the poller
// also honours the server's LOGIN-DELAY and its own backoff).
constexpr std::chrono::seconds kDeviceTriggeredPollInterval{15};
} // namespace

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
    // A device looking at a folder an upstream delivers to gets fresh mail now (rate
    // limited per upstream, see kDeviceTriggeredPollInterval).
    for (auto& p : it->second.pollers)
        if (p->upstream().folder == folder)
            p->poll_now(kDeviceTriggeredPollInterval);
}

int Daemon::run() {
    store::StoreOptions so;
    so.data_dir = config_.data_dir;
    // Recovery and compaction reports (rolled-forward moves, rebuilt indexes...).
    so.log = [](std::string_view message) { spdlog::warn("store: {}", message); };
    auto store = store::Store::open(so);
    if (!store) {
        spdlog::critical("cannot open the store in {}: {}", config_.data_dir.string(),
                         store.error().message);
        return 1;
    }
    store_ = std::move(*store);
    sync_ = std::make_unique<StoreSync>(&loop_, *store_);
    gate_ = std::make_unique<ConnectionGate>(config_.poll.max_connections);
    shared_structure_cache().set_max_bytes(std::size_t(config_.imap.structure_cache));

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
    probe_store();
    load_accounts(true);
    if (!start_admin()) {
        for (Listener* l : listeners_)
            l->close();
        listeners_.clear();
        accounts_.clear();
        return 1;
    }
    watch_accounts_dir();
    probe_timer_ = std::make_unique<uv::Timer>(&loop_);
    probe_timer_->start(15'000, 15'000, [this] { probe_store(); });
    uv_check_init(&loop_, &commit_check_);
    commit_check_.data = this;
    uv_check_start(&commit_check_,
                   [](uv_check_t* h) noexcept { static_cast<Daemon*>(h->data)->note_commits(); });
    running_ = true;

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
        const config::ImapTimeouts& t = config_.imap.timeouts;
        opts.tls_handshake_timeout = t.tls_handshake;
        opts.login_timeout = t.login;
        opts.autologout = t.autologout;
        const config::ImapLimits& lim = config_.imap.limits;
        opts.max_line_pre_auth = std::size_t(lim.max_line_pre_auth);
        opts.max_line = std::size_t(lim.max_line);
        opts.max_bad_commands_pre_auth = lim.max_bad_commands_pre_auth;
        opts.max_bad_commands = lim.max_bad_commands;
        BackendServices services{&loop_, store_.get(), sync_.get(), this};
        auto l = Listener::open(&loop_, ep.host, ep.port, [this, opts, services](Connection* c) {
            if (shutting_down_) {
                c->close("shutting down");
                return;
            }
            if (sessions_.size() >= config_.imap.limits.max_connections) {
                refuse_connection(c, opts.implicit_tls);
                return;
            }
            // The session counts itself in metrics(); the registry only tracks it.
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

void Daemon::refuse_connection(Connection* c, bool implicit_tls) {
    ++refused_.total;
    ++refused_.since_log;
    // One line per burst, not one per connection: a flood must not flood the log too.
    uint64_t now = uv_now(&loop_);
    if (refused_.last_log == 0 || now - refused_.last_log >= 10'000) {
        spdlog::warn("imap connection from {} refused: {} connections open, "
                     "imap.limits.max_connections is {} ({} refused since the last report)",
                     c->remote_address(), sessions_.size(), config_.imap.limits.max_connections,
                     refused_.since_log);
        refused_.last_log = now;
        refused_.since_log = 0;
    }
    if (implicit_tls) {
        // A BYE would cost a full TLS handshake; the log line says why.
        c->close("too many connections");
        return;
    }
    c->write(std::string_view("* BYE [UNAVAILABLE] Too many connections, try again later\r\n"));
    c->close_after_flush("too many connections");
}

void Daemon::load_accounts(bool initial) {
    config::AccountsLoad loaded = config::load_accounts(config_.accounts_dir);
    for (const auto& d : loaded.errors)
        spdlog::error("account config: {}", d.to_string());
    for (const auto& f : loaded.disabled_files)
        spdlog::error("account file {} disabled: fix the errors above and send SIGHUP", f);
    for (const auto& w : loaded.warnings)
        spdlog::warn("account config: {}", w.to_string());
    reload_.errors.clear();
    for (const auto& d : loaded.errors)
        reload_.errors.push_back(d.to_string());
    reload_.disabled_files = loaded.disabled_files;
    reload_.at = std::chrono::system_clock::now();
    ++(loaded.errors.empty() ? reload_.ok : reload_.failed);

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
                    st.config_error = "file " + f + " has errors; previous configuration kept";
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
    PollerServices ps{&loop_,
                      store_.get(),
                      sync_.get(),
                      gate_.get(),
                      config_.poll.connect_timeout,
                      config_.poll.read_timeout,
                      config_.poll.token_command_timeout};
    for (auto& [user, account] : next) {
        auto it = accounts_.find(user);
        if (it != accounts_.end() && it->second.account == account) {
            bool kept = false;
            for (const auto& f : loaded.disabled_files)
                kept = kept || f == account.source_file;
            if (!kept)
                it->second.config_error.clear();
            continue; // unchanged: keep pollers and their schedule
        }
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
        if (spdlog::should_log(spdlog::level::trace))
            spdlog::trace("account {} configuration: {}", user, config::describe(account));
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
    if (admin_) {
        admin_->close();
        admin_ = nullptr;
        std::error_code ec;
        std::filesystem::remove(admin_address_file_, ec);
    }
    if (accounts_watch_active_) {
        uv_fs_event_stop(&accounts_watch_);
        uv_close(reinterpret_cast<uv_handle_t*>(&accounts_watch_), nullptr);
        accounts_watch_active_ = false;
    }
    reload_debounce_.reset();
    probe_timer_.reset();
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
    uv_check_stop(&commit_check_);
    uv_close(reinterpret_cast<uv_handle_t*>(&commit_check_), nullptr);
    // Sessions still open after the grace period are cut now.
    for (ImapSession* s : std::set<ImapSession*>(sessions_))
        s->abort();
    spdlog::info("popbridge stopped");
}

// ---------------------------------------------------------------------------------------
// Admin endpoint

namespace {

int64_t unix_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

bool is_set(std::chrono::system_clock::time_point t) {
    return t.time_since_epoch().count() != 0;
}

// "2026-03-01 12:00:05 UTC (3m ago)" or "never".
std::string show_time(std::chrono::system_clock::time_point t) {
    if (!is_set(t))
        return "never";
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    auto d = std::chrono::duration_cast<std::chrono::seconds>(t - std::chrono::system_clock::now())
                 .count();
    bool past = d < 0;
    int64_t a = past ? -d : d;
    std::string rel = a < 120      ? std::to_string(a) + "s"
                      : a < 7200   ? std::to_string(a / 60) + "m"
                      : a < 172800 ? std::to_string(a / 3600) + "h"
                                   : std::to_string(a / 86400) + "d";
    return std::string(buf) + (past ? " (" + rel + " ago)" : " (in " + rel + ")");
}

// What an operator reads in the State column. (A template so that it also builds against
// a PollerStatus without `stopped`.)
template <class S>
std::string poller_state(const S& s) {
    if (s.running)
        return "polling";
    if constexpr (requires { s.stopped; })
        if (s.stopped)
            return "stopped";
    switch (s.last_outcome) {
    case PollOutcome::Never:
        return "waiting";
    case PollOutcome::Ok:
        return "ok";
    case PollOutcome::Failed:
        return "failing";
    case PollOutcome::AuthFailed:
        return "auth failed";
    default:
        return std::string(to_string(s.last_outcome));
    }
}

// Error class for the metric label: the outcome, lower case, no spaces.
std::string error_class(const PollerStatus& s) {
    std::string c(to_string(s.last_outcome));
    std::string out;
    for (char ch : c) {
        if (std::isupper(static_cast<unsigned char>(ch)) && !out.empty())
            out += '_';
        out += char(std::tolower(static_cast<unsigned char>(ch)));
    }
    return out;
}

template <class S>
uint64_t pending_deletion(const S& s) {
    if constexpr (requires { s.messages_pending_deletion; })
        return uint64_t(s.messages_pending_deletion);
    else
        return 0;
}
template <class S>
constexpr bool has_pending_deletion() {
    return requires(const S& s) {
        s.messages_pending_deletion;
    };
}

std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\t' || c == '\n' || c == '\r')
            c = ' ';
    return s;
}

} // namespace

bool Daemon::start_admin() {
    if (!config_.admin.listen)
        return true;
    const config::Endpoint& ep = *config_.admin.listen;
    auto a = AdminServer::open(&loop_, ep.host, ep.port,
                               [this](const HttpRequest& r) { return handle_admin(r); });
    if (!a) {
        spdlog::critical("{}", a.error());
        return false;
    }
    admin_ = *a;
    spdlog::info("admin listening on http://{}/ (/healthz /metrics /status)", admin_->address());
    // The CLI finds the endpoint here when the configured port is 0.
    admin_address_file_ = config_.data_dir / "admin.address";
    std::filesystem::path tmp = admin_address_file_;
    tmp += ".tmp";
    {
        std::ofstream f(tmp, std::ios::trunc);
        f << admin_->address() << "\n";
    }
    std::error_code ec;
    std::filesystem::rename(tmp, admin_address_file_, ec);
    if (ec)
        spdlog::warn("cannot write {}: {}", admin_address_file_.string(), ec.message());
    return true;
}

void Daemon::watch_accounts_dir() {
    uv_fs_event_init(&loop_, &accounts_watch_);
    accounts_watch_.data = this;
    int rc = uv_fs_event_start(
        &accounts_watch_,
        [](uv_fs_event_t* h, const char*, int, int status) noexcept {
            auto* d = static_cast<Daemon*>(h->data);
            if (status < 0 || d->shutting_down_)
                return;
            // Editors write a file in several steps; reload once things settle.
            if (!d->reload_debounce_)
                d->reload_debounce_ = std::make_unique<uv::Timer>(&d->loop_);
            d->reload_debounce_->start(500, 0, [d] {
                spdlog::info("accounts_dir changed: reloading account files from {}",
                             d->config_.accounts_dir.string());
                d->load_accounts(false);
            });
        },
        config_.accounts_dir.c_str(), 0);
    if (rc != 0) {
        spdlog::warn("cannot watch {} ({}); reload with SIGHUP", config_.accounts_dir.string(),
                     uv_strerror(rc));
        uv_close(reinterpret_cast<uv_handle_t*>(&accounts_watch_), nullptr);
        return;
    }
    accounts_watch_active_ = true;
}

void Daemon::probe_store() {
    if (probe_.running)
        return;
    probe_.running = true;
    struct Result {
        bool ok = false;
        std::string error;
    };
    auto result = std::make_shared<Result>();
    std::filesystem::path path = config_.data_dir / ".healthz-probe";
    uv::queue_work(
        &loop_,
        [result, path] {
            int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0) {
                result->error = "cannot create " + path.string() + ": " + std::strerror(errno);
                return;
            }
            bool ok = ::write(fd, "probe\n", 6) == 6 && ::fsync(fd) == 0;
            int err = errno;
            ::close(fd);
            ::unlink(path.c_str());
            if (!ok) {
                result->error = "cannot write " + path.string() + ": " + std::strerror(err);
                return;
            }
            result->ok = true;
        },
        [this, result](bool ran) {
            probe_.running = false;
            if (!ran)
                return;
            if (probe_.ok && !result->ok)
                spdlog::error("health: data dir not writable: {}", result->error);
            else if (!probe_.ok && result->ok && !probe_.error.empty())
                spdlog::info("health: data dir writable again");
            probe_.ok = result->ok;
            probe_.error = result->error;
            probe_.at = std::chrono::steady_clock::now();
        });
}

void Daemon::note_commits() {
    // One group commit runs at a time and the next is started from the previous one's
    // completion, so between two loop iterations at most one new job has finished.
    if (!sync_)
        return;
    uint64_t n = sync_->jobs_run();
    if (n == commits_seen_)
        return;
    metrics().store.commit_finished(sync_->last_job_duration(), 0);
    commits_seen_ = n;
}

HttpResponse Daemon::handle_admin(const HttpRequest& req) {
    bool read = req.method == "GET" || req.method == "HEAD";
    auto only = [&](bool ok, const char* allow) -> std::optional<HttpResponse> {
        if (ok)
            return std::nullopt;
        HttpResponse r = HttpResponse::text(405, std::string("use ") + allow);
        r.headers.emplace_back("Allow", allow);
        return r;
    };
    if (req.path == "/healthz")
        return only(read, "GET, HEAD").value_or(admin_healthz());
    if (req.path == "/metrics")
        return only(read, "GET, HEAD").value_or(admin_metrics());
    if (req.path == "/status" || req.path == "/") {
        if (auto r = only(read, "GET, HEAD"))
            return *r;
        auto f = req.query.find("format");
        return admin_status(f != req.query.end() && f->second == "text");
    }
    if (req.path == "/poll-now") {
        if (auto r = only(req.method == "POST", "POST"))
            return *r;
        return admin_poll_now(req);
    }
    return HttpResponse::text(404, "not found: try /healthz, /metrics, /status");
}

HttpResponse Daemon::admin_healthz() {
    if (shutting_down_)
        return HttpResponse::text(503, "shutting down");
    if (!running_)
        return HttpResponse::text(503, "starting");
    if (!probe_.ok)
        return HttpResponse::text(503,
                                  "data dir not writable: " +
                                      (probe_.error.empty() ? "not probed yet" : probe_.error));
    if (std::chrono::steady_clock::now() - probe_.at > std::chrono::seconds(60))
        return HttpResponse::text(503, "data dir write probe is stuck (no answer for 60 s)");
    return HttpResponse::text(200, "ok");
}

HttpResponse Daemon::admin_metrics() {
    PrometheusWriter w;
    write_core_metrics(w, metrics());

    w.family("popbridge_up", "gauge", "1 while serving, 0 while starting or shutting down.");
    w.sample("popbridge_up", running_ && !shutting_down_ ? 1 : 0);
    w.family("popbridge_store_writable", "gauge", "1 when the last data-dir write probe worked.");
    w.sample("popbridge_store_writable", probe_.ok ? 1 : 0);
    w.family("popbridge_accounts", "gauge", "Local users with a loaded account file.");
    w.sample("popbridge_accounts", double(accounts_.size()));

    w.family("popbridge_config_reloads_total", "counter",
             "Account file loads, by whether any file had errors.");
    w.sample("popbridge_config_reloads_total", {{"result", "ok"}}, double(reload_.ok));
    w.sample("popbridge_config_reloads_total", {{"result", "error"}}, double(reload_.failed));
    w.family("popbridge_config_last_reload_timestamp_seconds", "gauge",
             "Unix time of the last account file load.");
    w.sample("popbridge_config_last_reload_timestamp_seconds", double(unix_seconds(reload_.at)));
    w.family("popbridge_config_errors", "gauge", "Errors found by the last account file load.");
    w.sample("popbridge_config_errors", double(reload_.errors.size()));
    w.family("popbridge_config_file_disabled", "gauge",
             "1 for each account file that failed validation at the last load.");
    for (const auto& f : reload_.disabled_files)
        w.sample("popbridge_config_file_disabled", {{"file", f}}, 1);
    w.family("popbridge_account_config_stale", "gauge",
             "1 when the user's file is broken and the previous configuration is still in use.");
    for (const auto& [user, st] : accounts_)
        w.sample("popbridge_account_config_stale", {{"user", user}},
                 st.config_error.empty() ? 0 : 1);

    // Store totals per user, computed from the in-memory indexes (no disk access).
    w.family("popbridge_store_messages", "gauge", "Messages stored, per user.");
    std::vector<std::pair<std::string, uint64_t>> bytes;
    for (const auto& [user, st] : accounts_) {
        uint64_t n = 0, b = 0;
        if (auto folders = store_->list_folders(user)) {
            for (const auto& f : *folders) {
                if (auto v = store_->view(user, f.id)) {
                    n += v->messages.size();
                    for (const auto& m : v->messages)
                        b += m.size;
                }
            }
        }
        w.sample("popbridge_store_messages", {{"user", user}}, double(n));
        bytes.emplace_back(user, b);
    }
    w.family("popbridge_store_bytes", "gauge", "Bytes of stored messages, per user.");
    for (const auto& [user, b] : bytes)
        w.sample("popbridge_store_bytes", {{"user", user}}, double(b));
    w.family("popbridge_store_last_commit_seconds", "gauge",
             "Duration of the most recent group commit.");
    w.sample("popbridge_store_last_commit_seconds",
             double(sync_->last_job_duration().count()) / 1e6);
    w.family("popbridge_store_committed_operations_total", "counter",
             "Mutations made durable (from the commit driver).");
    w.sample("popbridge_store_committed_operations_total", double(sync_->ops_committed()));

    struct Row {
        std::string account;
        const PollerStatus* s;
    };
    std::vector<Row> rows;
    for (const auto& [user, st] : accounts_)
        for (const auto& p : st.pollers)
            rows.push_back({p->label(), &p->status()});
    auto per = [&](const char* name, const char* type, const char* help, auto value) {
        w.family(name, type, help);
        for (const Row& r : rows)
            w.sample(name, {{"account", r.account}}, double(value(*r.s)));
    };
    per("popbridge_upstream_last_success_timestamp_seconds", "gauge",
        "Unix time of the last successful poll (0: never).", [](const PollerStatus& s) {
            return is_set(s.last_success) ? unix_seconds(s.last_success) : 0;
        });
    per("popbridge_upstream_last_attempt_timestamp_seconds", "gauge",
        "Unix time the last poll started (0: never).", [](const PollerStatus& s) {
            return is_set(s.last_attempt) ? unix_seconds(s.last_attempt) : 0;
        });
    per("popbridge_upstream_next_poll_timestamp_seconds", "gauge",
        "Unix time of the next scheduled poll (0: none).",
        [](const PollerStatus& s) { return is_set(s.next_poll) ? unix_seconds(s.next_poll) : 0; });
    per("popbridge_upstream_consecutive_failures", "gauge", "Failed polls since the last success.",
        [](const PollerStatus& s) { return s.consecutive_failures; });
    per("popbridge_upstream_polls_total", "counter", "Polls finished.",
        [](const PollerStatus& s) { return s.polls; });
    per("popbridge_upstream_messages_downloaded_total", "counter",
        "Messages downloaded and committed.",
        [](const PollerStatus& s) { return s.messages_downloaded; });
    per("popbridge_upstream_bytes_downloaded_total", "counter", "Bytes downloaded and committed.",
        [](const PollerStatus& s) { return s.bytes_downloaded; });
    per("popbridge_upstream_messages_deleted_total", "counter", "Messages deleted upstream.",
        [](const PollerStatus& s) { return s.messages_deleted; });
    if constexpr (has_pending_deletion<PollerStatus>())
        per("popbridge_upstream_messages_pending_deletion", "gauge",
            "Messages downloaded and still on the server, due for deletion by policy.",
            [](const PollerStatus& s) { return pending_deletion(s); });
    per("popbridge_upstream_polling", "gauge", "1 while a poll is running.",
        [](const PollerStatus& s) { return s.running ? 1 : 0; });
    w.family("popbridge_upstream_last_outcome", "gauge",
             "1 for the class of the last poll's outcome (never, ok, failed, auth_failed, "
             "stopped).");
    for (const Row& r : rows)
        w.sample("popbridge_upstream_last_outcome",
                 {{"account", r.account}, {"class", error_class(*r.s)}}, 1);

    HttpResponse resp;
    resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp.body = w.take();
    return resp;
}

HttpResponse Daemon::admin_status(bool text) {
    if (text) {
        // One line per upstream, tab-separated; then config errors. Stable for scripts.
        std::string out = "# account\tstate\tlast_poll\tlast_success\tnext_poll\tfailures\t"
                          "downloaded\tlast_error\n";
        for (const auto& [user, st] : accounts_) {
            if (st.pollers.empty())
                out += user + "\tno-upstreams\t-\t-\t-\t0\t0\t-\n";
            for (const auto& p : st.pollers) {
                const PollerStatus& s = p->status();
                out += p->label() + "\t" + poller_state(s) + "\t" +
                       std::to_string(is_set(s.last_attempt) ? unix_seconds(s.last_attempt) : 0) +
                       "\t" +
                       std::to_string(is_set(s.last_success) ? unix_seconds(s.last_success) : 0) +
                       "\t" + std::to_string(is_set(s.next_poll) ? unix_seconds(s.next_poll) : 0) +
                       "\t" + std::to_string(s.consecutive_failures) + "\t" +
                       std::to_string(s.messages_downloaded) + "\t" +
                       (s.last_error.empty() ? "-" : one_line(s.last_error)) + "\n";
            }
            if (!st.config_error.empty())
                out += "config\t" + user + "\t" + one_line(st.config_error) + "\n";
        }
        for (const auto& e : reload_.errors)
            out += "config-error\t" + one_line(e) + "\n";
        return HttpResponse::text(200, out);
    }

    std::string h;
    h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta http-equiv=\"refresh\" content=\"30\">"
         "<title>popbridge status</title><style>"
         "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
         "table{border-collapse:collapse;width:100%}"
         "th,td{border:1px solid #ccc;padding:.35em .6em;text-align:left;vertical-align:top}"
         "th{background:#f0f0f0}.ok{color:#17702a;font-weight:bold}"
         ".bad{color:#b00020;font-weight:bold}.warn{color:#a05a00;font-weight:bold}"
         ".err{color:#b00020}small{color:#666}</style></head><body>\n";
    h += "<h1>popbridge " + html_escape(POPBRIDGE_VERSION) + "</h1>\n";
    h += "<p>Store: " +
         std::string(probe_.ok
                         ? "<span class=\"ok\">writable</span>"
                         : "<span class=\"bad\">NOT writable</span> " + html_escape(probe_.error)) +
         " &middot; IMAP connections: " + std::to_string(metrics().imap.connections_current) +
         " &middot; accounts: " + std::to_string(accounts_.size()) + " &middot; started " +
         html_escape(show_time(metrics().started)) + "</p>\n";
    h += "<h2>Accounts</h2>\n<table><tr><th>Account</th><th>Upstream</th><th>State</th>"
         "<th>Last poll</th><th>Last success</th><th>Next poll</th><th>Failures</th>"
         "<th>Downloaded</th><th>Last error</th></tr>\n";
    for (const auto& [user, st] : accounts_) {
        if (st.pollers.empty())
            h += "<tr><td>" + html_escape(user) +
                 "</td><td colspan=\"8\"><small>no upstreams (IMAP only)</small></td></tr>\n";
        for (const auto& p : st.pollers) {
            const PollerStatus& s = p->status();
            std::string state = poller_state(s);
            const char* cls = state == "ok"                              ? "ok"
                              : state == "waiting" || state == "polling" ? "warn"
                                                                         : "bad";
            const auto& up = p->upstream();
            h += "<tr><td>" + html_escape(user) + "</td><td>" + html_escape(up.name) +
                 "<br><small>" + html_escape(up.host) + ":" + std::to_string(up.port) +
                 "</small></td><td class=\"" + cls + "\">" + html_escape(state) + "</td><td>" +
                 html_escape(show_time(s.last_attempt)) + "</td><td>" +
                 html_escape(show_time(s.last_success)) + "</td><td>" +
                 html_escape(s.running ? "now" : show_time(s.next_poll)) + "</td><td>" +
                 std::to_string(s.consecutive_failures) + "</td><td>" +
                 std::to_string(s.messages_downloaded) + " msgs<br><small>" +
                 std::to_string(s.bytes_downloaded) + " bytes</small></td><td class=\"err\">" +
                 html_escape(s.last_error) + "</td></tr>\n";
        }
        if (!st.config_error.empty())
            h += "<tr><td>" + html_escape(user) + "</td><td colspan=\"8\" class=\"bad\">" +
                 html_escape(st.config_error) + "</td></tr>\n";
    }
    h += "</table>\n<h2>Configuration</h2>\n<p>Last account reload: " +
         html_escape(show_time(reload_.at)) + ", " + std::to_string(reload_.errors.size()) +
         " error(s).</p>\n";
    if (!reload_.errors.empty()) {
        h += "<ul>\n";
        for (const auto& e : reload_.errors)
            h += "<li class=\"err\">" + html_escape(e) + "</li>\n";
        h += "</ul>\n";
    }
    h += "<p><small>Machine-readable: <a href=\"/metrics\">/metrics</a>, "
         "<a href=\"/status?format=text\">/status?format=text</a>, "
         "<a href=\"/healthz\">/healthz</a></small></p>\n</body></html>\n";
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::move(h);
    return r;
}

HttpResponse Daemon::admin_poll_now(const HttpRequest& req) {
    if (shutting_down_)
        return HttpResponse::text(409, "shutting down");
    auto q = req.query.find("account");
    if (q == req.query.end() || q->second.empty())
        return HttpResponse::text(400, "missing ?account=USER or ?account=USER/UPSTREAM");
    const std::string& want = q->second;
    size_t slash = want.find('/');
    std::string user = want.substr(0, slash);
    std::string upstream = slash == std::string::npos ? "" : want.substr(slash + 1);
    auto it = accounts_.find(user);
    if (it == accounts_.end())
        return HttpResponse::text(404, "no such account: " + want);
    std::vector<std::string> started;
    for (auto& p : it->second.pollers) {
        if (!upstream.empty() && p->upstream().name != upstream)
            continue;
        p->poll_now();
        started.push_back(p->label());
    }
    if (started.empty())
        return HttpResponse::text(404, "no such upstream: " + want);
    std::string body = "poll requested:";
    for (const auto& l : started)
        body += " " + l;
    spdlog::info("admin: {}", body);
    return HttpResponse::text(202, body);
}

} // namespace popbridge::proxy
