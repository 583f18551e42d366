#pragma once
// The popbridge daemon: one libuv loop that owns the store, the IMAP listeners and
// sessions, and one POP3 poller per configured upstream. Signals: SIGINT/SIGTERM shut
// down in order (stop accepting, say BYE to sessions, abort polls without QUIT, let the
// running store commit finish), SIGHUP reloads the account files without dropping IMAP
// sessions; so does any change in accounts_dir (watched, debounced).
//
// Admin endpoint (when admin.listen is set; see docs/configuration.md and README.md):
//   GET  /healthz                      200 "ok" when serving and the data dir is writable,
//                                      503 with the reason otherwise
//   GET  /metrics                      Prometheus text format (proxy/metrics.h + pollers)
//   GET  /status                       HTML page: every account and upstream, config errors
//   GET  /status?format=text           the same as tab-separated text (popbridge status)
//   POST /poll-now?account=USER[/UPSTREAM]  poll now; 202, 404 unknown account, 409 stopping
// The bound admin address is also written to <data_dir>/admin.address for the CLI.

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <uv.h>

#include "config/daemon_config.h"
#include "config/yaml_loader.h"
#include "proxy/admin_http.h"
#include "proxy/listener.h"
#include "proxy/pop3_poller.h"
#include "proxy/store_backend.h"
#include "proxy/store_sync.h"
#include "proxy/tls_context.h"
#include "store/store.h"

namespace popbridge::proxy {

class ImapSession;

class Daemon final : public AccountDirectory {
public:
    explicit Daemon(config::DaemonConfig config);
    ~Daemon() override;

    // Opens the store, loads accounts, starts listening and polling, runs until a stop
    // signal. Returns the process exit code.
    int run();

    // AccountDirectory
    std::optional<std::string> password_hash(const std::string& user) const override;
    void folder_opened(const std::string& user, const std::string& folder) override;

private:
    struct AccountState {
        config::Account account;
        std::vector<std::unique_ptr<Pop3Poller>> pollers;
        std::string config_error; // set while a broken file keeps the previous config
    };
    // Outcome of the last account reload, for /status and /metrics.
    struct ReloadState {
        std::vector<std::string> errors;         // "file:line:col: message"
        std::vector<std::string> disabled_files; // files that failed validation
        std::chrono::system_clock::time_point at{};
        uint64_t ok = 0, failed = 0; // reloads with and without errors
    };
    // Result of the periodic data-dir write probe (runs on the thread pool).
    struct StoreProbe {
        bool ok = false;
        bool running = false;
        std::string error;
        std::chrono::steady_clock::time_point at{};
    };

    bool start_listeners();
    // Over imap.limits.max_connections: "* BYE [UNAVAILABLE]" (plain listeners) and close.
    void refuse_connection(Connection* c, bool implicit_tls);
    bool start_admin();
    void load_accounts(bool initial);
    void watch_accounts_dir();
    void probe_store();
    void note_commits();
    HttpResponse handle_admin(const HttpRequest& req);
    HttpResponse admin_healthz();
    HttpResponse admin_metrics();
    HttpResponse admin_status(bool text);
    HttpResponse admin_poll_now(const HttpRequest& req);
    void begin_shutdown(const char* why);
    void finish_shutdown();

    config::DaemonConfig config_;
    uv_loop_t loop_{};
    uv_signal_t sigint_{}, sigterm_{}, sighup_{};
    std::unique_ptr<store::Store> store_;
    std::unique_ptr<StoreSync> sync_;
    std::unique_ptr<ConnectionGate> gate_;
    SslCtxPtr server_tls_;
    std::vector<Listener*> listeners_;
    std::set<ImapSession*> sessions_;
    std::map<std::string, AccountState> accounts_;
    std::unique_ptr<uv::Timer> shutdown_timer_;
    AdminServer* admin_ = nullptr;
    std::filesystem::path admin_address_file_;
    ReloadState reload_;
    struct {
        uint64_t total = 0;     // connections refused over max_connections
        uint64_t since_log = 0; // ... since the last log line
        uint64_t last_log = 0;  // uv_now() of that line, 0 before the first
    } refused_;
    StoreProbe probe_;
    std::unique_ptr<uv::Timer> probe_timer_;
    uv_fs_event_t accounts_watch_{};
    bool accounts_watch_active_ = false;
    std::unique_ptr<uv::Timer> reload_debounce_;
    uv_check_t commit_check_{};
    uint64_t commits_seen_ = 0;
    bool running_ = false;
    bool shutting_down_ = false;
    int exit_code_ = 0;
};

} // namespace popbridge::proxy
