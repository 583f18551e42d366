// Store benchmark: durable ingest rate of N mixed-size messages (group commit driven as
// proxy/store_sync does: one job on a worker thread while the loop keeps queueing), the
// same with one message per job, the raw write+fsync rate of the same bytes as plain
// files on the same disk, and the open time of a 100,000-message folder.
// Usage: store_bench <scratch dir on the disk to measure> [messages]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <random>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "store/store.h"

using namespace popbridge::store;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Mixed sizes, fixed seed: 70% 1-10 KB, 25% 10-100 KB, 5% 100 KB-1 MB.
std::vector<std::string> make_messages(std::size_t n) {
    std::mt19937 rng(42);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) {
        int r = static_cast<int>(rng() % 100);
        std::size_t size = r < 70   ? 1'000 + rng() % 9'000
                           : r < 95 ? 10'000 + rng() % 90'000
                                    : 100'000 + rng() % 900'000;
        std::string m = "From: bench@example.net\r\nSubject: " + std::to_string(i) + "\r\n\r\n";
        while (m.size() < size) {
            m += std::string(76, static_cast<char>('a' + (m.size() / 78) % 26)) + "\r\n";
        }
        out.push_back(std::move(m));
    }
    return out;
}

std::unique_ptr<Store> open_store(const fs::path& dir) {
    StoreOptions o;
    o.data_dir = dir;
    o.hostname = "bench";
    auto s = Store::open(o);
    if (!s) {
        std::fprintf(stderr, "open: %s\n", s.error().message.c_str());
        std::exit(1);
    }
    return std::move(*s);
}

struct IngestResult {
    double secs = 0;
    std::size_t jobs = 0;
};

// max_batch 0: whatever is queued when the worker is free (the proxy's behaviour).
IngestResult ingest(const fs::path& dir, const std::vector<std::string>& msgs,
                    std::size_t max_batch) {
    auto s = open_store(dir);
    if (!s->open_user("bench")) {
        std::exit(1);
    }
    IngestResult r;
    auto t0 = Clock::now();
    std::unique_ptr<SyncJob> running;
    std::future<void> done;
    std::size_t durable = 0;
    std::size_t queued_since_job = 0;
    auto finish = [&] {
        done.get();
        for (const auto& o : s->finish_sync_job(std::move(running))) {
            if (!o.result) {
                std::fprintf(stderr, "commit: %s\n", o.result.error().message.c_str());
                std::exit(1);
            }
            ++durable;
        }
        ++r.jobs;
    };
    auto start = [&] {
        running = s->take_sync_job();
        queued_since_job = 0;
        if (running) {
            SyncJob* job = running.get();
            done = std::async(std::launch::async, [job] { job->run(); });
        }
    };
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        auto in = s->begin_incoming("bench", kInbox);
        if (!in || !in->append(msgs[i]) ||
            !s->commit_incoming(std::move(*in), Origin{"isp", "U" + std::to_string(i)}, 0)) {
            std::fprintf(stderr, "ingest failed\n");
            std::exit(1);
        }
        ++queued_since_job;
        if (running && (max_batch != 0 ||
                        done.wait_for(std::chrono::seconds(0)) == std::future_status::ready)) {
            finish();
        }
        if (!running && (max_batch == 0 || queued_since_job >= max_batch)) {
            start();
        }
    }
    while (durable < msgs.size()) {
        if (!running) {
            start();
        }
        finish();
    }
    r.secs = seconds_since(t0);
    return r;
}

double raw_write_fsync(const fs::path& dir, const std::vector<std::string>& msgs) {
    fs::create_directories(dir);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        fs::path p = dir / std::to_string(i);
        int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 ||
            ::write(fd, msgs[i].data(), msgs[i].size()) != static_cast<ssize_t>(msgs[i].size()) ||
            ::fsync(fd) != 0) {
            std::perror("raw write");
            std::exit(1);
        }
        ::close(fd);
    }
    int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    ::fsync(d);
    ::close(d);
    return seconds_since(t0);
}

double open_100k(const fs::path& dir) {
    {
        auto s = open_store(dir);
        if (!s->open_user("big")) {
            std::exit(1);
        }
    }
    std::string bytes;
    for (Uid uid = 1; uid <= 100'000; ++uid) {
        MessageRecord m;
        m.uid = uid;
        m.file_name = "1700000000.P1Q" + std::to_string(uid) + ".bench,S=4096:2,";
        m.size = 4096;
        m.internal_date = 1'700'000'000 + uid;
        m.modseq = uid + 1;
        m.flags.bits = uid % 3 ? 0 : 1;
        m.origin = Origin{"isp", "UIDL-" + std::to_string(uid) + "-abcdefghijkl"};
        m.commit_time = 1'700'000'000;
        append_record(bytes, MessageAddedRec{m});
    }
    std::FILE* f = std::fopen((dir / "users/big/popbridge.index").c_str(), "ab");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    auto s = open_store(dir);
    auto t0 = Clock::now();
    if (!s->open_user("big") || s->view("big", kInbox)->messages.size() != 100'000) {
        std::fprintf(stderr, "open of 100k failed\n");
        std::exit(1);
    }
    return seconds_since(t0);
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: store_bench SCRATCH_DIR [messages]\n");
        return 2;
    }
    fs::path root = fs::path(argv[1]) / ("store_bench." + std::to_string(::getpid()));
    std::size_t n = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 2000;
    auto msgs = make_messages(n);
    double mb = 0;
    for (const auto& m : msgs) {
        mb += static_cast<double>(m.size()) / 1e6;
    }
    fs::create_directories(root);
    double raw = raw_write_fsync(root / "raw", msgs);
    IngestResult grouped = ingest(root / "grouped", msgs, 0);
    IngestResult single = ingest(root / "single", msgs, 1);
    double open_s = open_100k(root / "open");
    fs::remove_all(root);

    std::printf("store benchmark: %zu messages, %.1f MB, scratch %s\n\n", n, mb, argv[1]);
    std::printf("| %-50s | %10s | %8s | %6s |\n", "case", "msg/s", "MB/s", "jobs");
    std::printf("|%s|%s|%s|%s|\n", std::string(52, '-').c_str(), std::string(12, '-').c_str(),
                std::string(10, '-').c_str(), std::string(8, '-').c_str());
    auto row = [&](const char* name, double secs, std::size_t jobs) {
        std::printf("| %-50s | %10.0f | %8.1f | %6s |\n", name, static_cast<double>(n) / secs,
                    mb / secs, jobs ? std::to_string(jobs).c_str() : "-");
    };
    row("raw: write + fsync per file (no directory fsyncs)", raw, 0);
    row("store: durable ingest, group commit", grouped.secs, grouped.jobs);
    row("store: durable ingest, one message per job", single.secs, single.jobs);
    std::printf("\nopen of a 100,000-message folder (index replay, ready to SELECT): %.1f ms\n",
                open_s * 1e3);
    return 0;
}
