// libFuzzer target: the POP3 client state machine (protocol/pop3/client.h) against an
// arbitrary server byte stream.
//
// Byte 0: auth method (bits 0-2), require_stls (bit 3), tiny line limit (bit 4), no
// pipelining window (bit 5). Byte 1: chunking. The rest: what the server sends. The driver
// acts like proxy/pop3_poller: tls_established() on NeedTls, RETR of every listed message,
// DELE of each message once it has ended, QUIT when drained. Invariants:
//  - no crash; the state machine ends in a terminal state or keeps waiting for input;
//  - after Failed nothing more is produced;
//  - MessageData bytes of one message add up to MessageEnd.total_bytes;
//  - the password never appears in events or output except in the auth commands themselves
//    (checked only when the server input does not contain it, since server text is echoed).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/pop3/client.h"
#include "tests/fuzz/fuzz_util.h"

using namespace popbridge::protocol::pop3;

namespace {

constexpr std::string_view kPassword = "Pw-fuzz-9f3c";

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    ClientOptions opt;
    opt.username = "alice@example.net";
    opt.password = std::string(kPassword);
    static constexpr AuthMethod kMethods[] = {AuthMethod::UserPass, AuthMethod::Apop,
                                              AuthMethod::Plain, AuthMethod::XOAuth2,
                                              AuthMethod::OAuthBearer};
    opt.auth = kMethods[(data[0] & 7) % 5];
    opt.require_stls = data[0] & 8;
    if (data[0] & 16)
        opt.max_line = 32;
    if (data[0] & 32)
        opt.pipeline_window = 1;
    std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
    const bool input_has_secret = input.find(kPassword) != std::string_view::npos;

    Client client(opt);
    popbridge::fuzz::Chunker chunks(input, data[1]);
    bool failed = false;
    bool quit_sent = false;
    std::uint32_t current = 0;
    std::uint64_t current_bytes = 0;
    bool in_message = false;
    std::vector<std::uint32_t> ended;

    auto drain = [&] {
        std::string out = client.take_output();
        if (failed)
            FUZZ_CHECK(out.empty());
        while (auto ev = client.next_event()) {
            FUZZ_CHECK(!failed);
            std::string d = describe(*ev);
            if (!input_has_secret)
                FUZZ_CHECK(d.find(kPassword) == std::string::npos);
            if (std::holds_alternative<NeedTls>(*ev)) {
                FUZZ_CHECK(opt.require_stls);
                client.tls_established();
            } else if (auto* l = std::get_if<Listing>(&*ev)) {
                std::vector<std::uint32_t> msgnos;
                for (const auto& e : l->entries)
                    msgnos.push_back(e.msgno);
                if (msgnos.size() > 64)
                    msgnos.resize(64);
                client.retrieve(msgnos);
                if (msgnos.empty())
                    quit_sent = client.quit();
            } else if (auto* b = std::get_if<MessageBegin>(&*ev)) {
                FUZZ_CHECK(!in_message);
                in_message = true;
                current = b->msgno;
                current_bytes = 0;
            } else if (auto* m = std::get_if<MessageData>(&*ev)) {
                FUZZ_CHECK(in_message && m->msgno == current);
                current_bytes += m->bytes.size();
            } else if (auto* e = std::get_if<MessageEnd>(&*ev)) {
                FUZZ_CHECK(in_message && e->msgno == current);
                FUZZ_CHECK(e->total_bytes == current_bytes);
                in_message = false;
                ended.push_back(e->msgno);
            } else if (std::holds_alternative<Drained>(*ev)) {
                if (!ended.empty()) {
                    client.dele(ended);
                    ended.clear();
                } else if (!quit_sent) {
                    quit_sent = client.quit();
                }
            } else if (std::holds_alternative<Failed>(*ev)) {
                failed = true;
                FUZZ_CHECK(client.state() == Client::State::Failed);
            }
        }
        std::string more = client.take_output();
        if (failed)
            FUZZ_CHECK(more.empty());
    };

    drain();
    while (!chunks.done()) {
        auto c = chunks.next();
        client.feed(std::span<const char>(c.data(), c.size()));
        drain();
    }
    client.connection_closed();
    drain();
    FUZZ_CHECK(client.state() == Client::State::Done || client.state() == Client::State::Failed);
    return 0;
}
