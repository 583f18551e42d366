#include <catch2/catch.hpp>

#include "protocol/imap/flags.h"
#include "protocol/imap/response.h"

using namespace popbridge::protocol::imap;

TEST_CASE("response: status lines, byte exact", "[imap][response]") {
    std::string out;
    write_tagged(out, "a1", RespStatus::Ok, {}, "NOOP completed");
    write_tagged(out, "a2", RespStatus::No, {RespCode::Nonexistent, {}}, "No such mailbox");
    write_tagged(out, "a3", RespStatus::Ok, {RespCode::ReadWrite, {}}, "SELECT completed");
    write_untagged_status(out, RespStatus::Ok, {RespCode::UidValidity, "3857529045"}, "UIDs valid");
    write_untagged_status(out, RespStatus::Bye, {}, "bye\r\n* injected");
    write_untagged(out, "17 EXISTS");
    write_continuation(out, "Ready");
    write_tagged(out, "a4", RespStatus::Bad, {}, "");
    CHECK(out == "a1 OK NOOP completed\r\n"
                 "a2 NO [NONEXISTENT] No such mailbox\r\n"
                 "a3 OK [READ-WRITE] SELECT completed\r\n"
                 "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
                 "* BYE bye  * injected\r\n"
                 "* 17 EXISTS\r\n"
                 "+ Ready\r\n"
                 "a4 BAD Done\r\n");
}

TEST_CASE("response: quoted vs literal strings", "[imap][response]") {
    struct Row {
        std::string in;
        std::string out;
    };
    const Row rows[] = {
        {"plain", "\"plain\""},
        {"", "\"\""},
        {"say \"hi\" \\o/", "\"say \\\"hi\\\" \\\\o/\""},
        {"two\r\nlines", "{10}\r\ntwo\r\nlines"},
        {"caf\xc3\xa9", "{5}\r\ncaf\xc3\xa9"},
        {std::string("a\0b", 3), std::string("{3}\r\na\0b", 8)},
        {std::string(2000, 'x'), "{2000}\r\n" + std::string(2000, 'x')},
    };
    for (const Row& r : rows) {
        std::string out;
        write_string(out, r.in);
        CHECK(out == r.out);
    }
    std::string a;
    write_astring(a, "INBOX");
    a += ' ';
    write_astring(a, "Sent Items");
    a += ' ';
    write_astring(a, "NIL");
    a += ' ';
    write_astring(a, "");
    CHECK(a == "INBOX \"Sent Items\" \"NIL\" \"\"");
}

TEST_CASE("response: flag lists", "[imap][response]") {
    std::string out;
    write_flag_list(out, 0, {});
    out += ' ';
    write_flag_list(out, kFlagSeen | kFlagDeleted | kFlagRecent, {"$Forwarded", "work"});
    CHECK(out == "() (\\Seen \\Deleted \\Recent $Forwarded work)");
    CHECK(flag_from_name("\\SEEN") == kFlagSeen);
    CHECK(flag_from_name("\\draft") == kFlagDraft);
    CHECK_FALSE(flag_from_name("Seen"));
}

TEST_CASE("response: INTERNALDATE format", "[imap][response]") {
    CHECK(format_internal_date(0, 0) == "\" 1-Jan-1970 00:00:00 +0000\"");
    // 2024-02-29 12:34:56 UTC, shown in +0530 and -0800.
    CHECK(format_internal_date(1709210096, 330) == "\"29-Feb-2024 18:04:56 +0530\"");
    CHECK(format_internal_date(1709210096, -480) == "\"29-Feb-2024 04:34:56 -0800\"");
    CHECK(format_internal_date(-1, 0) == "\"31-Dec-1969 23:59:59 +0000\"");
    CHECK(format_internal_date(951782400, 0) == "\"29-Feb-2000 00:00:00 +0000\"");
    CHECK(format_internal_date(951868800, 0) == "\" 1-Mar-2000 00:00:00 +0000\"");
}

TEST_CASE("response: storage errors map to IMAP codes in one place", "[imap][response]") {
    auto code = [](StorageErrc e) { return imap_response_for(Error{e, "", false}).code.code; };
    CHECK(code(StorageErrc::NotFound) == RespCode::Nonexistent);
    CHECK(code(StorageErrc::AlreadyExists) == RespCode::AlreadyExists);
    CHECK(code(StorageErrc::OverQuota) == RespCode::OverQuota);
    CHECK(code(StorageErrc::Internal) == RespCode::ServerBug);
    CHECK(code(StorageErrc::Unavailable) == RespCode::Unavailable);
    CHECK(code(StorageErrc::HasChildren) == RespCode::HasChildren);
    CHECK(to_string(RespCode::HasChildren) == "HASCHILDREN");
    CHECK(imap_response_for(Error{StorageErrc::NoPermission, "", false}).status == RespStatus::No);
    CHECK(to_string(RespCode::ReadOnly) == "READ-ONLY");
}
