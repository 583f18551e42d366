#pragma once
// Sans-I/O POP3 client state machine.
//
// RFCs: 1939 (POP3), 2449 (CAPA, RESP-CODES, PIPELINING, LOGIN-DELAY),
// 2595 section 4 (STLS), 5034 (SASL AUTH), 4616 (PLAIN), 7628 (OAUTHBEARER),
// plus Google/Microsoft XOAUTH2.
//
// CONTRACT (what proxy/pop3_poller codes against)
//
// Ownership: the Client owns no I/O, no clock and no thread. The caller (the
// proxy) owns the socket and TLS. The Client copies what it needs out of every
// span given to feed(); events and output are returned by value.
//
// Driving loop: after constructing, and after every feed() / tls_established()
// / retrieve() / dele() / quit() / connection_closed():
//   1. send take_output() to the server (may be empty);
//   2. drain next_event() until it returns nullopt and act on each event.
// The Client never sends anything unasked except the fixed login sequence.
//
// Sequence:
//   greeting -> CAPA (-ERR tolerated: no capabilities)
//   -> if require_stls: STLS; NeedTls event (see below) -> CAPA again
//   -> auth (one command at a time, never pipelined) -> Authenticated event
//   -> UIDL (-ERR tolerated: uidl_supported = false) -> LIST -> Listing event
//   -> state Transaction: the caller calls retrieve(), dele(), quit().
//
// STLS (RFC 2595 section 4): if require_stls and CAPA does not list STLS, or
// the server answers STLS with -ERR, a Failed{TlsRequired} event comes before
// any credential is sent. On "+OK" the Client emits NeedTls and DISCARDS every
// byte that followed the +OK line in the same feed() (STARTTLS command
// injection). The proxy must likewise hand nothing it already read to the
// Client: it starts TLS on the raw stream, then calls tls_established(), and
// feeds only decrypted bytes from then on. Bytes fed while waiting for the
// handshake fail the session (Protocol).
//
// Messages: retrieve(msgnos) queues one RETR per number; with CAPA PIPELINING
// up to pipeline_window commands are in flight, otherwise one. Each message
// arrives as MessageBegin, zero or more MessageData (already dot-unstuffed,
// CRLF line ends; one chunk per feed(), so never a whole message buffered),
// MessageEnd{total_bytes}. -ERR to a RETR gives RetrFailed and the session
// goes on. The Client does not enforce max_message_size: the caller skips big
// messages using Listing sizes, and may close the connection if MessageData
// for one message runs far past its listed size.
//
// Headers: top(msgnos) queues one "TOP n 0" per number (RFC 1939 section 7, optional
// command): the same MessageBegin / MessageData / MessageEnd events with headers_only
// set, or RetrFailed with headers_only set. The poller uses it to identify messages when
// UIDL is missing or changed, and to read Date: for import_since.
//
// Deletion: dele(msgnos) only after the caller has durably stored those
// messages (DESIGN.md invariant 1); each gives Deleted or DeleteFailed. RETR
// and DELE may be mixed; replies come back in request order. Drained is
// emitted each time every queued RETR/DELE has been answered (and at once for
// an empty request with nothing in flight).
// quit() queues QUIT after everything already queued; QUIT +OK gives Finished
// (the server has now expunged DELE'd messages, RFC 1939 section 6). A caller
// that wants to abort without deleting anything just closes the connection.
//
// Failure: any fatal problem gives one Failed{ErrorClass, text} and the state
// Failed; after that the Client ignores input and produces nothing, and the
// caller closes the connection (no QUIT is sent, so no DELE takes effect).
// connection_closed() / timed_out() in a non-terminal state give Failed
// {Disconnected / Timeout}; a message begun but not ended must be discarded.
//
// Secrets: no event text, to_string() or describe() output ever contains the
// password or token. The server's own reply text is included in Failed /
// RetrFailed / DeleteFailed.

#include "protocol/pop3/dot_decoder.h"
#include "protocol/pop3/reply_parser.h"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace popbridge::protocol::pop3 {

// How to log in; matches the account file's `auth:` key (DESIGN.md).
enum class AuthMethod {
    UserPass,    // USER then PASS (RFC 1939 section 7), config "pass"
    Apop,        // APOP with the greeting timestamp (RFC 1939 section 7), config "apop"
    Plain,       // AUTH PLAIN (RFC 5034, RFC 4616), config "plain"
    XOAuth2,     // AUTH XOAUTH2 with a bearer token, config "xoauth2"
    OAuthBearer, // AUTH OAUTHBEARER (RFC 7628), config "oauthbearer"
};
std::string_view to_string(AuthMethod m);

