// Damaged-index rebuild (bad records in the middle, not a torn tail) and journal
// compaction into a snapshot.
#include "store_test_util.h"

#include <cstdio>

#include "store/crc32.h"

using namespace popbridge::store;
using namespace popbridge::store::test;
namespace fs = std::filesystem;

namespace {

fs::path inbox(const TempDir& d) {
    return d.path / "data" / "users" / "alice";
}

struct RecordAt {
    std::size_t offset;
    RecordType type;
};

// Frame offsets and types of every record of an index file.
std::vector<RecordAt> records_of(const fs::path& index) {
    std::string bytes = read_file(index);
    std::vector<RecordAt> out;
    std::size_t pos = kIndexMagic.size();
    while (pos + kRecordFrame <= bytes.size()) {
        std::uint32_t len = 0;
        for (int i = 0; i < 4; ++i) {
            len |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[pos + i]))
                   << (8 * i);
        }
        out.push_back({pos, static_cast<RecordType>(bytes[pos + kRecordFrame])});
        pos += kRecordFrame + len;
    }
    return out;
}

// Flips one payload byte of the n-th record of the given type (its CRC no longer matches).
void damage(const fs::path& index, RecordType type, int nth) {
    for (const auto& r : records_of(index)) {
        if (r.type == type && nth-- == 0) {
            std::FILE* f = std::fopen(index.c_str(), "r+b");
            REQUIRE(f);
            std::fseek(f, static_cast<long>(r.offset + kRecordFrame + 2), SEEK_SET);
            int c = std::fgetc(f);
            std::fseek(f, static_cast<long>(r.offset + kRecordFrame + 2), SEEK_SET);
            std::fputc(c ^ 0x5a, f);
            std::fclose(f);
            return;
        }
    }
    FAIL("no such record");
}

std::size_t damaged_copies(const TempDir& d) {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(inbox(d))) {
        n += e.path().filename().string().rfind("popbridge.index.damaged.", 0) == 0;
    }
    return n;
}

struct Seed {
    std::uint32_t uid_validity = 0;
    ModSeq highest_modseq = 0;
};

// Three messages, each in its own commit; a flag change on UID 1; returns the state.
Seed seed(const TempDir& dir) {
    auto s = open_store(options_for(dir));
    for (int i = 1; i <= 3; ++i) {
        REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
        sync(*s);
    }
    REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{1}, FlagOp::Add, Flags{}.set(Flag::Seen),
                         {}));
    sync(*s);
    REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{3}, FlagOp::Add,
                         Flags{}.set(Flag::Flagged), {}));
    sync(*s);
    auto v = s->view("alice", kInbox);
    return Seed{v->uid_validity, v->highest_modseq};
}

} // namespace

TEST_CASE("a damaged flag record in the middle: rebuilt, UIDVALIDITY and UIDs kept", "[store]") {
    TempDir dir;
    Seed before = seed(dir);
    damage(inbox(dir) / "popbridge.index", RecordType::FlagsChanged, 0);
    auto opts = options_for(dir);
    std::vector<std::string> logged;
    opts.log = [&](std::string_view m) { logged.emplace_back(m); };
    {
        auto s = open_store(opts);
        auto v = s->view("alice", kInbox);
        REQUIRE(v);
        REQUIRE(v->messages.size() == 3);
        CHECK(v->uid_validity == before.uid_validity);
        CHECK(v->uid_next == 4);
        // The lost \Seen is gone; every message has a modseq above anything shown before.
        CHECK_FALSE(v->find(1)->flags.has(Flag::Seen));
        CHECK(v->find(3)->flags.has(Flag::Flagged)); // the record after the damage survived
        CHECK(v->highest_modseq > before.highest_modseq);
        for (const auto& m : v->messages) {
            CHECK(m.modseq > before.highest_modseq);
        }
        CHECK(s->has_origin("alice", "isp", "U2"));
        REQUIRE(logged.size() == 1);
        CHECK(logged[0].find("UIDVALIDITY kept") != std::string::npos);
        CHECK(damaged_copies(dir) == 1);
        REQUIRE(ingest(*s, "alice", message_body(4), "isp", "U4"));
        CHECK(sync(*s)[0].uid == 4);
    }
    logged.clear();
    auto s = open_store(opts); // the rebuilt index opens cleanly
    CHECK(logged.empty());
    CHECK(s->view("alice", kInbox)->messages.size() == 4);
    CHECK(s->view("alice", kInbox)->uid_validity == before.uid_validity);
}

