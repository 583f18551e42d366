#include "protocol/imap/server.h"

#include <algorithm>

#include "protocol/imap/parse/arg_cursor.h"
#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

namespace {

template <class... Fs>
struct Overloaded : Fs... {
    using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

} // namespace

Session::Session(Backend& backend, SessionConfig config)
    : backend_(backend), config_(std::move(config)), tokenizer_(config_.pre_auth) {
    write_untagged_status(output_, RespStatus::Ok, {RespCode::Capability, capability_string()},
                          config_.greeting);
}

Session::~Session() {
    if (std::holds_alternative<Selected>(state_))
        backend_.unselect();
}

std::string Session::capability_string() const {
    std::string caps = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE "
                       "CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH CONDSTORE QRESYNC";
    if (std::holds_alternative<NotAuthenticated>(state_)) {
        if (!config_.tls_active && config_.starttls_available)
            caps += " STARTTLS";
        if (!config_.tls_active && !config_.allow_plaintext_login)
            caps += " LOGINDISABLED";
        else
            caps += " AUTH=PLAIN";
    }
    return caps;
}

std::string Session::take_output() {
    std::string out;
    out.swap(output_);
    return out;
}

bool Session::input_blocked() const {
    return busy_ || fetch_.has_value() || output_.size() >= config_.output_high_water;
}

void Session::feed(std::span<const char> bytes) {
    if (closing_)
        return; // nothing after BYE is read
    input_.append(bytes.data(), bytes.size());
    process();
}

void Session::pump() {
    process();
}

void Session::after_async() {
    busy_ = false;
    process();
    // The completion wrote its tagged reply before calling here: any output now waiting
    // must be announced, or the proxy would never send it.
    if (!output_.empty() && output_cb_ && !processing_)
        output_cb_();
}

StateBit Session::state_bit() const {
    switch (state_.index()) {
    case 0:
        return kStateNotAuthenticated;
    case 1:
        return kStateAuthenticated;
    case 2:
        return kStateSelected;
    default:
        return static_cast<StateBit>(0);
    }
}

void Session::process() {
    if (processing_)
        return;
    processing_ = true;
    while (!closing_ && !busy_) {
        if (idle_tag_ || auth_tag_) {
            if (!line_mode_step())
                break;
            continue;
        }
        if (fetch_) {
            continue_fetch();
            if (fetch_ || busy_)
                break; // output full: wait for pump()
            continue;
        }
        if (output_.size() >= config_.output_high_water || input_pos_ >= input_.size())
            break;
        auto rest = std::span<const char>(input_).subspan(input_pos_);
        TokenizerStep step = tokenizer_.feed(rest);
        input_pos_ += step.consumed;
        if (step.status == ParseStatus::NeedMore)
            break;
        if (step.status == ParseStatus::NeedContinuation) {
            write_continuation(output_, "Ready for literal data");
        } else if (step.status == ParseStatus::Error) {
            const TokenizerError& e = tokenizer_.error();
            if (e.fatal) {
                write_untagged_status(output_, RespStatus::Bye, {}, e.message);
                closing_ = true;
                state_ = LoggedOut{};
                break;
            }
            bad(e.tag.empty() ? "*" : e.tag, e.message,
                e.too_big ? RespCode::TooBig : RespCode::None);
        } else {
            execute(tokenizer_.take_command());
        }
    }
    if (input_pos_ == input_.size()) {
        // An idle connection should not keep the capacity of a large literal it once had.
        if (input_.capacity() > 4096)
            std::string().swap(input_);
        else
            input_.clear();
        input_pos_ = 0;
    } else if (input_pos_ > 64 * 1024) {
        input_.erase(0, input_pos_);
        input_pos_ = 0;
    }
    processing_ = false;
}

void Session::bad(std::string_view tag, std::string_view text, RespCode code) {
    write_tagged(output_, tag, RespStatus::Bad, {code, {}}, text);
    const Limits& limits =
        state_bit() == kStateNotAuthenticated ? config_.pre_auth : config_.post_auth;
    if (++bad_commands_ >= limits.max_bad_commands) {
        write_untagged_status(output_, RespStatus::Bye, {}, "Too many invalid commands");
        if (auto* sel = std::get_if<Selected>(&state_); sel != nullptr)
            backend_.unselect();
        state_ = LoggedOut{};
        closing_ = true;
    }
}

void Session::finish(std::string_view tag, RespStatus status, ResponseCode code,
                     std::string_view text) {
    if (std::holds_alternative<Selected>(state_))
        flush_pending(current_allows_expunge_);
    write_tagged(output_, tag, status, code, text);
}

void Session::execute(RawCommand raw) {
    std::string tag = raw.tag;
    auto parsed = parse_command(std::move(raw));
    if (!parsed) {
        bad(tag, parsed.error().message);
        return;
    }
    Command& cmd = *parsed;
    if (!command_allowed(cmd.id, state_bit())) {
        bad(tag, std::string(to_string(cmd.id)) + " not allowed now");
        return;
    }
    if (command_cb_)
        command_cb_(cmd.id);
    // RFC 9051 7.4.1: no EXPUNGE while a sequence-number FETCH, STORE or SEARCH completes.
    current_allows_expunge_ =
        cmd.id != CommandId::Fetch && cmd.id != CommandId::Store && cmd.id != CommandId::Search;
    std::visit(Overloaded{
                   [&](const CapabilityArgs&) { exec_capability(cmd); },
                   [&](const NoopArgs&) { exec_noop(cmd); },
                   [&](const LogoutArgs&) { exec_logout(cmd); },
                   [&](const IdArgs& a) { exec_id(cmd, a); },
                   [&](const CheckArgs&) { exec_check(cmd); },
                   [&](const UnselectArgs&) { exec_unselect(cmd); },
                   [&](const LoginArgs& a) { exec_login(cmd, a); },
                   [&](const SelectArgs& a) { exec_select(cmd, a); },
                   [&](FetchArgs& a) { exec_fetch(cmd, std::move(a)); },
                   [&](const NamespaceArgs&) { exec_namespace(cmd); },
                   [&](const StartTlsArgs&) { exec_starttls(cmd); },
                   [&](const IdleArgs&) { exec_idle(cmd); },
                   [&](const CloseArgs&) { exec_close(cmd); },
                   [&](const EnableArgs& a) { exec_enable(cmd, a); },
                   [&](const AuthenticateArgs& a) { exec_authenticate(cmd, a); },
                   [&](const MailboxArgs& a) { exec_mailbox(cmd, a); },
                   [&](const RenameArgs& a) { exec_rename(cmd, a); },
                   [&](const StatusArgs& a) { exec_status(cmd, a); },
                   [&](const ListArgs& a) { exec_list(cmd, a); },
                   [&](AppendArgs& a) { exec_append(cmd, std::move(a)); },
                   [&](const StoreArgs& a) { exec_store(cmd, a); },
                   [&](const CopyArgs& a) { exec_copy(cmd, a); },
                   [&](const ExpungeArgs& a) { exec_expunge(cmd, a); },
                   [&](const SearchArgs& a) { exec_search(cmd, a); },
               },
               cmd.args);
}

// ---- changes from other sessions ----

void Session::on_message_added(MessageMeta meta, std::shared_ptr<const MessageIndex> before,
                               std::shared_ptr<const MessageIndex> after) {
    queue_change(
        {PendingChange::Kind::Added, std::move(meta), std::move(before), std::move(after)});
}

void Session::on_flags_changed(std::uint32_t uid, std::uint32_t flags,
                               std::vector<std::string> keywords, std::uint64_t modseq,
                               std::shared_ptr<const MessageIndex> before,
                               std::shared_ptr<const MessageIndex> after) {
    MessageMeta m;
    m.uid = uid;
    m.flags = flags;
    m.keywords = std::move(keywords);
    m.modseq = modseq;
    queue_change({PendingChange::Kind::Flags, std::move(m), std::move(before), std::move(after)});
}

void Session::on_expunged(std::uint32_t uid, std::shared_ptr<const MessageIndex> before,
                          std::shared_ptr<const MessageIndex> after) {
    MessageMeta m;
    m.uid = uid;
    queue_change(
        {PendingChange::Kind::Expunged, std::move(m), std::move(before), std::move(after)});
}

void Session::queue_change(PendingChange ch) {
    auto* sel = std::get_if<Selected>(&state_);
    if (sel == nullptr)
        return;
    // Only the first few changes of a backlog can take the pointer-swap path (the chain
    // breaks at the first one that must wait); the rest are applied by copying, so they
    // need not pin every intermediate version.
    if (sel->pending.size() >= 8) {
        ch.before.reset();
        ch.after.reset();
    }
    sel->pending.push_back(std::move(ch));
    push_if_idle();
}

void Session::push_if_idle() {
    // RFC 2177: while idling, updates go out at once.
    if (!idle_tag_ || !std::holds_alternative<Selected>(state_))
        return;
    flush_pending(true);
    if (!output_.empty() && output_cb_ && !processing_)
        output_cb_();
}

void Session::flush_pending(bool allow_expunge) {
    auto& sel = std::get<Selected>(state_);
    std::shared_ptr<const MessageIndex>& view = sel.snapshot.messages;
    // A change whose `before` is our view moves us to its `after` (shared, nothing copied);
    // any other is applied to a private copy (only the touched chunks are copied).
    std::optional<MessageIndex::Editor> ed;
    auto cur = [&]() -> const MessageIndex& { return ed ? ed->view() : *view; };
    bool exists_dirty = false;
    auto announce_exists = [&] {
        if (exists_dirty)
            write_untagged(output_, std::to_string(cur().size()) + " EXISTS");
        exists_dirty = false;
    };
    std::vector<PendingChange> kept;
    std::vector<std::uint32_t> vanished;
    auto announce_vanished = [&] {
        if (!vanished.empty())
            write_vanished(vanished, false);
        vanished.clear();
    };
    for (PendingChange& ch : sel.pending) {
        if (ch.meta.modseq > sel.snapshot.highest_modseq)
            sel.snapshot.highest_modseq = ch.meta.modseq;
        if (ch.kind == PendingChange::Kind::Expunged && !allow_expunge) {
            ch.before.reset();
            ch.after.reset();
            kept.push_back(std::move(ch));
            continue;
        }
        bool fast = !ed && ch.before && ch.after && ch.before == view;
        ApplyResult r = preview_change(cur(), ch.kind, ch.meta);
        // Announce what the client must know before the change is applied.
        if (ch.kind == PendingChange::Kind::Expunged && r.applied) {
            announce_exists(); // the client must know a message before it is expunged
            if (qresync_)
                vanished.push_back(ch.meta.uid); // RFC 7162 3.2.10: VANISHED replaces EXPUNGE
            else
                write_untagged(output_, std::to_string(*r.pos + 1) + " EXPUNGE");
        }
        if (fast) {
            view = std::move(ch.after);
        } else if (r.applied) {
            if (!ed)
                ed.emplace(view);
            apply_change(*ed, ch.kind, ch.meta);
        }
        switch (ch.kind) {
        case PendingChange::Kind::Added:
            if (r.applied) {
                if (ch.meta.uid >= sel.snapshot.uid_next)
                    sel.snapshot.uid_next = ch.meta.uid + 1;
                exists_dirty = true;
            }
            break;
        case PendingChange::Kind::Flags:
            if (r.pos && r.flags_changed) {
                announce_exists();
                write_untagged(output_, flags_fetch_data(*r.pos, cur()[*r.pos], true));
            }
            break;
        case PendingChange::Kind::Expunged:
            break;
        }
    }
    announce_vanished();
    announce_exists();
    if (ed)
        view = ed->finish();
    sel.pending = std::move(kept);
    if (sel.pending.empty())
        adopt_shared_index();
}

void Session::adopt_shared_index() {
    auto& sel = std::get<Selected>(state_);
    auto shared = backend_.current_index();
    if (shared && shared != sel.snapshot.messages && shared->same_content(*sel.snapshot.messages))
        sel.snapshot.messages = std::move(shared);
}

std::string Session::flags_fetch_data(std::size_t index, bool with_uid) const {
    return flags_fetch_data(index, (*std::get<Selected>(state_).snapshot.messages)[index],
                            with_uid);
}

std::string Session::flags_fetch_data(std::size_t index, const MessageMeta& m,
                                      bool with_uid) const {
    std::string data = std::to_string(index + 1) + " FETCH (";
    if (with_uid)
        data += "UID " + std::to_string(m.uid) + " ";
    data += "FLAGS ";
    write_flag_list(data, m.flags, m.keywords);
    if (condstore_)
        data += " MODSEQ (" + std::to_string(m.modseq) + ")";
    data += ")";
    return data;
}

void Session::write_vanished(const std::vector<std::uint32_t>& uids, bool earlier) {
    std::vector<std::uint32_t> sorted = uids;
    std::sort(sorted.begin(), sorted.end());
    std::vector<SeqRange> ranges;
    for (std::uint32_t u : sorted) {
        if (!ranges.empty() && ranges.back().last + 1 == u)
            ranges.back().last = u;
        else if (ranges.empty() || ranges.back().last != u)
            ranges.push_back({u, u});
    }
    if (ranges.empty())
        return;
    write_untagged(output_, std::string("VANISHED ") + (earlier ? "(EARLIER) " : "") +
                                SeqSet(std::move(ranges)).to_string());
}

void Session::storage_failure(std::string_view tag, const Error& err, std::string_view fallback) {
    ImapFailure f = imap_response_for(err);
    finish(tag, f.status, f.code, err.message.empty() ? fallback : std::string_view(err.message));
    if (err.close_connection) {
        write_untagged_status(output_, RespStatus::Bye, {}, "Closing connection");
        if (std::holds_alternative<Selected>(state_))
            backend_.unselect();
        state_ = LoggedOut{};
        closing_ = true;
    }
}

// APPEND / COPY / MOVE into a mailbox that does not exist: RFC 3501 6.3.11 and 6.4.7 want
// NO [TRYCREATE] so the client can CREATE it and retry.
void Session::destination_failure(std::string_view tag, const Error& err,
                                  std::string_view fallback) {
    if (err.code == StorageErrc::NotFound)
        finish(tag, RespStatus::No, {RespCode::TryCreate, {}}, "Mailbox does not exist");
    else
        storage_failure(tag, err, fallback);
}

// IDLE's "DONE" and AUTHENTICATE's response are lines, not commands.
bool Session::line_mode_step() {
    auto nl = input_.find('\n', input_pos_);
    if (nl == std::string::npos) {
        const Limits& limits =
            state_bit() == kStateNotAuthenticated ? config_.pre_auth : config_.post_auth;
        if (input_.size() - input_pos_ > limits.max_line) {
            write_untagged_status(output_, RespStatus::Bye, {}, "Line too long");
            if (std::holds_alternative<Selected>(state_))
                backend_.unselect();
            state_ = LoggedOut{};
            closing_ = true;
        }
        return false;
    }
    std::string_view line(input_.data() + input_pos_, nl - input_pos_);
    input_pos_ = nl + 1;
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    if (idle_tag_) {
        std::string tag = std::move(*idle_tag_);
        idle_tag_.reset();
        if (iequals(line, "DONE")) {
            finish(tag, RespStatus::Ok, {}, "IDLE terminated");
        } else {
            bad(tag, "Expected DONE");
        }
        return true;
    }
    std::string tag = std::move(*auth_tag_);
    auth_tag_.reset();
    if (line == "*") {
        bad(tag, "AUTHENTICATE cancelled");
        return true;
    }
    finish_authenticate(tag, line);
    return true;
}

} // namespace popbridge::protocol::imap
