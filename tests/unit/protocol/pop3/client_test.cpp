#include "protocol/pop3/client.h"

#include "protocol/pop3/base64.h"
#include "protocol/pop3/command.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace popbridge::protocol::pop3;
using State = Client::State;

namespace {

constexpr const char* kGreeting = "+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n";
constexpr const char* kCapaPipelining =
    "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nPIPELINING\r\nRESP-CODES\r\n"
    "SASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n";
constexpr const char* kCapaPlain = "+OK\r\nUSER\r\nUIDL\r\n.\r\n";
constexpr const char* kCapaStls = "+OK\r\nUSER\r\nSTLS\r\n.\r\n";

ClientOptions options(AuthMethod m = AuthMethod::UserPass) {
    ClientOptions o;
    o.username = "alice";
    o.password = "S3cr3t-PW";
    o.auth = m;
    return o;
}

// Drives a Client like the proxy does and records what it sees. Events are
// normalised to strings; consecutive MessageData of one message are merged so
// the record does not depend on how the input was split.
struct Harness {
    explicit Harness(ClientOptions o, std::size_t chunk = 0) : client(std::move(o)), chunk(chunk) {}

    // Feeds server bytes (in `chunk`-sized pieces if set) and returns what the
    // client sent in response.
    std::string server(std::string_view bytes) {
        if (chunk == 0) {
            client.feed(bytes);
            drain();
        } else {
            for (std::size_t i = 0; i < bytes.size(); i += chunk) {
                client.feed(bytes.substr(i, chunk));
                drain();
            }
        }
        return client.take_output();
    }
    std::string output() {
        drain();
        return client.take_output();
    }
    void drain() {
        while (auto e = client.next_event()) {
            all_text += describe(*e) + "\n";
            if (auto* d = std::get_if<MessageData>(&*e)) {
                if (!events.empty() &&
                    events.back().starts_with("Data " + std::to_string(d->msgno) + " ")) {
                    events.back() += d->bytes;
                } else {
                    events.push_back("Data " + std::to_string(d->msgno) + " " + d->bytes);
                }
                continue;
            }
            if (auto* l = std::get_if<Listing>(&*e)) {
                listing = *l;
            }
            if (auto* f = std::get_if<Failed>(&*e)) {
                failed = *f;
            }
            if (auto* r = std::get_if<RetrFailed>(&*e)) {
                retr_failed = *r;
            }
            events.push_back(describe(*e));
        }
    }
    std::vector<std::string> take_events() { return std::exchange(events, {}); }

    Client client;
    std::size_t chunk;
    std::vector<std::string> events;
    std::string all_text; // every describe() line, for the no-secrets check
    std::optional<Listing> listing;
    std::optional<Failed> failed;
    std::optional<RetrFailed> retr_failed;
};

// Greeting + CAPA + USER/PASS up to the UIDL command.
void login(Harness& h, const char* capa) {
    REQUIRE(h.server(kGreeting) == "CAPA\r\n");
    REQUIRE(h.server(capa) == "USER alice\r\n");
    REQUIRE(h.server("+OK\r\n") == "PASS S3cr3t-PW\r\n");
    REQUIRE(h.server("+OK logged in\r\n") == "UIDL\r\n");
}

// Through LIST to the Transaction state with messages 1..3.
void to_transaction(Harness& h, const char* capa) {
    login(h, capa);
    REQUIRE(h.server("+OK\r\n1 uid-a\r\n2 uid-b\r\n3 uid-c\r\n.\r\n") == "LIST\r\n");
    REQUIRE(h.server("+OK 3 messages\r\n1 10\r\n2 20\r\n3 30\r\n.\r\n").empty());
    REQUIRE(h.client.state() == State::Transaction);
    h.take_events();
}

bool sent_credentials(const std::string& out) {
    return out.find("USER") != std::string::npos || out.find("PASS") != std::string::npos ||
           out.find("AUTH") != std::string::npos || out.find("APOP") != std::string::npos;
}

} // namespace

