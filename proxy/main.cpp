// popbridge: command line entry point. See README.md and `popbridge --help`.

#include <netdb.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "config/yaml_loader.h"
#include "proxy/daemon.h"
#include "proxy/log.h"
#include "proxy/login_throttle.h"
#include "proxy/password.h"
#include "proxy/tls_context.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/popbridge/popbridge.yaml";
constexpr rlim_t kMinOpenFiles = 1024; // below this, harden_process() warns

// Exit codes a script can rely on (also in --help and README.md).
constexpr int kExitOk = 0;
constexpr int kExitError = 1;       // configuration invalid, runtime error, unhealthy, trouble
constexpr int kExitUsage = 2;       // bad command line
constexpr int kExitUnreachable = 3; // admin endpoint not configured or not answering
constexpr int kExitRefused = 4;     // the daemon refused the request (unknown account...)

void print_help() {
    std::printf(
        "popbridge %s: POP3 mailboxes as IMAP, shared by every device\n"
        "\n"
        "Usage:\n"
        "  popbridge [--config FILE]                run the daemon (foreground)\n"
        "  popbridge [--config FILE] check-config   validate the daemon file and every\n"
        "                                           account file, print all errors\n"
        "  popbridge --config FILE --check-config   the same\n"
        "  popbridge hash-password                  read a password (no echo on a terminal)\n"
        "                                           and print its yescrypt crypt(3) hash\n"
        "  popbridge [--config FILE] status         every account of the running daemon:\n"
        "                                           state, last poll, next poll, last error\n"
        "  popbridge [--config FILE] poll-now USER[/UPSTREAM]\n"
        "                                           ask the running daemon to poll now\n"
        "  popbridge [--config FILE] health         exit 0 if the daemon reports healthy\n"
        "  popbridge --version                      print the version\n"
        "  popbridge --help                         this text\n"
        "\n"
        "FILE defaults to %s. status, poll-now and health talk to the\n"
        "daemon's admin endpoint: admin.listen from FILE (or <data_dir>/admin.address when\n"
        "that port is 0), or --admin HOST:PORT.\n"
        "\n"
        "Exit codes:\n"
        "  0  success (status: every account polls fine; health: healthy)\n"
        "  1  configuration or runtime error; status: some account is failing, stopped or\n"
        "     has a broken file; health: the daemon answered but is not healthy\n"
        "  2  usage error\n"
        "  3  admin endpoint not configured or the daemon is not answering\n"
        "  4  the daemon refused the request (poll-now: no such account)\n",
        POPBRIDGE_VERSION, kDefaultConfig);
}

struct HttpReply {
    int status = 0;
    std::string body;
};

// One blocking HTTP/1.1 request to the admin endpoint (5 s timeouts). Errors are text.
tl::expected<HttpReply, std::string>
admin_request(const std::string& address, const std::string& method, const std::string& target) {
    std::string host = address, port;
    if (!host.empty() && host.front() == '[') {
        size_t close = host.find(']');
        if (close == std::string::npos || close + 1 >= host.size() || host[close + 1] != ':')
            return tl::unexpected("bad admin address " + address);
        port = host.substr(close + 2);
        host = host.substr(1, close - 1);
    } else {
        size_t colon = host.rfind(':');
        if (colon == std::string::npos)
            return tl::unexpected("bad admin address " + address + " (want HOST:PORT)");
        port = host.substr(colon + 1);
        host = host.substr(0, colon);
    }
    if (host == "0.0.0.0")
        host = "127.0.0.1";
    else if (host == "::")
        host = "::1";
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
        return tl::unexpected("cannot resolve " + address + ": " + gai_strerror(rc));
    int fd = -1;
    std::string err = "no address";
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        timeval tv{5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = std::strerror(errno);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return tl::unexpected("cannot connect to the admin endpoint " + address + ": " + err);
    std::string req =
        method + " " + target + " HTTP/1.1\r\nHost: " + address +
        "\r\nUser-Agent: popbridge-cli\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != ssize_t(req.size())) {
        err = std::strerror(errno);
        close(fd);
        return tl::unexpected("cannot send to the admin endpoint " + address + ": " + err);
    }
    std::string raw;
    char buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0)
            break;
        if (n < 0) {
            err = errno == EAGAIN ? "timed out" : std::strerror(errno);
            close(fd);
            return tl::unexpected("no answer from the admin endpoint " + address + ": " + err);
        }
        raw.append(buf, size_t(n));
        if (raw.size() > (64u << 20))
            break;
    }
    close(fd);
    HttpReply r;
    size_t head_end = raw.find("\r\n\r\n");
    if (!raw.starts_with("HTTP/1.") || raw.size() < 12 || head_end == std::string::npos)
        return tl::unexpected("the admin endpoint " + address + " did not answer in HTTP");
    r.status = std::atoi(raw.c_str() + 9);
    r.body = raw.substr(head_end + 4);
    return r;
}

