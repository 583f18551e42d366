// protocol/mime: structure, sections, ENVELOPE, BODYSTRUCTURE, encoded words, RFC 2231,
// addresses, search helpers and hostile input. Expected ENVELOPE / BODYSTRUCTURE strings were
// checked against Dovecot 2.3 (tests/integration/test_mime_differential.py).
#include <catch2/catch.hpp>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "protocol/mime/bodystructure.h"
#include "protocol/mime/encoded_word.h"
#include "protocol/mime/envelope.h"
#include "protocol/mime/header.h"
#include "protocol/mime/message.h"
#include "protocol/mime/search.h"

using namespace popbridge::protocol::mime;

namespace {

std::string crlf(std::string_view lf) {
    std::string out;
    for (char c : lf) {
        if (c == '\n')
            out += "\r\n";
        else
            out += c;
    }
    return out;
}

std::filesystem::path corpus_dir() {
    return std::filesystem::path(POPBRIDGE_SOURCE_DIR) / "tests" / "data" / "mime";
}

// A Message views its bytes, so the bytes live as long as the test binary.
const std::string& keep(std::string s) {
    static std::deque<std::string> kept;
    return kept.emplace_back(std::move(s));
}

const std::string& read_corpus(const std::string& name) {
    std::ifstream f(corpus_dir() / name, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return keep(ss.str());
}

std::optional<SectionRanges> fs(const Message& m, std::vector<std::uint32_t> path) {
    return find_section(m, path);
}

std::string section(const Message& m, std::vector<std::uint32_t> path) {
    auto r = find_section(m, path);
    return r ? std::string(r->whole.in(m.bytes)) : std::string("<none>");
}

// Every range inside the message, children inside their parent, parents before children.
void check_consistent(const Message& m) {
    REQUIRE(!m.parts.empty());
    CHECK(m.parts[0].header.begin == 0);
    CHECK(m.parts[0].body.end == m.bytes.size());
    for (std::size_t i = 0; i < m.parts.size(); ++i) {
        const Part& p = m.parts[i];
        REQUIRE(p.header.begin <= p.header.end);
        REQUIRE(p.header.end <= p.body.begin);
        REQUIRE(p.body.begin <= p.body.end);
        REQUIRE(p.body.end <= m.bytes.size());
        if (p.kind == PartKind::Message)
            REQUIRE(p.children.size() == 1);
        for (std::uint32_t c : p.children) {
            REQUIRE(c > i);
            REQUIRE(m.parts[c].parent == i);
            REQUIRE(m.parts[c].header.begin >= p.body.begin);
            REQUIRE(m.parts[c].body.end <= p.body.end);
        }
    }
}

int paren_balance(std::string_view s) {
    // Ignores quoted strings and literals; returns the final depth (or -1 on underflow).
    int depth = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '"') {
            for (++i; i < s.size() && s[i] != '"'; ++i)
                if (s[i] == '\\')
                    ++i;
        } else if (c == '{') {
            std::size_t close = s.find('}', i);
            std::size_t n = std::stoul(std::string(s.substr(i + 1, close - i - 1)));
            i = close + 2 + n;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')') {
            if (--depth < 0)
                return -1;
        }
    }
    return depth;
}

double ms_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

TEST_CASE("single-part message: header, text and part 1", "[mime]") {
    std::string msg = crlf("From: a@b.example\nSubject: hi\n\nline 1\nline 2\n");
    Message m = parse_message(msg);
    check_consistent(m);
    REQUIRE(m.parts.size() == 1);
    CHECK(m.root().header.in(msg) == crlf("From: a@b.example\nSubject: hi\n\n"));
    CHECK(m.root().body.in(msg) == crlf("line 1\nline 2\n"));
    CHECK(m.root().body_lines == 2);
    CHECK(section(m, {1}) == crlf("line 1\nline 2\n"));
    CHECK(section(m, {2}) == "<none>");
    CHECK(section(m, {1, 1}) == "<none>");
    auto top = fs(m, {});
    REQUIRE(top);
    CHECK(top->whole.size() == msg.size());
    CHECK(bodystructure(m, true) ==
          R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 16 2 NIL NIL NIL NIL))");
    CHECK(bodystructure(m, false) ==
          R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 16 2))");
}

