#include "proxy/pop3_poller.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <csignal>

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "protocol/common/wipe.h"
#include "protocol/pop3/client.h"
#include "proxy/connection.h"
#include "proxy/store_sync.h"

namespace popbridge::proxy {

namespace pop3 = protocol::pop3;
using namespace std::chrono_literals;

namespace {

constexpr auto kBackoffCap = 1h;
constexpr unsigned kAuthFailuresBeforeStop = 3;
constexpr size_t kMaxUidl = 70;                // RFC 1939 section 7
constexpr size_t kMaxHeaderBytes = 256 * 1024; // header section read for matching
constexpr size_t kMaxTokenBytes = 64 * 1024;
constexpr size_t kMaxStderrBytes = 4096;
// Messages downloaded but not yet committed before the poller stops reading from the
// server (it resumes at half): bounds how far downloads run ahead of durability.
constexpr size_t kMaxPendingCommits = 256;

// Tests may shorten the network timeout and the backoff base (milliseconds). Defaults: the
// configured poll.read_timeout, and 30 s.
std::chrono::milliseconds env_ms(const char* name, std::chrono::milliseconds fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v)
        return fallback;
    char* end = nullptr;
    long long n = std::strtoll(v, &end, 10);
    if (*end != '\0' || n <= 0)
        return fallback;
    return std::chrono::milliseconds(n);
}
std::chrono::milliseconds read_timeout(const PollerServices& svc) {
    return env_ms("POPBRIDGE_POP3_TIMEOUT_MS", svc.read_timeout);
}
std::chrono::milliseconds connect_timeout(const PollerServices& svc) {
    return std::min(svc.connect_timeout, env_ms("POPBRIDGE_POP3_TIMEOUT_MS", svc.connect_timeout));
}
std::chrono::milliseconds backoff_base() {
    return env_ms("POPBRIDGE_POP3_BACKOFF_MS", 30s);
}

std::mt19937_64& rng() {
    static std::mt19937_64 r{std::random_device{}()};
    return r;
}

// `d` scaled by a random factor in [0.9, 1.1].
std::chrono::milliseconds jittered(std::chrono::milliseconds d) {
    std::uniform_real_distribution<double> f(0.9, 1.1);
    return std::chrono::milliseconds(int64_t(double(d.count()) * f(rng())));
}

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

pop3::AuthMethod to_pop3(config::AuthMethod m) {
    switch (m) {
    case config::AuthMethod::Pass:
        return pop3::AuthMethod::UserPass;
    case config::AuthMethod::Apop:
        return pop3::AuthMethod::Apop;
    case config::AuthMethod::Plain:
        return pop3::AuthMethod::Plain;
    case config::AuthMethod::XOAuth2:
        return pop3::AuthMethod::XOAuth2;
    case config::AuthMethod::OAuthBearer:
        return pop3::AuthMethod::OAuthBearer;
    }
    return pop3::AuthMethod::UserPass;
}

std::string hex(const uint8_t* d, size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
        out += digits[d[i] >> 4];
        out += digits[d[i] & 15];
    }
    return out;
}

std::string hex(const config::Sha256& d) {
    return hex(d.data(), d.size());
}

std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    return hex(md, len);
}

// The header section of a message: everything up to and including the CRLF that ends the
// last header line (the empty line is not included). The whole input if there is no
// empty line.
std::string_view header_section(std::string_view msg) {
    if (msg.starts_with("\r\n"))
        return {};
    size_t p = msg.find("\r\n\r\n");
    return p == std::string_view::npos ? msg : msg.substr(0, p + 2);
}

// The unfolded value of the first header field `name` (case-insensitive), trimmed.
std::string header_value(std::string_view headers, std::string_view name) {
    size_t pos = 0;
    while (pos < headers.size()) {
        size_t eol = headers.find("\r\n", pos);
        if (eol == std::string_view::npos)
            eol = headers.size();
        std::string_view line = headers.substr(pos, eol - pos);
        pos = eol + 2;
        if (line.size() > name.size() && line[name.size()] == ':' &&
            std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
                return std::tolower((unsigned char)a) == std::tolower((unsigned char)b);
            })) {
            std::string value(line.substr(name.size() + 1));
            while (pos < headers.size() && (headers[pos] == ' ' || headers[pos] == '\t')) {
                size_t e = headers.find("\r\n", pos);
                if (e == std::string_view::npos)
                    e = headers.size();
                value += ' ';
                value += headers.substr(pos, e - pos);
                pos = e + 2;
            }
            size_t b = value.find_first_not_of(" \t");
            size_t e = value.find_last_not_of(" \t");
            return b == std::string::npos ? std::string() : value.substr(b, e - b + 1);
        }
    }
    return {};
}

