// SEARCH and UID SEARCH, with ESEARCH results (RFC 4731) and MODSEQ (RFC 7162 3.1.5).
#include <algorithm>
#include <memory>

#include "protocol/imap/server.h"

namespace popbridge::protocol::imap {

namespace {

// What a SEARCH on message content needs on a worker thread: its own copies only.
struct ContentScan {
    SearchKey key;
    SearchScope scope;
    // The session's view when the SEARCH started: immutable, so the worker may read it.
    std::shared_ptr<const MessageIndex> messages;
};

SearchMessage search_message(const MessageMeta& m, std::size_t index) {
    SearchMessage sm;
    sm.seq = static_cast<std::uint32_t>(index + 1);
    sm.uid = m.uid;
    sm.flags = m.flags;
    sm.keywords = &m.keywords;
    sm.size = m.size;
    sm.internal_date = m.internal_date;
    sm.tz_offset_minutes = m.tz_offset_minutes;
    sm.modseq = m.modseq;
    return sm;
}

} // namespace

void Session::exec_search(const Command& cmd, const SearchArgs& args) {
    if (args.unsupported_charset) {
        finish(cmd.tag, RespStatus::No, {RespCode::BadCharset, "(UTF-8 US-ASCII)"},
               "Unsupported charset");
        return;
    }
    auto& sel = std::get<Selected>(state_);
    auto hold = sel.snapshot.messages; // stays valid whatever the loop does
    const MessageIndex& msgs = *hold;
    bool uses_modseq = search_uses_modseq(args.key);
    if (uses_modseq)
        condstore_ = true;
    SearchScope scope{static_cast<std::uint32_t>(msgs.size()), msgs.last_uid()};
    // '*' and the ranges are resolved once for the whole SEARCH, not per message.
    SearchKey key = args.key;
    resolve_search_sets(key, scope);
    std::vector<std::uint32_t> hits; // sequence numbers or UIDs
    std::uint64_t max_modseq = 0;
    if (!search_needs_body(key)) {
        for (std::size_t i = 0; i < msgs.size(); ++i) {
            SearchMessage sm = search_message(msgs[i], i);
            sm.load = [] { return static_cast<const SearchBody*>(nullptr); };
            if (search_matches(key, sm, scope)) {
                hits.push_back(args.uid ? msgs[i].uid : sm.seq);
                max_modseq = std::max(max_modseq, msgs[i].modseq);
            }
        }
        finish_search(cmd.tag, args, uses_modseq, hits, max_modseq);
        return;
    }

    // Content keys: the messages are read and matched off the loop (Backend::scan_messages);
    // the session takes no other command meanwhile, other sessions keep running.
    auto scan = std::make_shared<ContentScan>();
    scan->key = std::move(key);
    scan->scope = scope;
    scan->messages = hold;
    std::vector<std::uint32_t> uids;
    uids.reserve(msgs.size());
    for (const MessageMeta& m : msgs)
        uids.push_back(m.uid);
    ScanTest test = [scan](std::size_t i, const std::function<std::string*()>& load) -> bool {
        const MessageMeta& m = (*scan->messages)[i];
        // Read and parsed at most once per message, and only when a key needs the content.
        std::unique_ptr<SearchBody> body;
        bool tried = false;
        SearchMessage sm = search_message(m, i);
        sm.load = [&]() -> const SearchBody* {
            if (!tried) {
                tried = true;
                if (std::string* bytes = load()) {
                    body = std::make_unique<SearchBody>();
                    body->bytes = std::move(*bytes);
                    body->mime = mime::parse_message(std::string_view(body->bytes));
                }
            }
            return body.get();
        };
        return search_matches(scan->key, sm, scan->scope);
    };
    busy_ = true;
    std::weak_ptr<int> alive = alive_;
    backend_.scan_messages(
        std::move(uids), std::move(test),
        [this, alive, scan, tag = cmd.tag, args](std::vector<bool> verdicts) {
            if (alive.expired() || !busy_)
                return;
            std::vector<std::uint32_t> hits;
            std::uint64_t max_modseq = 0;
            for (std::size_t i = 0; i < verdicts.size() && i < scan->messages->size(); ++i) {
                if (!verdicts[i])
                    continue;
                const MessageMeta& m = (*scan->messages)[i];
                hits.push_back(args.uid ? m.uid : static_cast<std::uint32_t>(i + 1));
                max_modseq = std::max(max_modseq, m.modseq);
            }
            if (std::holds_alternative<Selected>(state_))
                finish_search(tag, args, search_uses_modseq(args.key), hits, max_modseq);
            else
                finish(tag, RespStatus::No, {}, "Mailbox closed");
            after_async();
        });
}

void Session::finish_search(const std::string& tag, const SearchArgs& args, bool uses_modseq,
                            const std::vector<std::uint32_t>& hits, std::uint64_t max_modseq) {
    if (!args.ret) {
        std::string line = "SEARCH";
        for (std::uint32_t h : hits)
            line += " " + std::to_string(h);
        if (uses_modseq && !hits.empty())
            line += " (MODSEQ " + std::to_string(max_modseq) + ")";
        write_untagged(output_, line);
    } else {
        std::string line = "ESEARCH (TAG ";
        write_string(line, tag);
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
    finish(tag, RespStatus::Ok, {}, args.uid ? "UID SEARCH completed" : "SEARCH completed");
}

} // namespace popbridge::protocol::imap
