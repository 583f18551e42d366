// compute_message_structure and the byte-bounded LRU StructureCache.
#include <catch2/catch.hpp>

#include "protocol/imap/message_structure.h"
#include "protocol/imap/server.h"
#include "tests/unit/protocol/imap/fake_backend.h"

using namespace popbridge::protocol::imap;

namespace {

std::shared_ptr<const MessageStructure> structure_of(std::string_view bytes) {
    return std::make_shared<const MessageStructure>(compute_message_structure(bytes));
}

StructureKey key(std::uint32_t uid, std::uint64_t mailbox = 1, std::string owner = "alice",
                 std::uint32_t validity = 7) {
    return StructureKey{std::move(owner), mailbox, validity, uid};
}

} // namespace

TEST_CASE("message structure: all three from one parse", "[imap][structure]") {
    auto s = compute_message_structure("Subject: hi\r\nFrom: a@b.c\r\n\r\nbody\r\n");
    CHECK(s.envelope == "(NIL \"hi\" ((NIL NIL \"a\" \"b.c\")) ((NIL NIL \"a\" \"b.c\")) ((NIL NIL "
                        "\"a\" \"b.c\")) NIL NIL NIL NIL NIL)");
    CHECK(s.bodystructure ==
          "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL)");
    CHECK(s.body == "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)");
    CHECK_FALSE(s.truncated);
    CHECK(s.memory() >= s.envelope.size() + s.bodystructure.size() + s.body.size());
    // Garbage still gives a structure.
    auto g = compute_message_structure(std::string("\0\r\n--x\r\n\xff", 8));
    CHECK_FALSE(g.envelope.empty());
    CHECK_FALSE(g.bodystructure.empty());
}

TEST_CASE("structure cache: hits, misses, keys", "[imap][structure]") {
    StructureCache cache(1 << 20);
    auto a = structure_of("Subject: a\r\n\r\nA\r\n");
    CHECK(cache.find(key(1)) == nullptr);
    cache.insert(key(1), a);
    CHECK(cache.find(key(1)) == a);
    // Every key part matters: another UID, mailbox, user or UIDVALIDITY is another message.
    CHECK(cache.find(key(2)) == nullptr);
    CHECK(cache.find(key(1, 2)) == nullptr);
    CHECK(cache.find(key(1, 1, "bob")) == nullptr);
    CHECK(cache.find(key(1, 1, "alice", 8)) == nullptr);
    CHECK(cache.hits() == 1);
    CHECK(cache.misses() == 5);
    CHECK(cache.size() == 1);
    // Replacing keeps one entry and the byte count right.
    std::size_t before = cache.bytes();
    cache.insert(key(1), structure_of("Subject: a\r\n\r\nA\r\n"));
    CHECK(cache.size() == 1);
    CHECK(cache.bytes() == before);
    cache.insert(key(1, 2), a);
    cache.insert(key(2, 2), a);
    cache.erase_mailbox("alice", 2);
    CHECK(cache.size() == 1);
    CHECK(cache.bytes() == before);
    cache.erase_mailbox("alice", 1);
    CHECK(cache.size() == 0);
    CHECK(cache.bytes() == 0);
}

TEST_CASE("structure cache: bounded by bytes, least recently used goes first",
          "[imap][structure]") {
    auto s = structure_of("Subject: a\r\n\r\nA\r\n");
    StructureCache probe(1 << 20);
    probe.insert(key(1), s);
    const std::size_t cost = probe.bytes();
    StructureCache cache(cost * 3 + cost / 2); // room for three
    cache.insert(key(1), s);
    cache.insert(key(2), s);
    cache.insert(key(3), s);
    CHECK(cache.find(key(1)) != nullptr); // 1 is now the most recent; 2 the oldest
    cache.insert(key(4), s);
    CHECK(cache.size() == 3);
    CHECK(cache.bytes() <= cache.max_bytes());
    CHECK(cache.find(key(2)) == nullptr);
    CHECK(cache.find(key(1)) != nullptr);
    CHECK(cache.find(key(3)) != nullptr);
    CHECK(cache.find(key(4)) != nullptr);
    // An entry bigger than the whole cache is not kept, and evicts nothing.
    StructureCache tiny(cost - 1);
    tiny.insert(key(1), s);
    CHECK(tiny.size() == 0);
    CHECK(tiny.bytes() == 0);
    // A pointer handed out stays valid after eviction.
    auto held = cache.find(key(3));
    for (std::uint32_t uid = 10; uid < 20; ++uid)
        cache.insert(key(uid), structure_of("Subject: b\r\n\r\nB\r\n"));
    CHECK(cache.find(key(3)) == nullptr);
    CHECK(held->envelope.find("\"a\"") != std::string::npos);
}

TEST_CASE("fetch: ENVELOPE with sections reads each message once", "[imap][structure]") {
    test::FakeBackend backend;
    SessionConfig cfg;
    cfg.allow_plaintext_login = true;
    Session s(backend, cfg);
    s.feed(std::string_view("L LOGIN alice secret\r\nS SELECT INBOX\r\n"));
    s.take_output();
    backend.calls.clear();
    s.feed(std::string_view("f FETCH 1:* (ENVELOPE BODY.PEEK[HEADER] BODYSTRUCTURE "
                            "BODY.PEEK[1])\r\n"));
    std::string out = s.take_output();
    CHECK(out.find("f OK FETCH completed") != std::string::npos);
    CHECK(backend.calls == std::vector<std::string>{"read 3", "read 7", "read 11"});
    // Structure only: one read each through the default Backend::message_structure.
    backend.calls.clear();
    s.feed(std::string_view("g FETCH 1:* (ENVELOPE BODY)\r\n"));
    s.take_output();
    CHECK(backend.calls == std::vector<std::string>{"read 3", "read 7", "read 11"});
    // A message expunged meanwhile is left out, the FETCH still succeeds.
    backend.bodies.erase(7);
    s.feed(std::string_view("h FETCH 1:3 ENVELOPE\r\n"));
    out = s.take_output();
    CHECK(out.find("* 2 FETCH") == std::string::npos);
    CHECK(out.find("* 3 FETCH (ENVELOPE") != std::string::npos);
    CHECK(out.find("h OK FETCH completed") != std::string::npos);
}
