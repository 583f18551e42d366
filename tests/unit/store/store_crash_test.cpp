// Crash test: a forked child ingests 300 messages (and moves, copies, expunges) through
// the store API while the parent SIGKILLs it at random moments. After every kill the
// parent reopens the store (the restart) and checks: every message reported committed
// is present exactly once and byte-exact, no origin is live twice (a moved message is in
// exactly one of source/target), UIDs are never reused, UIDNEXT never decreases and
// UIDVALIDITY never changes. The child reports a commit only after finish_sync_job()
// says so. Seeded: POPBRIDGE_CRASH_SEED=<n> replays a run; the seed is printed.
#include "store_test_util.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace popbridge::store;
using namespace popbridge::store::test;
namespace fs = std::filesystem;

namespace {

constexpr int kMessages = 300;
constexpr int kMinKills = 40;
constexpr std::string_view kUser = "u";

std::string crash_body(int i) {
    std::string b = "From: crash@example.net\r\nSubject: m" + std::to_string(i) + "\r\n\r\n";
    std::size_t filler = static_cast<std::size_t>((i * 7919) % 6000);
    for (std::size_t n = 0; n < filler; n += 60) {
        b += "line " + std::to_string(i) + " " + std::string(50, static_cast<char>('a' + i % 26)) +
             "\r\n";
    }
    return b;
}

// The message number a body was made from, or -1.
int body_number(const std::string& bytes) {
    auto at = bytes.find("Subject: m");
    if (at == std::string::npos) {
        return -1;
    }
    int i = std::atoi(bytes.c_str() + at + 10);
    return crash_body(i) == bytes ? i : -1;
}

void say(int fd, const std::string& line) {
    std::string l = line + "\n";
    ssize_t n = ::write(fd, l.data(), l.size()); // < PIPE_BUF: atomic
    (void)n;
}

[[noreturn]] void die(int fd, const std::string& why) {
    say(fd, "E " + why);
    ::_exit(3);
}

std::vector<Uid> pick(std::mt19937_64& rng, const FolderView& v, std::size_t n) {
    std::vector<Uid> out;
    if (v.messages.empty()) {
        return out;
    }
    for (std::size_t k = 0; k < n; ++k) {
        out.push_back(v.messages[rng() % v.messages.size()].uid);
    }
    return out;
}

[[noreturn]] void child_main(const fs::path& data, int fd, std::uint64_t seed) {
    StoreOptions o;
    o.data_dir = data;
    o.hostname = "crash";
    auto opened = Store::open(o);
    if (!opened) {
        die(fd, "open: " + opened.error().message);
    }
    Store& s = **opened;
    if (auto r = s.open_user(kUser); !r) {
        die(fd, "open_user: " + r.error().message);
    }
    const FolderId archive = *s.find_folder(kUser, "Archive");
    const FolderId trash = *s.find_folder(kUser, "Trash");
    std::mt19937_64 rng(seed);
    int extra = 0;
    while (true) {
        std::vector<int> missing;
        for (int i = 1; i <= kMessages; ++i) {
            if (!s.has_origin(kUser, "isp", "U" + std::to_string(i))) {
                missing.push_back(i);
            }
        }
        if (missing.empty() && extra >= 40) {
            say(fd, "DONE");
            ::_exit(0);
        }
        extra += missing.empty();
        std::map<Ticket, int> ingests;
        int r = static_cast<int>(rng() % 10);
        if (!missing.empty() && r < 6) {
            std::size_t k = 1 + rng() % 8;
            for (std::size_t n = 0; n < k && n < missing.size(); ++n) {
                int i = missing[(n + rng()) % missing.size()];
                if (s.has_origin(kUser, "isp", "U" + std::to_string(i))) {
                    continue;
                }
                auto in = s.begin_incoming(kUser, kInbox);
                if (!in) {
                    die(fd, "begin_incoming: " + in.error().message);
                }
                std::string b = crash_body(i);
                if (auto a = in->append(b); !a) {
                    die(fd, "append: " + a.error().message);
                }
                auto t = s.commit_incoming(std::move(*in), Origin{"isp", "U" + std::to_string(i)},
                                           1'700'000'000 + i);
                if (!t) {
                    die(fd, "commit_incoming: " + t.error().message);
                }
                ingests[*t] = i;
            }
        } else if (r < 8) {
            bool from_inbox = rng() % 2;
            FolderId src = from_inbox ? kInbox : archive;
            auto v = s.view(kUser, src);
            auto uids = pick(rng, *v, 1 + rng() % 3);
            if (!s.move(kUser, src, uids, from_inbox ? archive : kInbox)) {
                die(fd, "move");
            }
        } else if (r < 9) {
            auto v = s.view(kUser, kInbox);
            if (!s.copy(kUser, kInbox, pick(rng, *v, 1 + rng() % 3), trash)) {
                die(fd, "copy");
            }
        } else {
            auto v = s.view(kUser, trash);
            auto uids = pick(rng, *v, 1 + rng() % 2);
            for (Uid u : uids) {
                say(fd, "X " + std::to_string(u)); // may be expunged from here on
            }
            if (!s.expunge(kUser, trash, uids)) {
                die(fd, "expunge");
            }
        }
        while (s.has_pending()) {
            auto job = s.take_sync_job();
            job->run();
            for (const Outcome& out : s.finish_sync_job(std::move(job))) {
                if (!out.result) {
                    die(fd, "commit failed: " + out.result.error().message);
                }
                if (out.kind == OpKind::Ingest) {
                    say(fd, "I " + std::to_string(ingests.at(out.ticket)) + " " +
                                std::to_string(out.uid));
                } else if (out.kind == OpKind::Copy) {
                    for (auto [from, to] : out.uid_map) {
                        say(fd, "C " + std::to_string(to));
                    }
                }
            }
        }
    }
}

struct Checker {
    std::map<int, Uid> committed; // message number -> INBOX UID at commit
    std::set<Uid> copies;         // reported committed copies in Trash
    std::set<Uid> maybe_expunged; // Trash UIDs an expunge was queued for
    std::map<FolderId, std::uint32_t> uid_validity;
    std::map<FolderId, Uid> uid_next;
    std::map<std::pair<FolderId, Uid>, int> seen; // (folder, uid) -> message number
    std::set<std::pair<FolderId, Uid>> vanished;
    bool done = false;
    std::size_t stored = 0; // origins live after the last restart (reported or not)

    void feed(const std::string& text) {
        std::istringstream in(text);
        std::string kind;
        while (in >> kind) {
            if (kind == "I") {
                int i = 0;
                Uid uid = 0;
                in >> i >> uid;
                INFO("message " << i);
                CHECK(committed.emplace(i, uid).second); // no origin committed twice
            } else if (kind == "C") {
                Uid uid = 0;
                in >> uid;
                copies.insert(uid);
            } else if (kind == "X") {
                Uid uid = 0;
                in >> uid;
                maybe_expunged.insert(uid);
            } else if (kind == "DONE") {
                done = true;
            } else if (kind == "E") {
                std::string rest;
                std::getline(in, rest);
                FAIL("child failed: " << rest);
            }
        }
    }

    void verify(const fs::path& data) {
        StoreOptions o;
        o.data_dir = data;
        o.hostname = "check";
        auto s = open_store(o);
        REQUIRE(s->open_user(kUser));
        std::map<std::string, int> live_origins;
        auto folders = s->list_folders(kUser);
        REQUIRE(folders);
        const FolderId trash = *s->find_folder(kUser, "Trash");
        std::set<std::pair<FolderId, Uid>> now;
        for (const auto& f : *folders) {
            auto v = s->view(kUser, f.id);
            REQUIRE(v);
            INFO("folder " << f.name);
            auto [uv, first] = uid_validity.emplace(f.id, v->uid_validity);
            CHECK(uv->second == v->uid_validity); // never changes
            CHECK(v->uid_next >= uid_next[f.id]); // never decreases
            uid_next[f.id] = v->uid_next;
            CHECK(v->read_only == false);
            for (const auto& m : v->messages) {
                INFO("uid " << m.uid);
                CHECK(m.uid < v->uid_next);
                std::string bytes = read_file(*s->message_path(kUser, f.id, m.uid));
                int i = body_number(bytes);
                REQUIRE(i > 0); // byte-exact
                CHECK(bytes.size() == m.size);
                auto key = std::make_pair(f.id, m.uid);
                CHECK_FALSE(vanished.count(key)); // a UID never comes back
                auto [it, added] = seen.emplace(key, i);
                CHECK(it->second == i); // a UID is never reused for another message
                now.insert(key);
                if (f.id == trash) {
                    CHECK(m.origin.uidl.empty()); // copies carry no origin
                } else {
                    CHECK(m.origin.uidl == "U" + std::to_string(i));
                    ++live_origins[m.origin.uidl];
                }
            }
        }
        for (const auto& [key, i] : seen) {
            if (!now.count(key)) {
                vanished.insert(key);
            }
        }
        // Every committed message exactly once (moves: in one of INBOX/Archive, never both).
        for (const auto& [i, uid] : committed) {
            INFO("message " << i);
            CHECK(live_origins["U" + std::to_string(i)] == 1);
            CHECK(s->has_origin(kUser, "isp", "U" + std::to_string(i)));
        }
        for (const auto& [origin, n] : live_origins) {
            INFO(origin);
            CHECK(n == 1); // also for commits the child did not get to report
        }
        stored = live_origins.size();
        for (Uid uid : copies) {
            if (!maybe_expunged.count(uid)) {
                INFO("copy " << uid);
                CHECK(now.count({trash, uid}));
            }
        }
    }
};

} // namespace

TEST_CASE("crash: SIGKILL at random moments during ingest, copy, move and expunge",
          "[store][crash]") {
    std::uint64_t seed = std::random_device{}();
    if (const char* env = std::getenv("POPBRIDGE_CRASH_SEED")) {
        seed = std::strtoull(env, nullptr, 10);
    }
    std::printf("store crash test: seed %llu (POPBRIDGE_CRASH_SEED to replay)\n",
                static_cast<unsigned long long>(seed));
    std::fflush(stdout);
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    TempDir dir;
    const fs::path data = dir.path / "data";
    Checker check;
    int kills = 0;
    auto started = std::chrono::steady_clock::now();
    // Kill children until kMinKills kills; then one child runs to the end (all 300 stored
    // plus 40 more copy/move/expunge steps).
    for (int round = 0; round < 400 && (kills < kMinKills || !check.done); ++round) {
        check.done = false;
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(fds[0]);
            child_main(data, fds[1], rng() ^ static_cast<std::uint64_t>(round));
        }
        ::close(fds[1]);
        // Kill after a random number of milliseconds (the last rounds run to the end).
        bool kill_it = kills < kMinKills;
        int budget_ms = kill_it ? static_cast<int>(2 + rng() % 60) : 60'000;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(budget_ms);
        std::string text;
        char buf[4096];
        bool eof = false;
        while (!eof) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
            if (left <= 0) {
                break;
            }
            pollfd p{fds[0], POLLIN, 0};
            int n = ::poll(&p, 1, static_cast<int>(left));
            if (n > 0) {
                ssize_t got = ::read(fds[0], buf, sizeof buf);
                if (got <= 0) {
                    eof = true;
                } else {
                    text.append(buf, static_cast<std::size_t>(got));
                }
            }
        }
        if (!eof) {
            ::kill(pid, SIGKILL);
            ++kills;
        }
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        // What the child wrote before it died is still in the pipe.
        while (true) {
            ssize_t got = ::read(fds[0], buf, sizeof buf);
            if (got <= 0) {
                break;
            }
            text.append(buf, static_cast<std::size_t>(got));
        }
        ::close(fds[0]);
        check.feed(text);
        if (eof) {
            REQUIRE(WIFEXITED(status));
            REQUIRE(WEXITSTATUS(status) == 0);
        }
        check.verify(data);
    }
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf(
        "store crash test: %d kills, %zu commits reported, %zu stored, %zu copies, %.1f s\n", kills,
        check.committed.size(), check.stored, check.copies.size(), secs);
    CHECK(check.done);
    CHECK(kills >= kMinKills);
    CHECK(check.stored == static_cast<std::size_t>(kMessages));
}
