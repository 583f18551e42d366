// FETCH and UID FETCH (RFC 3501 6.4.5 / 6.4.8).
#include <algorithm>
#include <memory>
#include <optional>
#include <span>

#include "protocol/imap/parse/arg_cursor.h"
#include "protocol/imap/server.h"
#include "protocol/mime/header.h"
#include "protocol/mime/message.h"

namespace popbridge::protocol::imap {

namespace {

bool is_bytes_item(FetchItem item) {
    return item == FetchItem::BodySection || item == FetchItem::Rfc822 ||
           item == FetchItem::Rfc822Header || item == FetchItem::Rfc822Text;
}

// The bytes one section-type item names in `bytes` (RFC 3501 6.4.5), before <partial>.
// BODY[] / RFC822 is the stored message as it is, whatever its MIME looks like; every
// other section is located with protocol/mime, parsed into `parsed` on first use. A path
// that names no part, or HEADER/TEXT of a part that is not a message, gives the empty
// string (as Dovecot answers). `scratch` holds HEADER.FIELDS output.
std::string_view section_bytes(const FetchAtt& att, const std::string& bytes,
                               std::optional<mime::Message>& parsed, std::string& scratch) {
    SectionText text = att.section.text;
    if (att.item == FetchItem::Rfc822Header)
        text = SectionText::Header;
    else if (att.item == FetchItem::Rfc822Text)
        text = SectionText::Text;
    else if (att.item == FetchItem::Rfc822)
        text = SectionText::None;
    bool top = att.item != FetchItem::BodySection || att.section.part.empty();
    if (top && text == SectionText::None)
        return bytes;
    if (!parsed)
        parsed.emplace(mime::parse_message(std::string_view(bytes)));
    std::span<const std::uint32_t> path;
    if (!top)
        path = att.section.part;
    auto ranges = mime::find_section(*parsed, path);
    if (!ranges && path.size() >= 2 && path.back() == 1) {
        // Dovecot also answers "n.1" for a leaf body part n of a multipart, with n itself
        // (only once: "n.1.1" names nothing). RFC 3501 leaves it open; we answer the same.
        auto leaf = mime::find_section(*parsed, path.first(path.size() - 1));
        if (leaf) {
            const mime::Part& p = parsed->part(leaf->part);
            if (p.kind == mime::PartKind::Leaf && p.parent != mime::kNoPart &&
                parsed->part(p.parent).kind == mime::PartKind::Multipart)
                ranges = leaf;
        }
    }
    if (!ranges)
        return {};
    std::string_view all = bytes;
    switch (text) {
    case SectionText::None:
        return ranges->whole.in(all);
    case SectionText::Mime:
        return ranges->mime.in(all);
    case SectionText::Header:
        return ranges->header ? ranges->header->in(all) : std::string_view();
    case SectionText::Text:
        return ranges->text ? ranges->text->in(all) : std::string_view();
    case SectionText::HeaderFields:
    case SectionText::HeaderFieldsNot:
        if (!ranges->header)
            return {};
        scratch = mime::select_fields(ranges->header->in(all), att.section.fields,
                                      text == SectionText::HeaderFieldsNot);
        return scratch;
    }
    return {};
}

} // namespace

void Session::exec_fetch(const Command& cmd, FetchArgs args) {
    auto& sel = std::get<Selected>(state_);
    const MessageIndex& msgs = *sel.snapshot.messages;
    auto job = std::make_shared<FetchJob>();
    job->tag = cmd.tag;
    if (args.uid) {
        job->resolved = args.set.resolve(msgs.last_uid());
    } else {
        auto count = static_cast<std::uint32_t>(msgs.size());
        for (const SeqRange& r : args.set.ranges()) {
            if (r.first > count || r.last > count) {
                bad(cmd.tag, "Invalid message sequence number");
                return;
            }
        }
        job->resolved = args.set.resolve(count);
    }
    job->args = std::move(args);
    if (job->args.changed_since)
        condstore_ = true; // RFC 7162 3.1: CHANGEDSINCE enables CONDSTORE
    for (const FetchAtt& a : job->args.atts)
        if (a.item == FetchItem::ModSeq)
            condstore_ = true;
    if (job->args.vanished) {
        if (!qresync_) {
            bad(cmd.tag, "VANISHED needs QRESYNC enabled");
            return;
        }
        // RFC 7162 3.2.6: UIDs in the set that no longer exist (no expunge modseqs are
        // kept, so all of them).
        std::vector<std::uint32_t> gone;
        std::size_t i = 0;
        std::uint32_t top = msgs.last_uid();
        for (const SeqRange& r : job->resolved.ranges()) {
            for (std::uint64_t u = r.first; u <= r.last && u <= top && gone.size() <= 100000; ++u) {
                while (i < msgs.size() && msgs[i].uid < u)
                    ++i;
                if (i >= msgs.size() || msgs[i].uid != u)
                    gone.push_back(static_cast<std::uint32_t>(u));
            }
        }
        write_vanished(gone, true);
    }

    bool sets_seen =
        !sel.snapshot.read_only && std::any_of(job->args.atts.begin(), job->args.atts.end(),
                                               [](const FetchAtt& a) { return a.sets_seen(); });
    std::vector<std::uint32_t> unseen;
    if (sets_seen) {
        FetchJob walk = *job;
        while (auto idx = next_fetch_index(walk))
            if ((msgs[*idx].flags & kFlagSeen) == 0 &&
                (!walk.args.changed_since || msgs[*idx].modseq > *walk.args.changed_since))
                unseen.push_back(msgs[*idx].uid);
    }
    if (unseen.empty()) {
        fetch_ = std::move(*job);
        ++fetch_gen_;
        return; // process() runs it in batches
    }

    // Implicit \Seen (RFC 3501 6.4.5): made durable first, then reported in each FETCH.
    busy_ = true;
    std::weak_ptr<int> alive = alive_;
    auto uids = unseen;
    backend_.store_flags(std::move(unseen), FlagOp::Add, kFlagSeen, {},
                         [this, alive, job, uids = std::move(uids)](Result<void> result) mutable {
                             if (alive.expired() || !busy_)
                                 return;
                             auto* sel = std::get_if<Selected>(&state_);
                             if (!result || sel == nullptr) {
                                 Error err =
                                     result ? Error{StorageErrc::Internal, "Mailbox closed", false}
                                            : result.error();
                                 ImapFailure f = imap_response_for(err);
                                 finish(job->tag, f.status, f.code, err.message);
                             } else {
                                 MessageIndex::Editor ed(sel->snapshot.messages);
                                 for (std::uint32_t uid : uids)
                                     if (auto pos = ed.view().find(uid))
                                         ed.at(*pos).flags |= kFlagSeen;
                                 sel->snapshot.messages = ed.finish();
                                 job->seen = std::move(uids);
                                 fetch_ = std::move(*job);
                                 ++fetch_gen_;
                             }
                             after_async();
                         });
}

std::optional<std::size_t> Session::next_fetch_index(FetchJob& job) const {
    const MessageIndex& msgs = *std::get<Selected>(state_).snapshot.messages;
    const auto& ranges = job.resolved.ranges();
    while (job.range < ranges.size()) {
        const SeqRange& r = ranges[job.range];
        if (!job.started) {
            if (job.args.uid) {
                job.index = msgs.lower_bound(r.first);
            } else {
                job.index = r.first - 1;
            }
            job.started = true;
        }
        if (job.index < msgs.size() &&
            (job.args.uid ? msgs[job.index].uid <= r.last : job.index < r.last))
            return job.index++;
        ++job.range;
        job.started = false;
    }
    return std::nullopt;
}

void Session::continue_fetch() {
    while (fetch_ && !fetch_->waiting && output_.size() < config_.output_high_water) {
        FetchJob& job = *fetch_;
        if (job.streaming) {
            stream_step();
            continue;
        }
        std::size_t idx = 0;
        if (job.current) {
            idx = *job.current;
        } else {
            auto next = next_fetch_index(job);
            if (!next) {
                std::string tag = std::move(job.tag);
                bool uid = job.args.uid;
                fetch_.reset();
                finish(tag, RespStatus::Ok, {}, uid ? "UID FETCH completed" : "FETCH completed");
                return;
            }
            idx = *next;
            if (job.args.changed_since) {
                const auto& m = (*std::get<Selected>(state_).snapshot.messages)[idx];
                if (m.modseq <= *job.args.changed_since)
                    continue;
            }
            job.current = idx;
        }
        FetchStep step = fetch_one(job, idx);
        if (step == FetchStep::Failed) {
            fetch_.reset();
            return;
        }
        if (step == FetchStep::Pending)
            continue; // waits, or goes on at once when the load was answered synchronously
        job.current.reset();
        job.loaded_uid = 0;
        job.body.reset();
        job.structure.reset();
        job.load_error.reset();
        if (step != FetchStep::Streaming)
            job.source.reset();
    }
}

void Session::resume_after_load() {
    if (processing_)
        return; // answered from inside continue_fetch(): its loop goes on
    process();
    if ((!output_.empty() || closing_) && output_cb_ && !processing_)
        output_cb_();
}

void Session::stream_step() {
    FetchJob& job = *fetch_;
    if (job.stream_pos >= job.stream_end) {
        output_ += job.stream_suffix;
        job.stream_suffix.clear();
        job.streaming = false;
        job.source.reset();
        return;
    }
    std::size_t want = static_cast<std::size_t>(
        std::min<std::uint64_t>(config_.stream_chunk, job.stream_end - job.stream_pos));
    job.waiting = true;
    std::weak_ptr<int> alive = alive_;
    std::uint64_t gen = fetch_gen_;
    std::shared_ptr<MessageSource> source = job.source; // kept open while the read runs
    source->read(job.stream_pos, want, [this, alive, gen, want, source](Result<std::string> r) {
        if (alive.expired() || !fetch_ || fetch_gen_ != gen || !fetch_->waiting)
            return;
        FetchJob& job = *fetch_;
        job.waiting = false;
        if (!r || r->empty() || r->size() > want) {
            // The literal's size is promised already: the response cannot be completed.
            fetch_.reset();
            if (std::holds_alternative<Selected>(state_))
                backend_.unselect();
            state_ = LoggedOut{};
            closing_ = true;
        } else {
            job.stream_pos += r->size();
            output_ += *r;
        }
        resume_after_load();
    });
}

Session::FetchStep Session::fetch_one(FetchJob& job, std::size_t index) {
    // Held so `m` stays valid whatever happens to the session's view meanwhile.
    std::shared_ptr<const MessageIndex> hold = std::get<Selected>(state_).snapshot.messages;
    const MessageMeta& m = (*hold)[index];
    if (job.loaded_uid != m.uid) {
        job.loaded_uid = m.uid;
        job.body.reset();
        job.structure.reset();
        job.source.reset();
        job.load_error.reset();
    }
    const auto& atts = job.args.atts;
    auto has = [&](FetchItem item) {
        return std::any_of(atts.begin(), atts.end(),
                           [item](const FetchAtt& a) { return a.item == item; });
    };
    // The bytes a FETCH needs are loaded off the loop before the response is built (`out` is
    // rebuilt from scratch each time this runs for the message): the whole message for
    // sections, the structure for ENVELOPE/BODYSTRUCTURE/BODY, or an open source when the
    // only bytes item is the whole message of a large one (streamed, never held whole).
    std::size_t bytes_items = 0;
    const FetchAtt* whole = nullptr;
    bool wants_structure = false;
    for (const FetchAtt& a : atts) {
        if (is_bytes_item(a.item)) {
            ++bytes_items;
            bool top_whole = a.item == FetchItem::Rfc822 ||
                             (a.item == FetchItem::BodySection && a.section.part.empty() &&
                              a.section.text == SectionText::None);
            if (top_whole)
                whole = &a;
        }
        if (a.item == FetchItem::Envelope || a.item == FetchItem::BodyStructure ||
            a.item == FetchItem::Body)
            wants_structure = true;
    }
    const FetchAtt* stream =
        bytes_items == 1 && whole != nullptr && m.size >= config_.stream_min ? whole : nullptr;
    bool wants_body = bytes_items > 0 && stream == nullptr;

    if (job.load_error) {
        if (job.load_error->code == StorageErrc::Expunged)
            return FetchStep::Gone;
        ImapFailure f = imap_response_for(*job.load_error);
        finish(job.tag, f.status, f.code, job.load_error->message);
        return FetchStep::Failed;
    }
    std::weak_ptr<int> alive = alive_;
    std::uint64_t gen = fetch_gen_;
    std::uint32_t uid = m.uid;
    // Runs a load's completion against this job if it is still the one waiting for it.
    auto landed = [this, alive, gen, uid]() -> FetchJob* {
        if (alive.expired() || !fetch_ || fetch_gen_ != gen || !fetch_->waiting ||
            fetch_->loaded_uid != uid)
            return nullptr;
        fetch_->waiting = false;
        return &*fetch_;
    };
    if (wants_body && !job.body) {
        job.waiting = true;
        backend_.read_message_async(uid, [this, landed](Result<std::string> r) {
            FetchJob* j = landed();
            if (j == nullptr)
                return;
            if (r)
                j->body = std::make_shared<const std::string>(std::move(*r));
            else
                j->load_error = r.error();
            resume_after_load();
        });
        return FetchStep::Pending;
    }
    if (wants_structure && !job.structure) {
        job.waiting = true;
        backend_.message_structure_async(
            uid, job.body, [this, landed](Result<std::shared_ptr<const MessageStructure>> r) {
                FetchJob* j = landed();
                if (j == nullptr)
                    return;
                if (r)
                    j->structure = std::move(*r);
                else
                    j->load_error = r.error();
                resume_after_load();
            });
        return FetchStep::Pending;
    }
    if (stream != nullptr && !job.source) {
        job.waiting = true;
        backend_.open_message(uid, [this, landed](Result<std::shared_ptr<MessageSource>> r) {
            FetchJob* j = landed();
            if (j == nullptr)
                return;
            if (r)
                j->source = std::move(*r);
            else
                j->load_error = r.error();
            resume_after_load();
        });
        return FetchStep::Pending;
    }

    // Built straight into the output (nothing below can fail); after a streamed literal's
    // header, into the suffix that follows its bytes.
    std::string* out = &output_;
    *out += "* " + std::to_string(index + 1) + " FETCH (";
    bool first = true;
    auto sep = [&] {
        if (!first)
            out->push_back(' ');
        first = false;
    };
    // RFC 3501 6.4.8: UID FETCH responses always carry the UID.
    if (job.args.uid && !has(FetchItem::Uid)) {
        sep();
        *out += "UID " + std::to_string(m.uid);
    }
    std::optional<mime::Message> parsed; // points into *job.body
    bool streamed = false;
    for (const FetchAtt& att : atts) {
        switch (att.item) {
        case FetchItem::Flags:
            sep();
            *out += "FLAGS ";
            write_flag_list(*out, m.flags, m.keywords);
            continue;
        case FetchItem::ModSeq:
            sep();
            *out += "MODSEQ (" + std::to_string(m.modseq) + ")";
            continue;
        case FetchItem::Uid:
            sep();
            *out += "UID " + std::to_string(m.uid);
            continue;
        case FetchItem::Rfc822Size:
            sep();
            *out += "RFC822.SIZE " + std::to_string(m.size);
            continue;
        case FetchItem::InternalDate:
            sep();
            *out += "INTERNALDATE " + format_internal_date(m.internal_date, m.tz_offset_minutes);
            continue;
        case FetchItem::Envelope:
        case FetchItem::BodyStructure:
        case FetchItem::Body:
            sep();
            *out += to_string(att.item);
            out->push_back(' ');
            *out += att.item == FetchItem::Envelope        ? job.structure->envelope
                    : att.item == FetchItem::BodyStructure ? job.structure->bodystructure
                                                           : job.structure->body;
            continue;
        default:
            break;
        }
        if (&att == stream) {
            // The literal's size is known from the open file: its header goes out now, the
            // bytes follow in chunks as the client reads, then the rest of this response.
            std::uint64_t size = job.source->size();
            std::uint64_t off = 0, len = size;
            if (att.partial) {
                off = std::min<std::uint64_t>(att.partial->offset, size);
                len = std::min<std::uint64_t>(att.partial->length, size - off);
            }
            sep();
            *out += fetch_att_response_name(att);
            *out += " {" + std::to_string(len) + "}\r\n";
            job.stream_suffix.clear();
            out = &job.stream_suffix;
            job.stream_pos = off;
            job.stream_end = off + len;
            streamed = true;
            continue;
        }
        std::string scratch;
        std::string_view data = section_bytes(att, *job.body, parsed, scratch);
        if (att.partial) {
            std::size_t off = std::min<std::size_t>(att.partial->offset, data.size());
            data = data.substr(off, att.partial->length);
        }
        sep();
        *out += fetch_att_response_name(att);
        out->push_back(' ');
        write_literal(*out, data);
    }
    bool seen_now = std::binary_search(job.seen.begin(), job.seen.end(), m.uid);
    if (!has(FetchItem::Flags) && seen_now) {
        sep();
        *out += "FLAGS ";
        write_flag_list(*out, m.flags, m.keywords);
    }
    // RFC 7162 3.1.4.1: with CONDSTORE on, FETCH responses with FLAGS carry MODSEQ; and
    // CHANGEDSINCE implies MODSEQ.
    if (condstore_ && !has(FetchItem::ModSeq) &&
        (has(FetchItem::Flags) || seen_now || job.args.changed_since)) {
        sep();
        *out += "MODSEQ (" + std::to_string(m.modseq) + ")";
    }
    *out += ")\r\n";
    if (streamed) {
        job.streaming = true;
        return FetchStep::Streaming;
    }
    return FetchStep::Done;
}

} // namespace popbridge::protocol::imap
