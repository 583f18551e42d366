// FETCH and SEARCH with a backend that answers message reads later (as the thread pool
// does): responses identical to the synchronous ones, in order, pipelined commands wait,
// changes from elsewhere still go out only at safe points, and a session destroyed while a
// read is pending is never touched.
#include <catch2/catch.hpp>

#include <deque>

#include "protocol/imap/server.h"
#include "tests/unit/protocol/imap/fake_backend.h"

using namespace popbridge::protocol::imap;
using popbridge::protocol::imap::test::FakeBackend;
using popbridge::protocol::imap::test::FakeMailbox;

namespace {

// FakeBackend whose message reads complete only when the test runs them.
class AsyncBackend : public FakeBackend {
public:
    std::deque<std::function<void()>> queue;
    int fail_source_reads_after = -1; // >= 0: that many source reads succeed, then errors

    // Completes what is queued now (not what those completions queue in turn).
    std::size_t run_all() {
        std::size_t n = queue.size();
        for (std::size_t i = 0; i < n; ++i) {
            auto f = std::move(queue.front());
            queue.pop_front();
            f();
        }
        return n;
    }

    void read_message_async(std::uint32_t uid,
                            std::function<void(Result<std::string>)> done) override {
        queue.push_back([this, uid, done] { done(read_message(uid)); });
    }
    void message_structure_async(
        std::uint32_t uid, std::shared_ptr<const std::string> loaded,
        std::function<void(Result<std::shared_ptr<const MessageStructure>>)> done) override {
        queue.push_back([this, uid, loaded, done] { done(message_structure(uid, loaded.get())); });
    }

    class Source : public MessageSource {
    public:
        Source(AsyncBackend& b, std::string bytes) : b_(b), bytes_(std::move(bytes)) {}
        std::uint64_t size() const override { return bytes_.size(); }
        void read(std::uint64_t offset, std::size_t max,
                  std::function<void(Result<std::string>)> done) override {
            b_.calls.push_back("chunk " + std::to_string(offset) + " " + std::to_string(max));
            bool fail = b_.fail_source_reads_after == 0;
            if (b_.fail_source_reads_after > 0)
                --b_.fail_source_reads_after;
            std::string piece = bytes_.substr(static_cast<std::size_t>(offset), max);
            b_.queue.push_back([done, piece, fail] {
                if (fail)
                    done(make_error(StorageErrc::Unavailable, "disk error"));
                else
                    done(piece);
            });
        }

    private:
        AsyncBackend& b_;
        std::string bytes_;
    };
    void open_message(std::uint32_t uid,
                      std::function<void(Result<std::shared_ptr<MessageSource>>)> done) override {
        calls.push_back("open " + std::to_string(uid));
        queue.push_back([this, uid, done] {
            FakeMailbox* box = current();
            auto it = box ? box->bodies.find(uid) : bodies.end();
            if (box == nullptr || it == box->bodies.end())
                done(make_error(StorageErrc::Expunged, "gone"));
            else
                done(std::shared_ptr<MessageSource>(std::make_shared<Source>(*this, it->second)));
        });
    }
    void scan_messages(std::vector<std::uint32_t> uids, ScanTest test,
                       std::function<void(std::vector<bool>)> done) override {
        calls.push_back("scan " + std::to_string(uids.size()));
        queue.push_back([this, uids, test, done]() mutable {
            Backend::scan_messages(std::move(uids), std::move(test), std::move(done));
        });
    }
};

SessionConfig config(std::uint64_t stream_min = 1u << 30, std::size_t chunk = 128 * 1024) {
    SessionConfig c;
    c.allow_plaintext_login = true;
    c.stream_min = stream_min;
    c.stream_chunk = chunk;
    return c;
}

// Adds large-ish messages with MIME parts to the fake INBOX (uids 12, 13).
void add_mime(FakeBackend& b) {
    std::string part(3000, 'x');
    for (std::size_t i = 0; i < part.size(); i += 70)
        part[i] = '\n';
    b.add(12,
          "Subject: mime\r\nFrom: c@example.org\r\nMIME-Version: 1.0\r\n"
          "Content-Type: multipart/mixed; boundary=b1\r\n\r\npre\r\n--b1\r\n"
          "Content-Type: text/plain\r\n\r\nfirst part zeppelin\r\n--b1\r\n"
          "Content-Type: application/octet-stream\r\n\r\n" +
              part + "\r\n--b1--\r\n",
          0);
    b.add(13, "Subject: big\r\n\r\n" + std::string(5000, 'y') + "\r\n", kFlagSeen);
    b.inbox.uid_next = 14;
}

// Feeds `in`, then completes reads until the session has nothing pending; returns the output.
std::string drive(Session& s, AsyncBackend& b, std::string_view in) {
    s.feed(in);
    std::string out = s.take_output();
    for (int guard = 0; guard < 1000000; ++guard) {
        bool ran = b.run_all() > 0;
        s.pump();
        std::string more = s.take_output();
        if (!ran && more.empty() && b.queue.empty())
            break;
        out += more;
    }
    return out;
}

std::string sync_run(std::string_view in) {
    FakeBackend b;
    add_mime(b);
    Session s(b, config());
    s.take_output();
    std::string out;
    s.feed(in);
    out += s.take_output();
    return out;
}

const char* kFetchScript =
    "L LOGIN alice secret\r\n"
    "S SELECT INBOX\r\n"
    "a FETCH 1:* (FLAGS BODY.PEEK[] ENVELOPE RFC822.SIZE)\r\n"
    "b UID FETCH 1:* (BODY.PEEK[HEADER] BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[]<5.40>)\r\n"
    "c FETCH 4:5 (BODY.PEEK[]<10.3000> UID BODY BODY.PEEK[2.MIME])\r\n"
    "d FETCH 2 BODY[]\r\n"
    "e SEARCH TEXT zeppelin\r\n"
    "f UID SEARCH RETURN (MIN COUNT) OR BODY part SUBJECT two\r\n"
    "g SEARCH NOT TEXT nothing-here FLAGGED\r\n"
    "h NOOP\r\n";

} // namespace

