#include "store_test_util.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

using namespace popbridge::store;
using namespace popbridge::store::test;
namespace fs = std::filesystem;

namespace {

struct RecordingListener : Listener {
    std::vector<Uid> added;
    std::vector<std::pair<Uid, ModSeq>> flags;
    std::vector<Uid> expunged;
    int deleted = 0;
    void on_added(const MessageRecord& m) override { added.push_back(m.uid); }
    void on_flags(Uid uid, Flags, const std::vector<std::string>&, ModSeq modseq) override {
        flags.emplace_back(uid, modseq);
    }
    void on_expunged(Uid uid) override { expunged.push_back(uid); }
    void on_folder_deleted() override { ++deleted; }
};

fs::path inbox_dir(const TempDir& d, const std::string& user = "alice") {
    return d.path / "data" / "users" / user;
}

std::size_t count_entries(const fs::path& dir) {
    return static_cast<std::size_t>(
        std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

} // namespace

TEST_CASE("ingest becomes visible with UIDs 1..n only after the job is finished", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    std::vector<Ticket> tickets;
    for (int i = 1; i <= 3; ++i) {
        auto t = ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i));
        REQUIRE(t);
        tickets.push_back(*t);
    }
    CHECK(tickets == std::vector<Ticket>{1, 2, 3});
    CHECK(s->durable_ticket() == 0);
    CHECK(s->view("alice", kInbox)->messages.empty());

    auto job = s->take_sync_job();
    REQUIRE(job);
    CHECK(job->operations() == 3);
    job->run();
    CHECK(s->view("alice", kInbox)->messages.empty()); // run() alone publishes nothing
    auto outcomes = s->finish_sync_job(std::move(job));
    REQUIRE(outcomes.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(outcomes[i].ticket == tickets[i]);
        CHECK(outcomes[i].kind == OpKind::Ingest);
        CHECK(outcomes[i].result.has_value());
        CHECK(outcomes[i].uid == i + 1);
        CHECK(outcomes[i].origin.uidl == "U" + std::to_string(i + 1));
    }
    CHECK(s->durable_ticket() == 3);

