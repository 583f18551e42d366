// APPEND with flags, COPY, MOVE (UID maps, hard links, crash-safe order), UNCHANGEDSINCE.
#include "store_test_util.h"

#include <sys/stat.h>

using namespace popbridge::store;
using namespace popbridge::store::test;
namespace fs = std::filesystem;

namespace {

std::string body_of(Store& s, std::string_view user, FolderId f, Uid uid) {
    auto p = s.message_path(user, f, uid);
    REQUIRE(p);
    return read_file(*p);
}

FolderId folder(Store& s, std::string_view name) {
    auto id = s.find_folder("alice", name);
    REQUIRE(id);
    return *id;
}

// Live locations of an origin across all folders of alice.
int live_copies(Store& s, std::string_view uidl) {
    int n = 0;
    auto folders = s.list_folders("alice");
    REQUIRE(folders);
    for (const auto& f : *folders) {
        auto v = s.view("alice", f.id);
        REQUIRE(v);
        for (const auto& m : v->messages) {
            n += m.origin.uidl == uidl;
        }
    }
    return n;
}

} // namespace

TEST_CASE("append: flags, keywords and internal date; the Outcome carries the UID", "[store]") {
    TempDir dir;
    std::vector<std::string> kw{"$Forwarded", "$Label1", "$Forwarded"};
    {
        auto s = open_store(options_for(dir));
        FolderId sent = folder(*s, "Sent");
        auto t = s->append("alice", sent, "Subject: x\r\n\r\nhi\r\n", Flag::Seen | Flag::Draft, kw,
                           1'600'000'000);
        REQUIRE(t);
        auto out = sync(*s);
        REQUIRE(out.size() == 1);
        REQUIRE(out[0].result);
        CHECK(out[0].kind == OpKind::Ingest);
        CHECK(out[0].uid == 1);
        CHECK(out[0].folder == sent);
        std::vector<std::string> bad{"two words"};
        CHECK(s->append("alice", sent, "x", {}, bad, 0).error().code == Errc::InvalidName);
        CHECK(s->append("alice", 999, "x", {}, {}, 0).error().code == Errc::NotFound);
        CHECK(fs::is_empty(dir.path / "data/users/alice" / ("." + std::to_string(sent)) / "tmp"));
    }
    auto s = open_store(options_for(dir));
    FolderId sent = folder(*s, "Sent");
    auto v = s->view("alice", sent);
    REQUIRE(v->messages.size() == 1);
    const MessageRecord& m = v->messages[0];
    CHECK(m.flags == (Flag::Seen | Flag::Draft));
    CHECK(m.keywords == std::vector<std::string>{"$Forwarded", "$Label1"});
    CHECK(m.internal_date == 1'600'000'000);
    CHECK(m.origin == Origin{});
    CHECK(body_of(*s, "alice", sent, 1) == "Subject: x\r\n\r\nhi\r\n");
}

TEST_CASE("copy: new UIDs in the target, same bytes, flags, no origin; source untouched",
          "[store]") {
    TempDir dir;
    FolderId archive = 0;
    {
        auto s = open_store(options_for(dir));
        archive = folder(*s, "Archive");
        for (int i = 1; i <= 3; ++i) {
            REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
        }
        sync(*s);
        // Something already in the target, so the UIDs differ from the source's.
        REQUIRE(s->append("alice", archive, "existing\r\n", {}, {}, 1));
        // A flag change still queued when the copy is queued goes with the copy.
        std::vector<std::string> kw{"$Work"};
        REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{2}, FlagOp::Add,
                             Flags{}.set(Flag::Flagged), kw));
        auto t = s->copy("alice", kInbox, std::vector<Uid>{3, 1, 2, 99, 1}, archive);
        REQUIRE(t);
        auto out = sync(*s);
        REQUIRE(out.size() == 3);
        const Outcome& c = out[2];
        CHECK(c.ticket == *t);
        REQUIRE(c.result);
        CHECK(c.kind == OpKind::Copy);
        CHECK(c.folder == kInbox);
        CHECK(c.target == archive);
        CHECK(c.uid_map == std::vector<std::pair<Uid, Uid>>{{1, 2}, {2, 3}, {3, 4}});
        auto v = s->view("alice", archive);
        REQUIRE(v->messages.size() == 4);
        CHECK(v->uid_next == 5);
        CHECK(v->find(3)->flags == Flags{}.set(Flag::Flagged));
        CHECK(v->find(3)->keywords == std::vector<std::string>{"$Work"});
        CHECK(v->find(3)->origin == Origin{}); // the ledger keeps pointing at the original
        CHECK(v->find(2)->internal_date == s->view("alice", kInbox)->find(1)->internal_date);
        CHECK(s->view("alice", kInbox)->messages.size() == 3);
        // The copy shares the source's blocks (a hard link).
        struct stat st {};
        REQUIRE(::stat(s->message_path("alice", archive, 2)->c_str(), &st) == 0);
        CHECK(st.st_nlink == 2);
        // Expunging the original leaves the copy readable.
        REQUIRE(s->expunge("alice", kInbox, std::vector<Uid>{1}));
        sync(*s);
        CHECK(body_of(*s, "alice", archive, 2) == message_body(1));
        auto origins = s->committed_origins("alice", "isp");
        REQUIRE(origins->size() == 3);
        CHECK((*origins)[0].expunged); // U1's only live place was the INBOX
    }
    auto s = open_store(options_for(dir));
    auto v = s->view("alice", archive);
    REQUIRE(v->messages.size() == 4);
    for (int i = 1; i <= 3; ++i) {
        CHECK(body_of(*s, "alice", archive, static_cast<Uid>(i + 1)) == message_body(i));
    }
    CHECK(s->copy("alice", kInbox, std::vector<Uid>{2}, 999).error().code == Errc::NotFound);
}