TEST_CASE("async reads: responses identical to synchronous ones", "[imap][async]") {
    std::string expected = sync_run(kFetchScript);
    REQUIRE(expected.find("h OK") != std::string::npos);
    REQUIRE(expected.find("e OK") != std::string::npos);
    // Whole messages read at once, streamed in various chunk sizes, tiny output buffers.
    for (std::uint64_t stream_min :
         {std::uint64_t(1) << 30, std::uint64_t(1), std::uint64_t(4000)}) {
        for (std::size_t chunk : {std::size_t(1), std::size_t(7), std::size_t(4096)}) {
            for (std::size_t high_water : {std::size_t(1), std::size_t(256 * 1024)}) {
                AsyncBackend b;
                add_mime(b);
                SessionConfig cfg = config(stream_min, chunk);
                cfg.output_high_water = high_water;
                Session s(b, cfg);
                s.take_output();
                CAPTURE(stream_min, chunk, high_water);
                CHECK(drive(s, b, kFetchScript) == expected);
            }
        }
    }
}

TEST_CASE("async reads: a large BODY[] is streamed in chunks, never read whole", "[imap][async]") {
    AsyncBackend b;
    add_mime(b);
    Session s(b, config(4000, 1000));
    s.take_output();
    drive(s, b, "L LOGIN alice secret\r\nS SELECT INBOX\r\n");
    b.calls.clear();
    s.feed(std::string_view("a UID FETCH 13 (BODY.PEEK[] FLAGS)\r\n"));
    CHECK(s.take_output().empty()); // nothing before the file is open
    CHECK(s.input_blocked());
    b.run_all(); // opened: the literal's header goes out at once, then the first chunk
    std::string out = s.take_output();
    CHECK(out == "* 5 FETCH (UID 13 BODY[] {5018}\r\n");
    std::size_t chunks = 0;
    while (!b.queue.empty()) {
        b.run_all();
        out += s.take_output();
        ++chunks;
    }
    CHECK(chunks == 6);
    CHECK(out.size() > 5018);
    const std::string end = "yyy\r\n FLAGS (\\Seen))\r\na OK UID FETCH completed\r\n";
    CHECK(out.substr(out.size() - end.size()) == end);
    CHECK(std::count(b.calls.begin(), b.calls.end(), "read 13") == 0);
    CHECK(b.calls.front() == "open 13");
    CHECK(b.calls.back() == "chunk 5000 18");
    CHECK_FALSE(s.input_blocked());
}

TEST_CASE("async reads: pipelined commands wait for the FETCH", "[imap][async]") {
    AsyncBackend b;
    Session s(b, config());
    s.take_output();
    drive(s, b, "L LOGIN alice secret\r\nS SELECT INBOX\r\n");
    s.feed(std::string_view("a FETCH 1:3 BODY.PEEK[TEXT]\r\nb NOOP\r\nc FETCH 2 RFC822.SIZE\r\n"));
    CHECK(s.take_output().empty());
    REQUIRE(b.queue.size() == 1);
    b.run_all();
    CHECK(s.take_output() == "* 1 FETCH (BODY[TEXT] {7}\r\nHello\r\n)\r\n");
    b.run_all();
    b.run_all();
    CHECK(s.take_output() == "* 2 FETCH (BODY[TEXT] {10}\r\nBody two\r\n)\r\n"
                             "* 3 FETCH (BODY[TEXT] {7}\r\nThree\r\n)\r\n"
                             "a OK FETCH completed\r\n"
                             "b OK NOOP completed\r\n"
                             "* 2 FETCH (RFC822.SIZE 26)\r\n"
                             "c OK FETCH completed\r\n");
}