TEST_CASE("client: full scripted session at every chunk size", "[pop3][client]") {
    // The transcript must be byte-identical whatever the read sizes.
    for (std::size_t chunk = 0; chunk <= 64; ++chunk) {
        INFO("chunk " << chunk);
        Harness h(options(), chunk);
        CHECK(h.output().empty()); // nothing before the greeting
        CHECK(h.server(kGreeting) == "CAPA\r\n");
        CHECK(h.server(kCapaPipelining) == "USER alice\r\n");
        // PASS only after USER's +OK: never pipelined (DESIGN.md data flow 2).
        CHECK(h.server("+OK\r\n") == "PASS S3cr3t-PW\r\n");
        CHECK(h.server("+OK maildrop has 3 messages\r\n") == "UIDL\r\n");
        CHECK(h.server("+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n"
                       "4 a-dup\r\n5 a-dup\r\n.\r\n") == "LIST\r\n");
        CHECK(h.server("+OK 4 messages\r\n1 120\r\n2 200\r\n4 5\r\n5 7 extra\r\n.\r\n").empty());
        CHECK(h.client.state() == State::Transaction);
        CHECK(h.client.capabilities().pipelining);
        REQUIRE(h.listing);
        CHECK(h.listing->uidl_supported);
        CHECK(h.listing->entries == std::vector<ListingEntry>{{1, "whqtswO00WBw418f9t5JxYwZ", 120},
                                                              {2, "QhdPYR:00WBw1Ph7x7", 200},
                                                              {4, "a-dup", 5},
                                                              {5, "a-dup", 7}});

        REQUIRE(h.client.retrieve({1, 2, 4}));
        CHECK(h.output() == "RETR 1\r\nRETR 2\r\nRETR 4\r\n"); // pipelined, one write
        CHECK(h.server("+OK 120 octets\r\nSubject: a\r\n\r\n..dot\r\n.\r\n"
                       "-ERR [SYS/TEMP] no such message\r\n"
                       "+OK\r\nb\r\n.\r\n")
                  .empty());
        REQUIRE(h.client.dele({1, 4}));
        CHECK(h.output() == "DELE 1\r\nDELE 4\r\n");
        CHECK(h.server("+OK message 1 deleted\r\n-ERR [SYS/PERM] cannot\r\n").empty());
        REQUIRE(h.client.quit());
        CHECK(h.output() == "QUIT\r\n");
        CHECK(h.client.state() == State::Quitting);
        CHECK(h.server("+OK bye\r\n").empty());
        CHECK(h.client.state() == State::Done);
        CHECK(h.take_events() == std::vector<std::string>{
                                     "Authenticated",
                                     "Listing 4 messages",
                                     "MessageBegin 1",
                                     "Data 1 Subject: a\r\n\r\n.dot\r\n",
                                     "MessageEnd 1 20 bytes",
                                     "RetrFailed 2 SysTemp: no such message",
                                     "MessageBegin 4",
                                     "Data 4 b\r\n",
                                     "MessageEnd 4 3 bytes",
                                     "Drained",
                                     "Deleted 1",
                                     "DeleteFailed 4: cannot",
                                     "Drained",
                                     "Finished",
                                 });
        // After the end the client ignores everything.
        h.client.connection_closed();
        CHECK(h.take_events().empty());
        CHECK(h.all_text.find("S3cr3t-PW") == std::string::npos);
        CHECK(h.all_text.find("Subject: a") == std::string::npos); // describe() omits bytes
    }
}

TEST_CASE("client: pipelining window bounds RETRs in flight", "[pop3][client]") {
    ClientOptions o = options();
    o.pipeline_window = 2;
    Harness h(o);
    to_transaction(h, kCapaPipelining);
    REQUIRE(h.client.retrieve({1, 2, 3}));
    CHECK(h.output() == "RETR 1\r\nRETR 2\r\n");
    CHECK(h.server("+OK\r\nx\r\n.\r\n") == "RETR 3\r\n"); // one done, one more goes out
    CHECK(h.server("+OK\r\ny\r\n.\r\n+OK\r\nz\r\n.\r\n").empty());
    CHECK(h.take_events() == std::vector<std::string>{"MessageBegin 1", "Data 1 x\r\n",
                                                      "MessageEnd 1 3 bytes", "MessageBegin 2",
                                                      "Data 2 y\r\n", "MessageEnd 2 3 bytes",
                                                      "MessageBegin 3", "Data 3 z\r\n",
                                                      "MessageEnd 3 3 bytes", "Drained"});
}

TEST_CASE("client: without PIPELINING one RETR at a time", "[pop3][client]") {
    Harness h(options());
    to_transaction(h, kCapaPlain);
    REQUIRE(h.client.retrieve({1, 3}));
    CHECK(h.output() == "RETR 1\r\n");
    CHECK(h.server("+OK\r\na\r\n").empty());
    CHECK(h.server(".\r\n") == "RETR 3\r\n");
    CHECK(h.server("+OK\r\n.\r\n").empty());
    REQUIRE(h.client.dele({1, 3}));
    CHECK(h.output() == "DELE 1\r\n");
    CHECK(h.server("+OK\r\n") == "DELE 3\r\n");
    CHECK(h.server("+OK\r\n").empty());
    CHECK(h.take_events() == std::vector<std::string>{"MessageBegin 1", "Data 1 a\r\n",
                                                      "MessageEnd 1 3 bytes", "MessageBegin 3",
                                                      "MessageEnd 3 0 bytes", "Drained",
                                                      "Deleted 1", "Deleted 3", "Drained"});
}