TEST_CASE("a lost message record: UIDVALIDITY bumped, its file gets a new UID", "[store]") {
    TempDir dir;
    Seed before = seed(dir);
    damage(inbox(dir) / "popbridge.index", RecordType::MessageAdded, 1); // UID 2
    auto opts = options_for(dir);
    std::vector<std::string> logged;
    opts.log = [&](std::string_view m) { logged.emplace_back(m); };
    std::uint32_t new_uidv = 0;
    {
        auto s = open_store(opts);
        auto v = s->view("alice", kInbox);
        REQUIRE(v);
        REQUIRE(v->messages.size() == 3);
        new_uidv = v->uid_validity;
        CHECK(new_uidv > before.uid_validity); // never renumber under the old one
        CHECK(v->find(1));
        CHECK(v->find(3));
        CHECK_FALSE(v->find(2));
        REQUIRE(v->find(4)); // the orphaned file, above every old UID
        CHECK(read_file(*s->message_path("alice", kInbox, 4)) == message_body(2));
        CHECK(v->find(4)->size == message_body(2).size());
        CHECK(v->uid_next == 5);
        REQUIRE(logged.size() == 1);
        CHECK(logged[0].find("UIDVALIDITY " + std::to_string(before.uid_validity)) !=
              std::string::npos);
        auto folders = s->list_folders("alice");
        for (const auto& f : *folders) {
            if (f.id == kInbox) {
                CHECK(f.uid_validity == new_uidv);
            }
        }
    }
    auto s = open_store(opts); // the registry agrees with the rebuilt index
    CHECK(s->view("alice", kInbox)->uid_validity == new_uidv);
    CHECK(s->view("alice", kInbox)->messages.size() == 3);
    // A folder created later still gets a larger UIDVALIDITY.
    auto id = s->create_folder("alice", "Later");
    REQUIRE(id);
    CHECK(s->view("alice", *id)->uid_validity > new_uidv);
}

TEST_CASE("rebuild: a missing file drops its message, an expunged file is not resurrected",
          "[store]") {
    TempDir dir;
    Seed before = seed(dir);
    fs::path file2;
    {
        auto s = open_store(options_for(dir));
        file2 = *s->message_path("alice", kInbox, 2);
        // Expunged, but the file is put back as if the crash came before its unlink.
        fs::path file1 = *s->message_path("alice", kInbox, 1);
        std::string keep = read_file(file1);
        REQUIRE(s->expunge("alice", kInbox, std::vector<Uid>{1}));
        sync(*s);
        REQUIRE_FALSE(fs::exists(file1));
        std::FILE* f = std::fopen(file1.c_str(), "wb");
        std::fwrite(keep.data(), 1, keep.size(), f);
        std::fclose(f);
        REQUIRE(ingest(*s, "alice", message_body(5), "isp", "U5"));
        sync(*s);
    }
    fs::remove(file2);
    damage(inbox(dir) / "popbridge.index", RecordType::FlagsChanged, 1);
    auto s = open_store(options_for(dir));
    auto v = s->view("alice", kInbox);
    REQUIRE(v);
    CHECK(v->uid_validity == before.uid_validity); // no unknown files
    std::vector<Uid> uids;
    for (const auto& m : v->messages) {
        uids.push_back(m.uid);
    }
    CHECK(uids == std::vector<Uid>{3, 4});
    CHECK(v->uid_next == 5);
    // U2's message is gone: its ledger entry says expunged (DELE-on-expunge may act).
    auto origins = s->committed_origins("alice", "isp");
    for (const auto& e : *origins) {
        CHECK(e.expunged == (e.origin.uidl == "U1" || e.origin.uidl == "U2"));
    }
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(inbox(dir) / "cur")) {
        (void)e;
        ++files;
    }
    CHECK(files == 2);
}

