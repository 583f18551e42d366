#include <catch2/catch.hpp>

#include <map>

#include "protocol/imap/server.h"
#include "tests/unit/protocol/imap/fake_backend.h"

using namespace popbridge::protocol::imap;
using popbridge::protocol::imap::test::FakeBackend;

namespace {

constexpr const char* kCaps =
    "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN "
    "LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH CONDSTORE QRESYNC";
const std::string kPreAuthCaps = std::string(kCaps) + " AUTH=PLAIN";

struct Fixture {
    FakeBackend backend;
    std::unique_ptr<Session> session;
    explicit Fixture(SessionConfig cfg = plaintext()) {
        session = std::make_unique<Session>(backend, cfg);
        CHECK(session->take_output() ==
              std::string("* OK [CAPABILITY ") + kPreAuthCaps + "] popbridge ready\r\n");
    }
    static SessionConfig plaintext() {
        SessionConfig c;
        c.allow_plaintext_login = true;
        return c;
    }
    // C: line(s) -> S: everything the session answers.
    std::string c(std::string_view in) {
        session->feed(in);
        return session->take_output();
    }
    void login() { REQUIRE(c("L LOGIN alice secret\r\n").substr(0, 5) == "L OK "); }
    void select() {
        login();
        REQUIRE(c("S SELECT INBOX\r\n").find("S OK [READ-WRITE]") != std::string::npos);
    }
};

} // namespace

TEST_CASE("server: greeting, CAPABILITY, NOOP, LOGOUT", "[imap][server]") {
    Fixture f;
    CHECK(f.c("a CAPABILITY\r\n") ==
          std::string("* CAPABILITY ") + kPreAuthCaps + "\r\na OK CAPABILITY completed\r\n");
    CHECK(f.c("b NOOP\r\n") == "b OK NOOP completed\r\n");
    CHECK(f.c("c ID (\"name\" \"test\")\r\n") ==
          "* ID (\"name\" \"popbridge\")\r\nc OK ID completed\r\n");
    CHECK_FALSE(f.session->wants_close());
    CHECK(f.c("d LOGOUT\r\n") == "* BYE Logging out\r\nd OK LOGOUT completed\r\n");
    CHECK(f.session->wants_close());
    CHECK(f.c("e NOOP\r\n").empty());
}

TEST_CASE("server: LOGINDISABLED without TLS", "[imap][server]") {
    FakeBackend backend;
    Session s(backend, SessionConfig{});
    CHECK(s.take_output() ==
          std::string("* OK [CAPABILITY ") + kCaps + " LOGINDISABLED] popbridge ready\r\n");
    s.feed(std::string_view("a LOGIN alice secret\r\n"));
    CHECK(s.take_output() == "a NO [PRIVACYREQUIRED] LOGIN is disabled without TLS\r\n");
    CHECK(backend.calls.empty());
    s.set_tls_active(true);
    CHECK(s.capability_string() == kPreAuthCaps);
    s.feed(std::string_view("b LOGIN alice secret\r\n"));
    CHECK(s.take_output() == std::string("b OK [CAPABILITY ") + kCaps + "] Logged in\r\n");
}

TEST_CASE("server: LOGIN with synchronizing literals and LITERAL+", "[imap][server]") {
    Fixture f;
    CHECK(f.c("a LOGIN {5}\r\n") == "+ Ready for literal data\r\n");
    CHECK(f.c("alice {6}\r\n") == "+ Ready for literal data\r\n");
    CHECK(f.c("secret\r\n") == std::string("a OK [CAPABILITY ") + kCaps + "] Logged in\r\n");
    CHECK(std::holds_alternative<Authenticated>(f.session->state()));

    Fixture g;
    CHECK(g.c("a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n") ==
          std::string("a OK [CAPABILITY ") + kCaps + "] Logged in\r\n");
}

TEST_CASE("server: failed LOGIN and state rules", "[imap][server]") {
    Fixture f;
    CHECK(f.c("a LOGIN alice wrong\r\n") ==
          "a NO [AUTHENTICATIONFAILED] Authentication failed\r\n");
    CHECK(std::holds_alternative<NotAuthenticated>(f.session->state()));
    CHECK(f.c("b SELECT INBOX\r\n") == "b BAD SELECT not allowed now\r\n");
    f.login();
    CHECK(f.c("c LOGIN alice secret\r\n") == "c BAD LOGIN not allowed now\r\n");
    CHECK(f.c("d FETCH 1 FLAGS\r\n") == "d BAD FETCH not allowed now\r\n");
    CHECK(f.c("e UNSELECT\r\n") == "e BAD UNSELECT not allowed now\r\n");
}