    auto v = s->view("alice", kInbox);
    REQUIRE(v);
    REQUIRE(v->messages.size() == 3);
    CHECK(v->uid_next == 4);
    for (int i = 1; i <= 3; ++i) {
        const MessageRecord* m = v->find(static_cast<Uid>(i));
        REQUIRE(m);
        CHECK(m->size == message_body(i).size());
        CHECK(m->internal_date == 1'700'000'000);
        CHECK(m->flags.bits == 0);
        auto p = s->message_path("alice", kInbox, m->uid);
        REQUIRE(p);
        CHECK(p->parent_path().filename() == "cur");
        CHECK(read_file(*p) == message_body(i)); // exact bytes, CRLF kept
    }
    CHECK(count_entries(inbox_dir(dir) / "tmp") == 0);
    CHECK(s->message_path("alice", kInbox, 9).error().code == Errc::NotFound);
    CHECK_FALSE(s->take_sync_job()); // nothing pending
}

TEST_CASE("a duplicate origin is refused whether pending or committed", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    REQUIRE(ingest(*s, "alice", "a\r\n", "isp", "X1"));
    CHECK(s->has_origin("alice", "isp", "X1"));
    auto pending_dup = ingest(*s, "alice", "a\r\n", "isp", "X1");
    REQUIRE_FALSE(pending_dup);
    CHECK(pending_dup.error().code == Errc::AlreadyExists);
    sync(*s);
    auto committed_dup = ingest(*s, "alice", "a\r\n", "isp", "X1");
    REQUIRE_FALSE(committed_dup);
    CHECK(committed_dup.error().code == Errc::AlreadyExists);
    // Same UIDL from another account, or for another user, is a different origin.
    CHECK(ingest(*s, "alice", "b\r\n", "other", "X1"));
    CHECK(ingest(*s, "bob", "b\r\n", "isp", "X1"));
    sync(*s);
    CHECK(s->view("alice", kInbox)->messages.size() == 2);
    CHECK(s->view("bob", kInbox)->messages.size() == 1);
    // The refused Incomings were destroyed uncommitted: their tmp files are gone.
    CHECK(count_entries(inbox_dir(dir) / "tmp") == 0);
    CHECK(count_entries(inbox_dir(dir) / "cur") == 2);
}

TEST_CASE("restart keeps UIDVALIDITY, UIDs, flags, modseqs and the UIDL ledger", "[store]") {
    TempDir dir;
    std::uint32_t uid_validity = 0;
    ModSeq highest = 0;
    {
        auto s = open_store(options_for(dir));
        for (int i = 1; i <= 4; ++i) {
            REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
        }
        sync(*s);
        Uid two[] = {2};
        std::string kw[] = {"work"};
        REQUIRE(s->set_flags("alice", kInbox, two, FlagOp::Add, Flags{} | Flag::Seen, kw));
        Uid four[] = {4};
        REQUIRE(s->expunge("alice", kInbox, four));
        sync(*s);
        auto v = s->view("alice", kInbox);
        uid_validity = v->uid_validity;
        highest = v->highest_modseq;
        CHECK(v->messages.size() == 3);
        CHECK(v->uid_next == 5);
    }
    auto s = open_store(options_for(dir));
    auto v = s->view("alice", kInbox);
    REQUIRE(v);
    CHECK(v->uid_validity == uid_validity);
    CHECK(v->highest_modseq == highest);
    CHECK(v->uid_next == 5); // the expunged UID 4 stays burnt
    REQUIRE(v->messages.size() == 3);
    CHECK(v->messages[0].uid == 1);
    CHECK(v->messages[2].uid == 3);
    const MessageRecord* two = v->find(2);
    REQUIRE(two);
    CHECK(two->flags == (Flags{} | Flag::Seen));
    CHECK(two->keywords == std::vector<std::string>{"work"});
    CHECK(two->modseq == highest - 1);
    CHECK(read_file(*s->message_path("alice", kInbox, 2)) == message_body(2));
    // Ledger: every origin, including the expunged one, stays committed.
    for (int i = 1; i <= 4; ++i) {
        CHECK(s->has_origin("alice", "isp", "U" + std::to_string(i)));
    }
    auto origins = s->committed_origins("alice", "isp");
    REQUIRE(origins);
    REQUIRE(origins->size() == 4);
    CHECK((*origins)[3].uid == 4);
    CHECK((*origins)[3].expunged);
    CHECK_FALSE((*origins)[0].expunged);
    CHECK(ingest(*s, "alice", "x\r\n", "isp", "U4").error().code == Errc::AlreadyExists);
    // New mail continues above every UID ever used.
    REQUIRE(ingest(*s, "alice", "new\r\n", "isp", "U5"));
    auto out = sync(*s);
    REQUIRE(out.size() == 1);
    CHECK(out[0].uid == 5);
}

TEST_CASE("a torn journal tail is truncated on open and appends continue after it", "[store]") {
    TempDir dir;
    fs::path index = inbox_dir(dir) / "popbridge.index";
    std::uintmax_t good_size = 0;
    {
        auto s = open_store(options_for(dir));
        REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
        REQUIRE(ingest(*s, "alice", message_body(2), "isp", "U2"));
        sync(*s);
        good_size = fs::file_size(index);
    }
    std::string tail = GENERATE(as<std::string>{}, "\x05",               // partial length
                                "\x40\x00\x00\x00\x01\x02\x03",          // length past the end
                                "\x04\x00\x00\x00\xde\xad\xbe\xefzzzz"); // bad CRC
    {
        std::FILE* f = std::fopen(index.c_str(), "ab");
        REQUIRE(f);
        std::fwrite(tail.data(), 1, tail.size(), f);
        std::fclose(f);
    }
    REQUIRE(fs::file_size(index) > good_size);
    {
        auto s = open_store(options_for(dir));
        auto v = s->view("alice", kInbox);
        REQUIRE(v);
        CHECK(v->messages.size() == 2);
        CHECK(fs::file_size(index) == good_size);
        REQUIRE(ingest(*s, "alice", message_body(3), "isp", "U3"));
        sync(*s);
    }
    auto s = open_store(options_for(dir));
    auto v = s->view("alice", kInbox);
    REQUIRE(v->messages.size() == 3);
    CHECK(v->messages[2].uid == 3);
}

TEST_CASE("half of the last record lost: that commit is gone, the rest survives", "[store]") {
    TempDir dir;
    fs::path index = inbox_dir(dir) / "popbridge.index";
    std::uintmax_t after_first = 0;
    {
        auto s = open_store(options_for(dir));
        REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
        sync(*s);
        after_first = fs::file_size(index);
        REQUIRE(ingest(*s, "alice", message_body(2), "isp", "U2"));
        sync(*s);
    }
    std::uintmax_t full = fs::file_size(index);
    fs::resize_file(index, after_first + (full - after_first) / 2);
    auto s = open_store(options_for(dir));
    auto v = s->view("alice", kInbox);
    REQUIRE(v->messages.size() == 1);
    CHECK(fs::file_size(index) == after_first);
    // U2's record is gone, so its UIDL is not committed and the poller will fetch it again.
    CHECK_FALSE(s->has_origin("alice", "isp", "U2"));
    // UID 2 was lost with the crash; nobody could have acknowledged it, so reuse is allowed.
    REQUIRE(ingest(*s, "alice", message_body(2), "isp", "U2"));
    CHECK(sync(*s)[0].uid == 2);
}

TEST_CASE("orphan tmp files are removed at open", "[store]") {
    TempDir dir;
    {
        auto s = open_store(options_for(dir));
        REQUIRE(s->open_user("alice"));
        auto in = s->begin_incoming("alice", kInbox);
        REQUIRE(in);
        REQUIRE(in->append(std::string_view("partial download")));
        // Simulate a crash: the file stays, the Incoming never gets destroyed normally.
        std::FILE* f = std::fopen((inbox_dir(dir) / "tmp" / "1.P9Q9.crashed").c_str(), "wb");
        REQUIRE(f);
        std::fclose(f);
        CHECK(count_entries(inbox_dir(dir) / "tmp") == 2);
        in->abort();
        CHECK(count_entries(inbox_dir(dir) / "tmp") == 1);
    }
    auto s = open_store(options_for(dir));
    REQUIRE(s->open_user("alice"));
    CHECK(count_entries(inbox_dir(dir) / "tmp") == 0);
    CHECK(s->view("alice", kInbox)->messages.empty());
}

TEST_CASE("a journaled message left in tmp/ by a crash is rolled forward into cur/", "[store]") {
    TempDir dir;
    auto opts = options_for(dir);
    bool fail_rename = true;
    opts.fault = [&](std::string_view step) { return fail_rename && step == "rename"; };
    {
        auto s = open_store(opts);
        REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
        auto out = sync(*s);
        REQUIRE(out.size() == 1);
        REQUIRE_FALSE(out[0].result);
        // Journal written but not renamed: uncertain. Not visible, origin kept blocked,
        // folder read-only until restart.
        CHECK(s->view("alice", kInbox)->messages.empty());
        CHECK(s->view("alice", kInbox)->read_only);
        CHECK(s->has_origin("alice", "isp", "U1"));
        CHECK(ingest(*s, "alice", "x", "isp", "U2").error().code == Errc::ReadOnly);
        CHECK(count_entries(inbox_dir(dir) / "tmp") == 1);
    }
    fail_rename = false;
    auto s = open_store(opts);
    auto v = s->view("alice", kInbox);
    REQUIRE(v->messages.size() == 1);
    CHECK_FALSE(v->read_only);
    CHECK(count_entries(inbox_dir(dir) / "tmp") == 0);
    CHECK(read_file(*s->message_path("alice", kInbox, 1)) == message_body(1));
    CHECK(s->has_origin("alice", "isp", "U1"));
}

TEST_CASE("a failed message fsync burns the UID and releases the origin", "[store]") {
    TempDir dir;
    auto opts = options_for(dir);
    int fsyncs = 0;
    opts.fault = [&](std::string_view step) { return step == "message_fsync" && ++fsyncs == 2; };
    auto s = open_store(opts);
    REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
    REQUIRE(ingest(*s, "alice", message_body(2), "isp", "U2"));
    auto out = sync(*s);
    REQUIRE(out.size() == 2);
    CHECK(out[0].result);
    REQUIRE_FALSE(out[1].result);
    CHECK(out[1].result.error().code == Errc::Io);
    CHECK(out[1].uid == 2);
    auto v = s->view("alice", kInbox);
    REQUIRE(v->messages.size() == 1);
    CHECK(v->uid_next == 2); // UIDNEXT only counts what readers could see
    CHECK_FALSE(v->read_only);
    CHECK_FALSE(s->has_origin("alice", "isp", "U2"));
    CHECK(count_entries(inbox_dir(dir) / "tmp") == 0);
    // Retry: UID 2 is burnt in this process, the next one is 3.
    REQUIRE(ingest(*s, "alice", message_body(2), "isp", "U2"));
    out = sync(*s);
    REQUIRE(out[0].result);
    CHECK(out[0].uid == 3);
    CHECK(s->view("alice", kInbox)->uid_next == 4);
}

TEST_CASE("a failed journal fsync makes the folder read-only and keeps origins blocked",
          "[store]") {
    TempDir dir;
    auto opts = options_for(dir);
    bool fail = true;
    opts.fault = [&](std::string_view step) { return fail && step == "journal_fsync"; };
    auto s = open_store(opts);
    REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
    auto out = sync(*s);
    REQUIRE_FALSE(out[0].result);
    CHECK(s->view("alice", kInbox)->messages.empty());
    CHECK(s->has_origin("alice", "isp", "U1")); // may be durable: never download twice
    CHECK(s->begin_incoming("alice", kInbox).error().code == Errc::ReadOnly);
    // Other users' folders are unaffected.
    fail = false;
    REQUIRE(ingest(*s, "bob", message_body(1), "isp", "U1"));
    auto bob = sync(*s);
    REQUIRE(bob.size() == 1);
    CHECK(bob[0].result);
    CHECK(s->view("bob", kInbox)->messages.size() == 1);
}

TEST_CASE("flags: Set/Add/Remove, modseq per changed message, only grows", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    for (int i = 1; i <= 3; ++i) {
        REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
    }
    sync(*s);
    RecordingListener l;
    REQUIRE(s->subscribe("alice", kInbox, &l));
    ModSeq start = s->view("alice", kInbox)->highest_modseq;

    Uid all[] = {1, 2, 3, 99};
    std::string kws[] = {"b", "a", "a"};
    REQUIRE(s->set_flags("alice", kInbox, all, FlagOp::Add, Flag::Seen | Flag::Flagged, kws));
    // Queued: invisible.
    CHECK(s->view("alice", kInbox)->find(1)->flags.bits == 0);
    CHECK(s->view("alice", kInbox)->highest_modseq == start);
    // Queued changes stack: this one sees the projected Seen and removes it from 1 only.
    Uid one[] = {1};
    REQUIRE(s->set_flags("alice", kInbox, one, FlagOp::Remove, Flags{} | Flag::Seen, {}));
    CHECK(l.flags.empty());
    sync(*s);
    REQUIRE(l.flags.size() == 4);
    ModSeq prev = start;
    for (const auto& [uid, modseq] : l.flags) {
        CHECK(modseq > prev);
        prev = modseq;
    }
    auto v = s->view("alice", kInbox);
    CHECK(v->highest_modseq == prev);
    CHECK(v->find(1)->flags == (Flags{} | Flag::Flagged));
    CHECK(v->find(2)->flags == (Flag::Seen | Flag::Flagged));
    CHECK(v->find(2)->keywords == std::vector<std::string>{"a", "b"});
    CHECK(v->find(1)->modseq == prev);

    // Unchanged messages get no new modseq.
    l.flags.clear();
    Uid two_three[] = {2, 3};
    REQUIRE(s->set_flags("alice", kInbox, two_three, FlagOp::Add, Flags{} | Flag::Seen, {}));
    sync(*s);
    CHECK(l.flags.empty());
    CHECK(s->view("alice", kInbox)->highest_modseq == prev);

    // Set replaces flags and keywords.
    std::string c[] = {"c"};
    REQUIRE(s->set_flags("alice", kInbox, two_three, FlagOp::Set, Flags{} | Flag::Deleted, c));
    sync(*s);
    v = s->view("alice", kInbox);
    CHECK(v->find(3)->flags == (Flags{} | Flag::Deleted));
    CHECK(v->find(3)->keywords == std::vector<std::string>{"c"});
    CHECK(v->highest_modseq == prev + 2);

    std::string bad[] = {"has space"};
    CHECK(s->set_flags("alice", kInbox, two_three, FlagOp::Add, {}, bad).error().code ==
          Errc::InvalidName);
    s->unsubscribe("alice", kInbox, &l);
}

TEST_CASE("expunge: files removed, events after finish, UIDs not reused", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    for (int i = 1; i <= 3; ++i) {
        REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
    }
    sync(*s);
    RecordingListener l;
    REQUIRE(s->subscribe("alice", kInbox, &l));
    fs::path p3 = *s->message_path("alice", kInbox, 3);
    Uid three[] = {3, 3, 42};
    REQUIRE(s->expunge("alice", kInbox, three));
    CHECK(s->view("alice", kInbox)->messages.size() == 3);
    sync(*s);
    CHECK(l.expunged == std::vector<Uid>{3});
    CHECK_FALSE(fs::exists(p3));
    CHECK(s->view("alice", kInbox)->messages.size() == 2);
    REQUIRE(ingest(*s, "alice", "new", "isp", "U9"));
    sync(*s);
    CHECK(l.added == std::vector<Uid>{4});
    s->unsubscribe("alice", kInbox, &l);
}

TEST_CASE("UIDVALIDITY of a recreated folder grows even when the clock goes back", "[store]") {
    TempDir dir;
    std::int64_t clock = 1'000'000;
    auto opts = options_for(dir);
    opts.clock = [&] { return clock; };
    std::uint32_t first = 0;
    std::uint32_t second = 0;
    {
        auto s = open_store(opts);
        CHECK(s->view("alice", kInbox)->uid_validity == 1'000'000);
        auto id = s->create_folder("alice", "Work");
        REQUIRE(id);
        first = s->view("alice", *id)->uid_validity;
        // Same second as the INBOX and the five default folders: still strictly greater.
        CHECK(first == 1'000'006);
        CHECK(s->create_folder("alice", "Work").error().code == Errc::AlreadyExists);
        REQUIRE(s->delete_folder("alice", *id));
        clock = 500; // the clock goes back
        auto again = s->create_folder("alice", "Work");
        REQUIRE(again);
        CHECK(*again != *id); // folder ids are never reused
        second = s->view("alice", *again)->uid_validity;
        CHECK(second > first);
        REQUIRE(s->delete_folder("alice", *again));
    }
    // And across a restart, with the clock still behind.
    clock = 400;
    auto s = open_store(opts);
    CHECK(s->view("alice", kInbox)->uid_validity == 1'000'000); // untouched
    CHECK(s->find_folder("alice", "Work").error().code == Errc::NotFound);
    auto third = s->create_folder("alice", "Work");
    REQUIRE(third);
    CHECK(s->view("alice", *third)->uid_validity > second);
    // Old folder directories are gone; only the live one and the 5 defaults remain.
    std::size_t folder_dirs = 0;
    for (const auto& e : fs::directory_iterator(inbox_dir(dir))) {
        folder_dirs += e.path().filename().string().front() == '.';
    }
    CHECK(folder_dirs == 6);
}

TEST_CASE("folders are separate: messages, ledger entries, paths from ids only", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    auto id = s->create_folder("alice", "../../bob");
    REQUIRE(id);
    REQUIRE(ingest(*s, "alice", "in work", "isp", "W1", *id));
    REQUIRE(ingest(*s, "alice", "in inbox", "isp", "I1"));
    sync(*s);
    CHECK(s->view("alice", *id)->messages.size() == 1);
    CHECK(s->view("alice", kInbox)->messages.size() == 1);
    auto p = s->message_path("alice", *id, 1);
    REQUIRE(p);
    CHECK(p->string().find("bob") == std::string::npos);
    CHECK(p->parent_path().parent_path() == inbox_dir(dir) / ("." + std::to_string(*id)));
    CHECK_FALSE(fs::exists(dir.path / "data" / "users" / "bob"));
    CHECK(s->delete_folder("alice", kInbox).error().code == Errc::InvalidState);
    CHECK(s->view("alice", 77).error().code == Errc::NotFound);
    auto folders = s->list_folders("alice");
    REQUIRE(folders);
    CHECK(folders->size() == 7); // INBOX, the 5 defaults, "../../bob"
    // Deleting the folder keeps its origin committed (never downloaded again).
    RecordingListener l;
    REQUIRE(s->subscribe("alice", *id, &l));
    REQUIRE(s->delete_folder("alice", *id));
    CHECK(l.deleted == 1);
    CHECK(s->has_origin("alice", "isp", "W1"));
    // ... also after a restart (the registry keeps the deleted folder's UIDLs).
    s.reset();
    s = open_store(options_for(dir));
    CHECK(s->has_origin("alice", "isp", "W1"));
    CHECK(s->has_origin("alice", "isp", "I1"));
    auto entries = s->committed_origins("alice", "isp");
    REQUIRE(entries->size() == 2);
    for (const auto& e : *entries) {
        CHECK(e.expunged == (e.origin.uidl == "W1"));
    }
}

TEST_CASE("bad user names are refused by every entry point and create nothing", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    for (const std::string& name :
         std::vector<std::string>{"../alice", "a/b", "..", "", std::string("x\0y", 3)}) {
        INFO(name);
        CHECK(s->open_user(name).error().code == Errc::InvalidName);
        CHECK(s->begin_incoming(name, kInbox).error().code == Errc::InvalidName);
        CHECK(s->view(name, kInbox).error().code == Errc::InvalidName);
        CHECK_FALSE(s->has_origin(name, "isp", "U1"));
    }
    CHECK(count_entries(dir.path / "data" / "users") == 0);
    CHECK(count_entries(dir.path) == 1);
}

TEST_CASE("subscribers hear about changes only in finish_sync_job", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    RecordingListener l;
    RecordingListener gone;
    REQUIRE(s->subscribe("alice", kInbox, &l));
    REQUIRE(s->subscribe("alice", kInbox, &l)); // twice: still one delivery
    REQUIRE(s->subscribe("alice", kInbox, &gone));
    s->unsubscribe("alice", kInbox, &gone);
    REQUIRE(ingest(*s, "alice", "a", "isp", "U1"));
    REQUIRE(ingest(*s, "alice", "b", "isp", "U2"));
    CHECK(l.added.empty());
    auto job = s->take_sync_job();
    REQUIRE(job);
    job->run();
    CHECK(l.added.empty());
    s->finish_sync_job(std::move(job));
    CHECK(l.added == std::vector<Uid>{1, 2});
    CHECK(gone.added.empty());

    // A listener may unsubscribe itself from inside a callback.
    struct OneShot : RecordingListener {
        Store* store = nullptr;
        void on_added(const MessageRecord& m) override {
            RecordingListener::on_added(m);
            store->unsubscribe("alice", kInbox, this);
        }
    } once;
    once.store = s.get();
    REQUIRE(s->subscribe("alice", kInbox, &once));
    REQUIRE(ingest(*s, "alice", "c", "isp", "U3"));
    REQUIRE(ingest(*s, "alice", "d", "isp", "U4"));
    sync(*s);
    CHECK(once.added == std::vector<Uid>{3});
    CHECK(l.added == std::vector<Uid>{1, 2, 3, 4});
    s->unsubscribe("alice", kInbox, &l);
}

TEST_CASE("group commit: all pending work of all users in one job, on a worker thread", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    for (int i = 0; i < 50; ++i) {
        REQUIRE(
            ingest(*s, i % 2 ? "alice" : "bob", message_body(i), "isp", "U" + std::to_string(i)));
    }
    auto job = s->take_sync_job();
    REQUIRE(job);
    CHECK(job->operations() == 50);
    CHECK(job->folders() == 2);
    CHECK(s->job_running());
    CHECK_FALSE(s->take_sync_job()); // one job at a time

    // Work queued while the job is out goes into the next job.
    REQUIRE(ingest(*s, "alice", "late", "isp", "late"));
    CHECK(s->has_pending());

    std::thread worker([&job] { job->run(); });
    worker.join();
    auto out = s->finish_sync_job(std::move(job));
    REQUIRE(out.size() == 50);
    for (std::size_t i = 0; i < out.size(); ++i) {
        CHECK(out[i].ticket == i + 1);
        CHECK(out[i].result);
    }
    CHECK(s->durable_ticket() == 50);
    CHECK(s->view("alice", kInbox)->messages.size() == 25);
    CHECK(s->view("bob", kInbox)->messages.size() == 25);

    auto next = s->take_sync_job();
    REQUIRE(next);
    CHECK(next->operations() == 1);
    next->run();
    CHECK(s->finish_sync_job(std::move(next))[0].uid == 26);
    CHECK(s->durable_ticket() == 51);
}

TEST_CASE("Incoming: size limit, abort, destruction unlinks", "[store]") {
    TempDir dir;
    auto opts = options_for(dir);
    opts.max_message_size = 10;
    auto s = open_store(opts);
    {
        auto in = s->begin_incoming("alice", kInbox);
        REQUIRE(in);
        REQUIRE(in->append(std::string_view("0123456789")));
        auto over = in->append(std::string_view("x"));
        REQUIRE_FALSE(over);
        CHECK(over.error().code == Errc::TooLarge);
        CHECK(s->commit_incoming(std::move(*in), Origin{"isp", "U1"}, 0).error().code ==
              Errc::InvalidState);
        CHECK(count_entries(inbox_dir(dir) / "tmp") == 1);
    }
    CHECK(count_entries(inbox_dir(dir) / "tmp") == 0);
    CHECK_FALSE(s->has_origin("alice", "isp", "U1"));
    CHECK_FALSE(s->take_sync_job());
}

TEST_CASE("opening a folder of 100,000 records", "[store]") {
    TempDir dir;
    std::uint32_t uid_validity = 0;
    {
        auto s = open_store(options_for(dir));
        REQUIRE(s->open_user("alice"));
        uid_validity = s->view("alice", kInbox)->uid_validity;
    }
    // Append 100k message records straight to the index; open must not look at files.
    constexpr Uid kCount = 100'000;
    {
        std::string bytes;
        for (Uid uid = 1; uid <= kCount; ++uid) {
            MessageRecord m;
            m.uid = uid;
            m.file_name = "1700000000.P1Q" + std::to_string(uid) + ".testhost,S=2048:2,";
            m.size = 2048;
            m.internal_date = 1'700'000'000 + uid;
            m.flags = uid % 3 ? Flags{} : Flags{} | Flag::Seen;
            m.modseq = uid + 1;
            m.origin = Origin{"isp", "UIDL-" + std::to_string(uid)};
            m.commit_time = 1'700'000'000;
            append_record(bytes, MessageAddedRec{m});
        }
        std::FILE* f = std::fopen((inbox_dir(dir) / "popbridge.index").c_str(), "ab");
        REQUIRE(f);
        REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
        std::fclose(f);
    }
    auto s = open_store(options_for(dir));
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(s->open_user("alice"));
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
    std::printf("store: opened a folder of %u records in %.1f ms\n", kCount, ms.count());
    auto v = s->view("alice", kInbox);
    REQUIRE(v->messages.size() == kCount);
    CHECK(v->uid_validity == uid_validity);
    CHECK(v->uid_next == kCount + 1);
    CHECK(v->highest_modseq == kCount + 1);
    CHECK(v->find(99'999)->flags == (Flags{} | Flag::Seen));
    CHECK(s->has_origin("alice", "isp", "UIDL-54321"));
}
