#pragma once
// The popbridge daemon: one libuv loop that owns the store, the IMAP listeners and
// sessions, and one POP3 poller per configured upstream. Signals: SIGINT/SIGTERM shut
// down in order (stop accepting, say BYE to sessions, abort polls without QUIT, let the
// running store commit finish), SIGHUP reloads the account files without dropping IMAP
// sessions.

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <uv.h>

#include "config/daemon_config.h"
#include "config/yaml_loader.h"
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
    };

    bool start_listeners();
    void load_accounts(bool initial);
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
    bool shutting_down_ = false;
    int exit_code_ = 0;
};

} // namespace popbridge::proxy
