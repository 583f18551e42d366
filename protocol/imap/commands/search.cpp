// SEARCH and UID SEARCH, with ESEARCH results (RFC 4731) and MODSEQ (RFC 7162 3.1.5).
#include <algorithm>
#include <memory>

#include "protocol/imap/server.h"

namespace popbridge::protocol::imap {

void Session::exec_search(const Command& cmd, const SearchArgs& args) {
    auto& sel = std::get<Selected>(state_);
    const auto& msgs = sel.snapshot.messages;
    bool uses_modseq = search_uses_modseq(args.key);
    if (uses_modseq)
        condstore_ = true;
    SearchScope scope{static_cast<std::uint32_t>(msgs.size()), msgs.empty() ? 0 : msgs.back().uid};
    // '*' and the ranges are resolved once for the whole SEARCH, not per message.
    SearchKey key = args.key;
    resolve_search_sets(key, scope);
    std::vector<std::uint32_t> hits; // sequence numbers or UIDs
    std::uint64_t max_modseq = 0;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        const MessageMeta& m = msgs[i];
        // Read and parsed at most once per message, and only when a key needs the content.
        std::unique_ptr<SearchBody> body;
        bool tried = false;
        SearchMessage sm;
        sm.seq = static_cast<std::uint32_t>(i + 1);
        sm.uid = m.uid;
        sm.flags = m.flags;
        sm.keywords = &m.keywords;
        sm.size = m.size;
        sm.internal_date = m.internal_date;
        sm.tz_offset_minutes = m.tz_offset_minutes;
        sm.modseq = m.modseq;
        sm.load = [&]() -> const SearchBody* {
            if (!tried) {
                tried = true;
                auto r = backend_.read_message(m.uid);
                if (r) {
                    body = std::make_unique<SearchBody>();
                    body->bytes = std::move(*r);
                    body->mime = mime::parse_message(std::string_view(body->bytes));
                }
            }
            return body.get();
        };
        if (search_matches(key, sm, scope)) {
            hits.push_back(args.uid ? m.uid : sm.seq);
            max_modseq = std::max(max_modseq, m.modseq);
        }
    }
    if (!args.ret) {
        std::string line = "SEARCH";
        for (std::uint32_t h : hits)
            line += " " + std::to_string(h);
        if (uses_modseq && !hits.empty())
            line += " (MODSEQ " + std::to_string(max_modseq) + ")";
        write_untagged(output_, line);
    } else {
        std::string line = "ESEARCH (TAG ";
        write_string(line, cmd.tag);
        line += ")";
        if (args.uid)
            line += " UID";
        if (!hits.empty()) {
            if (args.ret->min)
                line += " MIN " + std::to_string(hits.front());
            if (args.ret->max)
                line += " MAX " + std::to_string(hits.back());
            if (args.ret->all) {
                std::vector<SeqRange> ranges;
                for (std::uint32_t h : hits) {
                    if (!ranges.empty() && ranges.back().last + 1 == h)
                        ranges.back().last = h;
                    else
                        ranges.push_back({h, h});
                }
                line += " ALL " + SeqSet(std::move(ranges)).to_string();
            }
        }
        if (args.ret->count)
            line += " COUNT " + std::to_string(hits.size());
        if (uses_modseq && !hits.empty())
            line += " MODSEQ " + std::to_string(max_modseq);
        write_untagged(output_, line);
    }
    finish(cmd.tag, RespStatus::Ok, {}, args.uid ? "UID SEARCH completed" : "SEARCH completed");
}

} // namespace popbridge::protocol::imap
