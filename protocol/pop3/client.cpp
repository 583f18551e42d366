#include "protocol/pop3/client.h"

#include "protocol/common/wipe.h"
#include "protocol/pop3/base64.h"
#include "protocol/pop3/command.h"

#include <algorithm>
#include <charconv>
#include <unordered_set>
#include <utility>

namespace popbridge::protocol::pop3 {
namespace {

std::string upper(std::string_view s) {
    std::string u(s);
    for (char& c : u) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return u;
}

std::string lower(std::string_view s) {
    std::string l(s);
    for (char& c : l) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return l;
}

// Splits on runs of spaces/tabs.
std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) {
            ++i;
        }
        const std::size_t start = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t') {
            ++i;
        }
        if (i > start) {
            out.push_back(s.substr(start, i - start));
        }
    }
    return out;
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
    if (s.empty() || s.size() > 20) {
        return false;
    }
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && ptr == s.data() + s.size();
}

// "msgno SP rest": the message number and what follows the separating blanks.
bool split_listing_line(std::string_view line, std::uint32_t& msgno, std::string_view& rest) {
    const std::size_t sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos || !parse_number(line.substr(0, sp), msgno) || msgno == 0) {
        return false;
    }
    rest = line.substr(sp);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) {
        rest.remove_prefix(1);
    }
    return !rest.empty();
}

Capabilities parse_capa(const std::vector<std::string>& lines) {
    Capabilities caps;
    caps.received = true;
    caps.lines = lines;
    for (const auto& line : lines) {
        const auto w = words(line);
        if (w.empty()) {
            continue;
        }
        const std::string key = upper(w[0]);
        if (key == "TOP") {
            caps.top = true;
        } else if (key == "USER") {
            caps.user = true;
        } else if (key == "UIDL") {
            caps.uidl = true;
        } else if (key == "PIPELINING") {
            caps.pipelining = true;
        } else if (key == "RESP-CODES") {
            caps.resp_codes = true;
        } else if (key == "AUTH-RESP-CODE") {
            caps.auth_resp_code = true;
        } else if (key == "STLS") {
            caps.stls = true;
        } else if (key == "SASL") {
            for (std::size_t i = 1; i < w.size(); ++i) {
                caps.sasl.push_back(upper(w[i]));
            }
        } else if (key == "LOGIN-DELAY" && w.size() >= 2) {
            std::uint32_t delay = 0;
            if (parse_number(w[1], delay)) {
                caps.login_delay = delay;
            }
        } else if (key == "IMPLEMENTATION") {
            const std::size_t pos = line.find(w[0]) + w[0].size();
            std::string_view rest = std::string_view(line).substr(pos);
            while (!rest.empty() && rest.front() == ' ') {
                rest.remove_prefix(1);
            }
            caps.implementation = std::string(rest);
        }
    }
    return caps;
}

} // namespace

std::string_view to_string(AuthMethod m) {
    switch (m) {
    case AuthMethod::UserPass:
        return "UserPass";
    case AuthMethod::Apop:
        return "Apop";
    case AuthMethod::Plain:
        return "Plain";
    case AuthMethod::XOAuth2:
        return "XOAuth2";
    case AuthMethod::OAuthBearer:
        return "OAuthBearer";
    }
    return "?";
}

std::string_view to_string(ErrorClass c) {
    switch (c) {
    case ErrorClass::Auth:
        return "Auth";
    case ErrorClass::InUse:
        return "InUse";
    case ErrorClass::LoginDelay:
        return "LoginDelay";
    case ErrorClass::SysTemp:
        return "SysTemp";
    case ErrorClass::SysPerm:
        return "SysPerm";
    case ErrorClass::Protocol:
        return "Protocol";
    case ErrorClass::TooLong:
        return "TooLong";
    case ErrorClass::TlsRequired:
        return "TlsRequired";
    case ErrorClass::Disconnected:
        return "Disconnected";
    case ErrorClass::Timeout:
        return "Timeout";
    case ErrorClass::Other:
        return "Other";
    }
    return "?";
}