TEST_CASE("client: message bytes stream out per feed, never whole", "[pop3][client]") {
    Harness h(options());
    to_transaction(h, kCapaPlain);
    REQUIRE(h.client.retrieve({2}));
    h.output();
    h.client.feed(std::string_view("+OK\r\nfirst part\r\n"));
    auto e1 = h.client.next_event();
    auto e2 = h.client.next_event();
    REQUIRE(e2);
    CHECK(std::holds_alternative<MessageBegin>(*e1));
    REQUIRE(std::holds_alternative<MessageData>(*e2));
    CHECK(std::get<MessageData>(*e2).bytes == "first part\r\n");
    CHECK_FALSE(h.client.next_event()); // no MessageEnd yet
    h.client.feed(std::string_view("second\n.\r\n"));
    auto e3 = h.client.next_event();
    auto e4 = h.client.next_event();
    REQUIRE(e4);
    CHECK(std::get<MessageData>(*e3).bytes == "second\r\n"); // bare LF made CRLF
    CHECK(std::get<MessageEnd>(*e4).total_bytes == 20);
}

TEST_CASE("client: quit without DELE", "[pop3][client]") {
    Harness h(options());
    to_transaction(h, kCapaPlain);
    REQUIRE(h.client.quit());
    CHECK(h.output() == "QUIT\r\n");
    CHECK_FALSE(h.client.retrieve({1})); // nothing after QUIT
    CHECK_FALSE(h.client.dele({1}));
    CHECK_FALSE(h.client.quit());
    CHECK(h.output().empty());
    h.server("+OK\r\n");
    CHECK(h.take_events() == std::vector<std::string>{"Finished"});
}

TEST_CASE("client: QUIT -ERR fails (deletions may not have happened)", "[pop3][client]") {
    Harness h(options());
    to_transaction(h, kCapaPlain);
    REQUIRE(h.client.dele({1}));
    h.server("+OK\r\n");
    REQUIRE(h.client.quit());
    h.server("-ERR [SYS/TEMP] some deleted messages not removed\r\n");
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::SysTemp);
    CHECK(h.client.state() == State::Failed);
}

TEST_CASE("client: calls in the wrong state are refused", "[pop3][client]") {
    Harness h(options());
    CHECK_FALSE(h.client.retrieve({1}));
    CHECK_FALSE(h.client.dele({1}));
    CHECK_FALSE(h.client.quit());
    CHECK_FALSE(h.client.tls_established());
    CHECK(h.output().empty());
    to_transaction(h, kCapaPlain);
    CHECK_FALSE(h.client.retrieve({0})); // msgno 0 does not exist
    CHECK_FALSE(h.client.tls_established());
    CHECK(h.output().empty());
}

TEST_CASE("client: STLS injection — bytes after +OK are discarded", "[pop3][client][stls]") {
    ClientOptions o = options();
    o.require_stls = true;
    Harness h(o);
    CHECK(h.server(kGreeting) == "CAPA\r\n");
    CHECK(h.server(kCapaStls) == "STLS\r\n");
    // A man in the middle appends plaintext replies after the +OK, in the same read.
    CHECK(h.server("+OK Begin TLS negotiation\r\n+OK\r\n+OK logged in\r\n").empty());
    CHECK(h.take_events() == std::vector<std::string>{"NeedTls"});
    CHECK(h.client.state() == State::TlsHandshake);
    REQUIRE(h.client.tls_established());
    CHECK(h.output() == "CAPA\r\n");
    // Had the injected "+OK" been kept, it would have answered this CAPA.
    CHECK(h.server("+OK\r\nUSER\r\n.\r\n") == "USER alice\r\n");
    CHECK(h.server("+OK\r\n") == "PASS S3cr3t-PW\r\n");
    CHECK(h.client.capabilities().user);
    CHECK_FALSE(h.client.capabilities().stls); // the post-TLS CAPA replaced the old one
    CHECK_FALSE(h.failed);
}

TEST_CASE("client: plaintext fed during the TLS handshake fails", "[pop3][client][stls]") {
    ClientOptions o = options();
    o.require_stls = true;
    Harness h(o);
    h.server(kGreeting);
    h.server(kCapaStls);
    h.server("+OK\r\n");
    CHECK(h.server("+OK injected\r\n").empty());
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::Protocol);
    CHECK_FALSE(h.client.tls_established());
}