TEST_CASE("server: asynchronous LOGIN pauses pipelined commands", "[imap][server]") {
    Fixture f;
    f.backend.async_login = true;
    int notified = 0;
    f.session->set_output_callback([&] { ++notified; });
    CHECK(f.c("a LOGIN alice secret\r\nb SELECT INBOX\r\nc NOOP\r\n").empty());
    CHECK(f.session->input_blocked());
    CHECK(f.backend.calls == std::vector<std::string>{"login alice secret"});
    f.backend.pending_login(true);
    CHECK(notified == 1);
    std::string out = f.session->take_output();
    CHECK(out.substr(0, out.find("\r\n")) ==
          std::string("a OK [CAPABILITY ") + kCaps + "] Logged in");
    CHECK(out.find("b OK [READ-WRITE] SELECT completed\r\nc OK NOOP completed\r\n") !=
          std::string::npos);
    CHECK_FALSE(f.session->input_blocked());
}

TEST_CASE("server: asynchronous LOGIN alone still announces its reply", "[imap][server]") {
    // Regression: the completion wrote the tagged OK before after_async() looked at the
    // output size, so the proxy was never told and the client waited forever.
    Fixture f;
    f.backend.async_login = true;
    int notified = 0;
    f.session->set_output_callback([&] { ++notified; });
    CHECK(f.c("a LOGIN alice secret\r\n").empty());
    f.backend.pending_login(true);
    CHECK(notified == 1);
    CHECK(f.session->take_output().starts_with("a OK [CAPABILITY "));
}

TEST_CASE("server: a callback after the session is gone is ignored", "[imap][server]") {
    FakeBackend backend;
    backend.async_login = true;
    {
        Session s(backend, Fixture::plaintext());
        s.feed(std::string_view("a LOGIN alice secret\r\n"));
    }
    REQUIRE(backend.pending_login);
    backend.pending_login(true); // must not touch freed memory (ASan would catch it)
    CHECK(backend.calls.size() == 1);
}

TEST_CASE("server: SELECT and EXAMINE responses", "[imap][server]") {
    Fixture f;
    f.login();
    CHECK(f.c("s SELECT inbox\r\n") ==
          "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n"
          "* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] Flags "
          "permitted\r\n"
          "* 3 EXISTS\r\n"
          "* 0 RECENT\r\n"
          "* OK [UNSEEN 2] First unseen\r\n"
          "* OK [UIDVALIDITY 1700000000] UIDs valid\r\n"
          "* OK [UIDNEXT 12] Predicted next UID\r\n"
          "s OK [READ-WRITE] SELECT completed\r\n");
    CHECK(std::holds_alternative<Selected>(f.session->state()));
    std::string ex = f.c("e EXAMINE Empty\r\n");
    CHECK(ex.substr(0, ex.find("\r\n") + 2) == "* OK [CLOSED] Previous mailbox closed\r\n");
    CHECK(ex.find("* OK [PERMANENTFLAGS ()] No permanent flags permitted\r\n* 0 EXISTS\r\n") !=
          std::string::npos);
    CHECK(ex.find("e OK [READ-ONLY] EXAMINE completed\r\n") != std::string::npos);
    CHECK(f.c("n SELECT Nope\r\n") ==
          "* OK [CLOSED] Previous mailbox closed\r\nn NO [NONEXISTENT] No such mailbox\r\n");
    CHECK(std::holds_alternative<Authenticated>(f.session->state()));
    CHECK(f.c("u UNSELECT\r\n") == "u BAD UNSELECT not allowed now\r\n");
}

TEST_CASE("server: FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)", "[imap][server]") {
    Fixture f;
    f.select();
    CHECK(f.c("f FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)\r\n") ==
          "* 1 FETCH (FLAGS (\\Seen) UID 3 RFC822.SIZE 44 INTERNALDATE \"29-Feb-2024 13:34:59 "
          "+0100\")\r\n"
          "* 2 FETCH (FLAGS () UID 7 RFC822.SIZE 26 INTERNALDATE \"29-Feb-2024 13:35:03 "
          "+0100\")\r\n"
          "* 3 FETCH (FLAGS (\\Flagged) UID 11 RFC822.SIZE 44 INTERNALDATE \"29-Feb-2024 "
          "13:35:07 +0100\")\r\n"
          "f OK FETCH completed\r\n");
    CHECK(f.c("g FETCH 2,3 UID\r\n") ==
          "* 2 FETCH (UID 7)\r\n* 3 FETCH (UID 11)\r\ng OK FETCH completed\r\n");
    CHECK(f.c("h FETCH 4 UID\r\n") == "h BAD Invalid message sequence number\r\n");
    CHECK(f.c("i FETCH 1 ENVELOPE\r\n") ==
          "* 1 FETCH (ENVELOPE (NIL \"one\" ((NIL NIL \"a\" \"example.org\")) ((NIL NIL \"a\" "
          "\"example.org\")) ((NIL NIL \"a\" \"example.org\")) NIL NIL NIL NIL NIL))\r\n"
          "i OK FETCH completed\r\n");
    CHECK(f.c("j FETCH 1 FAST\r\n") ==
          "* 1 FETCH (FLAGS (\\Seen) INTERNALDATE \"29-Feb-2024 13:34:59 +0100\" RFC822.SIZE "
          "44)\r\nj OK FETCH completed\r\n");
}

