// MessageIndex (protocol/imap/message_index.h): copy-on-write versions, and sessions that
// share one index per folder, move with it while in sync and keep their own view (RFC 3501
// sequence numbers, no EXPUNGE during FETCH) while they lag.
#include <catch2/catch.hpp>

// The counting operator new below pairs malloc with free; GCC cannot see that.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>

#include "fake_backend.h"
#include "protocol/imap/message_index.h"
#include "protocol/imap/server.h"

// Counts heap bytes while g_counting is set (the "memory per session" test).
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long long> g_bytes{0};
} // namespace

// Every non-aligned form is replaced, so no allocation meets a mismatched deallocation
// (the aligned forms stay the library's, in pairs).
namespace {
void* counted_alloc(std::size_t n) noexcept {
    if (g_counting.load(std::memory_order_relaxed))
        g_bytes += static_cast<long long>(n);
    return std::malloc(n == 0 ? 1 : n);
}
} // namespace

void* operator new(std::size_t n) {
    if (void* p = counted_alloc(n))
        return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    if (void* p = counted_alloc(n))
        return p;
    throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    return counted_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    return counted_alloc(n);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}

using namespace popbridge::protocol::imap;
using popbridge::protocol::imap::test::FakeBackend;

namespace {

MessageMeta meta(std::uint32_t uid, std::uint32_t flags = 0) {
    MessageMeta m;
    m.uid = uid;
    m.size = 100 + uid;
    m.internal_date = 1700000000 + uid;
    m.flags = flags;
    m.modseq = uid;
    return m;
}

std::shared_ptr<const MessageIndex> make(std::uint32_t n, std::uint32_t step = 1) {
    std::vector<MessageMeta> v;
    for (std::uint32_t i = 1; i <= n; ++i)
        v.push_back(meta(i * step));
    return MessageIndex::build(std::move(v));
}

std::vector<MessageMeta> flat(const MessageIndex& idx) {
    return std::vector<MessageMeta>(idx.begin(), idx.end());
}

// One folder shared by every session that selects it, like proxy/store_backend's
// SharedFolder: events carry the versions before and after the change.
struct SharedFolderModel {
    std::shared_ptr<const MessageIndex> current;
    std::vector<Session*> sessions;

    void change(ChangeKind kind, const MessageMeta& m) {
        auto before = current;
        MessageIndex::Editor ed(before);
        apply_change(ed, kind, m);
        current = ed.finish();
        for (Session* s : sessions) {
            if (kind == ChangeKind::Added)
                s->on_message_added(m, before, current);
            else if (kind == ChangeKind::Flags)
                s->on_flags_changed(m.uid, m.flags, m.keywords, m.modseq, before, current);
            else
                s->on_expunged(m.uid, before, current);
        }
    }
};

class SharedBackend : public FakeBackend {
public:
    explicit SharedBackend(SharedFolderModel& f) : folder(f) {}
    Result<MailboxSnapshot> select(std::string_view mailbox, bool read_only) override {
        auto r = FakeBackend::select(mailbox, read_only);
        if (r && mailbox == "INBOX") {
            r->messages.clear();
            r->index = folder.current;
            r->uid_next = folder.current->last_uid() + 1;
        }
        return r;
    }
    std::shared_ptr<const MessageIndex> current_index() const override { return folder.current; }
    SharedFolderModel& folder;
};

struct Client {
    SharedBackend backend;
    Session session;
    explicit Client(SharedFolderModel& f, SessionConfig cfg = plaintext())
        : backend(f), session(backend, cfg) {
        session.take_output();
        REQUIRE(c("L LOGIN alice secret\r\n").substr(0, 5) == "L OK ");
        REQUIRE(c("S SELECT INBOX\r\n").find("S OK [READ-WRITE]") != std::string::npos);
        f.sessions.push_back(&session);
    }
    static SessionConfig plaintext() {
        SessionConfig c;
        c.allow_plaintext_login = true;
        return c;
    }
    std::string c(std::string_view in) {
        session.feed(in);
        return session.take_output();
    }
    const std::shared_ptr<const MessageIndex>& view() const {
        return std::get<Selected>(session.state()).snapshot.messages;
    }
};

} // namespace

TEST_CASE("message index: lookups over several chunks", "[imap][index]") {
    auto idx = make(1000, 3); // uids 3, 6, ..., 3000
    REQUIRE(idx->size() == 1000);
    CHECK(idx->chunk_count() == 4);
    CHECK((*idx)[0].uid == 3);
    CHECK((*idx)[999].uid == 3000);
    CHECK((*idx)[256].uid == 771);
    CHECK(idx->last_uid() == 3000);
    CHECK(idx->find(771) == 256u);
    CHECK_FALSE(idx->find(772));
    CHECK(idx->lower_bound(772) == 257u);
    CHECK(idx->lower_bound(1) == 0u);
    CHECK(idx->lower_bound(3001) == 1000u);
    std::size_t n = 0;
    for (const MessageMeta& m : *idx)
        CHECK(m.uid == 3 * ++n);
    CHECK(n == 1000);
    CHECK(MessageIndex::empty_index()->empty());
    CHECK(MessageIndex::empty_index()->last_uid() == 0);
}

