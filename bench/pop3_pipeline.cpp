// pop3_pipeline: the smallest POP3 client that can pull a mailbox fast, as a yardstick for the
// ingest benchmark. Logs in (USER, then PASS: one at a time), lists UIDLs, then keeps up to
// `window` RETR commands in flight (RFC 2449 PIPELINING style) and writes each message as it
// completes. Nothing else: no TLS, no state, no retries; any protocol error ends the run.
//
//   pop3_pipeline HOST PORT USER PASSWORD DIR MODE [WINDOW]
//     MODE fsync    Maildir-style: write DIR/tmp/<uidl>, fsync it, rename to DIR/new/<uidl>;
//                   one fsync of DIR/new at the end (the rename is made durable once)
//     MODE nofsync  the same without any fsync
//     MODE discard  read and unstuff the bytes, write nothing (what the server alone costs)
//
// Prints "messages=N bytes=B" (message bytes after dot-unstuffing) on success; exit 1 with a
// message on stderr otherwise.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "pop3_pipeline: %s\n", what.c_str());
    std::exit(1);
}

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

class Conn {
  public:
    explicit Conn(int fd) : fd_(fd) {}

    void send(const std::string& s) {
        size_t off = 0;
        while (off < s.size()) {
            ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                die(errno_text("send"));
            off += size_t(n);
        }
    }

    // One line without its CRLF (or LF).
    std::string line() {
        for (;;) {
            size_t nl = buf_.find('\n', pos_);
            if (nl != std::string::npos) {
                size_t end = nl;
                if (end > pos_ && buf_[end - 1] == '\r')
                    --end;
                std::string out = buf_.substr(pos_, end - pos_);
                pos_ = nl + 1;
                return out;
            }
            fill();
        }
    }

    // A status line; dies unless it starts with +OK.
    std::string ok(const char* what) {
        std::string l = line();
        if (l.rfind("+OK", 0) != 0)
            die(std::string(what) + ": " + l);
        return l;
    }

    // A multi-line body up to the terminating ".", dot-unstuffed, CRLF line ends kept.
    void multiline(std::string& out) {
        out.clear();
        for (;;) {
            size_t nl = buf_.find('\n', pos_);
            if (nl == std::string::npos) {
                fill();
                continue;
            }
            const char* p = buf_.data() + pos_;
            size_t len = nl + 1 - pos_;
            if (p[0] == '.') {
                if ((len == 3 && p[1] == '\r') || len == 2) {
                    pos_ = nl + 1;
                    return;
                }
                ++p;
                --len;
            }
            out.append(p, len);
            pos_ = nl + 1;
        }
    }

  private:
    void fill() {
        if (pos_ > 0 && pos_ >= buf_.size() / 2) {
            buf_.erase(0, pos_);
            pos_ = 0;
        }
        size_t old = buf_.size();
        buf_.resize(old + 256 * 1024);
        ssize_t n;
        do {
            n = ::recv(fd_, buf_.data() + old, 256 * 1024, 0);
        } while (n < 0 && errno == EINTR);
        if (n <= 0)
            die(n == 0 ? "server closed the connection" : errno_text("recv"));
        buf_.resize(old + size_t(n));
    }

    int fd_;
    std::string buf_;
    size_t pos_ = 0;
};

void write_all(int fd, const std::string& data, const std::string& path) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die(errno_text(("write " + path).c_str()));
        off += size_t(n);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 7 || argc > 8)
        die("usage: pop3_pipeline HOST PORT USER PASSWORD DIR fsync|nofsync|discard [WINDOW]");
    const std::string host = argv[1], user = argv[3], pass = argv[4], dir = argv[5],
                      mode = argv[6];
    const int port = std::atoi(argv[2]);
    const size_t window = argc == 8 ? size_t(std::atoi(argv[7])) : 32;
    if (mode != "fsync" && mode != "nofsync" && mode != "discard")
        die("MODE must be fsync, nofsync or discard");
    if (window == 0)
        die("WINDOW must be at least 1");
    const bool store = mode != "discard", sync = mode == "fsync";
    if (store) {
        for (const char* sub : {"", "/tmp", "/new", "/cur"})
            if (::mkdir((dir + sub).c_str(), 0700) != 0 && errno != EEXIST)
                die(errno_text(("mkdir " + dir + sub).c_str()));
    }

    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die(errno_text("socket"));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(port));
    if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1)
        die("HOST must be an IPv4 address");
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        die(errno_text("connect"));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn c(fd);

    c.ok("greeting");
    c.send("USER " + user + "\r\n");
    c.ok("USER");
    c.send("PASS " + pass + "\r\n");
    c.ok("PASS");
    c.send("UIDL\r\n");
    c.ok("UIDL");
    std::vector<std::string> uidls;
    {
        std::string listing;
        c.multiline(listing);
        size_t at = 0;
        while (at < listing.size()) {
            size_t nl = listing.find("\r\n", at);
            std::string l = listing.substr(at, nl - at);
            at = nl + 2;
            size_t sp = l.find(' ');
            if (sp == std::string::npos)
                die("bad UIDL line: " + l);
            if (size_t(std::atol(l.c_str())) != uidls.size() + 1)
                die("UIDL listing with gaps is not handled: " + l);
            uidls.push_back(l.substr(sp + 1));
        }
    }

    const size_t n = uidls.size();
    size_t sent = 0, done = 0;
    unsigned long long bytes = 0;
    std::string msg;
    while (done < n) {
        std::string batch;
        while (sent < n && sent - done < window)
            batch += "RETR " + std::to_string(++sent) + "\r\n";
        if (!batch.empty())
            c.send(batch);
        c.ok("RETR");
        c.multiline(msg);
        bytes += msg.size();
        const std::string& uidl = uidls[done++];
        if (!store)
            continue;
        std::string tmp = dir + "/tmp/" + uidl, final = dir + "/new/" + uidl;
        int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0)
            die(errno_text(("open " + tmp).c_str()));
        write_all(out, msg, tmp);
        if (sync && ::fsync(out) != 0)
            die(errno_text(("fsync " + tmp).c_str()));
        ::close(out);
        if (::rename(tmp.c_str(), final.c_str()) != 0)
            die(errno_text(("rename " + tmp).c_str()));
    }
    c.send("QUIT\r\n");
    c.ok("QUIT");
    ::close(fd);
    if (sync) {
        int d = ::open((dir + "/new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d < 0 || ::fsync(d) != 0)
            die(errno_text("fsync new/"));
        ::close(d);
    }
    std::printf("messages=%zu bytes=%llu\n", n, bytes);
    return 0;
}
