// SELECT, EXAMINE, UNSELECT.
#include <algorithm>
#include <optional>

#include "protocol/imap/server.h"

namespace popbridge::protocol::imap {

void Session::exec_select(const Command& cmd, const SelectArgs& args) {
    std::string user;
    if (auto* sel = std::get_if<Selected>(&state_)) {
        // RFC 9051 6.3.2: leaving the old mailbox is reported before the new one opens.
        user = std::move(sel->user);
        backend_.unselect();
        write_untagged_status(output_, RespStatus::Ok, {RespCode::Closed, {}},
                              "Previous mailbox closed");
    } else {
        user = std::get<Authenticated>(state_).user;
    }
    state_ = Authenticated{user};

    auto snap = backend_.select(args.mailbox, args.read_only);
    if (!snap) {
        ImapFailure f = imap_response_for(snap.error());
        finish(cmd.tag, f.status, f.code,
               snap.error().message.empty() ? "Cannot open mailbox" : snap.error().message);
        if (snap.error().close_connection) {
            write_untagged_status(output_, RespStatus::Bye, {}, "Closing connection");
            state_ = LoggedOut{};
            closing_ = true;
        }
        return;
    }
    MailboxSnapshot& s = *snap;
    if (args.read_only)
        s.read_only = true;
    if (args.condstore)
        condstore_ = true; // RFC 7162 3.1.8: SELECT (CONDSTORE) enables CONDSTORE
    if (args.qresync && !qresync_) {
        backend_.unselect();
        bad(cmd.tag, "QRESYNC is not enabled");
        return;
    }

    std::string line = "FLAGS ";
    write_flag_list(line, kPermanentFlagBits, s.keywords);
    write_untagged(output_, line);

    std::string permanent;
    if (s.read_only) {
        permanent = "()";
    } else {
        write_flag_list(permanent, kPermanentFlagBits, s.keywords);
        permanent.insert(permanent.size() - 1, " \\*");
    }
    write_untagged_status(output_, RespStatus::Ok, {RespCode::PermanentFlags, permanent},
                          s.read_only ? "No permanent flags permitted" : "Flags permitted");
    MailboxView v;
    v.uid_validity = s.uid_validity;
    v.uid_next = s.uid_next;
    v.highest_modseq = s.highest_modseq;
    v.read_only = s.read_only;
    v.messages = s.index ? std::move(s.index) : MessageIndex::build(std::move(s.messages));
    const MessageIndex& msgs = *v.messages;
    write_untagged(output_, std::to_string(msgs.size()) + " EXISTS");
    std::size_t recent = 0;
    std::optional<std::size_t> unseen;
    std::size_t i = 0;
    for (const MessageMeta& m : msgs) {
        if ((m.flags & kFlagRecent) != 0)
            ++recent;
        if (!unseen && (m.flags & kFlagSeen) == 0)
            unseen = i;
        ++i;
    }
    write_untagged(output_, std::to_string(recent) + " RECENT");
    if (unseen)
        write_untagged_status(output_, RespStatus::Ok,
                              {RespCode::Unseen, std::to_string(*unseen + 1)}, "First unseen");
    write_untagged_status(output_, RespStatus::Ok,
                          {RespCode::UidValidity, std::to_string(s.uid_validity)}, "UIDs valid");
    write_untagged_status(output_, RespStatus::Ok, {RespCode::UidNext, std::to_string(s.uid_next)},
                          "Predicted next UID");
    if (condstore_)
        write_untagged_status(output_, RespStatus::Ok,
                              {RespCode::HighestModSeq, std::to_string(s.highest_modseq)},
                              "Highest");
    bool resync = args.qresync && args.qresync->uid_validity == s.uid_validity;

    bool read_only = s.read_only;
    state_ = Selected{std::move(user), args.mailbox, std::move(v), {}};
    if (resync) {
        // RFC 7162 3.2.5.1: UIDs the client knows that are gone, then what changed. The
        // store keeps no modseq for expunges, so every vanished known UID is reported.
        const MessageIndex& msgs = *std::get<Selected>(state_).snapshot.messages;
        std::uint32_t top = msgs.last_uid();
        SeqSet known = args.qresync->known_uids ? args.qresync->known_uids->resolve(top)
                                                : SeqSet({SeqRange{1, top}});
        std::vector<std::uint32_t> gone;
        std::size_t i = 0;
        for (const SeqRange& r : known.ranges()) {
            if (r.first == 0)
                continue;
            for (std::uint64_t u = r.first; u <= r.last && u <= top; ++u) {
                while (i < msgs.size() && msgs[i].uid < u)
                    ++i;
                if (i >= msgs.size() || msgs[i].uid != u)
                    gone.push_back(static_cast<std::uint32_t>(u));
                if (gone.size() > 100000)
                    break; // a huge sparse range; the client resyncs the rest itself
            }
        }
        write_vanished(gone, true);
        for (std::size_t k = 0; k < msgs.size(); ++k)
            if (msgs[k].modseq > args.qresync->modseq)
                write_untagged(output_, flags_fetch_data(k, true));
    }
    finish(cmd.tag, RespStatus::Ok, {read_only ? RespCode::ReadOnly : RespCode::ReadWrite, {}},
           args.read_only ? "EXAMINE completed" : "SELECT completed");
}

void Session::exec_unselect(const Command& cmd) {
    auto& sel = std::get<Selected>(state_);
    std::string user = std::move(sel.user);
    backend_.unselect();
    state_ = Authenticated{std::move(user)};
    finish(cmd.tag, RespStatus::Ok, {}, "UNSELECT completed");
}

} // namespace popbridge::protocol::imap