TEST_CASE("async reads: output callback announces bytes that arrive later", "[imap][async]") {
    AsyncBackend b;
    Session s(b, config(1, 4));
    int announced = 0;
    s.set_output_callback([&] { ++announced; });
    s.take_output();
    drive(s, b, "L LOGIN alice secret\r\nS SELECT INBOX\r\n");
    announced = 0;
    s.feed(std::string_view("a FETCH 2 BODY.PEEK[]\r\n"));
    CHECK(s.take_output().empty());
    b.run_all(); // open
    CHECK(announced == 1);
    std::string out = s.take_output();
    while (!b.queue.empty()) {
        b.run_all();
        out += s.take_output();
    }
    CHECK(announced == 1 + 7); // the header, then seven chunks of 4 bytes (the last ends it)
    CHECK(out == "* 2 FETCH (BODY[] {26}\r\nSubject: two\r\n\r\nBody two\r\n)\r\n"
                 "a OK FETCH completed\r\n");
}

TEST_CASE("async reads: EXPUNGE from elsewhere waits for a safe point", "[imap][async]") {
    AsyncBackend b;
    Session s(b, config());
    s.take_output();
    drive(s, b, "L LOGIN alice secret\r\nS SELECT INBOX\r\n");
    s.feed(std::string_view("a FETCH 1:3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"));
    b.run_all();
    CHECK(s.take_output() == "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {16}\r\n"
                             "Subject: one\r\n\r\n)\r\n");
    // Another session expunges uid 7 while its read is pending: the read finds it gone, the
    // FETCH leaves it out and still ends without EXPUNGE (RFC 9051 7.4.1).
    b.bodies.erase(7);
    s.on_expunged(7);
    std::string out;
    while (!b.queue.empty()) {
        b.run_all();
        out += s.take_output();
    }
    CHECK(out == "* 3 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: three\r\n\r\n)\r\n"
                 "a OK FETCH completed\r\n");
    CHECK(drive(s, b, "b NOOP\r\n") == "* 2 EXPUNGE\r\nb OK NOOP completed\r\n");
    // IDLE: a new message pushes at once; a FETCH after DONE reads asynchronously again.
    CHECK(drive(s, b, "i IDLE\r\n") == "+ idling\r\n");
    MessageMeta m;
    m.uid = 20;
    m.size = 3;
    s.on_message_added(m);
    b.bodies[20] = "x\r\n";
    CHECK(s.take_output() == "* 3 EXISTS\r\n");
    CHECK(drive(s, b, "DONE\r\nj FETCH 3 BODY[TEXT]\r\n") ==
          "i OK IDLE terminated\r\n* 3 FETCH (BODY[TEXT] {0}\r\n FLAGS (\\Seen))\r\n"
          "j OK FETCH completed\r\n");
}

TEST_CASE("async reads: session destroyed while reads are pending", "[imap][async]") {
    for (const char* cmd :
         {"a FETCH 1:* BODY.PEEK[]\r\n", "a FETCH 1:* ENVELOPE\r\n", "a SEARCH BODY hello\r\n"}) {
        AsyncBackend b;
        auto s = std::make_unique<Session>(b, config(10, 5));
        drive(*s, b, "L LOGIN alice secret\r\nS SELECT INBOX\r\n");
        s->feed(std::string_view(cmd));
        if (std::string_view(cmd).find("BODY.PEEK") != std::string_view::npos) {
            b.run_all(); // open; a chunk read is now pending
            REQUIRE(!b.queue.empty());
        }
        REQUIRE(!b.queue.empty());
        s.reset();               // the client went away
        CHECK(b.run_all() >= 1); // late completions do nothing (ASan would see a use)
    }
}

TEST_CASE("async reads: a source that fails mid-literal closes the connection", "[imap][async]") {
    AsyncBackend b;
    add_mime(b);
    Session s(b, config(1000, 1000));
    s.take_output();
    drive(s, b, "L LOGIN alice secret\r\nS SELECT INBOX\r\n");
    b.fail_source_reads_after = 2;
    std::string out = drive(s, b, "a UID FETCH 13 BODY.PEEK[]\r\nb NOOP\r\n");
    CHECK(out.size() == std::string("* 5 FETCH (UID 13 BODY[] {5018}\r\n").size() + 2000);
    CHECK(s.wants_close());
    CHECK(out.find("a OK") == std::string::npos);
    CHECK(out.find("b OK") == std::string::npos);
}

TEST_CASE("async reads: SEARCH on content runs in the backend's scan", "[imap][async]") {
    AsyncBackend b;
    add_mime(b);
    Session s(b, config());
    s.take_output();
    drive(s, b, "L LOGIN alice secret\r\nS SELECT INBOX\r\n");
    b.calls.clear();
    // Flags only: answered at once, no scan.
    s.feed(std::string_view("a SEARCH FLAGGED\r\n"));
    CHECK(s.take_output() == "* SEARCH 3\r\na OK SEARCH completed\r\n");
    CHECK(b.calls.empty());
    s.feed(std::string_view("b SEARCH TEXT zeppelin\r\nc NOOP\r\n"));
    CHECK(s.take_output().empty());
    CHECK(s.input_blocked());
    CHECK(b.calls == std::vector<std::string>{"scan 5"});
    // A message expunged before the scan reads it is just not a hit.
    b.bodies.erase(12);
    b.run_all();
    CHECK(s.take_output() == "* SEARCH\r\nb OK SEARCH completed\r\nc OK NOOP completed\r\n");
}
