// libFuzzer target: a whole IMAP server session (protocol/imap/server.h) over a fake Backend,
// before and after login.
//
// Byte 0: bit 0 logs in and selects INBOX first (post-login surface), bit 1 uses a small
// output high-water mark (exercises FETCH batching and pump()). Byte 1: chunking. The rest is
// what the client sends. Invariants:
//  - no crash, no sanitizer report, no unbounded loop;
//  - output stays bounded relative to input (no amplification beyond a fixed factor);
//  - at most max_bad_commands tagged BAD replies (counted afresh after a login, which raises
//    the limit from 3 to 20), then "* BYE" and wants_close();
//  - after wants_close() further input produces no output.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/imap/server.h"
#include "tests/fuzz/fake_backend.h"
#include "tests/fuzz/fuzz_util.h"

using namespace popbridge::protocol::imap;

namespace {

// Tagged BAD lines in `out` ("<tag> BAD ..." at a line start, not inside a literal: the fake
// messages contain no " BAD ").
std::size_t count_bad(std::string_view out) {
    std::size_t n = 0;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t eol = out.find("\r\n", pos);
        std::string_view line =
            out.substr(pos, eol == std::string_view::npos ? out.size() - pos : eol - pos);
        std::size_t sp = line.find(' ');
        if (sp != std::string_view::npos && line.substr(sp).starts_with(" BAD ") &&
            !line.starts_with("* "))
            ++n;
        if (eol == std::string_view::npos)
            break;
        pos = eol + 2;
    }
    return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    const bool logged_in = data[0] & 1;
    SessionConfig config;
    config.allow_plaintext_login = true;
    if (data[0] & 2)
        config.output_high_water = 256;
    config.post_auth = post_auth_limits(64 * 1024);

    popbridge::testing::FakeBackend backend;
    Session session(backend, config);
    std::string out = session.take_output();
    FUZZ_CHECK(out.starts_with("* OK"));

    if (logged_in) {
        session.feed(std::string_view("L LOGIN alice secret\r\nS SELECT INBOX\r\n"));
        std::string o = session.take_output();
        FUZZ_CHECK(o.find("L OK") != std::string::npos);
        FUZZ_CHECK(o.find("S OK") != std::string::npos);
    }

    std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
    popbridge::fuzz::Chunker chunks(input, data[1]);
    std::string output;
    bool closed = false;
    while (!chunks.done()) {
        auto c = chunks.next();
        session.feed(c);
        if (closed) {
            FUZZ_CHECK(session.take_output().empty());
            continue;
        }
        // Drain like the proxy does: write everything, pump while the session has more.
        for (int guard = 0;; ++guard) {
            std::string o = session.take_output();
            output += o;
            if (session.wants_close()) {
                closed = true;
                break;
            }
            if (o.empty() && !session.input_blocked())
                break;
            session.pump();
            FUZZ_CHECK(guard < 1'000'000);
            if (o.empty() && session.output_size() == 0)
                break;
        }
    }
    if (std::getenv("FUZZ_DUMP") != nullptr) // replaying one input: show the transcript
        std::fprintf(stderr, "--- output (%zu bytes):\n%s\n---\n", output.size(), output.c_str());
    // Amplification: the fake INBOX has three messages of < 60 bytes, so one byte of a FETCH
    // sequence set ("1,") can produce at most a few hundred bytes.
    FUZZ_CHECK(output.size() <= 4096 + 512 * input.size());
    // A successful login resets the bad-command counter (the limit goes from 3 to 20), so
    // count the BADs after the login reply separately from those before it.
    // Before a login nothing can be fetched, so the first login reply is the real one.
    std::string_view after_login = output;
    if (!logged_in) {
        std::size_t first = std::string::npos;
        std::size_t len = 0;
        for (std::string_view marker : {"] Logged in\r\n", "] Authenticated\r\n"}) {
            if (auto p = output.find(marker); p < first) {
                first = p;
                len = marker.size();
            }
        }
        if (first != std::string::npos)
            after_login = std::string_view(output).substr(first + len);
    }
    const bool authed_here = after_login.size() != output.size();
    const std::size_t bads = count_bad(after_login);
    const std::size_t limit = (logged_in || authed_here) ? config.post_auth.max_bad_commands
                                                         : config.pre_auth.max_bad_commands;
    FUZZ_CHECK(bads <= limit);
    if (bads >= limit)
        FUZZ_CHECK(closed);
    if (authed_here)
        FUZZ_CHECK(count_bad(std::string_view(output).substr(
                       0, output.size() - after_login.size())) < config.pre_auth.max_bad_commands);
    return 0;
}