// Where the running daemon's admin endpoint is, from the daemon file.
tl::expected<std::string, std::string> admin_address(const std::string& config) {
    auto daemon = popbridge::config::load_daemon_config(config);
    if (!daemon) {
        std::string all;
        for (const auto& d : daemon.error())
            all += d.to_string() + "\n";
        return tl::unexpected(all + config + ": cannot read the admin address");
    }
    if (!daemon->admin.listen)
        return tl::unexpected(config + ": admin.listen is not set, so the daemon has no admin "
                                       "endpoint (see docs/configuration.md)");
    if (daemon->admin.listen->port != 0)
        return daemon->admin.listen->to_string();
    auto file = daemon->data_dir / "admin.address";
    std::ifstream f(file);
    std::string a;
    if (!(f >> a))
        return tl::unexpected("admin.listen uses port 0 and " + file.string() +
                              " is missing: is the daemon running?");
    return a;
}

std::string relative(long long t, long long now) {
    if (t <= 0)
        return "never";
    long long d = t - now;
    long long a = d < 0 ? -d : d;
    std::string v = a < 120      ? std::to_string(a) + "s"
                    : a < 7200   ? std::to_string(a / 60) + "m"
                    : a < 172800 ? std::to_string(a / 3600) + "h"
                                 : std::to_string(a / 86400) + "d";
    return d <= 0 ? v + " ago" : "in " + v;
}

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t t = line.find('\t', start);
        out.push_back(line.substr(start, t - start));
        if (t == std::string::npos)
            return out;
        start = t + 1;
    }
}

int status_cmd(const std::string& address) {
    auto r = admin_request(address, "GET", "/status?format=text");
    if (!r) {
        std::fprintf(stderr, "popbridge: %s\n", r.error().c_str());
        return kExitUnreachable;
    }
    if (r->status != 200) {
        std::fprintf(stderr, "popbridge: admin endpoint answered %d: %s", r->status,
                     r->body.c_str());
        return kExitError;
    }
    long long now = std::time(nullptr);
    std::istringstream in(r->body);
    std::string line;
    bool trouble = false;
    std::printf("%-28s %-12s %-14s %-14s %-10s %-5s %s\n", "ACCOUNT", "STATE", "LAST POLL",
                "LAST SUCCESS", "NEXT POLL", "FAIL", "LAST ERROR");
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        auto f = split_tabs(line);
        if (f[0] == "config-error" && f.size() >= 2) {
            std::printf("config error: %s\n", f[1].c_str());
            trouble = true;
            continue;
        }
        if (f[0] == "config" && f.size() >= 3) {
            std::printf("%-28s config: %s\n", f[1].c_str(), f[2].c_str());
            trouble = true;
            continue;
        }
        if (f.size() < 8)
            continue;
        const std::string& state = f[1];
        if (state == "failing" || state == "auth failed" || state == "stopped")
            trouble = true;
        std::printf("%-28s %-12s %-14s %-14s %-10s %-5s %s\n", f[0].c_str(), state.c_str(),
                    relative(std::atoll(f[2].c_str()), now).c_str(),
                    relative(std::atoll(f[3].c_str()), now).c_str(),
                    relative(std::atoll(f[4].c_str()), now).c_str(), f[5].c_str(), f[7].c_str());
    }
    return trouble ? kExitError : kExitOk;
}

int poll_now_cmd(const std::string& address, const std::string& account) {
    std::string target = "/poll-now?account=";
    for (unsigned char c : account) {
        if (std::isalnum(c) || std::strchr("-._~/@", c)) {
            target += char(c);
        } else {
            char esc[4];
            std::snprintf(esc, sizeof esc, "%%%02X", c);
            target += esc;
        }
    }
    auto r = admin_request(address, "POST", target);
    if (!r) {
        std::fprintf(stderr, "popbridge: %s\n", r.error().c_str());
        return kExitUnreachable;
    }
    if (r->status == 202) {
        std::printf("%s", r->body.c_str());
        return kExitOk;
    }
    std::fprintf(stderr, "popbridge: %s", r->body.c_str());
    return r->status == 404 ? kExitRefused : kExitError;
}