// RFC 5322 section 3.3 date-time (plus the obsolete zone names), e.g.
// "Tue, 1 Jul 2003 10:52:37 +0200". Seconds since the epoch, or nullopt.
std::optional<int64_t> parse_rfc5322_date(std::string_view s) {
    std::vector<std::string> w;
    std::string cur;
    for (char c : s) {
        if (c == ' ' || c == '\t' || c == ',') {
            if (!cur.empty())
                w.push_back(std::move(cur)), cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty())
        w.push_back(cur);
    size_t i = 0;
    if (!w.empty() && !w[0].empty() && std::isalpha((unsigned char)w[0][0]))
        i = 1; // day-of-week
    if (w.size() < i + 4)
        return std::nullopt;
    static const char* months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                   "jul", "aug", "sep", "oct", "nov", "dec"};
    auto num = [](const std::string& t, int& out) {
        if (t.empty() || t.size() > 4)
            return false;
        out = 0;
        for (char c : t) {
            if (c < '0' || c > '9')
                return false;
            out = out * 10 + (c - '0');
        }
        return true;
    };
    int day = 0, year = 0, mon = -1;
    if (!num(w[i], day) || day < 1 || day > 31)
        return std::nullopt;
    std::string m = w[i + 1].substr(0, 3);
    for (char& c : m)
        c = char(std::tolower((unsigned char)c));
    for (int k = 0; k < 12; ++k)
        if (m == months[k])
            mon = k;
    if (mon < 0 || !num(w[i + 2], year))
        return std::nullopt;
    if (year < 50)
        year += 2000;
    else if (year < 1000)
        year += 1900;
    int hh = 0, mm = 0, ss = 0;
    const std::string& t = w[i + 3];
    if (std::sscanf(t.c_str(), "%d:%d:%d", &hh, &mm, &ss) < 2 || hh > 23 || mm > 59 || ss > 60)
        return std::nullopt;
    int64_t offset = 0;
    if (w.size() > i + 4) {
        const std::string& z = w[i + 4];
        if ((z[0] == '+' || z[0] == '-') && z.size() == 5) {
            int v = 0;
            if (num(z.substr(1), v))
                offset = int64_t((v / 100) * 3600 + (v % 100) * 60) * (z[0] == '-' ? -1 : 1);
        }
    }
    std::chrono::sys_days d = std::chrono::year{year} / std::chrono::month{unsigned(mon + 1)} /
                              std::chrono::day{unsigned(day)};
    int64_t t0 = std::chrono::duration_cast<std::chrono::seconds>(d.time_since_epoch()).count();
    return t0 + hh * 3600 + mm * 60 + ss - offset;
}

// A UIDL usable as a ledger key as it is: 1..70 bytes of 0x21..0x7E (RFC 1939 section 7).
bool plain_uidl(std::string_view u) {
    if (u.empty() || u.size() > kMaxUidl)
        return false;
    return std::all_of(u.begin(), u.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// Reads the header section of a stored message (bounded).
std::optional<std::string> read_stored_headers(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f)
        return std::nullopt;
    std::string buf(kMaxHeaderBytes, '\0');
    f.read(buf.data(), std::streamsize(buf.size()));
    buf.resize(size_t(f.gcount()));
    return std::string(header_section(buf));
}

} // namespace