std::string_view to_string(Client::State s) {
    switch (s) {
    case Client::State::Greeting:
        return "Greeting";
    case Client::State::Capa:
        return "Capa";
    case Client::State::Stls:
        return "Stls";
    case Client::State::TlsHandshake:
        return "TlsHandshake";
    case Client::State::CapaAfterTls:
        return "CapaAfterTls";
    case Client::State::User:
        return "User";
    case Client::State::Pass:
        return "Pass";
    case Client::State::Apop:
        return "Apop";
    case Client::State::SaslAuth:
        return "SaslAuth";
    case Client::State::Uidl:
        return "Uidl";
    case Client::State::List:
        return "List";
    case Client::State::Transaction:
        return "Transaction";
    case Client::State::Quitting:
        return "Quitting";
    case Client::State::Done:
        return "Done";
    case Client::State::Failed:
        return "Failed";
    }
    return "?";
}

std::string_view to_string(Client::CommandKind k) {
    switch (k) {
    case Client::CommandKind::Retr:
        return "RETR";
    case Client::CommandKind::Top:
        return "TOP";
    case Client::CommandKind::Dele:
        return "DELE";
    case Client::CommandKind::Quit:
        return "QUIT";
    }
    return "?";
}

ErrorClass classify_error(std::string_view resp_code, std::string_view text, ErrorClass fallback) {
    const std::string code = upper(resp_code);
    const std::string_view first = std::string_view(code).substr(0, code.find('/'));
    if (first == "AUTH") {
        return ErrorClass::Auth;
    }
    if (first == "IN-USE") {
        return ErrorClass::InUse;
    }
    if (first == "LOGIN-DELAY") {
        return ErrorClass::LoginDelay;
    }
    if (code == "SYS/TEMP" || code.starts_with("SYS/TEMP/")) {
        return ErrorClass::SysTemp;
    }
    if (code == "SYS/PERM" || code.starts_with("SYS/PERM/")) {
        return ErrorClass::SysPerm;
    }
    // Servers without RESP-CODES: the usual wording of RFC 1939 era servers.
    const std::string t = lower(text);
    auto has = [&t](std::string_view w) { return t.find(w) != std::string::npos; };
    if (has("in use") || has("lock") || has("busy")) {
        return ErrorClass::InUse;
    }
    if (has("login delay") || has("too soon") || has("too often")) {
        return ErrorClass::LoginDelay;
    }
    if (has("try again") || has("temporar")) {
        return ErrorClass::SysTemp;
    }
    return fallback;
}

std::string describe(const Event& e) {
    struct Visitor {
        std::string operator()(const NeedTls&) const { return "NeedTls"; }
        std::string operator()(const Authenticated&) const { return "Authenticated"; }
        std::string operator()(const Listing& l) const {
            return "Listing " + std::to_string(l.entries.size()) + " messages" +
                   (l.uidl_supported ? "" : " (no UIDL)");
        }
        std::string operator()(const MessageBegin& m) const {
            return std::string(m.headers_only ? "MessageBegin (TOP) " : "MessageBegin ") +
                   std::to_string(m.msgno);
        }
        std::string operator()(const MessageData& m) const {
            return "MessageData " + std::to_string(m.msgno) + " " + std::to_string(m.bytes.size()) +
                   " bytes";
        }
        std::string operator()(const MessageEnd& m) const {
            return "MessageEnd " + std::to_string(m.msgno) + " " + std::to_string(m.total_bytes) +
                   " bytes";
        }
        std::string operator()(const RetrFailed& m) const {
            return "RetrFailed " + std::to_string(m.msgno) + " " + std::string(to_string(m.error)) +
                   ": " + m.text;
        }
        std::string operator()(const Deleted& m) const {
            return "Deleted " + std::to_string(m.msgno);
        }
        std::string operator()(const DeleteFailed& m) const {
            return "DeleteFailed " + std::to_string(m.msgno) + ": " + m.text;
        }
        std::string operator()(const Drained&) const { return "Drained"; }
        std::string operator()(const Finished&) const { return "Finished"; }
        std::string operator()(const Failed& f) const {
            return "Failed " + std::string(to_string(f.error)) + ": " + f.text;
        }
    };
    return std::visit(Visitor{}, e);
}