TEST_CASE("client: STLS missing or refused fails before any credential", "[pop3][client][stls]") {
    struct Case {
        const char* name;
        std::string capa;
        std::string stls_reply; // empty: STLS is never sent
    };
    const Case cases[] = {
        {"not in CAPA", "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n", ""},
        {"no CAPA at all", "-ERR unknown command\r\n", ""},
        {"refused", kCapaStls, "-ERR TLS not available\r\n"},
        {"refused with code", kCapaStls, "-ERR [SYS/TEMP] later\r\n"},
    };
    for (auto method : {AuthMethod::UserPass, AuthMethod::Apop, AuthMethod::Plain,
                        AuthMethod::XOAuth2, AuthMethod::OAuthBearer}) {
        for (const auto& c : cases) {
            INFO(c.name << " " << to_string(method));
            ClientOptions o = options(method);
            o.require_stls = true;
            Harness h(o);
            std::string sent = h.server(kGreeting);
            sent += h.server(c.capa);
            if (!c.stls_reply.empty()) {
                CHECK(sent == "CAPA\r\nSTLS\r\n");
                sent += h.server(c.stls_reply);
            }
            sent += h.output();
            CHECK_FALSE(sent_credentials(sent));
            REQUIRE(h.failed);
            CHECK(h.failed->error == ErrorClass::TlsRequired);
            CHECK(h.client.state() == State::Failed);
            CHECK(h.take_events() == std::vector<std::string>{describe(Event{*h.failed})});
        }
    }
}

TEST_CASE("client: APOP digest from the greeting (RFC 1939 example)", "[pop3][client][auth]") {
    ClientOptions o = options(AuthMethod::Apop);
    o.username = "mrose";
    o.password = "tanstaaf";
    Harness h(o);
    h.server(kGreeting);
    CHECK(h.server(kCapaPlain) == "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
    CHECK(h.server("+OK mrose's maildrop has 2 messages (320 octets)\r\n") == "UIDL\r\n");
    CHECK(h.take_events() == std::vector<std::string>{"Authenticated"});
}

TEST_CASE("client: APOP without a greeting timestamp sends nothing", "[pop3][client][auth]") {
    Harness h(options(AuthMethod::Apop));
    h.server("+OK Dovecot ready.\r\n");
    CHECK(h.server(kCapaPlain).empty());
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::Auth);
}

TEST_CASE("client: APOP refuses an abusive greeting timestamp (CVE-2007-1558)",
          "[pop3][client][auth][hostile]") {
    // A server picking the challenge bytes can recover the password from APOP digests, so
    // only a plausible msg-id is used; otherwise no APOP and no other credential is sent.
    struct Case {
        const char* name;
        std::string greeting;
        const char* reason; // part of the failure message
    };
    const std::string long_id = "<" + std::string(245, 'a') + "@b.example>";
    const Case cases[] = {
        {"NUL", std::string("+OK ready <1.2\0x@host>\r\n", 24), "0x00"},
        {"non-ASCII", "+OK ready <1.2\xc3\xa9@host>\r\n", "0xc3"},
        {"high bytes only", "+OK ready <\x80\x81\x82\xff@host>\r\n", "0x80"},
        {"control", "+OK ready <1.2\x7f@host>\r\n", "0x7f"},
        {"tab", "+OK ready <1.2\t3@host>\r\n", "0x09"},
        {"missing @", "+OK ready <1896.697170952.dbc.mtview.ca.us>\r\n", "no '@'"},
        {"two @", "+OK ready <a@b@c>\r\n", "several '@'"},
        {"empty left", "+OK ready <@host>\r\n", "empty side"},
        {"empty right", "+OK ready <1.2@>\r\n", "empty side"},
        {"specials", "+OK ready <a(b)@host>\r\n", "atext"},
        {"two pairs", "+OK ready <1.2@a> <3.4@b>\r\n", "several '<'"},
        {"nested", "+OK ready <<1.2@a>>\r\n", "several '<'"},
        {"stray >", "+OK ready <1.2@a> -> go\r\n", "several '>'"},
        {"unterminated", "+OK ready <1.2@a\r\n", "without '>'"},
        {"empty", "+OK ready <>\r\n", "empty <>"},
        {"257 bytes", "+OK ready " + long_id + "\r\n", "longer than 256"},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        Harness h(options(AuthMethod::Apop));
        std::string sent = h.server(c.greeting);
        CHECK(sent == "CAPA\r\n");
        sent = h.server(kCapaPipelining);
        sent += h.output();
        CHECK(sent.empty());
        CHECK_FALSE(sent_credentials(sent));
        REQUIRE(h.failed);
        CHECK(h.failed->error == ErrorClass::Auth);
        CHECK(h.failed->text.find("APOP refused") != std::string::npos);
        CHECK(h.failed->text.find(c.reason) != std::string::npos);
        CHECK(h.client.state() == State::Failed);
        CHECK(h.all_text.find("S3cr3t-PW") == std::string::npos);
    }
    // The limit is inclusive: a 256-byte msg-id is still used.
    const std::string id256 = "<" + std::string(244, 'a') + "@b.example>";
    REQUIRE(id256.size() == 256);
    Harness ok(options(AuthMethod::Apop));
    ok.server("+OK ready " + id256 + "\r\n");
    CHECK(ok.server(kCapaPlain) == "APOP alice " + apop_digest(id256, "S3cr3t-PW") + "\r\n");
    CHECK_FALSE(ok.failed);
    // USER/PASS and SASL do not use the timestamp: an odd greeting does not stop them.
    Harness user(options(AuthMethod::UserPass));
    user.server("+OK ready <a@b> <c@d>\r\n");
    CHECK(user.server(kCapaPlain) == "USER alice\r\n");
}