TEST_CASE("copy into the same folder and copy+expunge of one message in one job", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
    REQUIRE(ingest(*s, "alice", message_body(2), "isp", "U2"));
    sync(*s);
    FolderId trash = folder(*s, "Trash");
    // Copy queued before the expunge: the copy links the file before the expunge unlinks it.
    REQUIRE(s->copy("alice", kInbox, std::vector<Uid>{1}, trash));
    REQUIRE(s->expunge("alice", kInbox, std::vector<Uid>{1}));
    // Expunge queued before the copy: the message is on its way out, the copy skips it.
    REQUIRE(s->expunge("alice", kInbox, std::vector<Uid>{2}));
    auto late = s->copy("alice", kInbox, std::vector<Uid>{2}, trash);
    auto out = sync(*s);
    REQUIRE(out.size() == 4);
    CHECK(out[0].uid_map == std::vector<std::pair<Uid, Uid>>{{1, 1}});
    CHECK(out[3].uid_map.empty());
    CHECK(out[3].ticket == *late);
    CHECK(body_of(*s, "alice", trash, 1) == message_body(1));
    CHECK(s->view("alice", kInbox)->messages.empty());
    CHECK(s->view("alice", trash)->messages.size() == 1);

    REQUIRE(s->copy("alice", trash, std::vector<Uid>{1}, trash));
    out = sync(*s);
    CHECK(out[0].uid_map == std::vector<std::pair<Uid, Uid>>{{1, 2}});
    CHECK(body_of(*s, "alice", trash, 2) == message_body(1));
}