TEST_CASE("a damaged folder registry refuses the user and touches nothing", "[store]") {
    TempDir dir;
    {
        auto s = open_store(options_for(dir));
        REQUIRE(s->create_folder("alice", "Work"));
        REQUIRE(s->subscribe_name("alice", "Work"));
    }
    fs::path registry = inbox(dir) / "popbridge.folders";
    std::string before = read_file(registry);
    std::string bytes = before;
    bytes[kIndexMagic.size() + kRecordFrame + 3] ^= 0x11; // first record
    {
        std::FILE* f = std::fopen(registry.c_str(), "wb");
        std::fwrite(bytes.data(), 1, bytes.size(), f);
        std::fclose(f);
    }
    auto s = open_store(options_for(dir));
    auto r = s->open_user("alice");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::Corrupt);
    CHECK(read_file(registry) == bytes);
    CHECK(fs::exists(inbox(dir) / ".6")); // the Work folder's directory is still there
}

TEST_CASE("compaction: many flag changes are folded into a snapshot in the background", "[store]") {
    TempDir dir;
    auto opts = options_for(dir);
    opts.compact_min_records = 16;
    fs::path index = inbox(dir) / "popbridge.index";
    ModSeq highest = 0;
    {
        auto s = open_store(opts);
        for (int i = 1; i <= 5; ++i) {
            REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
        }
        sync(*s);
        REQUIRE(s->expunge("alice", kInbox, std::vector<Uid>{5})); // UIDNEXT must survive
        sync(*s);
        for (int round = 0; round < 10; ++round) {
            REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{1, 2}, FlagOp::Set,
                                 round % 2 ? Flags{}.set(Flag::Seen) : Flags{}, {}));
            sync(*s);
        }
        // 1 header + 5 added + 1 expunged + 20 flag records > 16 and > 2 * 4 messages.
        REQUIRE(s->has_pending());
        auto bigger = fs::file_size(index);
        auto job = s->take_sync_job();
        REQUIRE(job);
        CHECK(job->operations() == 0);
        CHECK(job->folders() == 1);
        // Work queued meanwhile waits for the next job and lands in the new file.
        REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{3}, FlagOp::Add,
                             Flags{}.set(Flag::Answered), {}));
        job->run();
        CHECK(s->finish_sync_job(std::move(job)).empty());
        CHECK(fs::file_size(index) < bigger);
        CHECK(records_of(index).size() == 6); // header + 4 messages + U5's retired origin
        sync(*s);
        CHECK(records_of(index).size() == 7);
        CHECK_FALSE(s->has_pending());
        highest = s->view("alice", kInbox)->highest_modseq;
        CHECK_FALSE(fs::exists(inbox(dir) / "popbridge.index.compact"));
    }
    auto s = open_store(opts);
    auto v = s->view("alice", kInbox);
    REQUIRE(v->messages.size() == 4);
    CHECK(v->uid_next == 6);
    CHECK(v->highest_modseq == highest);
    CHECK(v->find(1)->flags.has(Flag::Seen));
    CHECK(v->find(3)->flags.has(Flag::Answered));
    // Expunged before the compaction: its UIDL is still known (never downloaded again).
    CHECK(s->has_origin("alice", "isp", "U5"));
    auto origins = s->committed_origins("alice", "isp");
    REQUIRE(origins->size() == 5);
    CHECK(origins->back().expunged);
    CHECK(origins->back().uid == 5);
    REQUIRE(ingest(*s, "alice", message_body(6), "isp", "U6"));
    CHECK(sync(*s)[0].uid == 6);
}