TEST_CASE("client: AUTH PLAIN with initial response", "[pop3][client][auth]") {
    Harness h(options(AuthMethod::Plain));
    h.server(kGreeting);
    CHECK(h.server(kCapaPipelining) ==
          "AUTH PLAIN " + base64_encode(std::string("\0alice\0S3cr3t-PW", 16)) + "\r\n");
    CHECK(h.server("+OK Logged in.\r\n") == "UIDL\r\n");
    CHECK(h.all_text.find("S3cr3t-PW") == std::string::npos);
}

TEST_CASE("client: AUTH PLAIN failure is an Auth error; the challenge is cancelled",
          "[pop3][client][auth]") {
    Harness h(options(AuthMethod::Plain));
    h.server(kGreeting);
    h.server(kCapaPlain); // no SASL line: try anyway
    CHECK(h.server("+ \r\n") == "*\r\n");
    CHECK(h.server("-ERR [AUTH] Authentication failed.\r\n").empty());
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::Auth);
    CHECK(h.failed->text.find("Authentication failed") != std::string::npos);
}

TEST_CASE("client: XOAUTH2 token too long for the AUTH line waits for +", "[pop3][client][auth]") {
    ClientOptions o = options(AuthMethod::XOAuth2);
    o.password = "ya29." + std::string(300, 'T');
    Harness h(o);
    h.server(kGreeting);
    CHECK(h.server(kCapaPipelining) == "AUTH XOAUTH2\r\n");
    const std::string response = base64_encode("user=alice\x01"
                                               "auth=Bearer " +
                                               o.password + "\x01\x01");
    CHECK(h.server("+ \r\n") == response + "\r\n");
    // Error challenge: answer with an empty line, then the server says -ERR.
    CHECK(h.server("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n") == "\r\n");
    h.server("-ERR [AUTH] Invalid credentials\r\n");
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::Auth);
    CHECK(h.all_text.find(o.password) == std::string::npos);
    CHECK(h.all_text.find(response) == std::string::npos);
}

TEST_CASE("client: OAUTHBEARER with initial response", "[pop3][client][auth]") {
    ClientOptions o = options(AuthMethod::OAuthBearer);
    o.password = "tok";
    Harness h(o);
    h.server(kGreeting);
    CHECK(h.server(kCapaPipelining) == "AUTH OAUTHBEARER " +
                                           base64_encode("n,a=alice,\x01"
                                                         "auth=Bearer tok\x01\x01") +
                                           "\r\n");
    CHECK(h.server("+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n") == "AQ==\r\n");
    h.server("-ERR [AUTH] bad token\r\n");
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::Auth);
}

TEST_CASE("client: SASL mechanism not offered fails before sending", "[pop3][client][auth]") {
    Harness h(options(AuthMethod::XOAuth2));
    h.server(kGreeting);
    CHECK(h.server("+OK\r\nSASL PLAIN LOGIN\r\n.\r\n").empty());
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::Auth);
}

TEST_CASE("client: CR/LF in username or password is refused, not sent", "[pop3][client][auth]") {
    for (bool in_user : {true, false}) {
        ClientOptions o = options();
        (in_user ? o.username : o.password) = "x\r\nDELE 1";
        Harness h(o);
        std::string sent = h.server(kGreeting);
        sent += h.server(kCapaPlain);
        CHECK(sent == "CAPA\r\n");
        REQUIRE(h.failed);
        CHECK(h.failed->error == ErrorClass::Other);
    }
}

TEST_CASE("client: -ERR classification from RESP-CODES and text", "[pop3][client][errors]") {
    struct Case {
        std::string reply;
        ErrorClass expected;
    };
    const Case cases[] = {
        {"-ERR [AUTH] Authentication failed\r\n", ErrorClass::Auth},
        {"-ERR [IN-USE] Do you have another POP session running?\r\n", ErrorClass::InUse},
        {"-ERR [in-use] lower case code\r\n", ErrorClass::InUse},
        {"-ERR [LOGIN-DELAY] wait 15 minutes\r\n", ErrorClass::LoginDelay},
        {"-ERR [SYS/TEMP] database down\r\n", ErrorClass::SysTemp},
        {"-ERR [SYS/PERM] account disabled\r\n", ErrorClass::SysPerm},
        {"-ERR [SYS/PERM/QUOTA] account disabled\r\n", ErrorClass::SysPerm},
        {"-ERR [AUTH/EXPIRED] password expired\r\n", ErrorClass::Auth},
        {"-ERR invalid password\r\n", ErrorClass::Auth}, // PASS fallback
        {"-ERR unable to lock maildrop\r\n", ErrorClass::InUse},
        {"-ERR [UNKNOWN-CODE] temporarily unavailable, try again\r\n", ErrorClass::SysTemp},
    };
    for (const auto& c : cases) {
        INFO(c.reply);
        Harness h(options());
        h.server(kGreeting);
        h.server(kCapaPlain);
        h.server("+OK\r\n");
        CHECK(h.server(c.reply).empty());
        REQUIRE(h.failed);
        CHECK(to_string(h.failed->error) == to_string(c.expected));
        CHECK(h.failed->text.starts_with("PASS rejected: -ERR"));
        CHECK(h.failed->text.find("S3cr3t") == std::string::npos);
    }
    CHECK(classify_error("", "no such message", ErrorClass::Other) == ErrorClass::Other);
    CHECK(classify_error("SYS", "", ErrorClass::Protocol) == ErrorClass::Protocol);
}