int health_cmd(const std::string& address) {
    auto r = admin_request(address, "GET", "/healthz");
    if (!r) {
        std::fprintf(stderr, "popbridge: %s\n", r.error().c_str());
        return kExitUnreachable;
    }
    std::printf("%s", r->body.c_str());
    return r->status == 200 ? kExitOk : kExitError;
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
    for (const auto& w : accounts.warnings)
        std::fprintf(stderr, "warning: %s\n", w.to_string().c_str());
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

// Process hygiene at start (README.md "Security"): no core dumps and no ptrace/proc access
// by other processes of the same uid (PR_SET_DUMPABLE 0 also makes /proc/<pid>/ files
// root-owned), and as many file descriptors as the hard limit allows. Each IMAP connection,
// upstream POP3 connection and open store file takes a descriptor.
void harden_process(const popbridge::config::DaemonConfig& config) {
    rlimit no_core{0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) != 0)
        spdlog::warn("cannot disable core dumps: setrlimit(RLIMIT_CORE): {}", std::strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        spdlog::warn("cannot clear the dumpable flag: prctl(PR_SET_DUMPABLE): {}",
                     std::strerror(errno));

    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) != 0) {
        spdlog::warn("cannot read the open file limit: getrlimit(RLIMIT_NOFILE): {}",
                     std::strerror(errno));
        return;
    }
    if (files.rlim_cur < files.rlim_max) {
        rlimit raised{files.rlim_max, files.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            files = raised;
    }
    // A home server's worth: the upstream connections, two per IMAP device for a few dozen
    // devices, store files being synced, listeners, log and admin.
    rlim_t wanted = std::max<rlim_t>(kMinOpenFiles, 256 + 2 * rlim_t(config.poll.max_connections));
    if (files.rlim_cur != RLIM_INFINITY && files.rlim_cur < wanted) {
        spdlog::warn(
            "open file limit is {} (hard limit {}), below the {} popbridge wants: "
            "connections beyond it are refused (EMFILE). Raise it with `ulimit -n {}` "
            "before starting, LimitNOFILE={} in the systemd unit, or "
            "`docker run --ulimit nofile={}:{}`",
            static_cast<unsigned long long>(files.rlim_cur),
            files.rlim_max == RLIM_INFINITY
                ? std::string("unlimited")
                : std::to_string(static_cast<unsigned long long>(files.rlim_max)),
            static_cast<unsigned long long>(wanted), static_cast<unsigned long long>(wanted),
            static_cast<unsigned long long>(wanted), static_cast<unsigned long long>(wanted),
            static_cast<unsigned long long>(wanted));
    } else {
        spdlog::debug("open file limit {}", static_cast<unsigned long long>(files.rlim_cur));
    }
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    std::string config = kDefaultConfig;
    std::string command = "run";
    std::string account, admin;
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
                return kExitUsage;
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
        } else if (a == "status" || a == "health") {
            command = std::string(a);
        } else if (a == "poll-now") {
            command = "poll-now";
            if (i + 1 >= args.size() || args[i + 1].starts_with("-")) {
                std::fprintf(stderr,
                             "popbridge: poll-now needs an account: USER or USER/UPSTREAM\n");
                return kExitUsage;
            }
            account = std::string(args[++i]);
        } else if (a == "--admin") {
            if (i + 1 >= args.size()) {
                std::fprintf(stderr, "popbridge: --admin needs HOST:PORT\n");
                return kExitUsage;
            }
            admin = std::string(args[++i]);
        } else {
            std::fprintf(stderr, "popbridge: unknown argument '%.*s' (see --help)\n", int(a.size()),
                         a.data());
            return kExitUsage;
        }
    }
    if (command == "check-config")
        return check_config(config);
    if (command == "hash-password")
        return hash_password_cmd();
    if (command == "status" || command == "poll-now" || command == "health") {
        if (admin.empty()) {
            auto a = admin_address(config);
            if (!a) {
                std::fprintf(stderr, "popbridge: %s\n", a.error().c_str());
                return kExitUnreachable;
            }
            admin = *a;
        }
        if (command == "status")
            return status_cmd(admin);
        if (command == "health")
            return health_cmd(admin);
        return poll_now_cmd(admin, account);
    }

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
    harden_process(*daemon_config);
    popbridge::proxy::login_throttle().set_limits(
        {daemon_config->imap.login_delay, daemon_config->imap.login_delay_max,
         popbridge::proxy::LoginThrottleLimits{}.forget_after,
         popbridge::proxy::LoginThrottleLimits{}.max_keys});
    int rc;
    {
        popbridge::proxy::Daemon daemon(std::move(*daemon_config));
        rc = daemon.run();
    }
    return rc;
}