TEST_CASE("move: one ticket, UID map, source expunged, the origin follows", "[store]") {
    TempDir dir;
    FolderId archive = 0;
    {
        auto s = open_store(options_for(dir));
        archive = folder(*s, "Archive");
        for (int i = 1; i <= 3; ++i) {
            REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
        }
        sync(*s);
        ModSeq before = s->view("alice", kInbox)->highest_modseq;
        auto t = s->move("alice", kInbox, std::vector<Uid>{3, 1}, archive);
        REQUIRE(t);
        // While queued, the moved UIDs cannot be expunged, moved or flagged again.
        auto again = s->move("alice", kInbox, std::vector<Uid>{1}, folder(*s, "Trash"));
        auto out = sync(*s);
        REQUIRE(out.size() == 2); // one Outcome per ticket
        REQUIRE(out[0].result);
        CHECK(out[0].kind == OpKind::Move);
        CHECK(out[0].uid_map == std::vector<std::pair<Uid, Uid>>{{1, 1}, {3, 2}});
        CHECK(out[1].ticket == *again);
        CHECK(out[1].uid_map.empty());
        auto src = s->view("alice", kInbox);
        REQUIRE(src->messages.size() == 1);
        CHECK(src->messages[0].uid == 2);
        CHECK(src->highest_modseq > before);
        CHECK(s->view("alice", archive)->messages.size() == 2);
        CHECK(s->view("alice", folder(*s, "Trash"))->messages.empty());
        CHECK(live_copies(*s, "U1") == 1);
        CHECK(live_copies(*s, "U3") == 1);
        // The ledger follows: still committed, not expunged, now in Archive.
        auto origins = *s->committed_origins("alice", "isp");
        REQUIRE(origins.size() == 3);
        for (const auto& e : origins) {
            CHECK_FALSE(e.expunged);
            CHECK(e.folder == (e.origin.uidl == "U2" ? kInbox : archive));
        }
        CHECK(s->has_origin("alice", "isp", "U1"));
        CHECK(fs::is_empty(dir.path / "data/users/alice/cur") == false);
    }
    auto s = open_store(options_for(dir));
    CHECK(s->view("alice", kInbox)->messages.size() == 1);
    auto dst = s->view("alice", archive);
    REQUIRE(dst->messages.size() == 2);
    CHECK(dst->messages[0].origin.uidl == "U1");
    CHECK(dst->messages[0].moved_from_folder == kInbox);
    CHECK(dst->messages[0].moved_from_uid == 1);
    CHECK(body_of(*s, "alice", archive, 2) == message_body(3));
    auto entries = s->committed_origins("alice", "isp");
    REQUIRE(entries);
    for (const auto& e : *entries) {
        CHECK_FALSE(e.expunged);
        CHECK(e.folder == (e.origin.uidl == "U2" ? kInbox : archive));
    }
    // The INBOX's cur/ holds only the one remaining file.
    std::size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir.path / "data/users/alice/cur")) {
        (void)e;
        ++files;
    }
    CHECK(files == 1);
    // Expunging the moved message later marks its ledger entry at the target.
    REQUIRE(s->expunge("alice", archive, std::vector<Uid>{1}));
    sync(*s);
    entries = s->committed_origins("alice", "isp");
    for (const auto& e : *entries) {
        CHECK(e.expunged == (e.origin.uidl == "U1"));
    }
}

TEST_CASE("move cut short after the target commit is finished at the next open", "[store]") {
    TempDir dir;
    auto opts = options_for(dir);
    int writes = 0;
    bool armed = false;
    // The move's first journal write is the target's; fail the second (the source's).
    opts.fault = [&](std::string_view step) {
        return armed && step == "journal_write" && ++writes == 2;
    };
    std::vector<std::string> logged;
    opts.log = [&](std::string_view m) { logged.emplace_back(m); };
    FolderId archive = 0;
    {
        auto s = open_store(opts);
        archive = folder(*s, "Archive");
        REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
        REQUIRE(ingest(*s, "alice", message_body(2), "isp", "U2"));
        sync(*s);
        armed = true;
        REQUIRE(s->move("alice", kInbox, std::vector<Uid>{1}, archive));
        auto out = sync(*s);
        REQUIRE(out.size() == 1);
        REQUIRE_FALSE(out[0].result);
        CHECK(out[0].result.error().code == Errc::Io);
        CHECK(out[0].uid_map == std::vector<std::pair<Uid, Uid>>{{1, 1}});
        // In memory the message is in both until the restart; the source is read-only.
        CHECK(s->view("alice", archive)->messages.size() == 1);
        CHECK(s->view("alice", kInbox)->read_only);
        CHECK(s->expunge("alice", kInbox, std::vector<Uid>{1}).error().code == Errc::ReadOnly);
    }
    armed = false;
    auto s = open_store(opts);
    auto src = s->view("alice", kInbox);
    REQUIRE(src->messages.size() == 1);
    CHECK(src->messages[0].uid == 2);
    CHECK_FALSE(src->read_only);
    REQUIRE(s->view("alice", archive)->messages.size() == 1);
    CHECK(live_copies(*s, "U1") == 1);
    REQUIRE_FALSE(logged.empty());
    CHECK(logged.back().find("interrupted move") != std::string::npos);
    // Idempotent: a second open finds nothing to finish.
    logged.clear();
    s.reset();
    s = open_store(opts);
    CHECK(s->view("alice", kInbox)->messages.size() == 1);
    CHECK(logged.empty());
}