TEST_CASE("server: UID FETCH BODY.PEEK[] leaves flags alone", "[imap][server]") {
    Fixture f;
    f.select();
    f.backend.calls.clear();
    CHECK(f.c("u UID FETCH 7:* BODY.PEEK[]\r\n") ==
          "* 2 FETCH (UID 7 BODY[] {26}\r\nSubject: two\r\n\r\nBody two\r\n)\r\n"
          "* 3 FETCH (UID 11 BODY[] {44}\r\nSubject: three\r\nTo: b@example.org\r\n\r\nThree\r\n)"
          "\r\nu OK UID FETCH completed\r\n");
    CHECK(f.backend.calls == std::vector<std::string>{"read 7", "read 11"});
    // UIDs not in the mailbox are simply absent.
    CHECK(f.c("v UID FETCH 4:6,100 UID\r\n") == "v OK UID FETCH completed\r\n");
    // Sections and partials on the top level.
    CHECK(f.c("w UID FETCH 3 (BODY.PEEK[HEADER.FIELDS (FROM)] BODY.PEEK[TEXT] "
              "BODY.PEEK[]<9.3>)\r\n") ==
          "* 1 FETCH (UID 3 BODY[HEADER.FIELDS (FROM)] {23}\r\nFrom: a@example.org\r\n\r\n "
          "BODY[TEXT] {7}\r\nHello\r\n BODY[]<9> {3}\r\none)\r\nw OK UID FETCH completed\r\n");
}

TEST_CASE("server: RFC822 sets \\Seen durably and reports FLAGS", "[imap][server]") {
    Fixture f;
    f.select();
    f.backend.async_store = true;
    f.backend.calls.clear();
    // Message 2 (uid 7) is unseen: the store is asked first, the response waits for it.
    CHECK(f.c("r FETCH 1:2 RFC822\r\nn NOOP\r\n").empty());
    CHECK(f.backend.calls == std::vector<std::string>{"store Add 1 7"});
    f.backend.pending_store({});
    CHECK(f.session->take_output() ==
          "* 1 FETCH (RFC822 {44}\r\nSubject: one\r\nFrom: a@example.org\r\n\r\nHello\r\n)\r\n"
          "* 2 FETCH (RFC822 {26}\r\nSubject: two\r\n\r\nBody two\r\n FLAGS (\\Seen))\r\n"
          "r OK FETCH completed\r\nn OK NOOP completed\r\n");
    // Now seen: no second store, no FLAGS.
    f.backend.calls.clear();
    CHECK(f.c("s FETCH 2 BODY[TEXT]\r\n") ==
          "* 2 FETCH (BODY[TEXT] {10}\r\nBody two\r\n)\r\ns OK FETCH completed\r\n");
    CHECK(f.backend.calls == std::vector<std::string>{"read 7"});
}

TEST_CASE("server: implicit \\Seen failure is reported", "[imap][server]") {
    Fixture f;
    f.select();
    f.backend.async_store = true;
    CHECK(f.c("r FETCH 2 BODY[]\r\n").empty());
    f.backend.pending_store(make_error(StorageErrc::Unavailable, "Disk trouble"));
    CHECK(f.session->take_output() == "r NO [UNAVAILABLE] Disk trouble\r\n");
}

TEST_CASE("server: EXAMINE never sets \\Seen", "[imap][server]") {
    Fixture f;
    f.login();
    f.c("e EXAMINE INBOX\r\n");
    f.backend.calls.clear();
    CHECK(
        f.c("r FETCH 2 BODY[]\r\n") ==
        "* 2 FETCH (BODY[] {26}\r\nSubject: two\r\n\r\nBody two\r\n)\r\nr OK FETCH completed\r\n");
    CHECK(f.backend.calls == std::vector<std::string>{"read 7"});
}

TEST_CASE("server: bad commands count to BYE", "[imap][server]") {
    Fixture f;
    CHECK(f.c("a FOO\r\n") == "a BAD Unknown command FOO\r\n");
    CHECK(f.c("b NOOP extra\r\n") == "b BAD Unexpected extra arguments\r\n");
    CHECK_FALSE(f.session->wants_close());
    CHECK(f.c("\x01\x02\r\n") == "* BAD Invalid tag\r\n* BYE Too many invalid commands\r\n");
    CHECK(f.session->wants_close());

    Fixture g;
    g.login();
    for (int i = 0; i < 19; ++i)
        CHECK(g.c("x BOGUS\r\n") == "x BAD Unknown command BOGUS\r\n");
    CHECK_FALSE(g.session->wants_close());
    CHECK(g.c("x BOGUS\r\n") ==
          "x BAD Unknown command BOGUS\r\n* BYE Too many invalid commands\r\n");
    CHECK(g.session->wants_close());
}