Client::Client(ClientOptions options) : options_(std::move(options)), parser_(options_.max_line) {}

std::string Client::take_output() {
    return std::exchange(out_, std::string());
}

std::optional<Event> Client::next_event() {
    if (events_.empty()) {
        return std::nullopt;
    }
    Event e = std::move(events_.front());
    events_.pop_front();
    return e;
}

void Client::fail(ErrorClass c, std::string text, std::string resp_code) {
    if (state_ == State::Done || state_ == State::Failed) {
        return;
    }
    state_ = State::Failed;
    queue_.clear();
    inflight_.clear();
    in_body_ = false;
    emit(Failed{c, std::move(text), std::move(resp_code)});
}

void Client::fail_reply(ErrorClass fallback, std::string_view what, const Reply& r) {
    std::string text(what);
    text += " rejected: -ERR";
    if (!r.resp_code.empty()) {
        text += " [" + r.resp_code + "]";
    }
    if (!r.text.empty()) {
        text += " " + r.text;
    }
    fail(classify_error(r.resp_code, r.text, fallback), std::move(text), upper(r.resp_code));
}

bool Client::expecting_reply() const {
    switch (state_) {
    case State::TlsHandshake:
    case State::Done:
    case State::Failed:
        return false;
    case State::Transaction:
    case State::Quitting:
        return !inflight_.empty();
    default:
        return true;
    }
}

ReplyShape Client::expected_shape() const {
    switch (state_) {
    case State::Capa:
    case State::CapaAfterTls:
    case State::Uidl:
    case State::List:
        return ReplyShape::MultiLineIfOk;
    default:
        return ReplyShape::StatusLine; // RETR bodies go through decoder_
    }
}

void Client::feed(std::span<const char> bytes) {
    std::string_view in(bytes.data(), bytes.size());
    while (!in.empty() && state_ != State::Done && state_ != State::Failed) {
        if (!expecting_reply()) {
            fail(ErrorClass::Protocol, state_ == State::TlsHandshake
                                           ? "server sent data before the TLS handshake"
                                           : "server sent data nobody asked for");
            return;
        }
        if (in_body_) {
            const std::uint32_t msgno = inflight_.front().msgno;
            const bool top = inflight_.front().kind == CommandKind::Top;
            std::string chunk;
            const auto step = decoder_.decode(in, chunk);
            in.remove_prefix(step.consumed);
            body_bytes_ += chunk.size();
            if (!chunk.empty()) {
                emit(MessageData{msgno, std::move(chunk), top});
            }
            if (step.finished) {
                in_body_ = false;
                emit(MessageEnd{msgno, body_bytes_, top});
                inflight_.pop_front();
                pump();
            }
            continue;
        }
        std::size_t consumed = 0;
        const ParseStatus st = parser_.parse(in, expected_shape(), consumed);
        in.remove_prefix(consumed);
        if (st == ParseStatus::NeedMore) {
            break;
        }
        if (st == ParseStatus::Error) {
            fail(parser_.line_too_long() ? ErrorClass::TooLong : ErrorClass::Protocol,
                 std::string(to_string(state_)) + ": " + parser_.error());
            return;
        }
        const bool was_stls = state_ == State::Stls;
        on_reply(parser_.take());
        if (was_stls && state_ == State::TlsHandshake) {
            // RFC 2595 / CVE-2011-0411 class: anything after the +OK was sent
            // in plaintext before TLS and could be an attacker's; drop it.
            return;
        }
    }
}

