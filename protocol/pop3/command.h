#pragma once
// Builders for POP3 client commands (RFC 1939 sections 4-7, RFC 2449 CAPA,
// RFC 2595 STLS, RFC 5034 AUTH) and SASL client responses. Each builder
// returns the exact bytes to send, CRLF included.
//
// Arguments are NOT checked by the builders: callers must first pass every
// string argument through is_safe_argument(), which rejects CR, LF and NUL
// (command injection from a config file).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace popbridge::protocol::pop3 {

// False for an empty string or one holding CR, LF or NUL.
bool is_safe_argument(std::string_view arg);

std::string cmd_capa();
std::string cmd_stls();
std::string cmd_user(std::string_view name);
std::string cmd_pass(std::string_view password);
std::string cmd_apop(std::string_view name, std::string_view digest_hex);
// "AUTH mech\r\n", or "AUTH mech initial\r\n" when initial_b64 is not empty.
std::string cmd_auth(std::string_view mechanism, std::string_view initial_b64);
std::string cmd_uidl();
std::string cmd_list();
std::string cmd_retr(std::uint32_t msgno);
// RFC 1939 section 7 (optional): the header and the first `lines` body lines.
std::string cmd_top(std::uint32_t msgno, std::uint32_t lines);
std::string cmd_dele(std::uint32_t msgno);
std::string cmd_quit();

// RFC 1939 section 7: lower-case hex MD5 of the greeting's timestamp
// (with its angle brackets) followed by the shared secret.
std::string apop_digest(std::string_view timestamp, std::string_view secret);

// The APOP challenge of a greeting text (RFC 1939 section 7): a msg-id "<id-left@id-right>".
// A malicious server can choose challenge bytes so that APOP replies leak the password
// (Leurent 2007, CVE-2007-1558); so only a plausible RFC 5322 msg-id is used: exactly one
// "<...>" in the greeting, at most kMaxApopTimestamp bytes with the brackets, one '@' with
// non-empty sides made of atext and '.' (id-right may be a "[...]" literal), printable ASCII
// only. Anything else is refused with a reason; APOP must then not be attempted.
inline constexpr std::size_t kMaxApopTimestamp = 256;
struct ApopTimestamp {
    std::string value;   // "<...>" brackets included; empty when absent or refused
    std::string refused; // why the greeting's "<...>" is unusable; empty when absent or valid
};
ApopTimestamp parse_apop_timestamp(std::string_view greeting_text);
// parse_apop_timestamp(text).value.
std::string apop_timestamp(std::string_view greeting_text);

// Unencoded SASL client responses; base64-encode before sending.
// RFC 4616: authzid (empty) NUL authcid NUL passwd.
std::string sasl_plain(std::string_view user, std::string_view password);
// Google/Microsoft XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A.
std::string sasl_xoauth2(std::string_view user, std::string_view token);
// RFC 7628 section 3.1: gs2 header "n,a=user," (',' and '=' escaped) then
// ^A "auth=Bearer " token ^A ^A.
std::string sasl_oauthbearer(std::string_view user, std::string_view token);

// RFC 5034 section 4: an AUTH command with its initial response must fit in
// 255 octets; otherwise the response goes after the server's empty challenge.
inline constexpr std::size_t kMaxAuthCommandLine = 255;

} // namespace popbridge::protocol::pop3