TEST_CASE("client: -ERR greeting and failed USER", "[pop3][client][errors]") {
    Harness h(options());
    CHECK(h.server("-ERR [SYS/TEMP] server shutting down\r\n").empty());
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::SysTemp);

    Harness u(options());
    u.server(kGreeting);
    u.server(kCapaPlain);
    CHECK(u.server("-ERR [IN-USE] locked\r\n").empty()); // no PASS after a refused USER
    REQUIRE(u.failed);
    CHECK(u.failed->error == ErrorClass::InUse);
}

TEST_CASE("client: UIDL unsupported falls back to LIST only", "[pop3][client][listing]") {
    Harness h(options());
    login(h, kCapaPlain);
    CHECK(h.server("-ERR unknown command\r\n") == "LIST\r\n");
    h.server("+OK\r\n1 100\r\n2 200\r\n.\r\n");
    REQUIRE(h.listing);
    CHECK_FALSE(h.listing->uidl_supported);
    CHECK(h.listing->entries == std::vector<ListingEntry>{{1, "", 100}, {2, "", 200}});
    CHECK_FALSE(h.failed);
}

TEST_CASE("client: odd UIDLs pass through intact", "[pop3][client][listing]") {
    Harness h(options());
    login(h, kCapaPlain);
    const std::string long_uidl(120, 'u');
    const std::string odd_uidl = "\x7f\x01weird [] uid \xfe";
    h.server("+OK\r\n3 " + long_uidl + "\r\n7  " + odd_uidl + "\r\n..dotted\r\n.\r\n");
    // "..dotted" unstuffs to ".dotted", a malformed line.
    CHECK(h.failed);
    CHECK(h.failed->error == ErrorClass::Protocol);

    Harness g(options());
    login(g, kCapaPlain);
    g.server("+OK\r\n3 " + long_uidl + "\r\n7  " + odd_uidl + "\r\n9 same\r\n10 same\r\n.\r\n");
    g.server("+OK\r\n3 1\r\n7 2\r\n8 3\r\n9 4\r\n10 5\r\n.\r\n");
    REQUIRE(g.listing);
    CHECK(g.listing->entries == std::vector<ListingEntry>{{3, long_uidl, 1},
                                                          {7, odd_uidl, 2},
                                                          {8, "", 3}, // not in UIDL
                                                          {9, "same", 4},
                                                          {10, "same", 5}});
}

TEST_CASE("client: malformed UIDL / LIST lines are Protocol errors", "[pop3][client][listing]") {
    const char* bad_uidl[] = {"x abc",  "0 abc",           "1",         "1 ",
                              "-1 abc", "99999999999 abc", "1 a\r\n1 b"};
    for (const char* line : bad_uidl) {
        INFO(line);
        Harness h(options());
        login(h, kCapaPlain);
        CHECK(h.server(std::string("+OK\r\n") + line + "\r\n.\r\n").empty());
        REQUIRE(h.failed);
        CHECK(h.failed->error == ErrorClass::Protocol);
    }
    const char* bad_list[] = {"1",    "1 x",          "a 10",
                              "1 -5", "1 10\r\n1 11", "1 99999999999999999999999"};
    for (const char* line : bad_list) {
        INFO(line);
        Harness h(options());
        login(h, kCapaPlain);
        h.server("+OK\r\n.\r\n");
        CHECK(h.server(std::string("+OK\r\n") + line + "\r\n.\r\n").empty());
        REQUIRE(h.failed);
        CHECK(h.failed->error == ErrorClass::Protocol);
        CHECK_FALSE(h.listing);
    }
}

TEST_CASE("client: empty mailbox", "[pop3][client][listing]") {
    Harness h(options());
    login(h, kCapaPlain);
    h.server("+OK\r\n.\r\n");
    h.server("+OK 0 messages\r\n.\r\n");
    REQUIRE(h.listing);
    CHECK(h.listing->entries.empty());
    REQUIRE(h.client.quit());
    CHECK(h.output() == "QUIT\r\n");
}