void Client::on_reply(Reply r) {
    if (r.status == ReplyStatus::Continue && state_ != State::SaslAuth) {
        fail(ErrorClass::Protocol, std::string(to_string(state_)) + ": unexpected \"+ \" reply");
        return;
    }
    const bool ok = r.status == ReplyStatus::Ok;
    switch (state_) {
    case State::Greeting:
        if (!ok) {
            fail_reply(ErrorClass::Other, "greeting", r);
            return;
        }
        {
            ApopTimestamp ts = parse_apop_timestamp(r.text);
            apop_timestamp_ = std::move(ts.value);
            apop_refused_ = std::move(ts.refused);
        }
        send(cmd_capa());
        state_ = State::Capa;
        return;
    case State::Capa:
        caps_ = ok ? parse_capa(r.lines) : Capabilities{};
        if (!options_.require_stls) {
            start_auth();
            return;
        }
        if (!caps_.stls) {
            fail(ErrorClass::TlsRequired, caps_.received ? "server does not offer STLS in CAPA"
                                                         : "server has no CAPA, so no STLS");
            return;
        }
        send(cmd_stls());
        state_ = State::Stls;
        return;
    case State::Stls:
        if (!ok) {
            fail(ErrorClass::TlsRequired, "STLS refused: -ERR " + r.text);
            return;
        }
        state_ = State::TlsHandshake;
        emit(NeedTls{});
        return;
    case State::CapaAfterTls:
        caps_ = ok ? parse_capa(r.lines) : Capabilities{};
        start_auth();
        return;
    case State::User:
        if (!ok) {
            fail_reply(ErrorClass::Auth, "USER", r);
            return;
        }
        send(cmd_pass(options_.password));
        state_ = State::Pass;
        return;
    case State::Pass:
    case State::Apop:
        if (!ok) {
            fail_reply(ErrorClass::Auth, state_ == State::Pass ? "PASS" : "APOP", r);
            return;
        }
        authenticated();
        return;
    case State::SaslAuth:
        if (r.status == ReplyStatus::Continue) {
            sasl_send_response();
            return;
        }
        if (!ok) {
            fail_reply(ErrorClass::Auth, "AUTH " + sasl_mechanism_, r);
            return;
        }
        authenticated();
        return;
    case State::Uidl:
        uidl_supported_ = ok;
        if (ok && !parse_uidl(r.lines)) {
            return;
        }
        send(cmd_list());
        state_ = State::List;
        return;
    case State::List: {
        if (!ok) {
            fail_reply(ErrorClass::Other, "LIST", r);
            return;
        }
        Listing listing;
        listing.uidl_supported = uidl_supported_;
        if (!parse_list(r.lines, listing.entries)) {
            return;
        }
        uidls_.clear();
        state_ = State::Transaction;
        emit(std::move(listing));
        return;
    }
    case State::Transaction:
    case State::Quitting:
        on_transaction_reply(std::move(r));
        return;
    case State::TlsHandshake:
    case State::Done:
    case State::Failed:
        return; // feed() never parses a reply in these states
    }
}

void Client::on_transaction_reply(Reply r) {
    const Queued cmd = inflight_.front();
    const bool ok = r.status == ReplyStatus::Ok;
    switch (cmd.kind) {
    case CommandKind::Retr:
    case CommandKind::Top: {
        const bool top = cmd.kind == CommandKind::Top;
        if (ok) {
            emit(MessageBegin{cmd.msgno, top});
            decoder_.reset();
            body_bytes_ = 0;
            in_body_ = true;
            return; // popped when the body ends
        }
        emit(RetrFailed{cmd.msgno, classify_error(r.resp_code, r.text, ErrorClass::Other), r.text,
                        top});
        break;
    }
    case CommandKind::Dele:
        if (ok) {
            emit(Deleted{cmd.msgno});
        } else {
            emit(DeleteFailed{cmd.msgno, r.text});
        }
        break;
    case CommandKind::Quit:
        inflight_.pop_front();
        if (!ok) {
            // RFC 1939 6: the server may have failed to remove DELE'd messages.
            fail_reply(ErrorClass::Other, "QUIT", r);
            return;
        }
        state_ = State::Done;
        emit(Finished{});
        return;
    }
    inflight_.pop_front();
    pump();
}