TEST_CASE("a move whose target fails leaves the message in the source only", "[store]") {
    TempDir dir;
    auto opts = options_for(dir);
    bool armed = false;
    opts.fault = [&](std::string_view step) { return armed && step == "copy_link"; };
    auto s = open_store(opts);
    REQUIRE(ingest(*s, "alice", message_body(1), "isp", "U1"));
    sync(*s);
    FolderId archive = folder(*s, "Archive");
    armed = true;
    REQUIRE(s->move("alice", kInbox, std::vector<Uid>{1}, archive));
    auto out = sync(*s);
    REQUIRE_FALSE(out[0].result);
    CHECK(s->view("alice", kInbox)->messages.size() == 1);
    CHECK(s->view("alice", archive)->messages.empty());
    CHECK(fs::is_empty(dir.path / "data/users/alice" / ("." + std::to_string(archive)) / "tmp"));
    // The lock on UID 1 is released: it can be moved again.
    armed = false;
    REQUIRE(s->move("alice", kInbox, std::vector<Uid>{1}, archive));
    out = sync(*s);
    REQUIRE(out[0].result);
    CHECK(out[0].uid_map == std::vector<std::pair<Uid, Uid>>{{1, 2}}); // UID 1 burnt
    CHECK(live_copies(*s, "U1") == 1);
}

TEST_CASE("set_flags with UNCHANGEDSINCE reports and skips modified messages", "[store]") {
    TempDir dir;
    auto s = open_store(options_for(dir));
    for (int i = 1; i <= 3; ++i) {
        REQUIRE(ingest(*s, "alice", message_body(i), "isp", "U" + std::to_string(i)));
    }
    sync(*s);
    ModSeq base = s->view("alice", kInbox)->highest_modseq;
    REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{2}, FlagOp::Add, Flags{}.set(Flag::Seen),
                         {}));
    sync(*s);
    // UID 2 changed after `base`; a queued (uncommitted) change to UID 3 counts as well.
    REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{3}, FlagOp::Add,
                         Flags{}.set(Flag::Answered), {}));
    auto t = s->set_flags("alice", kInbox, std::vector<Uid>{1, 2, 3}, FlagOp::Add,
                          Flags{}.set(Flag::Flagged), {}, base);
    REQUIRE(t);
    auto out = sync(*s);
    REQUIRE(out.size() == 2);
    CHECK(out[1].ticket == *t);
    REQUIRE(out[1].result);
    CHECK(out[1].modified == std::vector<Uid>{2, 3});
    auto v = s->view("alice", kInbox);
    CHECK(v->find(1)->flags.has(Flag::Flagged));
    CHECK_FALSE(v->find(2)->flags.has(Flag::Flagged));
    CHECK_FALSE(v->find(3)->flags.has(Flag::Flagged));
    // UNCHANGEDSINCE equal to the message's modseq passes (only "greater" fails).
    ModSeq m2 = v->find(2)->modseq;
    REQUIRE(s->set_flags("alice", kInbox, std::vector<Uid>{2}, FlagOp::Add,
                         Flags{}.set(Flag::Flagged), {}, m2));
    out = sync(*s);
    CHECK(out[0].modified.empty());
    CHECK(s->view("alice", kInbox)->find(2)->flags.has(Flag::Flagged));
}