TEST_CASE("a failed compaction leaves the index alone and is not retried at once", "[store]") {
    TempDir dir;
    auto opts = options_for(dir);
    opts.compact_min_records = 8;
    opts.fault = [](std::string_view step) { return step == "compact_fsync"; };
    std::vector<std::string> logged;
    opts.log = [&](std::string_view m) { logged.emplace_back(m); };
    auto s = open_store(opts);
    REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
    sync(*s);
    for (int round = 0; round < 10; ++round) {
        REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{1}, FlagOp::Set,
                             round % 2 ? Flags{}.set(Flag::Seen) : Flags{}, {}));
        sync(*s);
        if (s->has_pending()) {
            break;
        }
    }
    REQUIRE(s->has_pending());
    std::string before = read_file(inbox(dir) / "popbridge.index");
    sync(*s);
    CHECK(read_file(inbox(dir) / "popbridge.index") == before);
    CHECK_FALSE(s->has_pending());
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("compaction") != std::string::npos);
    CHECK_FALSE(fs::exists(inbox(dir) / "popbridge.index.compact"));
    // Writes continue in the old file.
    REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{1}, FlagOp::Add,
                         Flags{}.set(Flag::Flagged), {}));
    REQUIRE(sync(*s)[0].result);
}

// Found by tests/integration/test_crash_loop.py: a kill after the Expunged record was
// durable but before run() unlinked the file left the file in cur/ for good (cur/ had
// more files than the index had messages). Opening the store now removes it.
TEST_CASE("a file of an expunged message left in cur/ by a kill is removed at open", "[store]") {
    TempDir dir;
    StoreOptions o = options_for(dir);
    std::vector<std::string> warnings;
    o.log = [&](std::string_view m) { warnings.emplace_back(m); };
    fs::path file1;
    fs::path moved;
    {
        auto s = open_store(o);
        for (int i = 1; i <= 3; ++i) {
            REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
        }
        sync(*s);
        auto trash = s->find_folder("alice", "Trash");
        REQUIRE(trash);
        file1 = *s->message_path("alice", kInbox, 1);
        moved = *s->message_path("alice", kInbox, 2);
        std::string keep1 = read_file(file1);
        std::string keep2 = read_file(moved);
        REQUIRE(s->expunge("alice", kInbox, std::vector<Uid>{1}));
        REQUIRE(s->move("alice", kInbox, std::vector<Uid>{2}, *trash));
        sync(*s);
        REQUIRE_FALSE(fs::exists(file1));
        REQUIRE_FALSE(fs::exists(moved));
        // Put both back, as if the kill came between the journal fsync and the unlinks.
        for (const auto& [path, bytes] : {std::pair{file1, keep1}, std::pair{moved, keep2}}) {
            std::FILE* f = std::fopen(path.c_str(), "wb");
            REQUIRE(f != nullptr);
            std::fwrite(bytes.data(), 1, bytes.size(), f);
            std::fclose(f);
        }
    }
    auto s = open_store(o);
    auto v = s->view("alice", kInbox);
    REQUIRE(v);
    REQUIRE(v->messages.size() == 1);
    CHECK(v->messages[0].uid == 3);
    CHECK_FALSE(fs::exists(file1));
    CHECK_FALSE(fs::exists(moved));
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(inbox(dir) / "cur")) {
        (void)e;
        ++files;
    }
    CHECK(files == 1);
    bool logged = false;
    for (const auto& w : warnings) {
        logged = logged || w.find("removed 2 file(s) of expunged messages") != std::string::npos;
    }
    CHECK(logged);
    // The moved message is still in Trash, readable.
    auto trash = s->find_folder("alice", "Trash");
    REQUIRE(trash);
    auto t = s->view("alice", *trash);
    REQUIRE(t);
    REQUIRE(t->messages.size() == 1);
    CHECK(read_file(*s->message_path("alice", *trash, t->messages[0].uid)) == message_body(2));
}