TEST_CASE("message index: an edit copies one chunk and leaves the old version alone",
          "[imap][index]") {
    auto v1 = make(100000);
    REQUIRE(v1->chunk_count() == 391);
    MessageIndex::Editor ed(v1);
    ed.at(50000).flags = kFlagSeen;
    auto v2 = ed.finish();
    CHECK(v2 != v1);
    CHECK((*v2)[50000].flags == kFlagSeen);
    CHECK((*v1)[50000].flags == 0); // published versions never change
    CHECK(v2->shared_chunks(*v1) == v1->chunk_count() - 1);
    CHECK_FALSE(v2->same_content(*v1));

    // An Editor that changes nothing hands back the base itself.
    MessageIndex::Editor none(v2);
    CHECK(none.finish() == v2);

    // Append to a full last chunk: a new chunk, everything else shared.
    auto v3 = make(512);
    MessageIndex::Editor add(v3);
    add.push_back(meta(600));
    auto v4 = add.finish();
    CHECK(v4->size() == 513);
    CHECK(v4->chunk_count() == 3);
    CHECK(v4->shared_chunks(*v3) == 2);
}

TEST_CASE("message index: random edits match a plain vector", "[imap][index]") {
    std::mt19937 rng(42);
    std::vector<MessageMeta> model;
    for (std::uint32_t u = 1; u <= 700; ++u)
        model.push_back(meta(u * 2));
    auto cur = MessageIndex::build(model);
    std::vector<std::shared_ptr<const MessageIndex>> old_versions;
    std::vector<std::vector<MessageMeta>> old_models;
    std::uint32_t next_uid = 2000;
    for (int round = 0; round < 300; ++round) {
        MessageIndex::Editor ed(cur);
        int ops = 1 + static_cast<int>(rng() % 5);
        for (int k = 0; k < ops; ++k) {
            unsigned what = rng() % 3;
            if (what == 0 || model.empty()) {
                MessageMeta m = meta(next_uid += 1 + rng() % 3);
                model.push_back(m);
                ApplyResult r = apply_change(ed, ChangeKind::Added, m);
                CHECK(r.applied);
            } else if (what == 1) {
                std::size_t i = rng() % model.size();
                MessageMeta m = model[i];
                m.flags ^= kFlagSeen;
                m.keywords = {"$k" + std::to_string(rng() % 3)};
                m.modseq += 1000;
                ApplyResult r = apply_change(ed, ChangeKind::Flags, m);
                CHECK(r.pos == i);
                model[i] = m;
            } else {
                std::size_t i = rng() % model.size();
                MessageMeta m;
                m.uid = model[i].uid;
                ApplyResult r = apply_change(ed, ChangeKind::Expunged, m);
                CHECK(r.pos == i);
                model.erase(model.begin() + static_cast<std::ptrdiff_t>(i));
            }
            REQUIRE(flat(ed.view()) == model);
        }
        cur = ed.finish();
        REQUIRE(cur->size() == model.size());
        for (std::size_t i = 0; i < model.size(); i += 37)
            REQUIRE(cur->find(model[i].uid) == i);
        if (round % 50 == 0) {
            old_versions.push_back(cur);
            old_models.push_back(model);
        }
    }
    CHECK(cur->same_content(*MessageIndex::build(model)));
    for (std::size_t k = 0; k < old_versions.size(); ++k)
        CHECK(flat(*old_versions[k]) == old_models[k]); // every version stays as it was
    // Expunges merge small chunks: no more chunks than needed many times over.
    CHECK(cur->chunk_count() <= model.size() / (MessageIndex::kChunk / 4) + 2);
}

TEST_CASE("shared index: sessions that select the same folder share one index",
          "[imap][index][server]") {
    SharedFolderModel folder;
    folder.current = make(2000);
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 20; ++i)
        clients.push_back(std::make_unique<Client>(folder));
    for (auto& c : clients)
        CHECK(c->view() == folder.current);
    CHECK(folder.current.use_count() == 21);

    // Every session IDLEs; a flag change and a new message reach all of them at once, and
    // each moves to the new shared version (the old one is freed).
    for (auto& c : clients)
        CHECK(c->c("i IDLE\r\n") == "+ idling\r\n");
    std::weak_ptr<const MessageIndex> old = folder.current;
    MessageMeta m = (*folder.current)[4];
    m.flags = kFlagFlagged;
    m.modseq = 9000;
    folder.change(ChangeKind::Flags, m);
    folder.change(ChangeKind::Added, meta(5000));
    for (auto& c : clients) {
        CHECK(c->session.take_output() ==
              "* 5 FETCH (UID 5 FLAGS (\\Flagged))\r\n* 2001 EXISTS\r\n");
        CHECK(c->view() == folder.current);
    }
    CHECK(old.expired());
    CHECK(folder.current.use_count() == 21);
}

