// FETCH ENVELOPE / BODYSTRUCTURE / BODY / BODY[section]<partial> and SEARCH on a nested MIME
// message, byte-exact. Expected bytes are what Dovecot 2.3 answers for the same message
// (checked with its IMAP server); every script is also re-fed in chunks of 1..64 bytes.
#include <catch2/catch.hpp>

#include "protocol/imap/message_structure.h"
#include "protocol/imap/server.h"
#include "tests/unit/protocol/imap/fake_backend.h"

using namespace popbridge::protocol::imap;
using popbridge::protocol::imap::test::FakeBackend;

namespace {

// multipart/mixed: 1 = multipart/alternative (1.1 text/plain, 1.2 text/html),
// 2 = message/rfc822 holding multipart/mixed (2.1 text/plain, 2.2 base64 octet-stream).
const std::string kNested = "From: Alice <alice@example.org>\r\n"
                            "To: bob@example.net\r\n"
                            "Subject: nested\r\n"
                            "Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
                            "Message-ID: <n1@example.org>\r\n"
                            "MIME-Version: 1.0\r\n"
                            "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
                            "\r\n"
                            "--outer\r\n"
                            "Content-Type: multipart/alternative; boundary=inner\r\n"
                            "\r\n"
                            "--inner\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "\r\n"
                            "plain text\r\n"
                            "--inner\r\n"
                            "Content-Type: text/html; charset=utf-8\r\n"
                            "\r\n"
                            "<p>html</p>\r\n"
                            "--inner--\r\n"
                            "\r\n"
                            "--outer\r\n"
                            "Content-Type: message/rfc822\r\n"
                            "Content-Description: forwarded\r\n"
                            "\r\n"
                            "From: Carol <carol@example.com>\r\n"
                            "Subject: inner subject\r\n"
                            "Content-Type: multipart/mixed; boundary=\"deep\"\r\n"
                            "\r\n"
                            "--deep\r\n"
                            "Content-Type: text/plain\r\n"
                            "\r\n"
                            "deep one\r\n"
                            "--deep\r\n"
                            "Content-Type: application/octet-stream\r\n"
                            "Content-Transfer-Encoding: base64\r\n"
                            "\r\n"
                            "AAEC\r\n"
                            "--deep--\r\n"
                            "\r\n"
                            "--outer--\r\n";

// Encoded words and transfer encodings for SEARCH.
const std::string kEncoded = "From: =?utf-8?q?Andr=C3=A9?= <andre@example.org>\r\n"
                             "Subject: =?iso-8859-1?q?Gr=FC=DFe?= aus\r\n"
                             "MIME-Version: 1.0\r\n"
                             "Content-Type: multipart/mixed; boundary=b\r\n"
                             "\r\n"
                             "--b\r\n"
                             "Content-Type: text/plain; charset=iso-8859-1\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n"
                             "\r\n"
                             "K=F6ln am Rhein\r\n"
                             "--b\r\n"
                             "Content-Type: message/rfc822\r\n"
                             "\r\n"
                             "Subject: inner\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "Content-Transfer-Encoding: base64\r\n"
                             "\r\n"
                             "w5hsIHDDpSBzdMOlbGV0\r\n"
                             "--b--\r\n";

const std::string kEnvelope =
    "(\"Mon, 2 Mar 2026 10:00:00 +0100\" \"nested\" ((\"Alice\" NIL \"alice\" \"example.org\")) "
    "((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) "
    "((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL \"<n1@example.org>\")";
const std::string kInnerEnvelope =
    "(NIL \"inner subject\" ((\"Carol\" NIL \"carol\" \"example.com\")) ((\"Carol\" NIL \"carol\" "
    "\"example.com\")) ((\"Carol\" NIL \"carol\" \"example.com\")) NIL NIL NIL NIL NIL)";
const std::string kBodyStructure =
    "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL)"
    "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL) "
    "\"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)"
    "(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 254 " +
    kInnerEnvelope +
    " ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 NIL NIL NIL NIL)"
    "(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 4 NIL NIL NIL NIL) \"mixed\" "
    "(\"boundary\" \"deep\") NIL NIL NIL) 14 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"outer\") "
    "NIL NIL NIL)";
const std::string kBody =
    "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 10 0)(\"text\" \"html\" "
    "(\"charset\" \"utf-8\") NIL NIL \"7bit\" 11 0) \"alternative\")(\"message\" \"rfc822\" NIL "
    "NIL \"forwarded\" \"7bit\" 254 " +
    kInnerEnvelope +
    " ((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0)(\"application\" "
    "\"octet-stream\" NIL NIL NIL \"base64\" 4) \"mixed\") 14) \"mixed\")";

struct Step {
    std::string in;
    std::string out;
};

void add_messages(FakeBackend& b) {
    b.add(12, kNested, 0);  // sequence number 4
    b.add(13, kEncoded, 0); // sequence number 5
    b.inbox.uid_next = 14;
}

std::vector<std::string> run(const std::vector<Step>& steps, std::size_t chunk,
                             FakeBackend& backend) {
    SessionConfig cfg;
    cfg.allow_plaintext_login = true;
    Session s(backend, cfg);
    backend.session = &s;
    s.feed(std::string_view("L LOGIN alice secret\r\nS SELECT INBOX\r\n"));
    s.take_output();
    std::vector<std::string> outs;
    for (const Step& st : steps) {
        std::string out;
        std::size_t n = chunk == 0 ? st.in.size() : chunk;
        for (std::size_t i = 0; i < st.in.size(); i += n) {
            s.feed(std::string_view(st.in).substr(i, n));
            out += s.take_output();
        }
        outs.push_back(out);
    }
    return outs;
}

void check_script(const std::vector<Step>& steps) {
    for (std::size_t chunk = 0; chunk <= 64; ++chunk) {
        FakeBackend backend;
        add_messages(backend);
        auto got = run(steps, chunk, backend);
        for (std::size_t i = 0; i < steps.size(); ++i) {
            INFO("chunk " << chunk << " input: " << steps[i].in);
            CHECK(got[i] == steps[i].out);
        }
    }
}

std::string literal(std::string_view s) {
    return "{" + std::to_string(s.size()) + "}\r\n" + std::string(s);
}

} // namespace

