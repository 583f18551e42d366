// Byte-exact tests of the mailbox, message and extension commands against the fake backend.
// Every script is run whole and then re-fed in chunks of every size 1..64: the output must
// be the same bytes.
#include <catch2/catch.hpp>

#include "protocol/imap/server.h"
#include "tests/unit/protocol/imap/fake_backend.h"

using namespace popbridge::protocol::imap;
using popbridge::protocol::imap::test::FakeBackend;

namespace {

struct Step {
    std::string in;
    std::string out;
};

SessionConfig config() {
    SessionConfig c;
    c.allow_plaintext_login = true;
    return c;
}

// Runs the steps on a fresh session (logged in, INBOX selected when `select`), feeding each
// input in chunks of `chunk` bytes (0: whole). Returns the outputs.
std::vector<std::string> run(const std::vector<Step>& steps, std::size_t chunk, bool select,
                             FakeBackend* backend_out = nullptr, bool login = true) {
    FakeBackend local;
    FakeBackend& backend = backend_out ? *backend_out : local;
    Session s(backend, config());
    backend.session = &s;
    s.take_output();
    if (login)
        s.feed(std::string_view("L LOGIN alice secret\r\n"));
    s.take_output();
    if (select) {
        s.feed(std::string_view("S SELECT INBOX\r\n"));
        s.take_output();
    }
    std::vector<std::string> outs;
    for (const Step& st : steps) {
        std::string out;
        if (chunk == 0) {
            s.feed(std::string_view(st.in));
        } else {
            for (std::size_t i = 0; i < st.in.size(); i += chunk) {
                s.feed(std::string_view(st.in).substr(i, chunk));
                out += s.take_output();
            }
        }
        out += s.take_output();
        outs.push_back(out);
    }
    return outs;
}

void check_script(const std::vector<Step>& steps, bool select = true, bool login = true) {
    auto whole = run(steps, 0, select, nullptr, login);
    for (std::size_t i = 0; i < steps.size(); ++i) {
        INFO("input: " << steps[i].in);
        CHECK(whole[i] == steps[i].out);
    }
    for (std::size_t chunk = 1; chunk <= 64; ++chunk) {
        auto got = run(steps, chunk, select, nullptr, login);
        for (std::size_t i = 0; i < steps.size(); ++i) {
            INFO("chunk " << chunk << " input: " << steps[i].in);
            CHECK(got[i] == steps[i].out);
        }
    }
}

} // namespace