TEST_CASE("multipart with message/rfc822: section byte ranges", "[mime]") {
    const std::string& msg = read_corpus("07-message-rfc822.eml");
    REQUIRE(!msg.empty());
    Message m = parse_message(msg);
    check_consistent(m);
    CHECK(section(m, {1}) == "See below.");
    auto two = fs(m, {2});
    REQUIRE(two);
    CHECK(two->mime.in(msg) ==
          crlf("Content-Type: message/rfc822\nContent-Description: forwarded message\n\n"));
    REQUIRE(two->header);
    CHECK(two->header->in(msg).starts_with("From: Carol"));
    CHECK(two->header->in(msg).ends_with("boundary=\"inner\"\r\n\r\n"));
    // After a close delimiter the line break belongs to the part (as in Dovecot).
    CHECK(two->text->in(msg).ends_with("--inner--\r\n"));
    CHECK(two->whole.size() == 350);
    CHECK(section(m, {2, 1}) == "original plain");
    CHECK(section(m, {2, 2}) == "<b>original</b>");
    CHECK(section(m, {2, 3}) == "<none>");
    CHECK(section(m, {3}) == "<none>");
    CHECK(section(m, {0}) == "<none>");
    CHECK(
        bodystructure(m, true) ==
        R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL))"
        R"(("message" "rfc822" NIL NIL "forwarded message" "7bit" 350 ("Sun, 1 Mar 2026 09:00:00 +0000" "the original" (("Carol" NIL "carol" "example.com")) (("Carol" NIL "carol" "example.com")) (("Carol" NIL "carol" "example.com")) (("Alice" NIL "alice" "example.org")) NIL NIL NIL "<orig@example.com>") )"
        R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 0 NIL NIL NIL NIL))"
        R"(("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 15 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL) 17 NIL NIL NIL NIL))"
        R"( "mixed" ("boundary" "fwd") NIL NIL NIL))");
}

TEST_CASE("message/rfc822 at the top level: part 1 is the inner message", "[mime]") {
    const std::string& msg = read_corpus("26-nested-rfc822-twice.eml");
    Message m = parse_message(msg);
    check_consistent(m);
    auto one = fs(m, {1});
    REQUIRE(one);
    REQUIRE(one->header);
    CHECK(one->header->in(msg).starts_with("From: level1@example.org"));
    auto deep = fs(m, {1, 1});
    REQUIRE(deep);
    REQUIRE(deep->header);
    CHECK(deep->header->in(msg).starts_with("From: level2@example.org"));
    CHECK(section(m, {1, 1, 1}) == "deepest body\r\n");
    // The top-level ENVELOPE is the outer message's, not the encapsulated one's.
    CHECK(envelope(m).find("message in message in message") != std::string::npos);
}

TEST_CASE("empty parts and a header ended by a boundary", "[mime]") {
    const std::string& msg = read_corpus("30-empty-parts.eml");
    Message m = parse_message(msg);
    check_consistent(m);
    auto p1 = fs(m, {1});
    auto p2 = fs(m, {2});
    REQUIRE(p1);
    REQUIRE(p2);
    CHECK(p1->mime.in(msg).empty()); // the only line break belongs to the boundary
    CHECK(p2->mime.in(msg) == "Content-Type: text/plain\r\n");
    CHECK(p2->whole.empty());
}

TEST_CASE("missing and broken boundaries", "[mime]") {
    SECTION("no close delimiter") {
        Message m = parse_message(read_corpus("20-missing-final-boundary.eml"));
        check_consistent(m);
        CHECK(section(m, {2}) == crlf("second, and the message just ends\n"));
    }
    SECTION("boundary parameter but no boundary line: one empty part, as Dovecot") {
        Message m = parse_message(read_corpus("21-no-boundary-lines.eml"));
        check_consistent(m);
        CHECK(bodystructure(m, false) ==
              R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed"))");
    }
    SECTION("multipart without boundary parameter") {
        Message m = parse_message(read_corpus("22-multipart-without-boundary-param.eml"));
        check_consistent(m);
        CHECK(section(m, {1}) == "<none>");
        CHECK(
            bodystructure(m, true) ==
            R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL))");
    }
    SECTION("inner boundary that the outer one prefixes") {
        const std::string& msg = read_corpus("31-boundary-prefix.eml");
        Message m = parse_message(msg);
        check_consistent(m);
        CHECK(section(m, {1, 1}) == "inner one");
        CHECK(section(m, {2}) == "outer two");
    }
    SECTION("bare LF line ends") {
        std::string msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: "
                          "text/plain\n\nline one\nline two\n--b--\n";
        Message m = parse_message(msg);
        check_consistent(m);
        CHECK(section(m, {1}) == "line one\nline two");
        CHECK(m.parts[1].body_lines == 1);
    }
}