void Client::start_auth() {
    const bool need_safe_user =
        options_.auth == AuthMethod::UserPass || options_.auth == AuthMethod::Apop;
    if (need_safe_user && !is_safe_argument(options_.username)) {
        fail(ErrorClass::Other, "username is empty or contains CR, LF or NUL");
        return;
    }
    switch (options_.auth) {
    case AuthMethod::UserPass:
        if (!is_safe_argument(options_.password)) {
            fail(ErrorClass::Other, "password is empty or contains CR, LF or NUL");
            return;
        }
        send(cmd_user(options_.username));
        state_ = State::User; // PASS waits for USER's +OK (never pipelined)
        return;
    case AuthMethod::Apop:
        // A crafted challenge lets the server recover the password from our digests
        // (CVE-2007-1558): refuse, and do not fall back to another way of sending it.
        if (!apop_refused_.empty()) {
            fail(ErrorClass::Auth,
                 "APOP refused: the greeting timestamp is not a plausible msg-id (" +
                     apop_refused_ + ")");
            return;
        }
        if (apop_timestamp_.empty()) {
            fail(ErrorClass::Auth, "APOP configured but the greeting has no <timestamp>");
            return;
        }
        send(cmd_apop(options_.username, apop_digest(apop_timestamp_, options_.password)));
        state_ = State::Apop;
        return;
    case AuthMethod::Plain:
    case AuthMethod::XOAuth2:
    case AuthMethod::OAuthBearer: {
        std::string raw;
        if (options_.auth == AuthMethod::Plain) {
            sasl_mechanism_ = "PLAIN";
            raw = sasl_plain(options_.username, options_.password);
        } else if (options_.auth == AuthMethod::XOAuth2) {
            sasl_mechanism_ = "XOAUTH2";
            raw = sasl_xoauth2(options_.username, options_.password);
        } else {
            sasl_mechanism_ = "OAUTHBEARER";
            raw = sasl_oauthbearer(options_.username, options_.password);
        }
        // Only refuse when the server did list its mechanisms and ours is missing.
        if (caps_.received && !caps_.sasl.empty() &&
            std::find(caps_.sasl.begin(), caps_.sasl.end(), sasl_mechanism_) == caps_.sasl.end()) {
            fail(ErrorClass::Auth, "server does not offer SASL " + sasl_mechanism_);
            return;
        }
        sasl_response_ = base64_encode(raw);
        protocol::wipe(raw);
        std::string line = cmd_auth(sasl_mechanism_, sasl_response_);
        if (line.size() <= kMaxAuthCommandLine) {
            send(std::move(line));
            sasl_response_sent_ = true;
        } else {
            send(cmd_auth(sasl_mechanism_, ""));
            sasl_response_sent_ = false;
        }
        state_ = State::SaslAuth;
        return;
    }
    }
}

void Client::sasl_send_response() {
    if (!sasl_response_sent_) {
        send(sasl_response_ + "\r\n");
        sasl_response_sent_ = true;
        return;
    }
    // A challenge after our credentials carries the server's error details
    // (RFC 7628 3.2.3, XOAUTH2); answer so it sends its -ERR. For PLAIN
    // there is nothing more to say, so cancel (RFC 5034 4: "*").
    if (options_.auth == AuthMethod::OAuthBearer) {
        send("AQ==\r\n"); // base64 of %x01
    } else if (options_.auth == AuthMethod::XOAuth2) {
        send("\r\n");
    } else {
        send("*\r\n");
    }
}

void Client::authenticated() {
    protocol::wipe(sasl_response_);
    emit(Authenticated{});
    send(cmd_uidl());
    state_ = State::Uidl;
}