TEST_CASE("fetch mime: ENVELOPE, BODYSTRUCTURE, BODY and the macros", "[imap][fetch][mime]") {
    check_script({
        {"a FETCH 4 ENVELOPE\r\n",
         "* 4 FETCH (ENVELOPE " + kEnvelope + ")\r\na OK FETCH completed\r\n"},
        {"b UID FETCH 12 (BODYSTRUCTURE BODY)\r\n", "* 4 FETCH (UID 12 BODYSTRUCTURE " +
                                                        kBodyStructure + " BODY " + kBody +
                                                        ")\r\nb OK UID FETCH completed\r\n"},
        {"c FETCH 4 ALL\r\n",
         "* 4 FETCH (FLAGS () INTERNALDATE \"29-Feb-2024 13:35:08 +0100\" RFC822.SIZE 754 "
         "ENVELOPE " +
             kEnvelope + ")\r\nc OK FETCH completed\r\n"},
        {"d FETCH 4 FULL\r\n",
         "* 4 FETCH (FLAGS () INTERNALDATE \"29-Feb-2024 13:35:08 +0100\" RFC822.SIZE 754 "
         "ENVELOPE " +
             kEnvelope + " BODY " + kBody + ")\r\nd OK FETCH completed\r\n"},
        // A single-part message: its BODYSTRUCTURE is one leaf.
        {"e FETCH 2 BODYSTRUCTURE\r\n",
         "* 2 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
         "\"7bit\" 10 1 NIL NIL NIL NIL))\r\ne OK FETCH completed\r\n"},
    });
}