TEST_CASE("ENVELOPE: groups, comments, quoted local parts, routes", "[mime]") {
    CHECK(
        envelope(parse_message(read_corpus("15-group-members.eml"))) ==
        R"(("Wed, 4 Mar 2026 08:00:00 +0000" "group with members" ((NIL NIL "boss" "example.org")) ((NIL NIL "boss" "example.org")) ((NIL NIL "boss" "example.org")) ((NIL NIL "Team" NIL)(NIL NIL "ann" "example.org")("Bob B." NIL "bob" "example.org")(NIL NIL NIL NIL)(NIL NIL "outsider" "example.com")) ((NIL NIL "empty-group" NIL)(NIL NIL NIL NIL)) NIL NIL NIL))");
    CHECK(
        envelope(parse_message(keep(crlf("To: undisclosed-recipients:;\n\n")))) ==
        R"((NIL NIL NIL NIL NIL ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL))");

    struct Case {
        std::string in;
        std::string out;
    };
    std::vector<Case> cases = {
        {"joe@example.org (Joe Q. Public)", R"((("Joe Q. Public" NIL "joe" "example.org")))"},
        {"\"Doe, John\" <john.doe@example.com>, (c) mary@example.net",
         R"((("Doe, John" NIL "john.doe" "example.com")(NIL NIL "mary" "example.net")))"},
        {"\"john smith\"@example.com", R"(((NIL NIL "john smith" "example.com")))"},
        {"Pete <@r1.example,@r2.example:pete@example.com>",
         R"((("Pete" "@r1.example,@r2.example" "pete" "example.com")))"},
        {"Alice alice@example.org", R"((("Alice alice" NIL "MISSING_MAILBOX" "MISSING_DOMAIN")))"},
        {"just-a-word", R"(((NIL NIL "just-a-word" "MISSING_DOMAIN")))"},
        {"<>", "NIL"},
        {"=?utf-8?q?J=C3=BCrgen?= <j@x.example>",
         R"((("=?utf-8?q?J=C3=BCrgen?=" NIL "j" "x.example")))"},
        {"Jörg <j@x.example>", "((\"{5}\r\nJörg\" NIL \"j\" \"x.example\"))"},
    };
    for (const auto& c : cases) {
        INFO(c.in);
        std::string got = imap_address_list(parse_address_list(c.in, 100));
        if (c.in.starts_with("Jörg"))
            CHECK(got == "(({5}\r\nJörg NIL \"j\" \"x.example\"))");
        else
            CHECK(got == c.out);
    }
}

