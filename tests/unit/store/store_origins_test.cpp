// Ledger entries without a message of their own: record_seen_origin ("seen upstream,
// deliberately not stored") and add_origin_alias (a second UIDL for a stored message).
#include "store_test_util.h"

#include <algorithm>
#include <cstdio>

using namespace popbridge::store;
using namespace popbridge::store::test;
namespace fs = std::filesystem;

namespace {

fs::path user_dir(const TempDir& d) {
    return d.path / "data" / "users" / "alice";
}

const OriginEntry* entry_of(const std::vector<OriginEntry>& v, std::string_view uidl) {
    auto it = std::find_if(v.begin(), v.end(),
                           [&](const OriginEntry& e) { return e.origin.uidl == uidl; });
    return it == v.end() ? nullptr : &*it;
}

std::vector<OriginEntry> origins(Store& s) {
    auto r = s.committed_origins("alice", "isp");
    REQUIRE(r);
    return *r;
}

// Number of records of the given type in a journal file.
std::size_t count_records(const fs::path& index, RecordType type) {
    std::string bytes = read_file(index);
    std::size_t n = 0;
    std::size_t pos = kIndexMagic.size();
    while (pos + kRecordFrame < bytes.size()) {
        std::uint32_t len = 0;
        for (int i = 0; i < 4; ++i) {
            len |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[pos + i]))
                   << (8 * i);
        }
        n += static_cast<RecordType>(bytes[pos + kRecordFrame]) == type;
        pos += kRecordFrame + len;
    }
    return n;
}

} // namespace

