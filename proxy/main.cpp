// popbridge: command line entry point. See README.md and `popbridge --help`.

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "config/yaml_loader.h"
#include "proxy/daemon.h"
#include "proxy/log.h"
#include "proxy/password.h"
#include "proxy/tls_context.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/popbridge/popbridge.yaml";

void print_help() {
    std::printf(
        "popbridge %s: POP3 mailboxes as IMAP, shared by every device\n"
        "\n"
        "Usage:\n"
        "  popbridge [--config FILE]                run the daemon (foreground)\n"
        "  popbridge --config FILE --check-config   validate the daemon file and every\n"
        "                                           account file, print all errors, exit\n"
        "  popbridge check-config [--config FILE]   same as --check-config\n"
        "  popbridge hash-password                  read a password (no echo on a terminal)\n"
        "                                           and print its yescrypt crypt(3) hash\n"
        "  popbridge --version                      print the version\n"
        "  popbridge --help                         this text\n"
        "\n"
        "FILE defaults to %s. Exit codes: 0 success, 1 runtime or\n"
        "configuration error, 2 usage error.\n",
        POPBRIDGE_VERSION, kDefaultConfig);
}

// Loads and validates everything; prints every problem. Returns the exit code.
int check_config(const std::string& path) {
    auto daemon = popbridge::config::load_daemon_config(path);
    if (!daemon) {
        for (const auto& d : daemon.error())
            std::fprintf(stderr, "%s\n", d.to_string().c_str());
        std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), daemon.error().size());
        return 1;
    }
    int errors = 0;
    if (daemon->imap.tls) {
        auto ctx = popbridge::proxy::make_server_tls_context(daemon->imap.tls->cert.string(),
                                                             daemon->imap.tls->key.string());
        if (!ctx) {
            std::fprintf(stderr, "%s: imap.tls: %s\n", path.c_str(), ctx.error().c_str());
            ++errors;
        }
    }
    auto accounts = popbridge::config::load_accounts(daemon->accounts_dir);
    for (const auto& d : accounts.errors)
        std::fprintf(stderr, "%s\n", d.to_string().c_str());
    errors += int(accounts.errors.size());
    for (const auto& a : accounts.accounts)
        std::printf("account %s: %zu upstream(s) (%s)\n", a.user.c_str(), a.upstreams.size(),
                    a.source_file.c_str());
    if (errors) {
        std::fprintf(stderr, "configuration has %d error(s); %zu account file(s) disabled\n",
                     errors, accounts.disabled_files.size());
        return 1;
    }
    std::printf("configuration OK: %s, %zu account(s)\n", path.c_str(), accounts.accounts.size());
    return 0;
}

int hash_password_cmd() {
    std::string pw;
    bool tty = isatty(STDIN_FILENO);
    termios old{};
    if (tty) {
        std::fprintf(stderr, "Password: ");
        tcgetattr(STDIN_FILENO, &old);
        termios quiet = old;
        quiet.c_lflag &= ~tcflag_t(ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::getline(std::cin, pw);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        std::fprintf(stderr, "\n");
    }
    if (!pw.empty() && pw.back() == '\r')
        pw.pop_back();
    if (pw.empty()) {
        std::fprintf(stderr, "popbridge: empty password refused\n");
        return 1;
    }
    auto h = popbridge::proxy::hash_password(pw);
    std::fill(pw.begin(), pw.end(), '\0');
    if (!h) {
        std::fprintf(stderr, "popbridge: %s\n", h.error().c_str());
        return 1;
    }
    std::printf("%s\n", h->c_str());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    std::string config = kDefaultConfig;
    std::string command = "run";
    for (size_t i = 0; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (a == "--help" || a == "-h") {
            print_help();
            return 0;
        } else if (a == "--version" || a == "-V") {
            std::printf("popbridge %s\n", POPBRIDGE_VERSION);
            return 0;
        } else if (a == "--config" || a == "-c") {
            if (i + 1 >= args.size()) {
                std::fprintf(stderr, "popbridge: --config needs a file name\n");
                return 2;
            }
            config = std::string(args[++i]);
        } else if (a.starts_with("--config=")) {
            config = std::string(a.substr(9));
        } else if (a == "--check-config" || a == "check-config") {
            command = "check-config";
            // Also accept "--check-config FILE".
            if (i + 1 < args.size() && !args[i + 1].starts_with("-"))
                config = std::string(args[++i]);
        } else if (a == "hash-password") {
            command = "hash-password";
        } else {
            std::fprintf(stderr, "popbridge: unknown argument '%.*s' (see --help)\n",
                         int(a.size()), a.data());
            return 2;
        }
    }
    if (command == "check-config")
        return check_config(config);
    if (command == "hash-password")
        return hash_password_cmd();

    auto daemon_config = popbridge::config::load_daemon_config(config);
    if (!daemon_config) {
        for (const auto& d : daemon_config.error())
            std::fprintf(stderr, "%s\n", d.to_string().c_str());
        std::fprintf(stderr, "popbridge: cannot start: %s has %zu error(s)\n", config.c_str(),
                     daemon_config.error().size());
        return 1;
    }
    popbridge::proxy::init_logging(std::string(to_string(daemon_config->log.level)),
                                   std::string(to_string(daemon_config->log.format)));
    int rc;
    {
        popbridge::proxy::Daemon daemon(std::move(*daemon_config));
        rc = daemon.run();
    }
    return rc;
}
