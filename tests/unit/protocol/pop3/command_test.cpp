#include "protocol/pop3/command.h"

#include "protocol/pop3/base64.h"

#include <catch2/catch.hpp>

#include <string>

using namespace popbridge::protocol::pop3;

TEST_CASE("command: exact bytes of every builder", "[pop3][command]") {
    CHECK(cmd_capa() == "CAPA\r\n");
    CHECK(cmd_stls() == "STLS\r\n");
    CHECK(cmd_user("mrose") == "USER mrose\r\n");
    CHECK(cmd_pass("secret with spaces") == "PASS secret with spaces\r\n");
    CHECK(cmd_apop("mrose", "c4c9334bac560ecc979e58001b3e22fb") ==
          "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    CHECK(cmd_auth("PLAIN", "AGEAYg==") == "AUTH PLAIN AGEAYg==\r\n");
    CHECK(cmd_auth("XOAUTH2", "") == "AUTH XOAUTH2\r\n");
    CHECK(cmd_uidl() == "UIDL\r\n");
    CHECK(cmd_list() == "LIST\r\n");
    CHECK(cmd_retr(1) == "RETR 1\r\n");
    CHECK(cmd_retr(4294967295u) == "RETR 4294967295\r\n");
    CHECK(cmd_dele(17) == "DELE 17\r\n");
    CHECK(cmd_quit() == "QUIT\r\n");
}

TEST_CASE("command: APOP digest of RFC 1939 section 7 example", "[pop3][command]") {
    CHECK(apop_digest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf") ==
          "c4c9334bac560ecc979e58001b3e22fb");
}

TEST_CASE("command: APOP timestamp from greeting text", "[pop3][command]") {
    const std::pair<std::string, std::string> table[] = {
        {"POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
         "<1896.697170952@dbc.mtview.ca.us>"},
        {"<a@b> two challenges are refused <c@d>", ""},
        {"literal right side <x.y@[192.0.2.1]>", "<x.y@[192.0.2.1]>"},
        {"Dovecot ready.", ""},
        {"broken <no end", ""},
        {"empty <>", ""},
        {"space <a b@c>", ""},
        {"nested <<a@b>", ""},
        {"control <a\x01@b>", ""},
    };
    for (const auto& [text, ts] : table) {
        INFO(text);
        CHECK(apop_timestamp(text) == ts);
    }
}

TEST_CASE("command: safe arguments reject CR, LF, NUL and empty", "[pop3][command]") {
    CHECK(is_safe_argument("alice@example.net"));
    CHECK(is_safe_argument("p@ss w0rd"));
    CHECK_FALSE(is_safe_argument(""));
    CHECK_FALSE(is_safe_argument("a\r\nDELE 1"));
    CHECK_FALSE(is_safe_argument("a\nb"));
    CHECK_FALSE(is_safe_argument("a\rb"));
    CHECK_FALSE(is_safe_argument(std::string("a\0b", 3)));
}

TEST_CASE("command: SASL responses", "[pop3][command]") {
    CHECK(sasl_plain("tim", "tanstaaf") == std::string("\0tim\0tanstaaf", 13));
    CHECK(sasl_xoauth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg") ==
          "user=someuser@example.com\x01"
          "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01");
    // Google's documented XOAUTH2 example encoding.
    CHECK(base64_encode(sasl_xoauth2("someuser@example.com",
                                     "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")) ==
          "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhk"
          "SFJo"
          "ZG1semRHRXVZMjl0Q2cBAQ==");
    // RFC 7628 3.1 gs2 header with saslname escaping of ',' and '='.
    CHECK(sasl_oauthbearer("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==") ==
          "n,a=user@example.com,\x01"
          "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01");
    CHECK(sasl_oauthbearer("a,b=c", "t") == "n,a=a=2Cb=3Dc,\x01"
                                            "auth=Bearer t\x01\x01");
}