TEST_CASE("ENVELOPE: sender and reply-to default to from; folded values", "[mime]") {
    Message m = parse_message(read_corpus("24-folded-headers.eml"));
    CHECK(
        envelope(m) ==
        R"(("Thu, 5 Mar 2026 10:00:00 +0000" "a subject that is folded over three lines" (("Folded Name" NIL "folded" "example.org")) (("Folded Name" NIL "folded" "example.org")) (("Folded Name" NIL "folded" "example.org")) ((NIL NIL "a" "example.org")(NIL NIL "b" "example.org")) NIL NIL NIL " <24@example.org>"))");
    Message none = parse_message(read_corpus("13-missing-headers.eml"));
    CHECK(envelope(none) == "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

TEST_CASE("imap_string: quoted or literal", "[mime]") {
    CHECK(imap_string("a \"b\" \\c") == R"("a \"b\" \\c")");
    CHECK(imap_string("", true) == "NIL");
    CHECK(imap_string("") == "\"\"");
    CHECK(imap_string("x\r\ny") == "{4}\r\nx\r\ny");
    CHECK(imap_string("Grüße") == "{7}\r\nGrüße");
}

TEST_CASE("RFC 2047 encoded words", "[mime]") {
    CHECK(decode_encoded_words("=?iso-8859-1?q?Andr=E9?= Pirard") == "André Pirard");
    CHECK(decode_encoded_words("=?utf-8?B?SsO8cmdlbg==?=") == "Jürgen");
    CHECK(decode_encoded_words("=?utf-8?q?Gr=C3=BC=C3=9Fe?= =?utf-8?q?_aus?=") == "Grüße aus");
    CHECK(decode_encoded_words("=?windows-1252?Q?=93q=94_=80?=") == "“q” €");
    CHECK(decode_encoded_words("=?iso-8859-15?q?=A4?=") == "€");
    CHECK(decode_encoded_words("=?US-ASCII*EN?Q?Keith_Moore?=") == "Keith Moore");
    CHECK(decode_encoded_words("a =?x-unknown?q?keep?= b") == "a =?x-unknown?q?keep?= b");
    CHECK(decode_encoded_words("=?utf-8?q?bad=ZZ?=") == "=?utf-8?q?bad=ZZ?=");
    CHECK(decode_encoded_words("plain =?utf-8?q?x?=y") == "plain xy");
    CHECK(decode_encoded_words("=?=?=?") == "=?=?=?");
}

TEST_CASE("transfer decoding and charsets", "[mime]") {
    CHECK(decode_base64("SGVs\r\nbG8=") == "Hello");
    CHECK(decode_quoted_printable("Caf=E9 soft=\r\nbreak =XY end=") == "Caf\xE9 softbreak =XY end");
    CHECK(decode_body_text("Caf=E9", "Quoted-Printable", "ISO-8859-1") == "Café");
    CHECK(decode_body_text("\x80", "8bit", "cp1252") == "€");
    CHECK(decode_body_text("abc", "7bit", "koi8-r") == "abc");
    CHECK_FALSE(charset_to_utf8("x", "koi8-r"));
}

TEST_CASE("RFC 2231 parameters and BODYSTRUCTURE wire form", "[mime]") {
    auto f = parse_field_with_params(
        "application/octet-stream; name*0*=us-ascii'en'This%20is%20; name*1*=%2A%2Afun%2A%2A; "
        "name*2=\" isn't it\"; Title*=iso-8859-1''caf%E9; plain=\"q\\\"x\"",
        1000);
    CHECK(f.value == "application/octet-stream");
    REQUIRE(f.params.size() == 3);
    CHECK(f.params[0].name == "name");
    CHECK(f.params[0].value == "This is **fun** isn't it");
    CHECK(f.params[0].wire_name == "name*");
    CHECK(f.params[0].wire_value == "us-ascii'en'This%20is%20%2A%2Afun%2A%2A isn't it");
    CHECK(f.params[1].name == "title");
    CHECK(f.params[1].value == "café");
    CHECK(f.params[1].wire_name == "Title*");
    CHECK(f.params[2].value == "q\"x");
    // Limit on parameters per field.
    CHECK(parse_field_with_params("x/y; a=1; b=2; c=3", 2).params.size() == 2);

    Message m = parse_message(read_corpus("09-rfc2231-continuations.eml"));
    CHECK(
        bodystructure(m, true) ==
        R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 0 NIL NIL NIL NIL)("application" "octet-stream" ("name*" "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn't it!") NIL NIL "7bit" 4 NIL ("attachment" ("filename*" "utf-8''%C3%A4rger%20%E2%82%AC.txt")) NIL NIL) "mixed" ("boundary" "p") NIL NIL NIL))");
}

TEST_CASE("header fields: lookup, HEADER.FIELDS and .NOT exact bytes", "[mime]") {
    std::string h = crlf("From: a@b\nsubject: one\n two\nNo colon line\nX-A: 1\n\n");
    CHECK(find_field(h, "SUBJECT") == "one two");
    CHECK_FALSE(find_field(h, "Date"));
    std::vector<std::string> names = {"SUBJECT", "x-a"};
    CHECK(select_fields(h, names, false) == crlf("subject: one\n two\nX-A: 1\n\n"));
    CHECK(select_fields(h, names, true) == crlf("From: a@b\nNo colon line\n\n"));
    std::vector<std::string> none = {"Date"};
    CHECK(select_fields(h, none, false) == "\r\n");
    CHECK(select_fields("From: a\r\n", std::vector<std::string>{"From"}, true) == "");
}