TEST_CASE("commands: LIST, LSUB, LIST-EXTENDED, LIST-STATUS", "[imap][commands]") {
    check_script(
        {
            {"a LIST \"\" \"\"\r\n", "* LIST (\\Noselect) \"/\" \"\"\r\na OK LIST completed\r\n"},
            {"b LIST \"\" *\r\n", "* LIST (\\HasNoChildren) \"/\" \"Empty\"\r\n"
                                  "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                                  "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n"
                                  "b OK LIST completed\r\n"},
            {"c CREATE Work/2026\r\n", "c OK CREATE completed\r\n"},
            {"d LIST \"\" %\r\n", "* LIST (\\HasNoChildren) \"/\" \"Empty\"\r\n"
                                  "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                                  "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n"
                                  "* LIST (\\Noselect \\HasChildren) \"/\" \"Work\"\r\n"
                                  "d OK LIST completed\r\n"},
            {"e LIST Work/ *\r\n", "* LIST (\\HasNoChildren) \"/\" \"Work/2026\"\r\n"
                                   "e OK LIST completed\r\n"},
            {"f LIST \"\" inbox\r\n", "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                                      "f OK LIST completed\r\n"},
            {"g LSUB \"\" *\r\n", "* LSUB (\\HasNoChildren) \"/\" \"INBOX\"\r\n"
                                  "* LSUB (\\HasNoChildren) \"/\" \"Sent\"\r\n"
                                  "g OK LSUB completed\r\n"},
            {"h LIST (SUBSCRIBED) \"\" * RETURN (CHILDREN)\r\n",
             "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"INBOX\"\r\n"
             "* LIST (\\HasNoChildren \\Subscribed \\Sent) \"/\" \"Sent\"\r\n"
             "h OK LIST completed\r\n"},
            {"i LIST (SPECIAL-USE) \"\" *\r\n",
             "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\ni OK LIST completed\r\n"},
            {"j LIST \"\" (INBOX Sent) RETURN (STATUS (MESSAGES UNSEEN))\r\n",
             "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n* STATUS \"INBOX\" (MESSAGES 3 UNSEEN "
             "2)\r\n"
             "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"\r\n"
             "* STATUS \"Sent\" (MESSAGES 0 UNSEEN 0)\r\nj OK LIST completed\r\n"},
            {"k LIST (BOGUS) \"\" *\r\n", "k BAD Unknown LIST selection option BOGUS\r\n"},
        },
        false);
}

TEST_CASE("commands: LIST wildcards match in linear time", "[imap][commands]") {
    FakeBackend backend;
    backend.boxes[std::string(2000, 'a')].snap.uid_validity = 9;
    Session s(backend, config());
    s.take_output();
    s.feed(std::string_view("L LOGIN alice secret\r\n"));
    s.take_output();
    // A pattern that makes a backtracking matcher take exponential time.
    std::string pattern;
    for (int i = 0; i < 200; ++i)
        pattern += "*a";
    pattern += "b";
    s.feed(std::string_view("a LIST \"\" \"" + pattern + "\"\r\n"));
    CHECK(s.take_output() == "a OK LIST completed\r\n");
}

TEST_CASE("commands: STATUS, CREATE, DELETE, RENAME, SUBSCRIBE", "[imap][commands]") {
    check_script(
        {
            {"a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT DELETED SIZE)\r\n",
             "* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 12 UIDVALIDITY 1700000000 UNSEEN 2 RECENT 0 "
             "DELETED 0 SIZE 114)\r\na OK STATUS completed\r\n"},
            {"b STATUS Nope (MESSAGES)\r\n", "b NO [NONEXISTENT] No such mailbox\r\n"},
            {"c STATUS INBOX ()\r\n", "c BAD Empty status item list\r\n"},
            {"d CREATE INBOX\r\n", "d NO [ALREADYEXISTS] INBOX always exists\r\n"},
            {"e CREATE &AMk-t&AOk-/\r\n", "e OK CREATE completed\r\n"},
            {"f CREATE Été\r\n", "f BAD Invalid character in command\r\n"},
            {"g LIST \"\" &AMk-*\r\n", "* LIST (\\HasNoChildren) \"/\" \"&AMk-t&AOk-\"\r\n"
                                       "g OK LIST completed\r\n"},
            {"h CREATE Empty\r\n", "h NO [ALREADYEXISTS] Mailbox exists\r\n"},
            {"i RENAME Empty Full\r\n", "i OK RENAME completed\r\n"},
            {"j RENAME Nope X\r\n", "j NO [NONEXISTENT] No such mailbox\r\n"},
            {"k DELETE INBOX\r\n", "k NO [CANNOT] INBOX cannot be deleted\r\n"},
            {"l DELETE Full\r\n", "l OK DELETE completed\r\n"},
            {"m SUBSCRIBE Whatever\r\n", "m OK SUBSCRIBE completed\r\n"},
            {"n UNSUBSCRIBE Whatever\r\n", "n OK UNSUBSCRIBE completed\r\n"},
            {"o CREATE a%b\r\n", "o BAD Invalid character in astring\r\n"},
            {"p DELETE INBOX\r\n", "p NO [CANNOT] INBOX cannot be deleted\r\n"},
        },
        false);
}

TEST_CASE("commands: NAMESPACE, ENABLE, IDLE", "[imap][commands]") {
    check_script({
        {"a NAMESPACE\r\n", "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\na OK NAMESPACE completed\r\n"},
        {"b ENABLE CONDSTORE X-UNKNOWN\r\n", "* ENABLED CONDSTORE\r\nb OK ENABLE completed\r\n"},
        {"c ENABLE CONDSTORE\r\n", "* ENABLED\r\nc OK ENABLE completed\r\n"},
        {"d IDLE\r\n", "+ idling\r\n"},
        {"DONE\r\n", "d OK IDLE terminated\r\n"},
        {"e IDLE\r\n", "+ idling\r\n"},
        {"nope\r\n", "e BAD Expected DONE\r\n"},
        {"f NOOP\r\n", "f OK NOOP completed\r\n"},
    });
}

TEST_CASE("commands: IDLE pushes changes at once", "[imap][commands]") {
    FakeBackend backend;
    Session s(backend, config());
    int notified = 0;
    s.set_output_callback([&] { ++notified; });
    s.feed(std::string_view("L LOGIN alice secret\r\nS SELECT INBOX\r\n"));
    s.take_output();
    s.feed(std::string_view("i IDLE\r\n"));
    CHECK(s.take_output() == "+ idling\r\n");
    CHECK(s.idling());
    CHECK(backend.idle_calls == 1);
    MessageMeta m;
    m.uid = 20;
    s.on_message_added(m);
    CHECK(notified == 1);
    CHECK(s.take_output() == "* 4 EXISTS\r\n");
    s.on_expunged(3);
    CHECK(s.take_output() == "* 1 EXPUNGE\r\n");
    s.on_flags_changed(7, kFlagSeen, {}, 50);
    CHECK(s.take_output() == "* 1 FETCH (UID 7 FLAGS (\\Seen))\r\n");
    s.feed(std::string_view("DONE\r\n"));
    CHECK(s.take_output() == "i OK IDLE terminated\r\n");
    CHECK_FALSE(s.idling());
}

TEST_CASE("commands: STORE and UID STORE", "[imap][commands]") {
    check_script({
        {"a STORE 2 +FLAGS (\\Flagged $Work)\r\n",
         "* 2 FETCH (FLAGS (\\Flagged $Work))\r\na OK STORE completed\r\n"},
        {"b STORE 1:2 -FLAGS.SILENT \\Flagged\r\n", "b OK STORE completed\r\n"},
        {"c UID STORE 11 FLAGS (\\Deleted)\r\n",
         "* 3 FETCH (UID 11 FLAGS (\\Deleted))\r\nc OK UID STORE completed\r\n"},
        {"d FETCH 1:* FLAGS\r\n", "* 1 FETCH (FLAGS (\\Seen))\r\n* 2 FETCH (FLAGS ($Work))\r\n"
                                  "* 3 FETCH (FLAGS (\\Deleted))\r\nd OK FETCH completed\r\n"},
        {"e STORE 4 +FLAGS \\Seen\r\n", "e BAD Invalid message sequence number\r\n"},
        {"f STORE 1 +FLAGS (\\Recent)\r\n", "f BAD Invalid system flag \\Recent\r\n"},
        {"g STORE 1 XFLAGS (\\Seen)\r\n", "g BAD Expected FLAGS, +FLAGS or -FLAGS\r\n"},
        {"h UID STORE 100 +FLAGS \\Seen\r\n", "h OK UID STORE completed\r\n"},
    });
}

TEST_CASE("commands: CONDSTORE STORE UNCHANGEDSINCE and FETCH MODSEQ", "[imap][commands]") {
    check_script({
        {"a FETCH 1 (MODSEQ)\r\n", "* 1 FETCH (MODSEQ (3))\r\na OK FETCH completed\r\n"},
        {"b UID STORE 3,7 (UNCHANGEDSINCE 5) +FLAGS (\\Answered)\r\n",
         "* 1 FETCH (UID 3 FLAGS (\\Seen \\Answered) MODSEQ (101))\r\n"
         "b OK [MODIFIED 7] Conditional STORE failed for some messages\r\n"},
        {"c FETCH 2 (FLAGS) (CHANGEDSINCE 6)\r\n",
         "* 2 FETCH (FLAGS () MODSEQ (7))\r\nc OK FETCH completed\r\n"},
        {"d FETCH 1:* (UID) (CHANGEDSINCE 6)\r\n",
         "* 1 FETCH (UID 3 MODSEQ (101))\r\n* 2 FETCH (UID 7 MODSEQ (7))\r\n"
         "* 3 FETCH (UID 11 MODSEQ (11))\r\nd OK FETCH completed\r\n"},
    });
}

TEST_CASE("commands: EXPUNGE, UID EXPUNGE, CLOSE", "[imap][commands]") {
    check_script({
        {"a STORE 1,3 +FLAGS.SILENT (\\Deleted)\r\n", "a OK STORE completed\r\n"},
        {"b UID EXPUNGE 11\r\n", "* 3 EXPUNGE\r\nb OK UID EXPUNGE completed\r\n"},
        {"c EXPUNGE\r\n", "* 1 EXPUNGE\r\nc OK EXPUNGE completed\r\n"},
        {"d FETCH 1:* UID\r\n", "* 1 FETCH (UID 7)\r\nd OK FETCH completed\r\n"},
        {"e STORE 1 +FLAGS.SILENT \\Deleted\r\n", "e OK STORE completed\r\n"},
        {"f CLOSE\r\n", "f OK CLOSE completed\r\n"},
        {"g FETCH 1 UID\r\n", "g BAD FETCH not allowed now\r\n"},
        {"h STATUS INBOX (MESSAGES)\r\n",
         "* STATUS \"INBOX\" (MESSAGES 0)\r\nh OK STATUS completed\r\n"},
    });
}

TEST_CASE("commands: QRESYNC gets VANISHED instead of EXPUNGE", "[imap][commands]") {
    check_script({
        {"a ENABLE QRESYNC\r\n", "* ENABLED QRESYNC CONDSTORE\r\na OK ENABLE completed\r\n"},
        {"b SELECT INBOX (QRESYNC (1700000000 5 1:20))\r\n",
         "* OK [CLOSED] Previous mailbox closed\r\n"
         "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n"
         "* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft \\*)] Flags "
         "permitted\r\n* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UNSEEN 2] First unseen\r\n"
         "* OK [UIDVALIDITY 1700000000] UIDs valid\r\n* OK [UIDNEXT 12] Predicted next UID\r\n"
         "* OK [HIGHESTMODSEQ 0] Highest\r\n"
         "* VANISHED (EARLIER) 1:2,4:6,8:10\r\n"
         "* 2 FETCH (UID 7 FLAGS () MODSEQ (7))\r\n"
         "* 3 FETCH (UID 11 FLAGS (\\Flagged) MODSEQ (11))\r\n"
         "b OK [READ-WRITE] SELECT completed\r\n"},
        {"c STORE 1 +FLAGS.SILENT (\\Deleted)\r\n",
         "* 1 FETCH (MODSEQ (101))\r\nc OK STORE completed\r\n"},
        {"d EXPUNGE\r\n", "* VANISHED 3\r\nd OK EXPUNGE completed\r\n"},
        {"e UID FETCH 1:* (FLAGS) (CHANGEDSINCE 100 VANISHED)\r\n",
         "* VANISHED (EARLIER) 1:6,8:10\r\ne OK UID FETCH completed\r\n"},
    });
}

TEST_CASE("commands: COPY, MOVE and UIDPLUS", "[imap][commands]") {
    check_script({
        {"a COPY 1:2 Empty\r\n", "a OK [COPYUID 5 3,7 1:2] COPY completed\r\n"},
        {"b UID COPY 11 Nope\r\n", "b NO [TRYCREATE] Mailbox does not exist\r\n"},
        {"c UID MOVE 7,11 Empty\r\n", "* OK [COPYUID 5 7,11 3:4] Moved\r\n* 2 EXPUNGE\r\n* 2 "
                                      "EXPUNGE\r\nc OK MOVE completed\r\n"},
        {"d UID COPY 500 Empty\r\n", "d OK COPY completed (nothing to do)\r\n"},
        {"e STATUS Empty (MESSAGES UIDNEXT)\r\n",
         "* STATUS \"Empty\" (MESSAGES 4 UIDNEXT 5)\r\ne OK STATUS completed\r\n"},
    });
}

TEST_CASE("commands: APPEND with flags, date and literals", "[imap][commands]") {
    check_script(
        {
            {"a APPEND Empty (\\Seen $X) \" 5-Mar-2026 10:00:00 +0100\" {12+}\r\nSubject: "
             "x\r\n\r\n",
             "a OK [APPENDUID 5 1] APPEND completed\r\n"},
            {"b APPEND Empty {12}\r\n", "+ Ready for literal data\r\n"},
            {"Subject: y\r\n\r\n", "b OK [APPENDUID 5 2] APPEND completed\r\n"},
            {"c APPEND Nope {1+}\r\nx\r\n", "c NO [TRYCREATE] Mailbox does not exist\r\n"},
            {"d APPEND Empty \"bad date\" {1+}\r\nx\r\n", "d BAD Invalid date-time\r\n"},
            {"e APPEND Empty (\\Recent) {1+}\r\nx\r\n", "e BAD Invalid system flag \\Recent\r\n"},
            {"f APPEND Empty\r\n", "f BAD Expected message literal\r\n"},
        },
        false);
    FakeBackend backend;
    run({{"a APPEND Empty (\\Seen) \" 5-Mar-2026 10:00:00 +0100\" {1+}\r\nx\r\n", ""}}, 0, false,
        &backend);
    backend.session = nullptr;
    // 2026-03-05 09:00:00 UTC; \Seen = 1.
    CHECK(backend.calls.back() == "append Empty 1 1772701200 1");
}

TEST_CASE("commands: SEARCH keys and ESEARCH", "[imap][commands]") {
    check_script({
        {"a SEARCH ALL\r\n", "* SEARCH 1 2 3\r\na OK SEARCH completed\r\n"},
        {"b UID SEARCH UNSEEN\r\n", "* SEARCH 7 11\r\nb OK UID SEARCH completed\r\n"},
        {"c SEARCH SUBJECT two\r\n", "* SEARCH 2\r\nc OK SEARCH completed\r\n"},
        {"d SEARCH OR FROM a@example TO b@example\r\n",
         "* SEARCH 1 3\r\nd OK SEARCH completed\r\n"},
        {"e SEARCH NOT SEEN FLAGGED\r\n", "* SEARCH 3\r\ne OK SEARCH completed\r\n"},
        {"f SEARCH BODY hello\r\n", "* SEARCH 1\r\nf OK SEARCH completed\r\n"},
        {"g SEARCH TEXT three\r\n", "* SEARCH 3\r\ng OK SEARCH completed\r\n"},
        {"h SEARCH LARGER 30 SMALLER 44\r\n", "* SEARCH\r\nh OK SEARCH completed\r\n"},
        {"i SEARCH 2:* UID 1:10\r\n", "* SEARCH 2\r\ni OK SEARCH completed\r\n"},
        {"j SEARCH SINCE 1-Feb-2024 BEFORE 1-Mar-2024\r\n",
         "* SEARCH 1 2 3\r\nj OK SEARCH completed\r\n"},
        {"k SEARCH ON 29-Feb-2024\r\n", "* SEARCH 1 2 3\r\nk OK SEARCH completed\r\n"},
        {"l SEARCH HEADER To \"\"\r\n", "* SEARCH 3\r\nl OK SEARCH completed\r\n"},
        {"m SEARCH CHARSET UTF-8 KEYWORD $x\r\n", "* SEARCH\r\nm OK SEARCH completed\r\n"},
        // RFC 3501 6.4.4: an unsupported charset is NO [BADCHARSET], not BAD.
        {"n SEARCH CHARSET KOI8-R ALL\r\n",
         "n NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"},
        {"n2 UID SEARCH CHARSET \"ISO-8859-1\" TEXT x\r\n",
         "n2 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"},
        {"n3 SEARCH CHARSET us-ascii ALL\r\n", "* SEARCH 1 2 3\r\nn3 OK SEARCH completed\r\n"},
        // The keys are still checked: a syntax error stays BAD.
        {"n4 SEARCH CHARSET KOI8-R NOSUCHKEY\r\n", "n4 BAD Unknown search key NOSUCHKEY\r\n"},
        {"o SEARCH RETURN (MIN MAX COUNT ALL) NOT DELETED\r\n",
         "* ESEARCH (TAG \"o\") MIN 1 MAX 3 ALL 1:3 COUNT 3\r\no OK SEARCH completed\r\n"},
        {"p UID SEARCH RETURN () ALL\r\n",
         "* ESEARCH (TAG \"p\") UID ALL 3,7,11\r\np OK UID SEARCH completed\r\n"},
        {"q SEARCH MODSEQ 7\r\n", "* SEARCH 2 3 (MODSEQ 11)\r\nq OK SEARCH completed\r\n"},
        {"r SEARCH BOGUS\r\n", "r BAD Unknown search key BOGUS\r\n"},
        {"s SEARCH (OR SEEN (FLAGGED)) NEW OLD\r\n", "* SEARCH\r\ns OK SEARCH completed\r\n"},
        {"t SEARCH SENTSINCE 1-Jan-2020\r\n", "* SEARCH\r\nt OK SEARCH completed\r\n"},
    });
}

TEST_CASE("commands: AUTHENTICATE PLAIN with and without SASL-IR", "[imap][commands]") {
    // "\0alice\0secret"
    std::string ir = "AGFsaWNlAHNlY3JldA==";
    check_script({{"a AUTHENTICATE PLAIN " + ir + "\r\n",
                   "a OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE "
                   "UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE "
                   "ESEARCH CONDSTORE QRESYNC] Authenticated\r\n"}},
                 false, false);
    FakeBackend backend;
    Session s(backend, config());
    s.take_output();
    s.feed(std::string_view("a AUTHENTICATE plain\r\n"));
    CHECK(s.take_output() == "+ \r\n");
    s.feed(std::string_view(ir + "\r\n"));
    CHECK(s.take_output().starts_with("a OK [CAPABILITY "));
    CHECK(backend.calls.back() == "login alice secret");

    Session t(backend, config());
    t.take_output();
    t.feed(std::string_view("b AUTHENTICATE PLAIN\r\n*\r\n"));
    CHECK(t.take_output() == "+ \r\nb BAD AUTHENTICATE cancelled\r\n");
    t.feed(std::string_view("c AUTHENTICATE PLAIN !!!!\r\n"));
    CHECK(t.take_output() == "c BAD Invalid base64\r\n");
    t.feed(std::string_view("d AUTHENTICATE CRAM-MD5\r\n"));
    CHECK(t.take_output() == "d NO [CANNOT] Unsupported mechanism\r\n");

    Session u(backend, SessionConfig{});
    u.take_output();
    u.feed(std::string_view("e AUTHENTICATE PLAIN " + ir + "\r\n"));
    CHECK(u.take_output() == "e NO [PRIVACYREQUIRED] AUTHENTICATE is disabled without TLS\r\n");
}

TEST_CASE("commands: STARTTLS discards pipelined input", "[imap][commands]") {
    FakeBackend backend;
    SessionConfig c;
    c.starttls_available = true;
    Session s(backend, c);
    CHECK(s.take_output().find(" STARTTLS LOGINDISABLED]") != std::string::npos);
    s.feed(std::string_view("a STARTTLS\r\nb LOGIN alice secret\r\n"));
    CHECK(s.take_output() == "a OK Begin TLS negotiation now\r\n");
    CHECK(s.take_starttls());
    CHECK_FALSE(s.take_starttls());
    s.set_tls_active(true);
    CHECK(backend.calls.empty()); // the injected LOGIN never ran
    s.feed(std::string_view("c CAPABILITY\r\n"));
    std::string caps = s.take_output();
    CHECK(caps.find("STARTTLS") == std::string::npos);
    CHECK(caps.find("LOGINDISABLED") == std::string::npos);
    CHECK(caps.find("AUTH=PLAIN") != std::string::npos);
    s.feed(std::string_view("d STARTTLS\r\n"));
    CHECK(s.take_output() == "d BAD STARTTLS not available\r\n");
}
