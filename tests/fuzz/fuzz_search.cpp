// libFuzzer target: SEARCH / UID SEARCH arguments (issue 7 "search-key parser").
//
// Byte 0 picks the command around the fuzzed bytes:
//   bit 0      UID SEARCH instead of SEARCH
//   bits 1-2   0: no CHARSET, 1: CHARSET UTF-8, 2: CHARSET US-ASCII, 3: CHARSET "utf-8"
//   bits 3-4   0: no RETURN, 1: RETURN (), 2: RETURN (MIN MAX), 3: RETURN (COUNT ALL)
// the rest is the search program, followed by CRLF ("a [UID] SEARCH <prefix><bytes>\r\n").
//
// The command is framed by the real tokenizer (post-login limits) and parsed by
// parse_command(); a parsed key is then evaluated against seven fixed messages (RFC 2047
// headers, quoted-printable / base64 bodies, multipart, message/rfc822, dates, sizes, flags,
// keywords, a UID near 2^32) with the real evaluator (protocol/imap/search.cpp and the MIME
// search helpers). The same bytes also go through a whole Session (commands/search.cpp) over
// a FakeBackend holding the same messages. Invariants:
//  - no crash, no sanitizer report; the tree is at most kMaxTreeDepth deep (the parser's
//    nesting limit holds) and has no more nodes than the command has tokens nor than the
//    key limit (bounded work);
//  - evaluating twice gives the same hits, and the resolved-set path equals the on-the-fly
//    path;
//  - every hit is a message of the mailbox (sequence number in 1..N / one of its UIDs);
//  - the Session answers exactly the hits of the direct evaluation: "* SEARCH" lists them,
//    "* ESEARCH" MIN/MAX/COUNT/ALL agree with them; a command that did not parse gets BAD.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/imap/flags.h"
#include "protocol/imap/parse/parse.h"
#include "protocol/imap/search.h"
#include "protocol/imap/server.h"
#include "protocol/imap/tokenizer.h"
#include "protocol/mime/message.h"
#include "tests/fuzz/fake_backend.h"
#include "tests/fuzz/fuzz_util.h"

using namespace popbridge::protocol::imap;
using popbridge::protocol::ParseStatus;
namespace mime = popbridge::protocol::mime;