TEST_CASE("case-insensitive search helpers", "[mime]") {
    CHECK(contains_folded("Grüße aus KÖLN", "köln"));
    CHECK(contains_folded("ÆBLE og øl", "æble"));
    CHECK(contains_folded("ŁÓDŹ", "łódź"));
    CHECK_FALSE(contains_folded("Grüße", "GRÜSSE"));
    CHECK(contains_folded("anything", ""));
    Message m = parse_message(read_corpus("45-search-latin.eml"));
    CHECK(search_header(m, "subject", "æble"));
    CHECK_FALSE(search_header(m, "subject", "kaffe"));
    CHECK(search_body(m, "øl på stålet"));
    CHECK(search_text(m, "søren"));
    Message b64 = parse_message(read_corpus("27-base64-text.eml"));
    CHECK(search_body(b64, "BRÜCKE"));
    Message fwd = parse_message(read_corpus("07-message-rfc822.eml"));
    CHECK(search_body(fwd, "original plain"));
}

TEST_CASE("every corpus message parses consistently", "[mime]") {
    int n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(corpus_dir())) {
        if (entry.path().extension() != ".eml")
            continue;
        ++n;
        const std::string& msg = read_corpus(entry.path().filename().string());
        INFO(entry.path().filename().string());
        Message m = parse_message(msg);
        check_consistent(m);
        CHECK(paren_balance(envelope(m)) == 0);
        CHECK(paren_balance(bodystructure(m, true)) == 0);
        CHECK(paren_balance(bodystructure(m, false)) == 0);
    }
    CHECK(n >= 40);
}

TEST_CASE("limits: depth and part count cut the tree consistently", "[mime]") {
    SECTION("nesting deeper than max_depth") {
        std::string msg;
        for (int i = 0; i < 10; ++i)
            msg += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" +
                   std::to_string(i) + "\r\n";
        msg += "\r\ndeep\r\n";
        Limits lim;
        lim.max_depth = 3;
        Message m = parse_message(msg, lim);
        check_consistent(m);
        CHECK(m.truncated);
        std::uint32_t deepest = 0;
        for (const Part& p : m.parts)
            deepest = std::max(deepest, p.depth);
        CHECK(deepest == 3);
        bool cut = false;
        for (const Part& p : m.parts) {
            if (p.truncated) {
                cut = true;
                CHECK(p.kind == PartKind::Leaf);
                CHECK(p.type == "application");
                CHECK(p.body.end == msg.size());
            }
        }
        CHECK(cut);
        CHECK(bodystructure(m, true).find("\"application\" \"octet-stream\"") != std::string::npos);
        CHECK(paren_balance(bodystructure(m, true)) == 0);
    }
    SECTION("more parts than max_parts") {
        std::string msg = "Content-Type: multipart/mixed; boundary=x\r\n\r\n";
        for (int i = 0; i < 50; ++i)
            msg += "--x\r\n\r\npart " + std::to_string(i) + "\r\n";
        msg += "--x--\r\n";
        Limits lim;
        lim.max_parts = 10;
        Message m = parse_message(msg, lim);
        check_consistent(m);
        CHECK(m.truncated);
        CHECK(m.parts.size() == 10);
        // The parts kept are exact; the rest stays in the multipart's body (BODY[TEXT]).
        CHECK(m.parts.back().body.in(msg) == "part 8");
        CHECK(m.root().body.end == msg.size());
        CHECK(m.root().children.size() == 9);
    }
}