TEST_CASE("fetch mime: sections of nested parts", "[imap][fetch][mime]") {
    check_script({
        {"a FETCH 4 (BODY.PEEK[1.2] BODY.PEEK[2.MIME] BODY.PEEK[2.HEADER.FIELDS (SUBJECT "
         "FROM)])\r\n",
         "* 4 FETCH (BODY[1.2] " + literal("<p>html</p>") + " BODY[2.MIME] " +
             literal("Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n") +
             " BODY[2.HEADER.FIELDS (SUBJECT FROM)] " +
             literal("From: Carol <carol@example.com>\r\nSubject: inner subject\r\n\r\n") +
             ")\r\na OK FETCH completed\r\n"},
        // Numbers continue inside message/rfc822; a leaf's ".1" is the leaf itself.
        {"b FETCH 4 (BODY.PEEK[2.HEADER.FIELDS.NOT (SUBJECT)] BODY.PEEK[2.2.1] "
         "BODY.PEEK[2.2.2]<1.2> BODY.PEEK[3] BODY.PEEK[1.HEADER] BODY.PEEK[2.1.MIME] "
         "BODY.PEEK[2.TEXT]<0.20>)\r\n",
         "* 4 FETCH (BODY[2.HEADER.FIELDS.NOT (SUBJECT)] " +
             literal("From: Carol <carol@example.com>\r\nContent-Type: multipart/mixed; "
                     "boundary=\"deep\"\r\n\r\n") +
             " BODY[2.2.1] " + literal("AAEC") + " BODY[2.2.2]<1> " + literal("") + " BODY[3] " +
             literal("") + " BODY[1.HEADER] " + literal("") + " BODY[2.1.MIME] " +
             literal("Content-Type: text/plain\r\n\r\n") + " BODY[2.TEXT]<0> " +
             literal("--deep\r\nContent-Type") + ")\r\nb OK FETCH completed\r\n"},
        {"c FETCH 4 (BODY.PEEK[1.2.MIME] BODY.PEEK[2.2.5] BODY.PEEK[HEADER.FIELDS (to)]<4.100> "
         "BODY.PEEK[2]<10000.5>)\r\n",
         "* 4 FETCH (BODY[1.2.MIME] " + literal("Content-Type: text/html; charset=utf-8\r\n\r\n") +
             " BODY[2.2.5] " + literal("") + " BODY[HEADER.FIELDS (TO)]<4> " +
             literal("bob@example.net\r\n\r\n") + " BODY[2]<10000> " + literal("") +
             ")\r\nc OK FETCH completed\r\n"},
        // RFC822.HEADER / RFC822.TEXT are the top-level HEADER / TEXT.
        // A single-part message: part 1 is its body, and 1.MIME its header; 1.1 is nothing.
        {"d FETCH 2 (RFC822.HEADER RFC822.TEXT BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[1.1] "
         "BODY.PEEK[1.HEADER])\r\n",
         "* 2 FETCH (RFC822.HEADER " + literal("Subject: two\r\n\r\n") + " RFC822.TEXT " +
             literal("Body two\r\n") + " BODY[1] " + literal("Body two\r\n") + " BODY[1.MIME] " +
             literal("Subject: two\r\n\r\n") + " BODY[1.1] " + literal("") + " BODY[1.HEADER] " +
             literal("") + " FLAGS (\\Seen))\r\nd OK FETCH completed\r\n"},
        // A leaf of a multipart answers once to ".1" (Dovecot).
        {"e FETCH 4 (BODY.PEEK[2.2.1.1] BODY.PEEK[2.2.1.MIME] BODY.PEEK[1.1.1] "
         "BODY.PEEK[2.1.1.HEADER] BODY.PEEK[2.1.2])\r\n",
         "* 4 FETCH (BODY[2.2.1.1] " + literal("") + " BODY[2.2.1.MIME] " +
             literal("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: "
                     "base64\r\n\r\n") +
             " BODY[1.1.1] " + literal("plain text") + " BODY[2.1.1.HEADER] " + literal("") +
             " BODY[2.1.2] " + literal("") + ")\r\ne OK FETCH completed\r\n"},
    });
}

TEST_CASE("fetch mime: SEARCH decodes headers, transfer encodings and nested messages",
          "[imap][search][mime]") {
    check_script({
        {"a SEARCH BODY \"deep one\"\r\n", "* SEARCH 4\r\na OK SEARCH completed\r\n"},
        {"b SEARCH CHARSET UTF-8 SUBJECT {7+}\r\ngrüße\r\n",
         "* SEARCH 5\r\nb OK SEARCH completed\r\n"},
        {"c SEARCH CHARSET UTF-8 FROM {6+}\r\nANDRÉ\r\n",
         "* SEARCH 5\r\nc OK SEARCH completed\r\n"},
        {"d SEARCH CHARSET UTF-8 BODY {5+}\r\nkÖln\r\n", "* SEARCH 5\r\nd OK SEARCH completed\r\n"},
        // Base64 UTF-8 text inside a message/rfc822 part.
        {"e SEARCH CHARSET UTF-8 BODY {15+}\r\nøl på stålet\r\n",
         "* SEARCH 5\r\ne OK SEARCH completed\r\n"},
        // TEXT: any header (top level, body parts, nested messages; names included) or
        // any text part. BODY: text parts only.
        {"f SEARCH TEXT carol\r\n", "* SEARCH 4\r\nf OK SEARCH completed\r\n"},
        {"f2 SEARCH TEXT content-description\r\n", "* SEARCH 4\r\nf2 OK SEARCH completed\r\n"},
        {"f3 SEARCH BODY carol\r\n", "* SEARCH\r\nf3 OK SEARCH completed\r\n"},
        {"f4 SEARCH BODY AAEC\r\n", "* SEARCH\r\nf4 OK SEARCH completed\r\n"},
        {"g SEARCH TEXT nested\r\n", "* SEARCH 4\r\ng OK SEARCH completed\r\n"},
        {"h SEARCH TEXT \"<p>HTML\"\r\n", "* SEARCH 4\r\nh OK SEARCH completed\r\n"},
        // The encoded form is not what is searched.
        {"i SEARCH SUBJECT \"=FC\"\r\n", "* SEARCH\r\ni OK SEARCH completed\r\n"},
        {"j SEARCH 4:* SUBJECT inner\r\n", "* SEARCH\r\nj OK SEARCH completed\r\n"},
        {"k UID SEARCH UID 12:* HEADER Message-ID n1\r\n",
         "* SEARCH 12\r\nk OK UID SEARCH completed\r\n"},
        {"l SEARCH SENTON 2-Mar-2026\r\n", "* SEARCH 4\r\nl OK SEARCH completed\r\n"},
    });
}