TEST_CASE("recovery is logged: orphans in tmp/ and a torn journal tail", "[store]") {
    TempDir dir;
    StoreOptions o = options_for(dir);
    std::vector<std::string> warnings;
    o.log = [&](std::string_view m) { warnings.emplace_back(m); };
    {
        auto s = open_store(o);
        REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
        sync(*s);
    }
    // A download cut off by a kill, and half a record at the end of the journal.
    {
        std::FILE* f =
            std::fopen((inbox(dir) / "tmp" / "1700000000.orphan.testhost").c_str(), "wb");
        REQUIRE(f != nullptr);
        std::fputs("From: x\r\n", f);
        std::fclose(f);
        f = std::fopen((inbox(dir) / "popbridge.index").c_str(), "ab");
        REQUIRE(f != nullptr);
        const char torn[3] = {0x40, 0x00, 0x00};
        std::fwrite(torn, 1, sizeof torn, f);
        std::fclose(f);
    }
    auto s = open_store(o);
    auto v = s->view("alice", kInbox);
    REQUIRE(v);
    CHECK(v->messages.size() == 1);
    CHECK(fs::is_empty(inbox(dir) / "tmp"));
    std::string all;
    for (const auto& w : warnings) {
        all += w + "\n";
    }
    CHECK(all.find("removed 1 uncommitted file(s)") != std::string::npos);
    CHECK(all.find("truncated a torn tail of 3 byte(s)") != std::string::npos);
}

// Found by tests/integration/test_crash_loop.py (popbridge as PID 1 of a PID namespace,
// killed and restarted within a second): file names were <time>.P<pid>Q<counter>, so the
// restarted process made the same names again. Its new message was renamed over a
// committed one in cur/, and at the next open an uncommitted file in tmp/ was "rolled
// forward" over the committed message of the same name. Same process here = same pid; the
// clock stands still.
TEST_CASE("a restart within the same second with the same pid never reuses a file name",
          "[store]") {
    TempDir dir;
    StoreOptions o = options_for(dir);
    o.clock = [] { return std::int64_t{1'700'000'000}; };
    const std::string first = message_body(1);
    const std::string second = message_body(2); // same size as first
    REQUIRE(first.size() == second.size());
    {
        auto s = open_store(o);
        REQUIRE(ingest(*s, "alice", first, "isp", "U1"));
        sync(*s);
    }
    {
        auto s = open_store(o); // "restarted": same pid, same second
        REQUIRE(ingest(*s, "alice", second, "isp", "U2"));
        sync(*s);
        auto v = s->view("alice", kInbox);
        REQUIRE(v);
        REQUIRE(v->messages.size() == 2);
        CHECK(v->messages[0].file_name != v->messages[1].file_name);
        CHECK(read_file(*s->message_path("alice", kInbox, 1)) == first);
        CHECK(read_file(*s->message_path("alice", kInbox, 2)) == second);
    }
}

TEST_CASE("recovery never renames a file from tmp/ over a committed message in cur/", "[store]") {
    TempDir dir;
    const std::string first = message_body(1);
    fs::path committed;
    {
        auto s = open_store(options_for(dir));
        REQUIRE(ingest(*s, "alice", first, "isp", "U1"));
        sync(*s);
        committed = *s->message_path("alice", kInbox, 1);
    }
    // An uncommitted download that happens to carry the committed message's base name
    // (as names made before they had a random part could) and its size.
    std::string base = committed.filename().string();
    base = base.substr(0, base.find(','));
    std::string other = message_body(2);
    REQUIRE(other.size() == first.size());
    {
        std::FILE* f = std::fopen((inbox(dir) / "tmp" / base).c_str(), "wb");
        REQUIRE(f != nullptr);
        std::fwrite(other.data(), 1, other.size(), f);
        std::fclose(f);
    }
    auto s = open_store(options_for(dir));
    auto v = s->view("alice", kInbox);
    REQUIRE(v);
    REQUIRE(v->messages.size() == 1);
    CHECK(read_file(*s->message_path("alice", kInbox, 1)) == first);
    CHECK(fs::is_empty(inbox(dir) / "tmp"));
}