// Why a session or a single command failed. The first five come from RFC 2449
// / RFC 3206 response codes, or failing those from the server's text.
enum class ErrorClass {
    Auth,         // [AUTH] or a rejected credential: do not retry until config changes
    InUse,        // [IN-USE]: mailbox locked by another session; retry later
    LoginDelay,   // [LOGIN-DELAY]: logged in too recently; retry after CAPA LOGIN-DELAY
    SysTemp,      // [SYS/TEMP]: transient server problem; retry later
    SysPerm,      // [SYS/PERM]: permanent server problem; needs an admin
    Protocol,     // the server broke the protocol (bad status line, malformed listing)
    TooLong,      // a response line exceeded max_line
    TlsRequired,  // require_stls, but STLS is not offered or was refused
    Disconnected, // the proxy reported the connection closed before the end
    Timeout,      // the proxy reported a timeout
    Other,        // any other -ERR, or bad options
};
std::string_view to_string(ErrorClass c);

// Maps a reply's resp-code (e.g. "SYS/TEMP", case-insensitive) and text to a
// class; `fallback` is used when neither says anything recognisable.
ErrorClass classify_error(std::string_view resp_code, std::string_view text, ErrorClass fallback);

struct ClientOptions {
    std::string username;
    std::string password; // the password, or the OAuth2 access token for XOAuth2/OAuthBearer
    AuthMethod auth = AuthMethod::UserPass;
    bool require_stls = false;        // send STLS before any credential; fail if impossible
    std::size_t pipeline_window = 16; // max RETR/DELE in flight when CAPA has PIPELINING
    std::size_t max_line = 8192;      // longest status/listing line, CRLF included
};

// What CAPA said (RFC 2449 section 6). Replaced by the CAPA after STLS.
struct Capabilities {
    bool received = false; // CAPA answered +OK; if false every flag below is false
    bool top = false;
    bool user = false;
    bool uidl = false;
    bool pipelining = false;
    bool resp_codes = false;
    bool auth_resp_code = false;
    bool stls = false;
    std::vector<std::string> sasl;            // mechanism names, upper-cased
    std::optional<std::uint32_t> login_delay; // seconds
    std::string implementation;
    std::vector<std::string> lines; // every capability line as received
};

struct ListingEntry {
    std::uint32_t msgno = 0;
    std::string uidl; // exactly as the server sent it (may be >70 bytes or odd); empty if unknown
    std::uint64_t size = 0;
    bool operator==(const ListingEntry&) const = default;
};

// Events, in the order they happen.
struct NeedTls {};       // STLS accepted: run the TLS handshake, then call tls_established()
struct Authenticated {}; // login accepted
struct Listing {
    // In LIST order; msgnos may have gaps, UIDLs may repeat. A message LIST
    // shows but UIDL does not gets an empty uidl; UIDL-only numbers are dropped.
    // A malformed line or a msgno listed twice fails the session (Protocol).
    std::vector<ListingEntry> entries;
    bool uidl_supported = false; // false: UIDL -ERR, identify messages by content instead
};
struct MessageBegin {
    std::uint32_t msgno = 0;
    bool headers_only = false; // answer to TOP n 0, not RETR
};
struct MessageData {
    std::uint32_t msgno = 0;
    std::string bytes; // dot-unstuffed, CRLF line ends
    bool headers_only = false;
};
struct MessageEnd {
    std::uint32_t msgno = 0;
    std::uint64_t total_bytes = 0; // sum of this message's MessageData sizes
    bool headers_only = false;
};
struct RetrFailed {
    std::uint32_t msgno = 0;
    ErrorClass error = ErrorClass::Other;
    std::string text;          // the server's text
    bool headers_only = false; // the failed command was TOP
};
struct Deleted {
    std::uint32_t msgno = 0;
};
struct DeleteFailed {
    std::uint32_t msgno = 0;
    std::string text; // the server's text
};
struct Drained {};  // every queued RETR/DELE has been answered
struct Finished {}; // QUIT +OK: session over, deletions committed by the server
struct Failed {
    ErrorClass error = ErrorClass::Other;
    std::string text;      // what failed and the server's text; never a secret
    std::string resp_code; // the reply's RFC 2449 resp-code (e.g. "AUTH"), empty if none
};