TEST_CASE("shared index: memory per selected session does not grow with the folder",
          "[imap][index][server]") {
    SharedFolderModel folder;
    folder.current = make(20000); // the old per-session copy: 20,000 x 64 B = 1.25 MiB
    std::vector<std::unique_ptr<Client>> clients;
    g_bytes = 0;
    g_counting = true;
    for (int i = 0; i < 10; ++i) {
        clients.push_back(std::make_unique<Client>(folder));
        clients.back()->c("i IDLE\r\n");
    }
    g_counting = false;
    long long per_session = g_bytes / 10;
    INFO("heap bytes allocated per session (log-in, SELECT, IDLE): " << per_session);
    CHECK(per_session < 16 * 1024);
    for (auto& c : clients)
        CHECK(c->view() == folder.current);
}

TEST_CASE("shared index: a session lagging several versions reports them in order",
          "[imap][index][server]") {
    SharedFolderModel folder;
    folder.current = make(300); // uids 1..300, two chunks
    Client idle(folder);
    Client busy(folder);
    CHECK(idle.c("i IDLE\r\n") == "+ idling\r\n");
    auto start = folder.current;

    MessageMeta f = (*folder.current)[0];
    f.flags = kFlagSeen;
    f.modseq = 1001;
    folder.change(ChangeKind::Added, meta(400));
    folder.change(ChangeKind::Flags, f);
    MessageMeta gone;
    gone.uid = 2;
    folder.change(ChangeKind::Expunged, gone);
    folder.change(ChangeKind::Added, meta(401));
    MessageMeta f2 = (*folder.current)[298]; // uid 300 (after the expunge of uid 2)
    REQUIRE(f2.uid == 300);
    f2.keywords = {"$Work"};
    f2.modseq = 1002;
    folder.change(ChangeKind::Flags, f2);

    CHECK(idle.session.take_output() == "* 301 EXISTS\r\n"
                                        "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n"
                                        "* 2 EXPUNGE\r\n"
                                        "* 301 EXISTS\r\n"
                                        "* 299 FETCH (UID 300 FLAGS ($Work))\r\n");
    CHECK(idle.view() == folder.current);

    // The busy session was told nothing yet: its view is the version it selected.
    CHECK(busy.view() == start);
    CHECK(busy.c("a UID FETCH 2 UID\r\n") == "* 2 FETCH (UID 2)\r\n"
                                             "* 301 EXISTS\r\n"
                                             "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n"
                                             "* 2 EXPUNGE\r\n"
                                             "* 301 EXISTS\r\n"
                                             "* 299 FETCH (UID 300 FLAGS ($Work))\r\n"
                                             "a OK UID FETCH completed\r\n");
    CHECK(busy.view() == folder.current);
    CHECK(busy.c("b FETCH 301 UID\r\n") == "* 301 FETCH (UID 401)\r\nb OK FETCH completed\r\n");
}

TEST_CASE("shared index: an expunge while another session is in FETCH waits for a safe point",
          "[imap][index][server]") {
    SharedFolderModel folder;
    folder.current = make(600);
    Client idle(folder);
    SessionConfig small = Client::plaintext();
    small.output_high_water = 300;
    Client reader(folder, small);
    CHECK(idle.c("i IDLE\r\n") == "+ idling\r\n");

    // A long sequence-number FETCH, produced in batches.
    reader.session.feed(std::string_view("f FETCH 1:600 (UID FLAGS)\r\n"));
    std::string out = reader.session.take_output();
    REQUIRE(reader.session.input_blocked());

    // Meanwhile another device expunges message 2 and flags message 1.
    MessageMeta gone;
    gone.uid = 2;
    folder.change(ChangeKind::Expunged, gone);
    MessageMeta f = (*folder.current)[0];
    f.flags = kFlagAnswered;
    f.modseq = 777;
    folder.change(ChangeKind::Flags, f);
    CHECK(idle.session.take_output() == "* 2 EXPUNGE\r\n* 1 FETCH (UID 1 FLAGS (\\Answered))\r\n");

    for (int rounds = 0; reader.session.input_blocked(); ++rounds) {
        REQUIRE(rounds < 10000);
        reader.session.pump();
        out += reader.session.take_output();
    }
    // Sequence numbers of the FETCH are those the client knew: uid 600 is still 600, and
    // no EXPUNGE comes with its completion (RFC 9051 7.4.1); the flag change does.
    CHECK(out.find("* 2 FETCH (UID 2 FLAGS ())") != std::string::npos);
    CHECK(out.find("* 600 FETCH (UID 600 FLAGS ())") != std::string::npos);
    CHECK(out.find("EXPUNGE") == std::string::npos);
    CHECK(out.find("* 1 FETCH (UID 1 FLAGS (\\Answered))\r\nf OK FETCH completed\r\n") !=
          std::string::npos);
    // Its view is its own until the expunge is reported, then the shared one again.
    CHECK(reader.view() != folder.current);
    CHECK(reader.view()->size() == 600);
    CHECK(reader.c("n NOOP\r\n") == "* 2 EXPUNGE\r\nn OK NOOP completed\r\n");
    CHECK(reader.view() == folder.current);
    CHECK(reader.c("g FETCH 599 UID\r\n") == "* 599 FETCH (UID 600)\r\ng OK FETCH completed\r\n");
}