bool Client::parse_uidl(const std::vector<std::string>& lines) {
    uidls_.clear();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::uint32_t msgno = 0;
        std::string_view rest;
        if (!split_listing_line(lines[i], msgno, rest)) {
            fail(ErrorClass::Protocol, "malformed UIDL line " + std::to_string(i + 1));
            return false;
        }
        if (!uidls_.emplace(msgno, std::string(rest)).second) {
            fail(ErrorClass::Protocol, "UIDL lists message " + std::to_string(msgno) + " twice");
            return false;
        }
    }
    return true;
}

bool Client::parse_list(const std::vector<std::string>& lines, std::vector<ListingEntry>& out) {
    std::unordered_set<std::uint32_t> seen;
    out.reserve(lines.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::uint32_t msgno = 0;
        std::string_view rest;
        std::uint64_t size = 0;
        if (!split_listing_line(lines[i], msgno, rest) ||
            !parse_number(rest.substr(0, rest.find_first_of(" \t")), size)) {
            fail(ErrorClass::Protocol, "malformed LIST line " + std::to_string(i + 1));
            return false;
        }
        if (!seen.insert(msgno).second) {
            fail(ErrorClass::Protocol, "LIST lists message " + std::to_string(msgno) + " twice");
            return false;
        }
        ListingEntry entry{msgno, {}, size};
        if (auto it = uidls_.find(msgno); it != uidls_.end()) {
            entry.uidl = std::move(it->second);
        }
        out.push_back(std::move(entry));
    }
    return true;
}

bool Client::tls_established() {
    if (state_ != State::TlsHandshake) {
        return false;
    }
    parser_.reset();
    send(cmd_capa());
    state_ = State::CapaAfterTls;
    return true;
}

bool Client::enqueue(CommandKind kind, const std::vector<std::uint32_t>& msgnos) {
    if (state_ != State::Transaction ||
        std::find(msgnos.begin(), msgnos.end(), 0u) != msgnos.end()) {
        return false;
    }
    for (auto n : msgnos) {
        queue_.push_back(Queued{kind, n});
    }
    pump();
    return true;
}

bool Client::retrieve(const std::vector<std::uint32_t>& msgnos) {
    return enqueue(CommandKind::Retr, msgnos);
}

bool Client::dele(const std::vector<std::uint32_t>& msgnos) {
    return enqueue(CommandKind::Dele, msgnos);
}

bool Client::top(const std::vector<std::uint32_t>& msgnos) {
    return enqueue(CommandKind::Top, msgnos);
}

bool Client::quit() {
    if (state_ != State::Transaction) {
        return false;
    }
    queue_.push_back(Queued{CommandKind::Quit, 0});
    state_ = State::Quitting;
    pump();
    return true;
}

void Client::pump() {
    const std::size_t window =
        caps_.pipelining ? std::max<std::size_t>(1, options_.pipeline_window) : 1;
    while (!queue_.empty() && inflight_.size() < window) {
        const Queued q = queue_.front();
        queue_.pop_front();
        switch (q.kind) {
        case CommandKind::Retr:
            send(cmd_retr(q.msgno));
            break;
        case CommandKind::Top:
            send(cmd_top(q.msgno, 0));
            break;
        case CommandKind::Dele:
            send(cmd_dele(q.msgno));
            break;
        case CommandKind::Quit:
            send(cmd_quit());
            break;
        }
        inflight_.push_back(q);
    }
    if (queue_.empty() && inflight_.empty() && state_ == State::Transaction) {
        emit(Drained{});
    }
}

void Client::connection_closed() {
    std::string text = "connection closed in state " + std::string(to_string(state_));
    if (in_body_) {
        text += " during RETR " + std::to_string(inflight_.front().msgno);
    }
    fail(ErrorClass::Disconnected, std::move(text));
}

void Client::timed_out() {
    fail(ErrorClass::Timeout, "timeout in state " + std::string(to_string(state_)));
}

} // namespace popbridge::protocol::pop3