TEST_CASE("hostile input stays bounded (timings printed, not asserted)", "[mime][hostile]") {
    auto report = [](const char* what, std::size_t bytes, double ms) {
        std::cout << "mime hostile: " << what << ": " << bytes << " bytes, " << ms << " ms\n";
    };
    SECTION("50 MB message") {
        std::string msg = "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\n";
        std::string line(78, 'a');
        line += "\r\n";
        while (msg.size() < 50'000'000)
            msg += line;
        msg += "--zz--\r\n";
        auto t = std::chrono::steady_clock::now();
        Message m = parse_message(msg);
        report("50 MB body", msg.size(), ms_since(t));
        check_consistent(m);
        CHECK(m.parts.size() == 2);
    }
    SECTION("10,000-deep nesting of multiparts and message/rfc822") {
        std::string msg;
        for (int i = 0; i < 10'000; ++i) {
            if (i % 2)
                msg += "Content-Type: message/rfc822\r\n\r\n";
            else
                msg += "Content-Type: multipart/mixed; boundary=\"q" + std::to_string(i) +
                       "\"\r\n\r\n--q" + std::to_string(i) + "\r\n";
        }
        msg += "\r\nbottom\r\n";
        auto t = std::chrono::steady_clock::now();
        Message m = parse_message(msg);
        report("10,000-deep nesting", msg.size(), ms_since(t));
        check_consistent(m);
        CHECK(m.truncated);
        auto t2 = std::chrono::steady_clock::now();
        std::string bs = bodystructure(m, true);
        report("  its BODYSTRUCTURE", bs.size(), ms_since(t2));
        CHECK(paren_balance(bs) == 0);
    }
    SECTION("100,000 parts") {
        std::string msg = "Content-Type: multipart/mixed; boundary=p\r\n\r\n";
        for (int i = 0; i < 100'000; ++i)
            msg += "--p\r\nContent-Type: text/plain\r\n\r\nx\r\n";
        msg += "--p--\r\n";
        auto t = std::chrono::steady_clock::now();
        Message m = parse_message(msg);
        report("100,000 parts", msg.size(), ms_since(t));
        check_consistent(m);
        CHECK(m.parts.size() == Limits{}.max_parts);
        CHECK(m.truncated);
    }
    SECTION("many nested boundaries sharing a long prefix") {
        std::string prefix(60, 'b');
        std::string msg;
        for (int i = 0; i < 100; ++i)
            msg += "Content-Type: multipart/mixed; boundary=" + prefix + std::to_string(i) +
                   "\r\n\r\n--" + prefix + std::to_string(i) + "\r\n";
        msg += "\r\n";
        while (msg.size() < 20'000'000)
            msg += "--" + prefix + "x\r\n";
        auto t = std::chrono::steady_clock::now();
        Message m = parse_message(msg);
        report("20 MB of near-boundary lines under 100 boundaries", msg.size(), ms_since(t));
        check_consistent(m);
    }
    SECTION("20 MB header, one huge field and many small ones") {
        std::string msg = "Subject: " + std::string(10'000'000, 's') + "\r\n";
        while (msg.size() < 20'000'000)
            msg += "X-F: v\r\n";
        msg += "\r\nbody\r\n";
        auto t = std::chrono::steady_clock::now();
        Message m = parse_message(msg);
        std::string env = envelope(m);
        report("20 MB header + ENVELOPE", msg.size(), ms_since(t));
        check_consistent(m);
        // Only max_header_field bytes of the subject are interpreted.
        CHECK(env.size() < 2 * 1024 * 1024);
    }
    SECTION("100,000 addresses") {
        std::string msg = "To: ";
        for (int i = 0; i < 100'000; ++i)
            msg += "u" + std::to_string(i) + "@example.org, ";
        msg += "\r\n\r\n";
        auto t = std::chrono::steady_clock::now();
        Limits lim;
        lim.max_header_field = 8 * 1024 * 1024;
        Message m = parse_message(msg, lim);
        std::string env = envelope(m, 0, lim);
        report("100,000 addresses", msg.size(), ms_since(t));
        std::size_t count = 0;
        for (std::size_t p = env.find("\"example.org\""); p != std::string::npos;
             p = env.find("\"example.org\"", p + 1))
            ++count;
        CHECK(count == lim.max_addresses);
    }
    SECTION("NUL bytes in header names, 8-bit garbage, stray encodings") {
        const char raw[] = "Fr\0m: a@b\r\nContent-Type: text/plain; charset=\"\xff\xfe\r\n"
                           "Content-Transfer-Encoding: base64\r\n\r\n!!!not base64===\r\n";
        std::string msg(raw, sizeof raw - 1);
        Message m = parse_message(msg);
        check_consistent(m);
        CHECK(paren_balance(bodystructure(m, true)) == 0);
        CHECK(paren_balance(envelope(m)) == 0);
        CHECK_FALSE(search_body(m, "zzz"));
    }
    SECTION("many '=?' without an end") {
        std::string v;
        while (v.size() < 2'000'000)
            v += "=?utf-8?q?";
        auto t = std::chrono::steady_clock::now();
        std::string out = decode_encoded_words(v);
        report("2 MB of unterminated encoded words", v.size(), ms_since(t));
        CHECK(out == v);
    }
}