TEST_CASE("client: oversize line is a TooLong failure", "[pop3][client][errors]") {
    ClientOptions o = options();
    o.max_line = 64;
    Harness h(o);
    CHECK(h.server("+OK " + std::string(100, 'x')).empty()); // no CRLF needed to notice
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::TooLong);

    Harness u(options()); // default 8 KiB, inside a UIDL listing
    login(u, kCapaPlain);
    u.server("+OK\r\n1 " + std::string(9000, 'u') + "\r\n.\r\n");
    REQUIRE(u.failed);
    CHECK(u.failed->error == ErrorClass::TooLong);
}

TEST_CASE("client: RETR -ERR is per message; session continues", "[pop3][client]") {
    Harness h(options());
    to_transaction(h, kCapaPlain);
    h.client.retrieve({2, 3});
    CHECK(h.output() == "RETR 2\r\n");
    CHECK(h.server("-ERR no such message\r\n") == "RETR 3\r\n");
    REQUIRE(h.retr_failed);
    CHECK(h.retr_failed->msgno == 2);
    CHECK(h.retr_failed->text == "no such message");
    CHECK(h.client.state() == State::Transaction);
}

TEST_CASE("client: disconnects and timeouts", "[pop3][client][errors]") {
    Harness h(options());
    to_transaction(h, kCapaPlain);
    h.client.retrieve({1});
    h.output();
    h.server("+OK\r\npartial");
    h.client.connection_closed();
    h.drain();
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::Disconnected);
    CHECK(h.failed->text.find("RETR 1") != std::string::npos);
    h.client.connection_closed(); // only one Failed
    h.client.timed_out();
    CHECK(h.take_events().back() == describe(Event{*h.failed}));
    CHECK(h.events.empty());

    Harness t(options());
    t.client.timed_out();
    t.drain();
    REQUIRE(t.failed);
    CHECK(t.failed->error == ErrorClass::Timeout);
}

TEST_CASE("client: unsolicited or garbage replies are Protocol errors", "[pop3][client][errors]") {
    Harness h(options());
    to_transaction(h, kCapaPlain);
    h.server("+OK surprise\r\n"); // nothing in flight
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::Protocol);

    Harness g(options());
    g.server("HTTP/1.1 400 Bad Request\r\n");
    REQUIRE(g.failed);
    CHECK(g.failed->error == ErrorClass::Protocol);

    Harness c(options());
    c.server(kGreeting);
    c.server("+ \r\n"); // SASL continuation outside AUTH
    REQUIRE(c.failed);
    CHECK(c.failed->error == ErrorClass::Protocol);
}

TEST_CASE("client: CAPA -ERR means no capabilities", "[pop3][client]") {
    Harness h(options());
    h.server(kGreeting);
    CHECK(h.server("-ERR unknown command\r\n") == "USER alice\r\n");
    CHECK_FALSE(h.client.capabilities().received);
    CHECK_FALSE(h.client.capabilities().pipelining);
}

TEST_CASE("client: CAPA details", "[pop3][client]") {
    Harness h(options());
    h.server(kGreeting);
    h.server("+OK\r\ntop\r\nLOGIN-DELAY 900\r\nIMPLEMENTATION Shlemazle Plotz v302\r\n"
             "SASL plain xoauth2\r\nEXPIRE 60\r\nAUTH-RESP-CODE\r\n.\r\n");
    const auto& caps = h.client.capabilities();
    CHECK(caps.received);
    CHECK(caps.top);
    CHECK(caps.auth_resp_code);
    CHECK_FALSE(caps.pipelining);
    REQUIRE(caps.login_delay);
    CHECK(*caps.login_delay == 900);
    CHECK(caps.implementation == "Shlemazle Plotz v302");
    CHECK(caps.sasl == std::vector<std::string>{"PLAIN", "XOAUTH2"});
    CHECK(caps.lines.size() == 6);
}