std::string_view to_string(PollOutcome o) {
    switch (o) {
    case PollOutcome::Never:
        return "never";
    case PollOutcome::Ok:
        return "ok";
    case PollOutcome::Failed:
        return "failed";
    case PollOutcome::AuthFailed:
        return "auth_failed";
    case PollOutcome::Stopped:
        return "stopped";
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

// token_command: runs argv (no shell) with stdout and stderr on pipes and a timeout.
// Owns itself: freed once its process, pipes and timer are closed. cancel() suppresses the
// callback and kills the child.
class Pop3Poller::TokenCommand {
public:
    using Done = std::function<void(bool ok, std::string token_or_error)>;

    static TokenCommand* run(uv_loop_t* loop, const std::vector<std::string>& argv,
                             std::string label, std::chrono::milliseconds timeout, Done done) {
        auto* t = new TokenCommand(loop, std::move(label), timeout, std::move(done));
        t->spawn(argv);
        return t;
    }

    void cancel() {
        done_ = nullptr;
        kill_and_close();
    }

private:
    TokenCommand(uv_loop_t* loop, std::string label, std::chrono::milliseconds timeout, Done done)
        : loop_(loop), label_(std::move(label)), timeout_(timeout), done_(std::move(done)) {}

    void spawn(const std::vector<std::string>& argv) {
        uv_pipe_init(loop_, &out_, 0);
        uv_pipe_init(loop_, &err_, 0);
        uv_timer_init(loop_, &timer_);
        out_.data = err_.data = timer_.data = proc_.data = this;
        open_ = 3;
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        uv_stdio_container_t stdio[3];
        stdio[0].flags = UV_IGNORE;
        stdio[1].flags = uv_stdio_flags(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&out_);
        stdio[2].flags = uv_stdio_flags(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
        stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&err_);
        uv_process_options_t opts{};
        opts.file = args[0];
        opts.args = args.data();
        opts.stdio = stdio;
        opts.stdio_count = 3;
        opts.exit_cb = &TokenCommand::on_exit;
        // setsid(): the command and anything it starts form their own process group, so a
        // timeout kills them all (a shell script's children too), not only the first pid.
        opts.flags = UV_PROCESS_DETACHED;
        int rc = uv_spawn(loop_, &proc_, &opts);
        ++open_; // the process handle is initialised even when spawning fails
        if (rc != 0) {
            exited_ = true;
            finish(false, "cannot run token_command " + argv[0] + ": " + uv_strerror(rc));
            return;
        }
        running_ = true;
        uv_read_start(reinterpret_cast<uv_stream_t*>(&out_), &TokenCommand::on_alloc,
                      &TokenCommand::on_read);
        uv_read_start(reinterpret_cast<uv_stream_t*>(&err_), &TokenCommand::on_alloc,
                      &TokenCommand::on_read);
        uv_timer_start(&timer_, &TokenCommand::on_timeout, uint64_t(timeout_.count()), 0);
    }

    static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) noexcept {
        auto* t = static_cast<TokenCommand*>(h->data);
        buf->base = t->buf_;
        buf->len = sizeof t->buf_;
    }

    static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept {
        auto* t = static_cast<TokenCommand*>(s->data);
        bool is_out = s == reinterpret_cast<uv_stream_t*>(&t->out_);
        if (n < 0) {
            uv_read_stop(s);
            (is_out ? t->out_eof_ : t->err_eof_) = true;
            t->maybe_done();
            return;
        }
        std::string& dst = is_out ? t->stdout_ : t->stderr_;
        size_t limit = is_out ? kMaxTokenBytes : kMaxStderrBytes;
        if (dst.size() < limit)
            dst.append(buf->base, std::min(size_t(n), limit - dst.size()));
        if (is_out && size_t(n) > 0 && t->stdout_.size() >= kMaxTokenBytes)
            t->too_big_ = true;
    }

    static void on_exit(uv_process_t* p, int64_t status, int signal) noexcept {
        auto* t = static_cast<TokenCommand*>(p->data);
        t->running_ = false;
        if (t->closing_) {
            // Killed by kill_and_close(): reaped now, so the handle may go.
            uv_close(reinterpret_cast<uv_handle_t*>(&t->proc_), &TokenCommand::on_closed);
            return;
        }
        t->exited_ = true;
        t->exit_status_ = status;
        t->term_signal_ = signal;
        t->maybe_done();
    }

    static void on_timeout(uv_timer_t* h) noexcept {
        auto* t = static_cast<TokenCommand*>(h->data);
        t->finish(false, "token_command timed out after " +
                             config::format_duration(
                                 std::chrono::duration_cast<std::chrono::seconds>(t->timeout_)) +
                             "; killed");
    }

    void maybe_done() {
        if (!exited_ || !out_eof_ || !err_eof_ || finished_)
            return;
        std::string token = stdout_;
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r' ||
                                  token.back() == ' ' || token.back() == '\t'))
            token.pop_back();
        if (exit_status_ != 0 || term_signal_ != 0)
            finish(false, "token_command failed (exit " + std::to_string(exit_status_) +
                              (term_signal_ ? ", signal " + std::to_string(term_signal_) : "") +
                              ")");
        else if (too_big_)
            finish(false, "token_command printed more than 64 KiB");
        else if (token.empty())
            finish(false, "token_command printed no token");
        else if (token.find_first_of("\r\n") != std::string::npos ||
                 token.find('\0') != std::string::npos)
            finish(false, "token_command printed more than one line");
        else
            finish(true, std::move(token));
    }

    void finish(bool ok, std::string result) {
        if (finished_)
            return;
        finished_ = true;
        if (!stderr_.empty()) {
            // The child may echo its token; never log it.
            std::string text = stderr_;
            std::string tok = stdout_;
            while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r'))
                tok.pop_back();
            if (tok.size() >= 4)
                for (size_t p = text.find(tok); p != std::string::npos; p = text.find(tok, p))
                    text.replace(p, tok.size(), "<redacted>");
            for (char& c : text)
                if (c == '\n' || c == '\r')
                    c = ' ';
            spdlog::warn("poll account={} token_command stderr: {}", label_, text);
        }
        Done done = std::move(done_);
        done_ = nullptr;
        kill_and_close();
        if (done)
            done(ok, std::move(result)); // may destroy the poller; `this` lives on until closed
    }

    void kill_and_close() {
        if (closing_)
            return;
        closing_ = true;
        bool wait_for_exit = false;
        if (running_) {
            // The whole group (see spawn), then keep the process handle open until libuv has
            // reaped the child in on_exit: closing it first would leave a zombie behind.
            if (::kill(-proc_.pid, SIGKILL) != 0)
                uv_process_kill(&proc_, SIGKILL);
            wait_for_exit = true;
        }
        for (uv_handle_t* h :
             {reinterpret_cast<uv_handle_t*>(&out_), reinterpret_cast<uv_handle_t*>(&err_),
              reinterpret_cast<uv_handle_t*>(&timer_), reinterpret_cast<uv_handle_t*>(&proc_)}) {
            if (h == reinterpret_cast<uv_handle_t*>(&proc_) && (open_ < 4 || wait_for_exit))
                continue; // never initialised, or closed by on_exit
            uv_close(h, &TokenCommand::on_closed);
        }
    }

    static void on_closed(uv_handle_t* h) noexcept {
        auto* t = static_cast<TokenCommand*>(h->data);
        if (--t->open_ == 0)
            delete t;
    }

    uv_loop_t* loop_;
    std::string label_;
    std::chrono::milliseconds timeout_;
    Done done_;
    uv_process_t proc_{};
    uv_pipe_t out_{}, err_{};
    uv_timer_t timer_{};
    int open_ = 0;
    bool running_ = false, exited_ = false, out_eof_ = false, err_eof_ = false;
    bool finished_ = false, closing_ = false, too_big_ = false;
    int64_t exit_status_ = 0;
    int term_signal_ = 0;
    std::string stdout_, stderr_;
    char buf_[4096];
};

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
        conn_ = Connection::connect(svc_.loop, upstream_.host, upstream_.port, this,
                                    connect_timeout(svc_));
    }

    // The poller is going away or stopping: close without QUIT, report nothing more.
    void detach() {
        owner_ = nullptr;
        if (conn_)
            conn_->close("poller stopped");
    }

    void on_connected(Connection& c) override {
        // The connect phase has its own timeout (Connection::connect).
        c.set_idle_timeout(read_timeout(svc_));
        if (upstream_.tls == config::TlsMode::Implicit)
            c.start_tls_client(tls_ctx_, upstream_.host, !upstream_.pin_sha256.has_value());
    }

    void on_tls_ready(Connection& c) override {
        if (upstream_.pin_sha256) {
            std::string got = peer_certificate_sha256(c.ssl());
            if (got != hex(*upstream_.pin_sha256)) {
                fail(PollOutcome::Failed,
                     "certificate does not match pin_sha256 (got " + got + ")");
                return;
            }
        }
        spdlog::debug("poll account={} TLS established ({})", label_,
                      c.ssl() ? SSL_get_version(c.ssl()) : "?");
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
        if (!reported_) {
            std::string why(reason);
            if (client_.state() == pop3::Client::State::Quitting)
                why += " (during QUIT: the server may not have applied DELE)";
            finish(PollOutcome::Failed, why);
        }
        client_.connection_closed();
        pump();
        incoming_.reset(); // a message cut off mid-RETR is discarded, never committed
        self_.reset();     // may destroy this
    }