namespace {

// Parser nesting limit (parse/search.cpp kMaxSearchDepth = 32, depth counted from 0 at a
// top-level key) plus the implicit top-level And.
constexpr std::size_t kMaxTreeDepth = 34;
// parse/search.cpp kMaxSearchKeys.
constexpr std::size_t kMaxKeys = 1000;

struct Fixture {
    std::uint32_t uid;
    std::uint32_t flags;
    std::vector<std::string> keywords;
    std::int64_t internal_date;
    int tz;
    std::uint64_t modseq;
    std::string body;
};

std::vector<Fixture> fixtures() {
    std::vector<Fixture> f;
    f.push_back({20,
                 kFlagSeen | kFlagAnswered,
                 {"$Forwarded"},
                 1709000000,
                 60,
                 40,
                 "Date: Tue, 27 Feb 2024 10:00:00 +0100\r\n"
                 "From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <j@example.de>\r\n"
                 "To: team@example.org, \"Bob\" <bob@example.org>\r\n"
                 "Cc: carol@example.org\r\n"
                 "Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?= and\r\n =?UTF-8?Q?na=C3=AFve?= plans\r\n"
                 "Message-ID: <m20@example.de>\r\n"
                 "MIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                 "R=C3=A9sum=C3=A9 attached, see the soft=\r\nbreak here.\r\n"});
    f.push_back({21,
                 kFlagFlagged | kFlagRecent,
                 {"Work", "$Junk"},
                 946684799,
                 -300,
                 41,
                 "Date: 1 Jan 99 23:59 EST\r\n"
                 "From: alice@example.org\r\n"
                 "Bcc: hidden@example.net\r\n"
                 "Subject: report\r\n"
                 "X-Spam-Level: ****\r\n"
                 "MIME-Version: 1.0\r\n"
                 "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
                 "preamble\r\n--b1\r\n"
                 "Content-Type: text/plain; charset=iso-8859-1\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n"
                 "U+kgdm91cyBwbGHudA0KcXVhcnRlcmx5IG51bWJlcnMNCg==\r\n"
                 "--b1\r\n"
                 "Content-Type: application/pdf; name=\"=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?=\"\r\n"
                 "Content-Disposition: attachment; filename*=UTF-8''%C3%A9t%C3%A9.pdf\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n"
                 "JVBERi0xLjQK\r\n--b1--\r\nepilogue\r\n"});
    f.push_back({22,
                 kFlagDraft,
                 {},
                 1700000000,
                 0,
                 42,
                 "Date: Wed, 15 Nov 2023 00:00:00 +0000\r\n"
                 "From: list@lists.example.com\r\n"
                 "Subject: Fwd: inner\r\n"
                 "Content-Type: message/rfc822\r\n\r\n"
                 "From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.net>\r\n"
                 "Subject: =?UTF-8?B?4pyTIGRvbmU=?=\r\n"
                 "Date: 29 Feb 2024 12:00:00 -1200\r\n"
                 "Content-Type: text/html; charset=us-ascii\r\n\r\n"
                 "<p>inner BODY text</p>\r\n"});
    f.push_back({4000000000u,
                 kFlagDeleted | kFlagSeen,
                 {"work"},
                 -86400,
                 840,
                 43,
                 "Subject:\r\nX-Empty:\r\n\r\n"});
    return f;
}

std::size_t depth_of(const SearchKey& k) {
    std::size_t d = 0;
    for (const SearchKey& c : k.children)
        d = std::max(d, depth_of(c));
    return d + 1;
}

std::size_t nodes_of(const SearchKey& k) {
    std::size_t n = 1;
    for (const SearchKey& c : k.children)
        n += nodes_of(c);
    return n;
}

struct Message {
    MessageMeta meta;
    std::string bytes;
};

// Hits (sequence numbers or UIDs) of `key` over `msgs`, as exec_search computes them.
std::vector<std::uint32_t> evaluate(const SearchKey& key, const std::vector<Message>& msgs,
                                    const SearchScope& scope, bool uid) {
    std::vector<std::uint32_t> hits;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        const Message& m = msgs[i];
        std::unique_ptr<SearchBody> body;
        int loads = 0;
        SearchMessage sm;
        sm.seq = static_cast<std::uint32_t>(i + 1);
        sm.uid = m.meta.uid;
        sm.flags = m.meta.flags;
        sm.keywords = &m.meta.keywords;
        sm.size = m.meta.size;
        sm.internal_date = m.meta.internal_date;
        sm.tz_offset_minutes = m.meta.tz_offset_minutes;
        sm.modseq = m.meta.modseq;
        sm.load = [&]() -> const SearchBody* {
            if (loads++ == 0) {
                body = std::make_unique<SearchBody>();
                body->bytes = m.bytes;
                body->mime = mime::parse_message(std::string_view(body->bytes));
            }
            return body.get();
        };
        if (search_matches(key, sm, scope))
            hits.push_back(uid ? sm.uid : sm.seq);
        if (loads > 0)
            FUZZ_CHECK(search_needs_body(key));
    }
    return hits;
}

std::vector<std::uint32_t> numbers_after(std::string_view line, std::string_view word) {
    std::vector<std::uint32_t> out;
    auto pos = line.find(word);
    if (pos == std::string_view::npos)
        return out;
    std::string_view rest = line.substr(pos + word.size());
    std::size_t end = rest.find(' ');
    std::string_view atom = rest.substr(0, end);
    auto set = SeqSet::parse(atom);
    FUZZ_CHECK(set.has_value());
    for (const SeqRange& r : set->ranges())
        for (std::uint64_t v = r.first; v <= r.last; ++v)
            out.push_back(static_cast<std::uint32_t>(v));
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1 || size > 16384)
        return 0;
    const std::uint8_t mode = data[0];
    const bool uid = mode & 1;
    static constexpr std::string_view kCharsets[] = {"", "CHARSET UTF-8 ", "CHARSET US-ASCII ",
                                                     "CHARSET \"utf-8\" "};
    static constexpr std::string_view kReturns[] = {"", "RETURN () ", "RETURN (MIN MAX) ",
                                                    "RETURN (COUNT ALL) "};
    std::string line = uid ? "a UID SEARCH " : "a SEARCH ";
    line += kReturns[(mode >> 3) & 3];
    line += kCharsets[(mode >> 1) & 3];
    line.append(reinterpret_cast<const char*>(data) + 1, size - 1);
    line += "\r\n";

    // The mailbox: FakeBackend's three messages plus the fixtures, same data both ways.
    popbridge::testing::FakeBackend backend;
    for (Fixture& fx : fixtures()) {
        MessageMeta meta;
        meta.uid = fx.uid;
        meta.flags = fx.flags;
        meta.keywords = fx.keywords;
        meta.internal_date = fx.internal_date;
        meta.tz_offset_minutes = fx.tz;
        meta.modseq = fx.modseq;
        backend.add_message(meta, std::move(fx.body));
    }
    auto snap = backend.select("INBOX", true);
    FUZZ_CHECK(snap.has_value());
    std::vector<Message> msgs;
    for (const MessageMeta& m : snap->messages) {
        auto bytes = backend.read_message(m.uid);
        FUZZ_CHECK(bytes.has_value());
        msgs.push_back({m, std::move(*bytes)});
    }
    backend.reads = 0;

    // Frame the first command with the post-login limits the session will use.
    SessionConfig config;
    config.allow_plaintext_login = true;
    config.post_auth = post_auth_limits(64 * 1024);
    Tokenizer tok(config.post_auth);
    std::size_t used = 0;
    ParseStatus status = ParseStatus::NeedMore;
    while (used < line.size()) {
        auto step = tok.feed(std::span<const char>(line.data() + used, line.size() - used));
        used += step.consumed;
        status = step.status;
        if (status == ParseStatus::Complete || status == ParseStatus::Error)
            break;
        if (step.consumed == 0)
            break; // no progress: not a complete command
    }
    if (status != ParseStatus::Complete)
        return 0; // tokenizer limits and framing are fuzz_imap_tokenizer's business
    RawCommand raw = tok.take_command();
    const std::size_t tokens = raw.tokens.size();
    auto cmd = parse_command(std::move(raw));

    std::vector<std::uint32_t> expect;
    bool parsed = cmd.has_value() && std::holds_alternative<SearchArgs>(cmd->args);
    if (parsed) {
        const SearchArgs& args = std::get<SearchArgs>(cmd->args);
        FUZZ_CHECK(args.uid == uid);
        FUZZ_CHECK(args.key.kind == SearchKind::And && !args.key.children.empty());
        FUZZ_CHECK(depth_of(args.key) <= kMaxTreeDepth);
        FUZZ_CHECK(nodes_of(args.key) <= tokens + 1);
        FUZZ_CHECK(nodes_of(args.key) <= kMaxKeys + 1);

        SearchScope scope{static_cast<std::uint32_t>(msgs.size()), msgs.back().meta.uid};
        auto lazy = evaluate(args.key, msgs, scope, uid);
        SearchKey resolved = args.key;
        resolve_search_sets(resolved, scope);
        expect = evaluate(resolved, msgs, scope, uid);
        FUZZ_CHECK(evaluate(resolved, msgs, scope, uid) == expect);
        FUZZ_CHECK(lazy == expect);
        std::uint32_t prev = 0;
        for (std::uint32_t h : expect) {
            FUZZ_CHECK(h > prev); // ascending, no duplicates
            prev = h;
            bool member = false;
            for (std::size_t i = 0; i < msgs.size(); ++i)
                member = member || (uid ? msgs[i].meta.uid == h : i + 1 == h);
            FUZZ_CHECK(member);
        }
    }

    // FUZZ_SEARCH_DEBUG=1 shows what a reproducer did.
    static const bool debug = std::getenv("FUZZ_SEARCH_DEBUG") != nullptr;
    if (debug) {
        std::fprintf(stderr, "%s -> %s:", line.c_str(), parsed ? "parsed" : "not parsed");
        for (std::uint32_t h : expect)
            std::fprintf(stderr, " %u", h);
        std::fprintf(stderr, "\n");
    }

    // The same command through a whole session (commands/search.cpp).
    Session session(backend, config);
    (void)session.take_output();
    session.feed(std::string_view("L LOGIN alice secret\r\nS SELECT INBOX\r\n"));
    std::string hello = session.take_output();
    FUZZ_CHECK(hello.find("S OK") != std::string::npos);
    session.feed(std::string_view(line).substr(0, used));
    std::string out;
    for (int guard = 0; guard < 1000; ++guard) {
        std::string o = session.take_output();
        out += o;
        if (o.empty() && !session.input_blocked())
            break;
        session.pump();
    }
    // Each message is read at most once per SEARCH, and only when a key needs its content.
    FUZZ_CHECK(backend.reads <= msgs.size());
    if (!parsed) {
        FUZZ_CHECK(out.starts_with("a BAD ") || out.find("\r\na BAD ") != std::string::npos);
        FUZZ_CHECK(out.find("* SEARCH") == std::string::npos);
        FUZZ_CHECK(out.find("* ESEARCH") == std::string::npos);
        return 0;
    }
    const SearchArgs& args = std::get<SearchArgs>(cmd->args);
    if (args.unsupported_charset) { // RFC 3501 6.4.4: NO [BADCHARSET], no results
        FUZZ_CHECK(out.find("a NO [BADCHARSET") != std::string::npos);
        FUZZ_CHECK(out.find("* SEARCH") == std::string::npos);
        FUZZ_CHECK(out.find("* ESEARCH") == std::string::npos);
        return 0;
    }
    FUZZ_CHECK(out.find("a OK") != std::string::npos);
    std::size_t at = out.find(args.ret ? "* ESEARCH " : "* SEARCH");
    FUZZ_CHECK(at != std::string::npos);
    std::string_view resp(out);
    resp = resp.substr(at, resp.find("\r\n", at) - at);
    if (!args.ret) {
        std::vector<std::uint32_t> got;
        std::string_view rest = resp.substr(8);
        while (!rest.empty() && rest.front() == ' ') {
            rest.remove_prefix(1);
            if (rest.empty() || rest.front() == '(')
                break; // (MODSEQ n)
            std::uint32_t v = 0;
            while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
                v = v * 10 + static_cast<std::uint32_t>(rest.front() - '0');
                rest.remove_prefix(1);
            }
            got.push_back(v);
        }
        FUZZ_CHECK(got == expect);
    } else {
        if (args.ret->count) {
            auto pos = resp.find(" COUNT ");
            FUZZ_CHECK(pos != std::string_view::npos);
            FUZZ_CHECK(std::stoul(std::string(resp.substr(pos + 7))) == expect.size());
        }
        if (!expect.empty()) {
            if (args.ret->min)
                FUZZ_CHECK(numbers_after(resp, " MIN ") ==
                           std::vector<std::uint32_t>{expect.front()});
            if (args.ret->max)
                FUZZ_CHECK(numbers_after(resp, " MAX ") ==
                           std::vector<std::uint32_t>{expect.back()});
            if (args.ret->all)
                FUZZ_CHECK(numbers_after(resp, " ALL ") == expect);
        } else {
            FUZZ_CHECK(resp.find(" MIN ") == std::string_view::npos);
            FUZZ_CHECK(resp.find(" ALL ") == std::string_view::npos);
        }
    }
    return 0;
}
