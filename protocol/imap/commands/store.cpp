// STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE, CLOSE (RFC 3501, RFC 4315, RFC 6851, RFC 7162).
#include <algorithm>

#include "protocol/imap/server.h"

namespace popbridge::protocol::imap {

namespace {

std::string uid_set_text(const std::vector<std::uint32_t>& uids) {
    std::vector<SeqRange> ranges;
    for (std::uint32_t u : uids) {
        if (!ranges.empty() && ranges.back().last + 1 == u)
            ranges.back().last = u;
        else
            ranges.push_back({u, u});
    }
    return SeqSet(std::move(ranges)).to_string();
}

// The COPYUID set pairs keep their order (RFC 4315 3: the n-th source maps to the n-th dest).
std::string ordered_set_text(const std::vector<std::uint32_t>& uids) {
    std::string out;
    for (std::size_t i = 0; i < uids.size();) {
        std::size_t j = i;
        while (j + 1 < uids.size() && uids[j + 1] == uids[j] + 1)
            ++j;
        if (!out.empty())
            out += ",";
        out += std::to_string(uids[i]);
        if (j > i)
            out += ":" + std::to_string(uids[j]);
        i = j + 1;
    }
    return out;
}

} // namespace

std::optional<std::vector<std::uint32_t>> Session::resolve_uids(std::string_view tag,
                                                                const SeqSet& set, bool uid) {
    const MessageIndex& msgs = *std::get<Selected>(state_).snapshot.messages;
    std::vector<std::uint32_t> out;
    if (uid) {
        std::vector<std::uint32_t> all;
        all.reserve(msgs.size());
        for (const MessageMeta& m : msgs)
            all.push_back(m.uid);
        SeqSet r = set.resolve(all.empty() ? 0 : all.back());
        r.for_each_match(all, [&](std::size_t i) {
            out.push_back(all[i]);
            return true;
        });
        return out;
    }
    auto count = static_cast<std::uint32_t>(msgs.size());
    for (const SeqRange& r : set.ranges()) {
        if (r.first > count || r.last > count) {
            bad(tag, "Invalid message sequence number");
            return std::nullopt;
        }
    }
    SeqSet resolved = set.resolve(count);
    for (const SeqRange& r : resolved.ranges())
        for (std::uint64_t n = r.first; n <= r.last && n >= 1; ++n)
            out.push_back(msgs[static_cast<std::size_t>(n - 1)].uid);
    return out;
}

void Session::exec_store(const Command& cmd, const StoreArgs& args) {
    auto& sel = std::get<Selected>(state_);
    if (sel.snapshot.read_only) {
        finish(cmd.tag, RespStatus::No, {RespCode::ReadOnly, {}}, "Mailbox is read-only");
        return;
    }
    auto uids = resolve_uids(cmd.tag, args.set, args.uid);
    if (!uids)
        return;
    if (args.unchanged_since)
        condstore_ = true; // RFC 7162 3.1: UNCHANGEDSINCE enables CONDSTORE
    busy_ = true;
    std::weak_ptr<int> alive = alive_;
    std::string tag = cmd.tag;
    StoreArgs a = args;
    std::vector<std::uint32_t> set = *uids;
    backend_.store_flags_ex(
        std::move(*uids), args.op, args.flags & kPermanentFlagBits, args.keywords,
        args.unchanged_since,
        [this, alive, tag, a = std::move(a), set = std::move(set)](Result<StoreResult> r) {
            if (alive.expired() || !busy_)
                return;
            auto* sel = std::get_if<Selected>(&state_);
            if (!r || sel == nullptr) {
                Error err = r ? Error{StorageErrc::Internal, "Mailbox closed", false} : r.error();
                storage_failure(tag, err, "STORE failed");
                after_async();
                return;
            }
            // Edits a private version of the view (copying only the touched chunks); the
            // next safe point switches back to the shared index once they agree again.
            MessageIndex::Editor ed(sel->snapshot.messages);
            const std::vector<std::uint32_t>& modified = r->modified;
            std::vector<std::size_t> changed;
            for (std::uint32_t uid : set) {
                if (std::binary_search(modified.begin(), modified.end(), uid))
                    continue;
                auto pos = ed.view().find(uid);
                if (!pos)
                    continue;
                // The change as we asked for it; the store's own event (with the new
                // modseq) is applied just below when it has already arrived.
                MessageMeta& m = ed.at(*pos);
                std::uint32_t recent = m.flags & kFlagRecent;
                switch (a.op) {
                case FlagOp::Add:
                    m.flags |= a.flags;
                    for (const std::string& k : a.keywords)
                        if (std::find(m.keywords.begin(), m.keywords.end(), k) == m.keywords.end())
                            m.keywords.push_back(k);
                    break;
                case FlagOp::Remove:
                    m.flags &= ~a.flags;
                    std::erase_if(m.keywords, [&](const std::string& k) {
                        return std::find(a.keywords.begin(), a.keywords.end(), k) !=
                               a.keywords.end();
                    });
                    break;
                case FlagOp::Replace:
                    m.flags = a.flags | recent;
                    m.keywords = a.keywords;
                    break;
                }
                changed.push_back(*pos);
            }
            // Our own flag events: take their flags and modseq now so they are not reported
            // twice at the next safe point.
            for (PendingChange& ch : sel->pending) {
                if (ch.kind != PendingChange::Kind::Flags ||
                    !std::binary_search(set.begin(), set.end(), ch.meta.uid))
                    continue;
                auto pos = ed.view().find(ch.meta.uid);
                if (!pos)
                    continue;
                MessageMeta& m = ed.at(*pos);
                m.flags = ch.meta.flags | (m.flags & kFlagRecent);
                m.keywords = ch.meta.keywords;
                m.modseq = ch.meta.modseq;
                if (ch.meta.modseq > sel->snapshot.highest_modseq)
                    sel->snapshot.highest_modseq = ch.meta.modseq;
                ch.kind = PendingChange::Kind::Flags;
                ch.meta.uid = 0; // consumed
            }
            std::erase_if(sel->pending, [](const PendingChange& ch) {
                return ch.kind == PendingChange::Kind::Flags && ch.meta.uid == 0;
            });
            sel->snapshot.messages = ed.finish();
            auto hold = sel->snapshot.messages;
            const MessageIndex& msgs = *hold;
            // RFC 7162 3.1.3: with .SILENT the client still learns the new MODSEQ.
            if (!a.silent || condstore_) {
                for (std::size_t idx : changed) {
                    if (a.silent) {
                        const MessageMeta& m = msgs[idx];
                        std::string data = std::to_string(idx + 1) + " FETCH (";
                        if (a.uid)
                            data += "UID " + std::to_string(m.uid) + " ";
                        data += "MODSEQ (" + std::to_string(m.modseq) + "))";
                        write_untagged(output_, data);
                    } else {
                        write_untagged(output_, flags_fetch_data(idx, a.uid));
                    }
                }
            }
            if (!modified.empty())
                finish(tag, RespStatus::Ok, {RespCode::Modified, uid_set_text(modified)},
                       "Conditional STORE failed for some messages");
            else
                finish(tag, RespStatus::Ok, {}, a.uid ? "UID STORE completed" : "STORE completed");
            after_async();
        });
}

void Session::exec_copy(const Command& cmd, const CopyArgs& args) {
    auto& sel = std::get<Selected>(state_);
    if (args.move && sel.snapshot.read_only) {
        finish(cmd.tag, RespStatus::No, {RespCode::ReadOnly, {}}, "Mailbox is read-only");
        return;
    }
    auto uids = resolve_uids(cmd.tag, args.set, args.uid);
    if (!uids)
        return;
    const char* verb = args.move ? "MOVE" : "COPY";
    if (uids->empty()) {
        finish(cmd.tag, RespStatus::Ok, {}, std::string(verb) + " completed (nothing to do)");
        return;
    }
    busy_ = true;
    std::weak_ptr<int> alive = alive_;
    std::string tag = cmd.tag;
    bool move = args.move;
    backend_.copy(
        std::move(*uids), args.mailbox, args.move,
        [this, alive, tag, move, verb](Result<CopyResult> r) {
            if (alive.expired() || !busy_)
                return;
            if (!r) {
                destination_failure(tag, r.error(), std::string(verb) + " failed");
                after_async();
                return;
            }
            ResponseCode code{RespCode::CopyUid, {}};
            if (!r->source_uids.empty())
                code.arg = std::to_string(r->uid_validity) + " " +
                           ordered_set_text(r->source_uids) + " " + ordered_set_text(r->dest_uids);
            else
                code.code = RespCode::None;
            if (!move) {
                finish(tag, RespStatus::Ok, code, "COPY completed");
            } else {
                // RFC 6851 3.3: COPYUID in an untagged OK, then the expunges.
                if (code.code != RespCode::None)
                    write_untagged_status(output_, RespStatus::Ok, code, "Moved");
                if (auto* sel = std::get_if<Selected>(&state_))
                    for (std::uint32_t uid : r->source_uids) {
                        MessageMeta m;
                        m.uid = uid;
                        sel->pending.push_back({PendingChange::Kind::Expunged, m, {}, {}});
                    }
                current_allows_expunge_ = true;
                finish(tag, RespStatus::Ok, {}, "MOVE completed");
            }
            after_async();
        });
}

void Session::exec_expunge(const Command& cmd, const ExpungeArgs& args) {
    auto& sel = std::get<Selected>(state_);
    if (sel.snapshot.read_only) {
        finish(cmd.tag, RespStatus::No, {RespCode::ReadOnly, {}}, "Mailbox is read-only");
        return;
    }
    std::optional<std::vector<std::uint32_t>> only;
    if (args.uids) {
        only = resolve_uids(cmd.tag, *args.uids, true);
        if (only->empty()) {
            finish(cmd.tag, RespStatus::Ok, {}, "UID EXPUNGE completed");
            return;
        }
    }
    busy_ = true;
    std::weak_ptr<int> alive = alive_;
    std::string tag = cmd.tag;
    bool uid = args.uids.has_value();
    backend_.expunge(std::move(only), [this, alive, tag,
                                       uid](Result<std::vector<std::uint32_t>> r) {
        if (alive.expired() || !busy_)
            return;
        if (!r) {
            storage_failure(tag, r.error(), "EXPUNGE failed");
        } else {
            if (auto* sel = std::get_if<Selected>(&state_))
                for (std::uint32_t u : *r) {
                    MessageMeta m;
                    m.uid = u;
                    sel->pending.push_back({PendingChange::Kind::Expunged, m, {}, {}});
                }
            finish(tag, RespStatus::Ok, {}, uid ? "UID EXPUNGE completed" : "EXPUNGE completed");
        }
        after_async();
    });
}

void Session::exec_close(const Command& cmd) {
    auto& sel = std::get<Selected>(state_);
    std::string user = sel.user;
    if (sel.snapshot.read_only) {
        backend_.unselect();
        state_ = Authenticated{std::move(user)};
        finish(cmd.tag, RespStatus::Ok, {}, "CLOSE completed");
        return;
    }
    // RFC 3501 6.4.2: expunge silently, then leave.
    busy_ = true;
    std::weak_ptr<int> alive = alive_;
    std::string tag = cmd.tag;
    backend_.expunge(std::nullopt, [this, alive, tag, user](Result<std::vector<std::uint32_t>> r) {
        if (alive.expired() || !busy_)
            return;
        if (std::holds_alternative<Selected>(state_)) {
            backend_.unselect();
            state_ = Authenticated{user};
        }
        if (!r)
            storage_failure(tag, r.error(), "CLOSE failed to expunge");
        else
            finish(tag, RespStatus::Ok, {}, "CLOSE completed");
        after_async();
    });
}

} // namespace popbridge::protocol::imap
