#include "parse_helpers.h"

using namespace popbridge::protocol::imap;
using popbridge::protocol::imap::test::parse_text;

namespace {

// Compact description of a parsed FETCH for table comparisons.
std::string describe(const FetchArgs& f) {
    std::string out = (f.uid ? "UID " : "") + f.set.to_string() + " |";
    for (const FetchAtt& a : f.atts) {
        out += ' ';
        out += fetch_att_response_name(a);
        if (a.peek)
            out += "/peek";
        if (a.partial)
            out += "/" + std::to_string(a.partial->length);
    }
    return out;
}

} // namespace

TEST_CASE("parse_fetch: table, whole and at every chunk size", "[imap][parse]") {
    struct Row {
        const char* in;
        const char* expected;
    };
    const Row rows[] = {
        {"a FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)\r\n",
         "1:* | FLAGS UID RFC822.SIZE INTERNALDATE"},
        {"a fetch 2 flags\r\n", "2 | FLAGS"},
        {"a UID FETCH 1:100 BODY.PEEK[]\r\n", "UID 1:100 | BODY[]/peek"},
        {"a uid fetch 5 (UID BODY[])\r\n", "UID 5 | UID BODY[]"},
        {"a FETCH 1 RFC822\r\n", "1 | RFC822"},
        {"a FETCH 1 FAST\r\n", "1 | FLAGS INTERNALDATE RFC822.SIZE"},
        {"a FETCH 1 ALL\r\n", "1 | FLAGS INTERNALDATE RFC822.SIZE ENVELOPE"},
        {"a FETCH 1 FULL\r\n", "1 | FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY"},
        {"a FETCH 1 BODY[]<0.1024>\r\n", "1 | BODY[]<0>/1024"},
        {"a FETCH 1 BODY.PEEK[HEADER]<10.5>\r\n", "1 | BODY[HEADER]<10>/peek/5"},
        {"a FETCH 1 (BODY[1.2.MIME] BODY[3] BODY[TEXT] BODY[2.HEADER])\r\n",
         "1 | BODY[1.2.MIME] BODY[3] BODY[TEXT] BODY[2.HEADER]"},
        {"a FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (From Subject \"To\")])\r\n",
         "1 | UID BODY[HEADER.FIELDS (FROM SUBJECT TO)]/peek"},
        {"a FETCH 1 BODY[HEADER.FIELDS.NOT (Received)]<0.100>\r\n",
         "1 | BODY[HEADER.FIELDS.NOT (RECEIVED)]<0>/100"},
        {"a FETCH 1 BODY[HEADER.FIELDS ({4}\r\nFrom)]\r\n", "1 | BODY[HEADER.FIELDS (FROM)]"},
        {"a FETCH 3,1:2 (RFC822.HEADER RFC822.TEXT BODYSTRUCTURE ENVELOPE)\r\n",
         "3,1:2 | RFC822.HEADER RFC822.TEXT BODYSTRUCTURE ENVELOPE"},
    };
    for (const Row& r : rows) {
        std::string_view in = r.in;
        INFO(in);
        for (std::size_t chunk = 0; chunk <= 64; ++chunk) {
            auto cmd = parse_text(in, chunk);
            REQUIRE(cmd);
            auto* f = std::get_if<FetchArgs>(&cmd->args);
            REQUIRE(f);
            CHECK(describe(*f) == r.expected);
            CHECK(cmd->id == (f->uid ? CommandId::UidFetch : CommandId::Fetch));
        }
    }
}

TEST_CASE("parse_fetch: invalid", "[imap][parse]") {
    for (const char* bad : {
             "a FETCH\r\n",
             "a FETCH 1\r\n",
             "a FETCH 0 FLAGS\r\n",
             "a FETCH x FLAGS\r\n",
             "a FETCH 1 ()\r\n",
             "a FETCH 1 BOGUS\r\n",
             "a FETCH 1 (FLAGS ALL)\r\n",
             "a FETCH 1 FLAGS UID\r\n",
             "a FETCH 1 BODY[\r\n",
             "a FETCH 1 BODY[HEADER\r\n",
             "a FETCH 1 BODY[XYZ]\r\n",
             "a FETCH 1 BODY[MIME]\r\n",
             "a FETCH 1 BODY[0]\r\n",
             "a FETCH 1 BODY[1.]\r\n",
             "a FETCH 1 BODY[HEADER.FIELDS]\r\n",
             "a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
             "a FETCH 1 BODY[HEADER.FIELDS (From)] ]\r\n",
             "a FETCH 1 BODY[]<0.0>\r\n",
             "a FETCH 1 BODY[]<1>\r\n",
             "a FETCH 1 BODY[]<a.b>\r\n",
             "a FETCH 1 BODY[]x\r\n",
             "a FETCH 1 BINARY[]\r\n",
             "a FETCH 1 BODY.PEEK\r\n",
             "a UID\r\n",
         }) {
        INFO(bad);
        CHECK_FALSE(parse_text(bad));
    }
}
