// The group commit's parallel part: detail::run_parallel (a batch's fdatasyncs spread over
// threads) and what a large group, faults in the middle of it, and write-back started
// while a message streams in leave behind.
#include "store_test_util.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "store/store_internal.h"

using namespace popbridge::store;
using namespace popbridge::store::test;
namespace fs = std::filesystem;

namespace {

std::size_t count_entries(const fs::path& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) {
        ++n;
    }
    return n;
}

} // namespace

TEST_CASE("run_parallel runs every task exactly once", "[store][sync]") {
    for (std::size_t tasks : {std::size_t{0}, std::size_t{1}, std::size_t{3},
                              detail::kMaxSyncThreads, std::size_t{1000}}) {
        std::vector<std::atomic<int>> runs(tasks);
        detail::run_parallel(tasks, [&](std::size_t i) { runs[i].fetch_add(1); });
        for (std::size_t i = 0; i < tasks; ++i) {
            INFO("tasks " << tasks << " index " << i);
            CHECK(runs[i].load() == 1);
        }
    }
}

TEST_CASE("run_parallel overlaps tasks on at most kMaxSyncThreads threads", "[store][sync]") {
    // Every task waits until kMaxSyncThreads tasks are running at once (or a deadline):
    // that only happens if the tasks really run side by side, up to the cap.
    const std::size_t cap = detail::kMaxSyncThreads;
    std::mutex m;
    std::condition_variable cv;
    std::size_t active = 0;
    std::size_t peak = 0;
    bool reached = false;
    std::set<std::thread::id> threads;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    detail::run_parallel(cap * 4, [&](std::size_t) {
        std::unique_lock lock(m);
        threads.insert(std::this_thread::get_id());
        peak = std::max(peak, ++active);
        if (active == cap) {
            reached = true;
            cv.notify_all();
        }
        cv.wait_until(lock, deadline, [&] { return reached; });
        --active;
    });
    CHECK(reached);
    CHECK(peak == cap);
    CHECK(threads.size() == cap);
    CHECK(threads.count(std::this_thread::get_id()) == 1); // the caller works too
}

TEST_CASE("a large group commits in one job; a failed fsync inside it fails that message only",
          "[store][sync]") {
    TempDir dir;
    auto opts = options_for(dir);
    std::atomic<int> fsyncs{0};
    // Fault hooks are asked on the job's own thread in queue order, so counting works.
    opts.fault = [&](std::string_view step) {
        if (step != "message_fsync") {
            return false;
        }
        int n = ++fsyncs;
        return n == 37 || n == 150;
    };
    auto s = open_store(opts);
    constexpr int kGroup = 200;
    for (int i = 1; i <= kGroup; ++i) {
        REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
    }
    auto out = sync(*s);
    REQUIRE(out.size() == kGroup);
    CHECK(fsyncs.load() == kGroup);
    for (int i = 1; i <= kGroup; ++i) {
        INFO("message " << i);
        const bool should_fail = i == 37 || i == 150;
        CHECK(static_cast<bool>(out[i - 1].result) == !should_fail);
        CHECK(s->has_origin("alice", "isp", "U" + std::to_string(i)) == !should_fail);
    }
    auto v = s->view("alice", kInbox);
    REQUIRE(v->messages.size() == kGroup - 2);
    CHECK_FALSE(v->read_only);
    const fs::path inbox = dir.path / "data" / "users" / "alice";
    CHECK(count_entries(inbox / "tmp") == 0);
    CHECK(count_entries(inbox / "cur") == kGroup - 2);
    for (const auto& m : v->messages) {
        const int i = std::stoi(m.origin.uidl.substr(1));
        INFO("message " << i);
        CHECK(read_file(*s->message_path("alice", kInbox, m.uid)) == message_body(i));
    }
    // After a restart the same 198 are there, nothing else.
    s.reset();
    opts.fault = nullptr;
    auto again = open_store(opts);
    CHECK(again->view("alice", kInbox)->messages.size() == kGroup - 2);
    CHECK_FALSE(again->has_origin("alice", "isp", "U37"));
}

TEST_CASE("a message larger than the write-back chunk streams in and commits byte-exact",
          "[store][sync]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    // 3.3 chunks, appended in odd-sized pieces so write-back ranges start mid-piece.
    std::string body = "From: big@example.net\r\nSubject: big\r\n\r\n";
    while (body.size() < Incoming::kWriteBackChunk * 3 + Incoming::kWriteBackChunk / 3) {
        body += "line " + std::to_string(body.size()) + " of a large attachment\r\n";
    }
    auto in = s->begin_incoming("alice", kInbox);
    REQUIRE(in);
    for (std::size_t at = 0; at < body.size(); at += 7'777) {
        REQUIRE(in->append(std::string_view(body).substr(at, 7'777)));
    }
    CHECK(in->size() == body.size());
    auto t = s->commit_incoming(std::move(*in), Origin{"isp", "BIG"}, 1'700'000'000);
    REQUIRE(t);
    auto out = sync(*s);
    REQUIRE(out.size() == 1);
    REQUIRE(out[0].result);
    CHECK(read_file(*s->message_path("alice", kInbox, out[0].uid)) == body);
}