TEST_CASE("client: to_string for every enum", "[pop3][client]") {
    CHECK(to_string(State::Greeting) == "Greeting");
    CHECK(to_string(State::Capa) == "Capa");
    CHECK(to_string(State::Stls) == "Stls");
    CHECK(to_string(State::TlsHandshake) == "TlsHandshake");
    CHECK(to_string(State::CapaAfterTls) == "CapaAfterTls");
    CHECK(to_string(State::User) == "User");
    CHECK(to_string(State::Pass) == "Pass");
    CHECK(to_string(State::Apop) == "Apop");
    CHECK(to_string(State::SaslAuth) == "SaslAuth");
    CHECK(to_string(State::Uidl) == "Uidl");
    CHECK(to_string(State::List) == "List");
    CHECK(to_string(State::Transaction) == "Transaction");
    CHECK(to_string(State::Quitting) == "Quitting");
    CHECK(to_string(State::Done) == "Done");
    CHECK(to_string(State::Failed) == "Failed");
    CHECK(to_string(AuthMethod::UserPass) == "UserPass");
    CHECK(to_string(AuthMethod::Apop) == "Apop");
    CHECK(to_string(AuthMethod::Plain) == "Plain");
    CHECK(to_string(AuthMethod::XOAuth2) == "XOAuth2");
    CHECK(to_string(AuthMethod::OAuthBearer) == "OAuthBearer");
    CHECK(to_string(ErrorClass::Auth) == "Auth");
    CHECK(to_string(ErrorClass::InUse) == "InUse");
    CHECK(to_string(ErrorClass::LoginDelay) == "LoginDelay");
    CHECK(to_string(ErrorClass::SysTemp) == "SysTemp");
    CHECK(to_string(ErrorClass::SysPerm) == "SysPerm");
    CHECK(to_string(ErrorClass::Protocol) == "Protocol");
    CHECK(to_string(ErrorClass::TooLong) == "TooLong");
    CHECK(to_string(ErrorClass::TlsRequired) == "TlsRequired");
    CHECK(to_string(ErrorClass::Disconnected) == "Disconnected");
    CHECK(to_string(ErrorClass::Timeout) == "Timeout");
    CHECK(to_string(ErrorClass::Other) == "Other");
}

TEST_CASE("client: TOP n 0 streams headers flagged headers_only", "[pop3][client][top]") {
    for (std::size_t chunk : {std::size_t(0), std::size_t(1), std::size_t(3)}) {
        Harness h(options(), chunk);
        to_transaction(h, kCapaPipelining);
        REQUIRE(h.client.top({1, 2}));
        CHECK(h.output() == "TOP 1 0\r\nTOP 2 0\r\n"); // pipelined like RETR
        h.server("+OK\r\nSubject: a\r\n..dot\r\n\r\n.\r\n-ERR [SYS/TEMP] no TOP now\r\n");
        CHECK(h.all_text.find("MessageBegin (TOP) 1") != std::string::npos);
        auto ev = h.take_events();
        REQUIRE(ev.size() >= 3);
        CHECK(ev[1] == "Data 1 Subject: a\r\n.dot\r\n\r\n");
        REQUIRE(h.retr_failed);
        CHECK(h.retr_failed->msgno == 2);
        CHECK(h.retr_failed->headers_only);
        CHECK(h.retr_failed->error == ErrorClass::SysTemp);
        CHECK(h.client.state() == State::Transaction);
    }
}

TEST_CASE("client: MessageBegin/End say whether they answer TOP or RETR", "[pop3][client][top]") {
    Client c(options());
    auto drive = [&c](std::string_view in) {
        c.feed(in);
        std::vector<Event> out;
        while (auto e = c.next_event())
            out.push_back(std::move(*e));
        c.take_output();
        return out;
    };
    drive(kGreeting);
    drive(kCapaPlain);
    drive("+OK\r\n");
    drive("+OK\r\n");
    drive("+OK\r\n1 u1\r\n.\r\n");
    drive("+OK\r\n1 10\r\n.\r\n");
    REQUIRE(c.top({1}));
    auto ev = drive("+OK\r\nA: b\r\n\r\n.\r\n");
    REQUIRE(ev.size() >= 3);
    CHECK(std::get<MessageBegin>(ev[0]).headers_only);
    CHECK(std::get<MessageData>(ev[1]).headers_only);
    CHECK(std::get<MessageEnd>(ev[2]).headers_only);
    REQUIRE(c.retrieve({1}));
    ev = drive("+OK\r\nA: b\r\n\r\nbody\r\n.\r\n");
    REQUIRE(ev.size() >= 3);
    CHECK_FALSE(std::get<MessageBegin>(ev[0]).headers_only);
    CHECK_FALSE(std::get<MessageEnd>(ev[2]).headers_only);
    CHECK(std::get<MessageEnd>(ev[2]).total_bytes == 14);
}

TEST_CASE("client: Failed carries the resp-code, upper-cased", "[pop3][client][errors]") {
    Harness h(options());
    h.server(kGreeting);
    h.server(kCapaPlain);
    h.server("+OK\r\n");
    h.server("-ERR [auth] bad password\r\n");
    REQUIRE(h.failed);
    CHECK(h.failed->error == ErrorClass::Auth);
    CHECK(h.failed->resp_code == "AUTH");

    Harness n(options());
    n.server(kGreeting);
    n.server(kCapaPlain);
    n.server("+OK\r\n");
    n.server("-ERR bad password\r\n");
    REQUIRE(n.failed);
    CHECK(n.failed->error == ErrorClass::Auth); // refused credential, but no [AUTH]
    CHECK(n.failed->resp_code.empty());
}