TEST_CASE("server: oversize literal refused before allocation, then resync", "[imap][server]") {
    Fixture f;
    CHECK(f.c("a LOGIN {9000}\r\n") == "a BAD [TOOBIG] Literal too big\r\n");
    // The client got no "+", so the next line is a command again.
    CHECK(f.c("b NOOP\r\n") == "b OK NOOP completed\r\n");
    // LITERAL+ over the limit: its bytes are discarded, not executed.
    std::string data(9000, 'x');
    data.replace(100, 12, "\r\nc LOGOUT\r\n");
    CHECK(f.c("d LOGIN {9000+}\r\n" + data + " pw\r\ne NOOP\r\n") ==
          "d BAD [TOOBIG] Literal too big\r\ne OK NOOP completed\r\n");
    CHECK(f.backend.calls.empty());
}

TEST_CASE("server: literal limits grow after login", "[imap][server]") {
    Fixture f;
    f.select();
    CHECK(f.c("a UID FETCH 3 (UID BODY.PEEK[HEADER.FIELDS ({7}\r\n") ==
          "+ Ready for literal data\r\n");
    CHECK(f.c("Subject)])\r\n") ==
          "* 1 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: one\r\n\r\n)\r\n"
          "a OK UID FETCH completed\r\n");
    // 10 KiB literal would be refused before login but is fine now.
    std::string pw(10 * 1024, 'p');
    CHECK(f.c("b ID (\"x\" {10240}\r\n") == "+ Ready for literal data\r\n");
    CHECK(f.c(pw + ")\r\n") == "b BAD ID parameter too long\r\n");
}

TEST_CASE("server: big FETCH is produced in bounded batches", "[imap][server]") {
    SessionConfig cfg = Fixture::plaintext();
    cfg.output_high_water = 200;
    FakeBackend backend;
    backend.inbox.messages.clear();
    backend.bodies.clear();
    for (std::uint32_t uid = 1; uid <= 100; ++uid)
        backend.add(uid, "Subject: x\r\n\r\nbody\r\n", kFlagSeen);
    Session s(backend, cfg);
    s.take_output();
    s.feed(std::string_view("l LOGIN alice secret\r\ns SELECT INBOX\r\n"));
    s.take_output();
    s.feed(std::string_view("f FETCH 1:* (UID BODY.PEEK[])\r\nn NOOP\r\n"));
    std::string all;
    int rounds = 0;
    while (true) {
        std::string out = s.take_output();
        CHECK(out.size() < 200 + 100); // one message beyond the high-water mark at most
        all += out;
        if (!s.input_blocked() && out.find("n OK") != std::string::npos)
            break;
        REQUIRE(++rounds < 1000);
        s.pump();
    }
    CHECK(rounds > 10);
    CHECK(all.find("* 100 FETCH (UID 100 BODY[] {20}") != std::string::npos);
    CHECK(all.find("f OK FETCH completed\r\nn OK NOOP completed\r\n") != std::string::npos);
}

TEST_CASE("server: changes from other sessions flush at safe points", "[imap][server]") {
    Fixture f;
    f.select();
    MessageMeta m;
    m.uid = 20;
    m.size = 10;
    f.session->on_message_added(m);
    f.session->on_flags_changed(7, kFlagSeen | kFlagAnswered, {"$Label1"}, 30);
    f.session->on_flags_changed(3, kFlagSeen, {}, 31); // unchanged: nothing sent
    f.session->on_expunged(3);
    // Non-UID FETCH: no EXPUNGE at its completion; EXISTS and FETCH flags are fine.
    CHECK(f.c("a FETCH 1 UID\r\n") ==
          "* 1 FETCH (UID 3)\r\n* 4 EXISTS\r\n"
          "* 2 FETCH (UID 7 FLAGS (\\Seen \\Answered $Label1))\r\na OK FETCH completed\r\n");
    CHECK(f.c("b NOOP\r\n") == "* 1 EXPUNGE\r\nb OK NOOP completed\r\n");
    CHECK(f.c("c FETCH 3 UID\r\n") == "* 3 FETCH (UID 20)\r\nc OK FETCH completed\r\n");
    // Expunge of a message the client has not been told about yet: EXISTS comes first.
    m.uid = 21;
    f.session->on_message_added(m);
    f.session->on_expunged(21);
    CHECK(f.c("d UID FETCH 1 UID\r\n") ==
          "* 4 EXISTS\r\n* 4 EXPUNGE\r\nd OK UID FETCH completed\r\n");
}