private:
    // What the poll knows about one listed message.
    struct Entry {
        uint32_t msgno = 0;
        uint64_t size = 0;
        std::string uidl;       // as listed (may be empty)
        std::string key;        // ledger key; empty until known
        bool duplicate = false; // its UIDL is listed more than once
        bool top_needed = false;
        bool top_ok = false;
        std::string header_hash;
        std::string message_id;
        std::optional<int64_t> date;
    };
    // A message of this upstream in the store.
    struct Stored {
        store::FolderId folder = store::kInbox;
        store::Uid uid = 0;
        uint64_t size = 0;
        bool expunged = false;
    };

    void pump() {
        if (conn_) {
            std::string out = client_.take_output();
            if (!out.empty())
                conn_->write(out);
            protocol::wipe(out); // may be PASS/AUTH; the connection has its own copy
        }
        while (auto ev = client_.next_event()) {
            std::visit([this](auto& e) { handle(e); }, *ev);
            if (conn_) {
                std::string out = client_.take_output();
                if (!out.empty())
                    conn_->write(out);
                protocol::wipe(out);
            }
        }
    }

    void handle(pop3::NeedTls&) {
        if (conn_)
            conn_->start_tls_client(tls_ctx_, upstream_.host, !upstream_.pin_sha256.has_value());
    }
    void handle(pop3::Authenticated&) {
        spdlog::debug("poll account={} logged in", label_);
        if (owner_) {
            owner_->auth_failures_ = 0;
            const auto& caps = client_.capabilities();
            owner_->status_.login_delay =
                std::chrono::seconds(caps.login_delay ? *caps.login_delay : 0);
        }
    }

    bool known(const std::string& key) const {
        return svc_.store->has_origin(user_, upstream_.name, key) ||
               (owner_ && owner_->seen_.count(key));
    }

    // The ledger of this upstream, with sizes from the folders' views.
    void load_stored() {
        auto origins = svc_.store->committed_origins(user_, upstream_.name);
        if (!origins)
            return;
        std::map<store::FolderId, store::FolderView> views;
        for (const store::OriginEntry& o : *origins) {
            Stored s{o.folder, o.uid, 0, o.expunged || !o.stored};
            if (!s.expunged) {
                auto it = views.find(o.folder);
                if (it == views.end()) {
                    auto v = svc_.store->view(user_, o.folder);
                    if (v)
                        it = views.emplace(o.folder, *v).first;
                }
                if (it != views.end()) {
                    if (const store::MessageRecord* m = it->second.find(o.uid))
                        s.size = m->size;
                    else
                        s.expunged = true;
                }
            }
            stored_.emplace(o.origin.uidl, s);
            origins_.push_back(o);
        }
    }

    std::optional<std::string> stored_header_section(const Stored& s) {
        auto path = svc_.store->message_path(user_, s.folder, s.uid);
        if (!path)
            return std::nullopt;
        return read_stored_headers(*path);
    }

    void handle(pop3::Listing& l) {
        load_stored();
        uidl_supported_ = l.uidl_supported;
        if (!l.uidl_supported) {
            if (client_.capabilities().received && !client_.capabilities().top) {
                fail(PollOutcome::Failed, "server supports neither UIDL nor TOP: messages "
                                          "cannot be identified without downloading all of "
                                          "them every poll; not polling");
                return;
            }
            spdlog::warn("poll account={} server does not support UIDL: identifying messages "
                         "by a hash of their headers (TOP n 0)",
                         label_);
        }
        std::unordered_map<std::string, size_t> uidl_count;
        for (const auto& e : l.entries)
            if (!e.uidl.empty())
                ++uidl_count[e.uidl];
        size_t long_uidls = 0, no_uidl = 0;
        for (const auto& le : l.entries) {
            Entry e;
            e.msgno = le.msgno;
            e.size = le.size;
            e.uidl = le.uidl;
            if (uidl_supported_) {
                if (le.uidl.empty()) {
                    ++no_uidl; // LIST shows it, UIDL does not: cannot be tracked safely
                    continue;
                }
                if (plain_uidl(le.uidl)) {
                    e.key = le.uidl;
                } else {
                    ++long_uidls;
                    e.key = "pb-uidl:" + sha256_hex(le.uidl);
                }
                e.duplicate = uidl_count[le.uidl] > 1;
            } else {
                e.top_needed = true;
            }
            entries_.push_back(std::move(e));
        }
        if (long_uidls)
            spdlog::warn("poll account={} {} UIDL(s) longer than 70 bytes or with odd bytes: "
                         "keyed by their SHA-256",
                         label_, long_uidls);
        if (no_uidl)
            spdlog::warn("poll account={} {} message(s) listed by LIST but not by UIDL: left "
                         "alone",
                         label_, no_uidl);

        if (uidl_supported_) {
            // UIDLs changed wholesale: the ledger expects messages on the server, none of
            // their UIDLs is listed, and the server does list messages.
            size_t expected = 0, listed_known = 0;
            std::unordered_set<std::string> listed;
            for (const auto& e : entries_) {
                listed.insert(e.key);
                if (stored_.count(e.key))
                    ++listed_known;
            }
            int64_t now = unix_now();
            for (const auto& o : origins_) {
                if (owner_ && owner_->deleted_last_poll_.count(o.origin.uidl))
                    continue;
                if (!o.stored) { // seen, not stored: left on the server for good
                    ++expected;
                    continue;
                }
                if (upstream_.delete_upstream_on_expunge && o.expunged)
                    continue;
                bool kept = false;
                switch (upstream_.keep_on_server.kind) {
                case config::Retention::Kind::Keep:
                    kept = true;
                    break;
                case config::Retention::Kind::DeleteAfterDownload:
                    kept = false;
                    break;
                case config::Retention::Kind::DeleteAfterAge:
                    kept = now - o.commit_time < upstream_.keep_on_server.age.count();
                    break;
                }
                if (kept)
                    ++expected;
            }
            reset_ = expected > 0 && listed_known == 0 && !entries_.empty();
            if (reset_) {
                spdlog::warn("poll account={} none of the {} UIDL(s) expected on the server is "
                             "listed, but it lists {} message(s): the server changed its UIDLs; "
                             "matching messages by size, header hash and Message-ID",
                             label_, expected, entries_.size());
                if (owner_)
                    ++owner_->status_.uidl_resets;
            }
            // DELE that the server ignored.
            size_t reappeared = 0;
            if (owner_)
                for (const auto& e : entries_)
                    if (owner_->deleted_last_poll_.count(e.key))
                        ++reappeared;
            if (reappeared) {
                spdlog::warn("poll account={} {} message(s) deleted in the last poll are listed "
                             "again: the server ignored DELE",
                             label_, reappeared);
                owner_->status_.dele_ignored += reappeared;
            }
            first_sync_ =
                upstream_.import_since && origins_.empty() && owner_ && owner_->seen_.empty();
            for (auto& e : entries_) {
                if (reset_ || e.duplicate) {
                    e.top_needed = true;
                    continue;
                }
                auto st = stored_.find(e.key);
                if (st != stored_.end() && !st->second.expunged && st->second.size != e.size &&
                    e.size <= upstream_.max_message_size) {
                    e.top_needed = true; // UIDL reused, or the LIST size is wrong
                    continue;
                }
                if (first_sync_ && !known(e.key))
                    e.top_needed = true; // its Date: decides whether to import
            }
        }
        std::vector<uint32_t> tops;
        for (const auto& e : entries_)
            if (e.top_needed)
                tops.push_back(e.msgno);
        tops_pending_ = tops.size();
        if (tops.empty())
            decide();
        else
            client_.top(tops);
    }

    Entry* entry(uint32_t msgno) {
        for (auto& e : entries_)
            if (e.msgno == msgno)
                return &e;
        return nullptr;
    }

    void top_done() {
        if (--tops_pending_ == 0)
            decide();
    }

    // Every needed TOP answered: give each entry its key and choose what to download.
    void decide() {
        const std::string reuse_tag = "#";
        int64_t now = unix_now();
        std::optional<int64_t> cutoff;
        // After a UIDL reset the window applies again to what matches nothing stored:
        // the messages skipped on the first sync are listed under new UIDLs too.
        if ((first_sync_ || reset_) && upstream_.import_since) {
            const auto& is = *upstream_.import_since;
            if (is.kind == config::ImportSince::Kind::Age)
                cutoff = now - is.age.count();
            else
                cutoff = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::sys_days(is.date).time_since_epoch())
                             .count();
        }
        // Stored messages of this upstream by size, for reset matching: size -> key.
        std::multimap<uint64_t, const std::string*> by_size;
        if (reset_)
            for (const auto& [k, s] : stored_)
                if (!s.expunged)
                    by_size.emplace(s.size, &k);
        std::unordered_map<const Stored*, std::pair<std::string, std::string>> stored_ids;
        auto stored_identity = [&](const Stored* s) -> const std::pair<std::string, std::string>& {
            auto it = stored_ids.find(s);
            if (it == stored_ids.end()) {
                std::pair<std::string, std::string> id;
                if (auto h = stored_header_section(*s)) {
                    id.first = sha256_hex(*h);
                    id.second = header_value(*h, "Message-ID");
                }
                it = stored_ids.emplace(s, std::move(id)).first;
            }
            return it->second;
        };

        std::unordered_map<std::string, std::string> first_hash_of_uidl;
        std::vector<std::pair<std::string, std::string>> aliases; // new key -> stored key
        std::vector<std::string> seen;                            // older than import_since
        size_t matched = 0, skipped_old = 0, reused = 0, wrong_size = 0, unidentified = 0;
        std::vector<uint32_t> want;
        uint64_t too_large = 0;
        std::unordered_map<std::string, size_t> key_count;
        for (auto& e : entries_) {
            if (!uidl_supported_) {
                if (!e.top_ok) {
                    ++unidentified;
                    continue;
                }
                e.key = "pb-hdr:" + e.header_hash;
            } else if (e.duplicate) {
                auto [it, first] = first_hash_of_uidl.emplace(e.uidl, e.header_hash);
                if (!first) {
                    if (!e.top_ok || it->second == e.header_hash)
                        continue; // the same message listed again: keep one copy
                    e.key += reuse_tag + e.header_hash.substr(0, 16);
                    spdlog::warn("poll account={} UIDL {} is listed for different messages: "
                                 "message {} is imported as {} and none of them is deleted",
                                 label_, e.uidl, e.msgno, e.key);
                }
            } else if (reset_) {
                if (!e.top_ok) {
                    ++unidentified;
                    continue;
                }
                auto [lo, hi] = by_size.equal_range(e.size);
                auto match = hi;
                for (auto it = lo; it != hi && match == hi; ++it) {
                    const auto& id = stored_identity(&stored_.at(*it->second));
                    if (id.first == e.header_hash ||
                        (!e.message_id.empty() && id.second == e.message_id))
                        match = it;
                }
                if (match != hi) {
                    ++matched;
                    ++key_count[e.key]; // the new UIDL is retention's handle on it
                    aliases.emplace_back(e.key, *match->second);
                    by_size.erase(match); // one listed message per stored one
                    continue;
                }
            } else if (e.top_needed && stored_.count(e.key)) {
                // Known UIDL, LIST size differs from the stored message.
                const Stored& s = stored_.at(e.key);
                if (!e.top_ok) {
                    ++unidentified;
                    continue;
                }
                const auto& id = stored_identity(&s);
                if (id.first == e.header_hash) {
                    ++wrong_size;
                    continue; // same message, the LIST size is wrong
                }
                ++reused;
                e.key += reuse_tag + e.header_hash.substr(0, 16);
                spdlog::warn("poll account={} UIDL {} now names a different message "
                             "(size {} vs {} stored): importing it as {}; the stored one is "
                             "never deleted through this UIDL",
                             label_, e.uidl, e.size, s.size, e.key);
            }
            ++key_count[e.key];
            if (known(e.key))
                continue;
            if (cutoff && e.top_needed && e.top_ok && e.date && *e.date < *cutoff) {
                ++skipped_old;
                seen.push_back(e.key);
                continue;
            }
            if (e.size > upstream_.max_message_size) {
                ++too_large;
                spdlog::warn("poll account={} message {} (uidl {}) is {} bytes, over "
                             "max_message_size {}: skipped, left on the server",
                             label_, e.msgno, e.key, e.size, upstream_.max_message_size);
                continue;
            }
            want.push_back(e.msgno);
        }
        // Keys listed once may be deleted; repeated ones never.
        for (const auto& e : entries_)
            if (!e.key.empty() && !e.duplicate && key_count[e.key] == 1)
                msgno_of_[e.key] = e.msgno;
        for (const auto& e : entries_)
            key_of_[e.msgno] = e.key;
        if (matched)
            spdlog::warn("poll account={} after the UIDL change {} listed message(s) matched "
                         "stored ones and are not imported again",
                         label_, matched);
        if (unidentified)
            spdlog::warn("poll account={} {} message(s) could not be identified (TOP failed): "
                         "left on the server, not imported",
                         label_, unidentified);
        if (wrong_size)
            spdlog::warn("poll account={} {} message(s) listed with a size that differs from "
                         "the stored copy (same headers): LIST sizes are wrong",
                         label_, wrong_size);
        if (skipped_old) {
            spdlog::info("poll account={} {}: {} message(s) older than import_since "
                         "recorded as seen, not downloaded",
                         label_, reset_ ? "after the UIDL change" : "first sync", skipped_old);
            if (owner_)
                owner_->status_.messages_not_imported += skipped_old;
        }
        if (owner_)
            owner_->status_.messages_too_large = too_large;
        too_large_ = too_large;
        (void)reused;
        spdlog::debug("poll account={} listing: {} on server, {} new, {} too large", label_,
                      entries_.size(), want.size(), too_large);
        // Durable before retention runs, so matched messages can be deleted upstream.
        for (const auto& [key, stored_key] : aliases)
            note_origin(svc_.store->add_origin_alias(user_, store::Origin{upstream_.name, key},
                                                     store::Origin{upstream_.name, stored_key}),
                        key, "alias");
        int64_t seen_time = unix_now();
        for (const auto& key : seen)
            note_origin(svc_.store->record_seen_origin(user_, store::Origin{upstream_.name, key},
                                                       seen_time),
                        key, "seen");
        listing_done_ = true;
        to_retrieve_ = want.size();
        if (want.empty())
            maybe_apply_retention();
        else
            client_.retrieve(want);
    }

    void handle(pop3::MessageBegin& b) {
        if (b.headers_only) {
            top_buf_.clear();
            return;
        }
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
        if (d.headers_only) {
            if (top_buf_.size() < kMaxHeaderBytes)
                top_buf_.append(d.bytes, 0, kMaxHeaderBytes - top_buf_.size());
            return;
        }
        if (skip_current_ || !incoming_)
            return;
        if (incoming_->size() + d.bytes.size() > upstream_.max_message_size) {
            Entry* e = entry(d.msgno);
            spdlog::warn("poll account={} message {} grew past max_message_size {} while "
                         "downloading (LIST said {} bytes): skipped, left on the server",
                         label_, d.msgno, upstream_.max_message_size, e ? e->size : 0);
            ++too_large_;
            if (owner_)
                ++owner_->status_.messages_too_large;
            skip_current_ = true;
            incoming_.reset();
            return;
        }
        auto r = incoming_->append(std::span<const char>(d.bytes.data(), d.bytes.size()));
        if (!r) {
            if (r.error().code == store::Errc::TooLarge) {
                Entry* e = entry(d.msgno);
                spdlog::warn("poll account={} message {} grew past max_message_size while "
                             "downloading (LIST said {} bytes): skipped, left on the server",
                             label_, d.msgno, e ? e->size : 0);
                ++too_large_;
                if (owner_)
                    ++owner_->status_.messages_too_large;
                skip_current_ = true;
                incoming_.reset();
                return;
            }
            fail(PollOutcome::Failed, "cannot store message: " + r.error().message);
        }
    }

    void handle(pop3::MessageEnd& e) {
        if (e.headers_only) {
            if (Entry* en = entry(e.msgno)) {
                std::string_view h = header_section(top_buf_);
                en->top_ok = true;
                en->header_hash = sha256_hex(h);
                en->message_id = header_value(h, "Message-ID");
                std::string date = header_value(h, "Date");
                if (!date.empty())
                    en->date = parse_rfc5322_date(date);
            }
            top_done();
            return;
        }
        ++ended_;
        if (skip_current_ || !incoming_) {
            maybe_apply_retention();
            return;
        }
        store::Origin origin{upstream_.name, key_of_[e.msgno]};
        auto ticket = svc_.store->commit_incoming(std::move(*incoming_), origin, unix_now());
        incoming_.reset();
        if (!ticket) {
            if (ticket.error().code != store::Errc::AlreadyExists) {
                spdlog::error("poll account={} cannot commit message {}: {}", label_, e.msgno,
                              ticket.error().message);
                commit_failed_ = true;
            }
            maybe_apply_retention();
            return;
        }
        ++commits_pending_;
        // A fast server on a slow disk must not run arbitrarily far ahead of the group
        // commits: stop reading while too many messages wait for theirs.
        if (commits_pending_ >= kMaxPendingCommits && conn_ && !paused_for_commits_) {
            paused_for_commits_ = true;
            conn_->pause_reading();
        }
        uint64_t bytes = e.total_bytes;
        auto self = shared_from_this();
        svc_.sync->wait(*ticket,
                        [self, bytes](const store::Outcome& o) { self->on_committed(o, bytes); });
        svc_.sync->kick();
    }

    // Waits for a queued ledger-only record (alias or seen). If it cannot be queued or
    // fails, the key is remembered in memory so this process does not download it; the
    // poll is reported failed.
    void note_origin(const store::Result<store::Ticket>& ticket, const std::string& key,
                     const char* what) {
        if (!ticket) {
            spdlog::error("poll account={} cannot record {} UIDL {}: {}", label_, what, key,
                          ticket.error().message);
            if (owner_)
                owner_->seen_.insert(key);
            commit_failed_ = true;
            return;
        }
        ++commits_pending_;
        auto self = shared_from_this();
        std::string k = key;
        svc_.sync->wait(*ticket, [self, k, what](const store::Outcome& o) {
            self->commit_settled();
            if (!o.result) {
                spdlog::error("poll account={} recording {} UIDL {} failed: {}", self->label_, what,
                              k, o.result.error().message);
                if (self->owner_)
                    self->owner_->seen_.insert(k);
                self->commit_failed_ = true;
            }
            self->maybe_apply_retention();
        });
        svc_.sync->kick();
    }

    // One queued commit has its outcome: read from the server again once the backlog
    // has halved.
    void commit_settled() {
        --commits_pending_;
        if (paused_for_commits_ && commits_pending_ <= kMaxPendingCommits / 2) {
            paused_for_commits_ = false;
            if (conn_)
                conn_->resume_reading();
        }
    }

    void on_committed(const store::Outcome& o, uint64_t bytes) {
        commit_settled();
        if (o.result) {
            ++new_messages_;
            new_bytes_ += bytes;
            if (owner_) {
                ++owner_->status_.messages_downloaded;
                owner_->status_.bytes_downloaded += bytes;
            }
        } else {
            commit_failed_ = true;
            spdlog::error("poll account={} commit failed: {}", label_, o.result.error().message);
        }
        maybe_apply_retention();
    }

    void handle(pop3::RetrFailed& f) {
        if (f.headers_only) {
            spdlog::warn("poll account={} TOP {} failed: {}", label_, f.msgno, f.text);
            top_done();
            return;
        }
        ++ended_;
        spdlog::warn("poll account={} RETR {} failed: {}", label_, f.msgno, f.text);
        maybe_apply_retention();
    }
    void handle(pop3::Deleted& d) {
        ++deleted_;
        deleted_keys_.insert(key_of_[d.msgno]);
    }
    void handle(pop3::DeleteFailed& f) {
        spdlog::warn("poll account={} DELE {} failed: {}", label_, f.msgno, f.text);
    }
    void handle(pop3::Drained&) {}
    void handle(pop3::Finished&) {
        if (owner_) {
            owner_->status_.messages_deleted += deleted_;
            auto& pending = owner_->status_.messages_pending_deletion;
            pending -= std::min<uint64_t>(pending, deleted_); // gone with QUIT
            owner_->deleted_last_poll_ = std::move(deleted_keys_);
        }
        finish(commit_failed_ ? PollOutcome::Failed : PollOutcome::Ok,
               commit_failed_ ? "some messages could not be stored" : "");
        if (conn_)
            conn_->close_after_flush("poll done");
    }
    void handle(pop3::Failed& f) {
        PollOutcome o = PollOutcome::Failed;
        if (f.error == pop3::ErrorClass::Auth)
            o = f.resp_code == "AUTH" ? PollOutcome::Stopped : PollOutcome::AuthFailed;
        error_class_ = f.error;
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
            int64_t now = unix_now();
            for (const store::OriginEntry& e : *entries) {
                if (!e.stored)
                    continue; // seen, never stored: never ours to delete
                auto it = msgno_of_.find(e.origin.uidl);
                if (it == msgno_of_.end())
                    continue; // not on the server, or listed twice: never deleted
                bool del = false;
                switch (upstream_.keep_on_server.kind) {
                case config::Retention::Kind::Keep:
                    break;
                case config::Retention::Kind::DeleteAfterDownload:
                    del = true;
                    break;
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
        dele.erase(std::unique(dele.begin(), dele.end()), dele.end());
        if (owner_)
            owner_->status_.messages_pending_deletion = dele.size();
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
        if (outcome == PollOutcome::AuthFailed && owner_ &&
            owner_->auth_failures_ + 1 >= kAuthFailuresBeforeStop)
            outcome = PollOutcome::Stopped; // what poll_finished() will make of it
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started_)
                      .count();
        if (outcome == PollOutcome::Ok)
            spdlog::info("poll account={} new={} bytes={} deleted={} too_large={} "
                         "duration={}ms outcome=ok",
                         label_, new_messages_, new_bytes_, deleted_, too_large_, ms);
        else
            spdlog::warn("poll account={} new={} bytes={} deleted={} duration={}ms outcome={} "
                         "error=\"{}\"",
                         label_, new_messages_, new_bytes_, deleted_, ms, to_string(outcome),
                         error);
        if (owner_) {
            Pop3Poller* owner = owner_;
            owner_ = nullptr;
            owner->poll_finished(outcome, error, error_class_);
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

    std::unordered_map<std::string, Stored> stored_; // ledger key -> stored message
    std::vector<store::OriginEntry> origins_;
    std::vector<Entry> entries_;
    bool uidl_supported_ = true;
    bool reset_ = false;
    bool first_sync_ = false;
    size_t tops_pending_ = 0;
    std::string top_buf_;
    std::unordered_map<uint32_t, std::string> key_of_;
    std::unordered_map<std::string, uint32_t> msgno_of_; // keys listed exactly once
    std::unordered_set<std::string> deleted_keys_;
    bool listing_done_ = false;
    size_t to_retrieve_ = 0;
    size_t ended_ = 0;
    size_t commits_pending_ = 0;
    bool paused_for_commits_ = false;
    bool commit_failed_ = false;
    bool quit_sent_ = false;
    bool reported_ = false;
    uint32_t current_ = 0;
    bool skip_current_ = false;
    std::optional<store::Incoming> incoming_;
    uint64_t new_messages_ = 0, new_bytes_ = 0, deleted_ = 0, too_large_ = 0;
    std::optional<pop3::ErrorClass> error_class_;
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

Pop3Poller::~Pop3Poller() {
    stop();
}

void Pop3Poller::start() {
    stopped_ = false;
    std::uniform_int_distribution<int> d(100, 1500);
    schedule(std::chrono::milliseconds(d(rng())));
}

void Pop3Poller::schedule(std::chrono::milliseconds delay) {
    if (stopped_ || status_.stopped)
        return;
    status_.next_poll = std::chrono::system_clock::now() + delay;
    timer_.start(uint64_t(delay.count()), 0, [this] { begin_poll(); });
}

void Pop3Poller::poll_now(std::chrono::seconds min_interval) {
    if (stopped_ || status_.stopped || session_ || waiting_for_gate_ || token_cmd_)
        return;
    // LOGIN-DELAY (RFC 2449 section 6.8) bounds how often we may log in at all.
    min_interval = std::max(min_interval, status_.login_delay);
    if (last_start_.time_since_epoch().count() != 0 &&
        std::chrono::steady_clock::now() - last_start_ < min_interval)
        return;
    if (status_.consecutive_failures > 0)
        return; // backing off: an IMAP client opening a folder must not undo that
    timer_.stop();
    begin_poll();
}

void Pop3Poller::begin_poll() {
    if (stopped_ || status_.stopped || session_ || waiting_for_gate_ || token_cmd_)
        return;
    waiting_for_gate_ = true;
    gate_ticket_ = svc_.gate->acquire([this] {
        waiting_for_gate_ = false;
        last_start_ = std::chrono::steady_clock::now();
        status_.running = true;
        status_.last_attempt = std::chrono::system_clock::now();
        ++status_.polls;
        if (upstream_.tls != config::TlsMode::None && !tls_ctx_) {
            fail_before_session(tls_ctx_error_);
            return;
        }
        if (!config::uses_token(upstream_.auth)) {
            start_session(std::string(upstream_.secret.reveal()));
            return;
        }
        if (upstream_.secret_source == config::SecretSource::TokenFile) {
            // Re-read every poll: tokens rotate.
            std::ifstream f(upstream_.secret_file, std::ios::binary);
            std::stringstream ss;
            ss << f.rdbuf();
            std::string token = ss.str();
            while (!token.empty() && (token.back() == '\n' || token.back() == '\r' ||
                                      token.back() == ' ' || token.back() == '\t'))
                token.pop_back();
            if (!f || token.empty() || token.find_first_of("\r\n") != std::string::npos) {
                fail_before_session("cannot read a one-line token from token_file " +
                                    upstream_.secret_file.string());
                return;
            }
            start_session(std::move(token));
            return;
        }
        if (upstream_.token_command.empty()) {
            fail_before_session("no token_command configured");
            return;
        }
        token_cmd_ =
            TokenCommand::run(svc_.loop, upstream_.token_command, label_,
                              svc_.token_command_timeout, [this](bool ok, std::string result) {
                                  token_cmd_ = nullptr;
                                  if (ok)
                                      start_session(std::move(result));
                                  else
                                      fail_before_session(result);
                              });
    });
}

void Pop3Poller::fail_before_session(const std::string& error) {
    spdlog::warn("poll account={} new=0 bytes=0 deleted=0 duration=0ms outcome=failed "
                 "error=\"{}\"",
                 label_, error);
    poll_finished(PollOutcome::Failed, error, std::nullopt);
}

void Pop3Poller::start_session(std::string secret) {
    pop3::ClientOptions opts;
    opts.username = upstream_.username;
    opts.auth = to_pop3(upstream_.auth);
    opts.require_stls = upstream_.tls == config::TlsMode::StartTls;
    opts.password = std::move(secret);
    session_ = std::make_shared<Session>(*this, std::move(opts));
    auto s = session_; // start() may finish (and reset session_) at once
    s->start(tls_ctx_.get());
}

void Pop3Poller::poll_finished(PollOutcome outcome, const std::string& error,
                               std::optional<protocol::pop3::ErrorClass> error_class) {
    svc_.gate->release();
    session_.reset();
    status_.running = false;
    if (outcome == PollOutcome::AuthFailed && ++auth_failures_ >= kAuthFailuresBeforeStop)
        outcome = PollOutcome::Stopped;
    status_.last_outcome = outcome;
    if (outcome == PollOutcome::Ok) {
        status_.last_success = std::chrono::system_clock::now();
        status_.consecutive_failures = 0;
        status_.last_error.clear();
        auto every = std::max<std::chrono::milliseconds>(upstream_.poll_every, status_.login_delay);
        auto delay = jittered(every);
        spdlog::debug("poll account={} next poll in {} s", label_, delay.count() / 1000);
        schedule(delay);
        return;
    }
    status_.last_error = error;
    ++status_.consecutive_failures;
    if (outcome == PollOutcome::Stopped) {
        status_.stopped = true;
        timer_.stop();
        spdlog::error("poll account={} the server refused the credentials{}: polling stopped "
                      "until the account file changes (then send SIGHUP)",
                      label_,
                      auth_failures_ >= kAuthFailuresBeforeStop
                          ? " " + std::to_string(auth_failures_) + " times in a row"
                          : " ([AUTH])");
        return;
    }
    unsigned n = std::min(status_.consecutive_failures, 16u);
    std::chrono::milliseconds delay =
        std::min<std::chrono::milliseconds>(backoff_base() * (1u << (n - 1)), kBackoffCap);
    if (error_class == protocol::pop3::ErrorClass::LoginDelay)
        delay = std::max<std::chrono::milliseconds>(
            delay, status_.login_delay.count() > 0 ? std::chrono::milliseconds(status_.login_delay)
                                                   : std::chrono::milliseconds(5min));
    spdlog::info("poll account={} next attempt in {} s (failure {} in a row)", label_,
                 delay.count() / 1000, status_.consecutive_failures);
    schedule(jittered(delay));
}

void Pop3Poller::stop() {
    stopped_ = true;
    timer_.stop();
    if (waiting_for_gate_) {
        svc_.gate->cancel(gate_ticket_);
        waiting_for_gate_ = false;
    }
    if (token_cmd_) {
        token_cmd_->cancel();
        token_cmd_ = nullptr;
        svc_.gate->release();
        status_.running = false;
    }
    if (session_) {
        auto s = std::move(session_);
        s->detach();
        svc_.gate->release();
        status_.running = false;
    }
}

} // namespace popbridge::proxy