TEST_CASE("record_seen_origin: pending at once, committed at finish, survives restart",
          "[store][origins]") {
    TempDir dir;
    {
        auto s = open_store(options_for(dir));
        auto t = s->record_seen_origin("alice", Origin{"isp", "OLD1"}, 1'600'000'000);
        REQUIRE(t);
        // Known at once (the poller must not download it meanwhile), listed only when durable.
        CHECK(s->has_origin("alice", "isp", "OLD1"));
        CHECK(origins(*s).empty());
        auto again = s->record_seen_origin("alice", Origin{"isp", "OLD1"}, 1'600'000'001);
        REQUIRE_FALSE(again);
        CHECK(again.error().code == Errc::AlreadyExists);

        auto out = sync(*s);
        REQUIRE(out.size() == 1);
        CHECK(out[0].ticket == *t);
        CHECK(out[0].kind == OpKind::Origin);
        CHECK(out[0].folder == kInbox);
        CHECK(out[0].origin == Origin{"isp", "OLD1"});
        CHECK(out[0].result);
        auto o = origins(*s);
        REQUIRE(o.size() == 1);
        CHECK_FALSE(o[0].stored);
        CHECK_FALSE(o[0].expunged);
        CHECK(o[0].uid == 0);
        CHECK(o[0].commit_time == 1'600'000'000);
        // No message appeared anywhere.
        CHECK(s->view("alice", kInbox)->messages.empty());
        // The poller can never store it afterwards.
        auto in = ingest(*s, "alice", message_body(1), "isp", "OLD1");
        REQUIRE_FALSE(in);
        CHECK(in.error().code == Errc::AlreadyExists);
        // Other accounts are separate.
        CHECK_FALSE(s->has_origin("alice", "other", "OLD1"));
        CHECK(s->committed_origins("alice", "other")->empty());
    }
    auto s = open_store(options_for(dir));
    CHECK(s->has_origin("alice", "isp", "OLD1"));
    auto o = origins(*s);
    REQUIRE(o.size() == 1);
    CHECK_FALSE(o[0].stored);
    CHECK(o[0].commit_time == 1'600'000'000);
    CHECK(s->view("alice", kInbox)->messages.empty());
}

TEST_CASE("record_seen_origin: bad input is refused and queues nothing", "[store][origins]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    auto empty = s->record_seen_origin("alice", Origin{}, 1);
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code == Errc::InvalidName);
    auto bad = s->record_seen_origin("alice", Origin{"isp", std::string("a\0b", 3)}, 1);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == Errc::InvalidName);
    auto user = s->record_seen_origin("../x", Origin{"isp", "U1"}, 1);
    REQUIRE_FALSE(user);
    CHECK(user.error().code == Errc::InvalidName);
    CHECK_FALSE(s->has_pending());
    // A stored origin cannot be recorded as seen.
    REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
    auto pending = s->record_seen_origin("alice", Origin{"isp", "U1"}, 1);
    REQUIRE_FALSE(pending);
    CHECK(pending.error().code == Errc::AlreadyExists);
    sync(*s);
    auto committed = s->record_seen_origin("alice", Origin{"isp", "U1"}, 1);
    REQUIRE_FALSE(committed);
    CHECK(committed.error().code == Errc::AlreadyExists);
}

TEST_CASE("add_origin_alias: the alias follows the message through move and expunge",
          "[store][origins]") {
    TempDir dir;
    FolderId work = 0;
    std::int64_t commit_time = 0;
    // A clock that moves 10 s per reading, so the move happens at a later time than the
    // download: the moved message must keep its download time, in memory and after reload.
    auto clock = std::make_shared<std::int64_t>(1'700'000'000);
    auto ticking = [&] {
        StoreOptions o = options_for(dir);
        o.clock = [clock] { return *clock += 10; };
        return o;
    };
    {
        auto s = open_store(ticking());
        REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
        REQUIRE(ingest(*s, "alice", message_body(2), "isp", "U2"));
        // Not committed yet: no alias of it.
        auto early = s->add_origin_alias("alice", Origin{"isp", "N1"}, Origin{"isp", "U1"});
        REQUIRE_FALSE(early);
        CHECK(early.error().code == Errc::NotFound);
        sync(*s);
        commit_time = entry_of(origins(*s), "U1")->commit_time;

        auto unknown = s->add_origin_alias("alice", Origin{"isp", "N9"}, Origin{"isp", "U9"});
        REQUIRE_FALSE(unknown);
        CHECK(unknown.error().code == Errc::NotFound);
        auto taken = s->add_origin_alias("alice", Origin{"isp", "U2"}, Origin{"isp", "U1"});
        REQUIRE_FALSE(taken);
        CHECK(taken.error().code == Errc::AlreadyExists);

        REQUIRE(s->add_origin_alias("alice", Origin{"isp", "N1"}, Origin{"isp", "U1"}));
        CHECK(s->has_origin("alice", "isp", "N1"));
        CHECK(entry_of(origins(*s), "N1") == nullptr); // not durable yet
        auto dup = ingest(*s, "alice", message_body(1), "isp", "N1");
        REQUIRE_FALSE(dup);
        CHECK(dup.error().code == Errc::AlreadyExists);
        auto out = sync(*s);
        REQUIRE(out.size() == 1);
        CHECK(out[0].kind == OpKind::Origin);
        CHECK(out[0].result);
        auto o = origins(*s);
        REQUIRE(o.size() == 3);
        const OriginEntry* n1 = entry_of(o, "N1");
        REQUIRE(n1);
        CHECK(n1->stored);
        CHECK(n1->folder == kInbox);
        CHECK(n1->uid == 1);
        CHECK(n1->commit_time == commit_time);
        CHECK_FALSE(n1->expunged);
        // No new message.
        CHECK(s->view("alice", kInbox)->messages.size() == 2);
        // An alias of an alias names the original.
        REQUIRE(s->add_origin_alias("alice", Origin{"isp", "M1"}, Origin{"isp", "N1"}));
        sync(*s);
        CHECK(entry_of(origins(*s), "M1")->uid == 1);

        auto w = s->create_folder("alice", "Work");
        REQUIRE(w);
        work = *w;
        REQUIRE(s->move("alice", kInbox, std::vector<Uid>{1}, work));
        sync(*s);
        o = origins(*s);
        for (std::string_view k : {"U1", "N1", "M1"}) {
            INFO(k);
            REQUIRE(entry_of(o, k));
            CHECK(entry_of(o, k)->folder == work);
            CHECK(entry_of(o, k)->uid == 1);
            CHECK_FALSE(entry_of(o, k)->expunged);
            CHECK(entry_of(o, k)->commit_time == commit_time);
        }
    }
    auto s = open_store(ticking());
    auto o = origins(*s);
    REQUIRE(o.size() == 4);
    CHECK(entry_of(o, "N1")->folder == work);
    CHECK(entry_of(o, "N1")->commit_time == commit_time);
    REQUIRE(s->expunge("alice", work, std::vector<Uid>{1}));
    sync(*s);
    CHECK(entry_of(origins(*s), "N1")->expunged);
    CHECK(entry_of(origins(*s), "M1")->expunged);
    CHECK_FALSE(entry_of(origins(*s), "U2")->expunged);
    // Deleting the folder retires the entries; the aliases stay known and expunged.
    REQUIRE(s->delete_folder("alice", work));
    s.reset();
    s = open_store(ticking());
    CHECK(s->has_origin("alice", "isp", "N1"));
    REQUIRE(entry_of(origins(*s), "N1"));
    CHECK(entry_of(origins(*s), "N1")->expunged);
    CHECK(entry_of(origins(*s), "N1")->stored);
}

TEST_CASE("an alias of a seen-only origin is not stored either", "[store][origins]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    REQUIRE(s->record_seen_origin("alice", Origin{"isp", "OLD"}, 5));
    sync(*s);
    REQUIRE(s->add_origin_alias("alice", Origin{"isp", "NEW"}, Origin{"isp", "OLD"}));
    sync(*s);
    const auto all = origins(*s); // entry_of points into it: keep it alive
    const OriginEntry* e = entry_of(all, "NEW");
    REQUIRE(e);
    CHECK_FALSE(e->stored);
}

TEST_CASE("seen origins and aliases survive compaction of the INBOX", "[store][origins]") {
    TempDir dir;
    auto opts = options_for(dir);
    opts.compact_min_records = 16;
    const fs::path index = user_dir(dir) / "popbridge.index";
    {
        auto s = open_store(opts);
        REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
        REQUIRE(ingest(*s, "alice", message_body(2), "isp", "U2"));
        sync(*s);
        for (int i = 0; i < 12; ++i) {
            REQUIRE(s->record_seen_origin("alice", Origin{"isp", "S" + std::to_string(i)}, i));
        }
        REQUIRE(s->add_origin_alias("alice", Origin{"isp", "N2"}, Origin{"isp", "U2"}));
        sync(*s);
        CHECK_FALSE(s->has_pending()); // 16 records, 15 of them live: nothing to compact
        REQUIRE(s->expunge("alice", kInbox, std::vector<Uid>{1}));
        sync(*s);
        for (int round = 0; round < 20; ++round) {
            REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{2}, FlagOp::Set,
                                 round % 2 ? Flags{}.set(Flag::Seen) : Flags{}, {}));
            sync(*s);
        }
        REQUIRE(s->has_pending());
        auto job = s->take_sync_job();
        REQUIRE(job);
        CHECK(job->operations() == 0);
        job->run();
        s->finish_sync_job(std::move(job));
        CHECK(count_records(index, RecordType::FlagsChanged) == 0); // it did compact
        CHECK(count_records(index, RecordType::OriginNoted) == 13);
        // Compaction is not wanted again at once: the noted entries count as live.
        CHECK_FALSE(s->has_pending());
        CHECK(origins(*s).size() == 15);
    }
    auto s = open_store(opts);
    auto o = origins(*s);
    REQUIRE(o.size() == 15);
    for (int i = 0; i < 12; ++i) {
        const OriginEntry* e = entry_of(o, "S" + std::to_string(i));
        REQUIRE(e);
        CHECK_FALSE(e->stored);
        CHECK(e->commit_time == i);
    }
    CHECK(entry_of(o, "U1")->expunged);
    CHECK(entry_of(o, "N2")->uid == 2);
    CHECK(entry_of(o, "N2")->stored);
    CHECK_FALSE(s->has_pending());
}

TEST_CASE("a failed journal fsync keeps the seen origin blocked; restart tells",
          "[store][origins]") {
    TempDir dir;
    {
        auto opts = options_for(dir);
        opts.fault = [](std::string_view step) { return step == "journal_fsync"; };
        auto s = open_store(opts);
        REQUIRE(s->open_user("alice"));
        REQUIRE(s->record_seen_origin("alice", Origin{"isp", "OLD"}, 7));
        auto out = sync(*s);
        REQUIRE(out.size() == 1);
        CHECK_FALSE(out[0].result);
        // Uncertain: still known (never downloaded), not listed as committed.
        CHECK(s->has_origin("alice", "isp", "OLD"));
        CHECK(origins(*s).empty());
        auto again = s->record_seen_origin("alice", Origin{"isp", "OTHER"}, 7);
        REQUIRE_FALSE(again);
        CHECK(again.error().code == Errc::ReadOnly);
    }
    // The record was written before the failed fsync: the reopened journal has it.
    auto s = open_store(options_for(dir));
    CHECK(s->has_origin("alice", "isp", "OLD"));
    REQUIRE(origins(*s).size() == 1);
}

TEST_CASE("a failed journal write: the seen origin is gone after restart", "[store][origins]") {
    TempDir dir;
    {
        auto opts = options_for(dir);
        opts.fault = [](std::string_view step) { return step == "journal_write"; };
        auto s = open_store(opts);
        REQUIRE(s->record_seen_origin("alice", Origin{"isp", "OLD"}, 7));
        auto out = sync(*s);
        CHECK_FALSE(out[0].result);
        CHECK(s->has_origin("alice", "isp", "OLD"));
    }
    auto s = open_store(options_for(dir));
    CHECK_FALSE(s->has_origin("alice", "isp", "OLD"));
    REQUIRE(s->record_seen_origin("alice", Origin{"isp", "OLD"}, 8));
    sync(*s);
    CHECK(origins(*s).size() == 1);
}

TEST_CASE("a rebuilt INBOX index keeps seen origins, aliases and expunged UIDLs",
          "[store][origins]") {
    TempDir dir;
    const fs::path index = user_dir(dir) / "popbridge.index";
    {
        auto opts = options_for(dir);
        opts.compact_min_records = 6;
        auto s = open_store(opts);
        for (int i = 1; i <= 3; ++i) {
            REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
        }
        sync(*s);
        REQUIRE(s->expunge("alice", kInbox, std::vector<Uid>{1}));
        sync(*s);
        for (int round = 0; round < 6; ++round) {
            REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{2}, FlagOp::Set,
                                 round % 2 ? Flags{}.set(Flag::Seen) : Flags{}, {}));
            sync(*s);
        }
        // Compacted: U1 now lives on only as an OriginsRetired record.
        REQUIRE(s->has_pending());
        sync(*s);
        REQUIRE(count_records(index, RecordType::OriginsRetired) == 1);
        REQUIRE(s->record_seen_origin("alice", Origin{"isp", "OLD"}, 9));
        sync(*s);
        REQUIRE(s->add_origin_alias("alice", Origin{"isp", "N3"}, Origin{"isp", "U3"}));
        sync(*s);
        REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{3}, FlagOp::Add,
                             Flags{}.set(Flag::Flagged), {}));
        sync(*s);
        REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{3}, FlagOp::Add,
                             Flags{}.set(Flag::Seen), {}));
        sync(*s);
    }
    // Damage the first of the two trailing flag records: good records follow it.
    {
        std::string bytes = read_file(index);
        std::size_t pos = kIndexMagic.size(), last_flags = 0, prev_flags = 0;
        while (pos + kRecordFrame < bytes.size()) {
            std::uint32_t len = 0;
            for (int i = 0; i < 4; ++i) {
                len |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[pos + i]))
                       << (8 * i);
            }
            if (static_cast<RecordType>(bytes[pos + kRecordFrame]) == RecordType::FlagsChanged) {
                prev_flags = last_flags;
                last_flags = pos;
            }
            pos += kRecordFrame + len;
        }
        REQUIRE(prev_flags > 0);
        bytes[prev_flags + kRecordFrame + 2] ^= 0x5a;
        std::FILE* f = std::fopen(index.c_str(), "wb");
        std::fwrite(bytes.data(), 1, bytes.size(), f);
        std::fclose(f);
    }
    std::vector<std::string> logged;
    for (int open = 0; open < 2; ++open) { // the rebuild, then the rebuilt snapshot
        INFO("open " << open);
        auto opts = options_for(dir);
        opts.log = [&](std::string_view m) { logged.emplace_back(m); };
        auto s = open_store(opts);
        for (std::string_view k : {"U1", "U2", "U3", "OLD", "N3"}) {
            INFO(k);
            CHECK(s->has_origin("alice", "isp", k));
        }
        auto o = origins(*s);
        REQUIRE(entry_of(o, "U1"));
        CHECK(entry_of(o, "U1")->expunged);
        REQUIRE(entry_of(o, "OLD"));
        CHECK_FALSE(entry_of(o, "OLD")->stored);
        REQUIRE(entry_of(o, "N3"));
        CHECK(entry_of(o, "N3")->uid == 3);
    }
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("rebuilt") != std::string::npos);
}
