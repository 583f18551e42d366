#include <catch2/catch.hpp>

#include "protocol/imap/mailbox_name.h"

using namespace popbridge::protocol::imap;

TEST_CASE("mailbox_name: modified UTF-7 round trips", "[imap][mailbox_name]") {
    struct Row {
        const char* wire;
        const char* utf8;
    };
    const Row rows[] = {
        {"INBOX", "INBOX"},
        {"Sent Items", "Sent Items"},
        {"&-", "&"},
        {"Tom &- Jerry", "Tom & Jerry"},
        {"Entw&APw-rfe", "Entw\xc3\xbc"
                         "rfe"},                                // Entwürfe
        {"&ZeVnLIqe-", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"}, // 日本語 (RFC 3501 example)
        {"~peter/mail/&U,BTFw-/&ZeVnLIqe-",
         "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
        {"&2D3eAA-", "\xf0\x9f\x98\x80"}, // U+1F600, a surrogate pair
        {"[Gmail]/All Mail", "[Gmail]/All Mail"},
        {"", ""},
    };
    for (const Row& r : rows) {
        INFO(r.wire);
        CHECK(decode_mailbox_name(r.wire) == std::optional<std::string>(r.utf8));
        CHECK(encode_mailbox_name(r.utf8) == std::optional<std::string>(r.wire));
    }
}

TEST_CASE("mailbox_name: broken encodings are rejected", "[imap][mailbox_name]") {
    for (const char* bad : {
             "&",          // unterminated
             "&AGE",       // unterminated run
             "&AGE-&AGE-", // adjacent runs must be one run
             "&AEE-",      // 'A' (printable ASCII) hidden in base64
             "&AOk",       // no '-'
             "&AOl-",      // non-zero padding bits
             "&AOkA-",     // leftover 6 bits form no character
             "&2D0-",      // lone high surrogate
             "&3gA-",      // lone low surrogate
             "&AAA-",      // NUL
             "&AB8-",      // control character
             "&A*k-",      // not a base64 character
             "&AOk/-",     // '/' is ',' in modified base64
             "a\x01"
             "b",           // raw control
             "caf\xc3\xa9", // raw 8-bit
         }) {
        INFO(bad);
        CHECK_FALSE(decode_mailbox_name(bad));
    }
    CHECK_FALSE(encode_mailbox_name("\xc3"));         // truncated UTF-8
    CHECK_FALSE(encode_mailbox_name("\xc0\xaf"));     // overlong
    CHECK_FALSE(encode_mailbox_name("\xed\xa0\x80")); // encoded surrogate
    CHECK_FALSE(encode_mailbox_name("a\nb"));
}

TEST_CASE("mailbox_name: INBOX is case-insensitive", "[imap][mailbox_name]") {
    CHECK(is_inbox("inbox"));
    CHECK(is_inbox("InBoX"));
    CHECK_FALSE(is_inbox("INBOX/Sub"));
    CHECK_FALSE(is_inbox("INBOXX"));
    CHECK(mailbox_from_wire("iNbOx") == std::optional<std::string>("INBOX"));
    CHECK(mailbox_from_wire("inbox.Sent") == std::optional<std::string>("inbox.Sent"));
    CHECK_FALSE(mailbox_from_wire("&Jjo"));
}