using Event = std::variant<NeedTls, Authenticated, Listing, MessageBegin, MessageData, MessageEnd,
                           RetrFailed, Deleted, DeleteFailed, Drained, Finished, Failed>;

// One line for logs; MessageData shows its size, not its bytes.
std::string describe(const Event& e);

class Client {
public:
    enum class State {
        Greeting,     // connected, waiting for the server greeting
        Capa,         // CAPA sent before TLS
        Stls,         // STLS sent
        TlsHandshake, // waiting for the proxy's tls_established(); no bytes expected
        CapaAfterTls, // CAPA re-sent inside TLS
        User,         // USER sent
        Pass,         // PASS sent
        Apop,         // APOP sent
        SaslAuth,     // AUTH sent; exchanging SASL challenges and responses
        Uidl,         // UIDL sent
        List,         // LIST sent
        Transaction,  // Listing delivered; RETR/DELE served as the caller asks
        Quitting,     // QUIT queued or sent; earlier RETR/DELE still answered
        Done,         // QUIT +OK received; terminal
        Failed,       // a Failed event was emitted; terminal
    };

    explicit Client(ClientOptions options);

    // Bytes read from the server (after TLS decryption). Any split is fine.
    void feed(std::span<const char> bytes);
    // Commands to send now, in order; empties the buffer.
    std::string take_output();
    // The next pending event, or nullopt when drained.
    std::optional<Event> next_event();

    // The STLS handshake finished; the Client re-issues CAPA. Ignored (returns
    // false) unless the state is TlsHandshake.
    bool tls_established();
    // Queue RETR / DELE commands (msgno >= 1). Only in Transaction; returns
    // false, and queues nothing, otherwise or when a msgno is 0.
    bool retrieve(const std::vector<std::uint32_t>& msgnos);
    bool dele(const std::vector<std::uint32_t>& msgnos);
    bool top(const std::vector<std::uint32_t>& msgnos);
    // Queue QUIT after everything queued. Only in Transaction; false otherwise.
    bool quit();
    // The proxy saw EOF / an error, or a timer expired.
    void connection_closed();
    void timed_out();

    State state() const { return state_; }
    const Capabilities& capabilities() const { return caps_; }

private:
    enum class CommandKind {
        Retr, // RETR n
        Top,  // TOP n 0
        Dele, // DELE n
        Quit, // QUIT
    };
    friend std::string_view to_string(CommandKind k);
    struct Queued {
        CommandKind kind;
        std::uint32_t msgno;
    };

    void on_reply(Reply reply);
    void on_transaction_reply(Reply reply);
    bool expecting_reply() const;
    ReplyShape expected_shape() const;
    void send(std::string bytes) { out_ += bytes; }
    void emit(Event e) { events_.push_back(std::move(e)); }
    void fail(ErrorClass c, std::string text, std::string resp_code = {});
    void fail_reply(ErrorClass fallback, std::string_view what, const Reply& r);
    void start_auth();
    void sasl_send_response();
    void authenticated();
    bool parse_uidl(const std::vector<std::string>& lines);
    bool parse_list(const std::vector<std::string>& lines, std::vector<ListingEntry>& out);
    bool enqueue(CommandKind kind, const std::vector<std::uint32_t>& msgnos);
    void pump();

    ClientOptions options_;
    State state_ = State::Greeting;
    Capabilities caps_;
    ReplyParser parser_;
    DotDecoder decoder_;
    std::string out_;
    std::deque<Event> events_;
    std::string apop_timestamp_;
    std::string apop_refused_; // why the greeting's "<...>" is unusable for APOP
    std::string sasl_mechanism_;
    std::string sasl_response_; // base64; sent after "+ " when too long for the AUTH line
    bool sasl_response_sent_ = false;
    bool uidl_supported_ = false;
    std::unordered_map<std::uint32_t, std::string> uidls_;
    std::deque<Queued> queue_;    // requested, not yet sent
    std::deque<Queued> inflight_; // sent, reply pending (front answers first)
    bool in_body_ = false;        // inflight_.front() is a RETR whose +OK came; body streaming
    std::uint64_t body_bytes_ = 0;
};

std::string_view to_string(Client::State s);

} // namespace popbridge::protocol::pop3
