#pragma once
// Per-connection IMAP server session (RFC 3501 / RFC 9051), sans I/O.
//
// Driving it (proxy/imap_session):
//  - Construct with a Backend; the greeting is queued at once.
//  - feed(bytes) whenever the socket delivers; then write take_output() (may be empty).
//  - After take_output(), if wants_close(): write the bytes, then close the connection.
//  - input_blocked(): true while a backend call is pending or the output is above
//    SessionConfig::output_high_water. Stop reading the socket meanwhile; bytes fed anyway
//    are buffered and processed in order later (never dropped, never reordered).
//  - Backpressure: long responses (FETCH over many messages) are generated in batches while
//    output_size() < output_high_water. When the write queue has drained, call pump() (it
//    continues the FETCH and any pipelined commands), then take_output() again.
//  - Async completion: Backend callbacks (login, store_flags) resume processing by
//    themselves; afterwards output may be ready. set_output_callback() is invoked whenever
//    output appears outside feed()/pump() (that is, from such a callback).
//  - Changes made elsewhere: on_message_added / on_flags_changed / on_expunged. They are
//    queued and sent as untagged responses only at safe points: at command completion, and
//    never EXPUNGE at the end of FETCH (non-UID), which RFC 9051 7.4.1 forbids.
//  - The Session must outlive nothing: callbacks arriving after its destruction are ignored.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/imap/backend.h"
#include "protocol/imap/command.h"
#include "protocol/imap/limits.h"
#include "protocol/imap/response.h"
#include "protocol/imap/tokenizer.h"

namespace popbridge::protocol::imap {

struct SessionConfig {
    Limits pre_auth = kPreAuthLimits;
    Limits post_auth = post_auth_limits();
    std::size_t output_high_water = 256 * 1024; // stop generating output above this
    // FETCH BODY[] of a message at least this large is streamed from the file in pieces of
    // stream_chunk bytes as the client reads, instead of being read whole first.
    std::uint64_t stream_min = 256 * 1024;
    std::size_t stream_chunk = 128 * 1024;
    bool tls_active = false;            // connection already encrypted (port 993)
    bool allow_plaintext_login = false; // allow LOGIN without TLS (tests, loopback)
    bool starttls_available = false;    // the proxy can start TLS on this connection
    std::string greeting = "popbridge ready";
};

// A change made by another session (or the poller), waiting for a safe point.
// `before`/`after`: the backend's shared index just before and after this change, when it
// shares one; a session whose view is `before` moves to `after` without copying anything.
struct PendingChange {
    using Kind = ChangeKind;
    Kind kind = Kind::Added;
    MessageMeta meta;
    std::shared_ptr<const MessageIndex> before;
    std::shared_ptr<const MessageIndex> after;
};

constexpr std::string_view to_string(ChangeKind k) {
    switch (k) {
    case ChangeKind::Added:
        return "Added";
    case ChangeKind::Flags:
        return "Flags";
    case ChangeKind::Expunged:
        return "Expunged";
    }
    return "?";
}

// What a selected session knows of its mailbox. `messages` is the client's view: usually
// the backend's shared index of the folder (one per folder, not per session), a private
// copy-on-write version only while the session's view differs from it.
struct MailboxView {
    std::uint32_t uid_validity = 0;
    std::uint32_t uid_next = 0;
    std::uint64_t highest_modseq = 0;
    bool read_only = false;
    std::shared_ptr<const MessageIndex> messages = MessageIndex::empty_index();
};

// Session states, each carrying its data.
struct NotAuthenticated {}; // before LOGIN
struct Authenticated {      // logged in, no mailbox selected
    std::string user;
};
struct Selected { // a mailbox is selected; its snapshot is the client's view
    std::string user;
    std::string mailbox;
    MailboxView snapshot;
    std::vector<PendingChange> pending;
};
struct LoggedOut {}; // after LOGOUT or BYE; terminal

using SessionState = std::variant<NotAuthenticated, Authenticated, Selected, LoggedOut>;

class Session {
public:
    explicit Session(Backend& backend, SessionConfig config = {});
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void feed(std::span<const char> bytes);
    void feed(std::string_view bytes) { feed(std::span<const char>(bytes.data(), bytes.size())); }
    std::string take_output();
    std::size_t output_size() const { return output_.size(); }
    bool wants_close() const { return closing_; }
    bool input_blocked() const;
    void pump();

    void set_tls_active(bool active) { config_.tls_active = active; }
    // True once after a STARTTLS was answered with OK: the proxy must start the TLS
    // handshake now. Everything the client sent after the STARTTLS line was discarded
    // (RFC 3501 6.2.1, STARTTLS injection); call set_tls_active(true) when it is done.
    bool take_starttls() {
        bool s = starttls_requested_;
        starttls_requested_ = false;
        return s;
    }
    // True while the client is in IDLE (RFC 2177).
    bool idling() const { return idle_tag_.has_value(); }
    std::string capability_string() const;
    void set_output_callback(std::function<void()> cb) { output_cb_ = std::move(cb); }
    // Called with every command that parsed and is legal in the current state (metrics).
    void set_command_observer(std::function<void(CommandId)> cb) { command_cb_ = std::move(cb); }

    // `before`/`after`: see PendingChange (may be null).
    void on_message_added(MessageMeta meta, std::shared_ptr<const MessageIndex> before = {},
                          std::shared_ptr<const MessageIndex> after = {});
    void on_flags_changed(std::uint32_t uid, std::uint32_t flags, std::vector<std::string> keywords,
                          std::uint64_t modseq, std::shared_ptr<const MessageIndex> before = {},
                          std::shared_ptr<const MessageIndex> after = {});
    void on_expunged(std::uint32_t uid, std::shared_ptr<const MessageIndex> before = {},
                     std::shared_ptr<const MessageIndex> after = {});

    const SessionState& state() const { return state_; }

private:
    struct FetchJob {
        std::string tag;
        FetchArgs args;
        SeqSet resolved;                 // sequence numbers or UIDs, resolved
        std::size_t range = 0;           // current range in `resolved`
        std::size_t index = 0;           // next message index (0-based) within it
        bool started = false;            // `index` was positioned for `range`
        std::vector<std::uint32_t> seen; // UIDs whose \Seen this FETCH set (sorted)
        // The message being fetched while its bytes or structure load off the loop: it is
        // built again from `current` once they arrive.
        std::optional<std::size_t> current;
        std::uint32_t loaded_uid = 0; // what body/structure/source/load_error belong to
        std::shared_ptr<const std::string> body;
        std::shared_ptr<const MessageStructure> structure;
        std::shared_ptr<MessageSource> source;
        std::optional<Error> load_error;
        bool waiting = false; // a backend load is pending; it resumes the job
        // A literal streamed from `source` (BODY[] of a large message): bytes
        // [stream_pos, stream_end) still to send, then `stream_suffix` ends the response.
        bool streaming = false;
        std::uint64_t stream_pos = 0;
        std::uint64_t stream_end = 0;
        std::string stream_suffix;
    };
    enum class FetchStep {
        Done,      // the response is written
        Gone,      // the message vanished: left out (its EXPUNGE comes later)
        Failed,    // the tagged answer is written, the FETCH is over
        Pending,   // a load is pending (or was answered at once: call again)
        Streaming, // the response continues from `source`
    };

    void process();
    void execute(RawCommand raw);
    void bad(std::string_view tag, std::string_view text, RespCode code = RespCode::None);
    void finish(std::string_view tag, RespStatus status, ResponseCode code, std::string_view text);
    void flush_pending(bool allow_expunge);
    void push_if_idle();
    void queue_change(PendingChange ch);
    void adopt_shared_index();
    StateBit state_bit() const;
    void after_async();

    void exec_capability(const Command& cmd);
    void exec_noop(const Command& cmd);
    void exec_logout(const Command& cmd);
    void exec_id(const Command& cmd, const IdArgs& args);
    void exec_check(const Command& cmd);
    void exec_login(const Command& cmd, const LoginArgs& args);
    void exec_select(const Command& cmd, const SelectArgs& args);
    void exec_unselect(const Command& cmd);
    void exec_fetch(const Command& cmd, FetchArgs args);
    std::optional<std::size_t> next_fetch_index(FetchJob& job) const;
    void continue_fetch();
    FetchStep fetch_one(FetchJob& job, std::size_t index);
    void stream_step();
    void resume_after_load();
    void finish_search(const std::string& tag, const SearchArgs& args, bool uses_modseq,
                       const std::vector<std::uint32_t>& hits, std::uint64_t max_modseq);

    void exec_enable(const Command& cmd, const EnableArgs& args);
    void exec_namespace(const Command& cmd);
    void exec_starttls(const Command& cmd);
    void exec_authenticate(const Command& cmd, const AuthenticateArgs& args);
    void finish_authenticate(const std::string& tag, std::string_view base64);
    void start_login(const std::string& tag, std::string user, std::string password, bool sasl);
    void exec_idle(const Command& cmd);
    void exec_mailbox(const Command& cmd, const MailboxArgs& args);
    void exec_rename(const Command& cmd, const RenameArgs& args);
    void exec_status(const Command& cmd, const StatusArgs& args);
    void exec_list(const Command& cmd, const ListArgs& args);
    void exec_append(const Command& cmd, AppendArgs args);
    void exec_close(const Command& cmd);
    void exec_expunge(const Command& cmd, const ExpungeArgs& args);
    void exec_search(const Command& cmd, const SearchArgs& args);
    void exec_store(const Command& cmd, const StoreArgs& args);
    void exec_copy(const Command& cmd, const CopyArgs& args);
    bool line_mode_step();
    // Sequence set of the command -> UIDs of the snapshot (ascending). nullopt after BAD.
    std::optional<std::vector<std::uint32_t>> resolve_uids(std::string_view tag, const SeqSet& set,
                                                           bool uid);
    void write_vanished(const std::vector<std::uint32_t>& uids, bool earlier);
    std::string flags_fetch_data(std::size_t index, bool with_uid) const;
    std::string flags_fetch_data(std::size_t index, const MessageMeta& m, bool with_uid) const;
    void storage_failure(std::string_view tag, const Error& err, std::string_view fallback);
    void destination_failure(std::string_view tag, const Error& err, std::string_view fallback);

    Backend& backend_;
    SessionConfig config_;
    Tokenizer tokenizer_;
    SessionState state_;
    std::string input_;
    std::size_t input_pos_ = 0;
    std::string output_;
    unsigned bad_commands_ = 0;
    bool closing_ = false;
    bool busy_ = false;       // an async backend call is pending
    bool processing_ = false; // inside process(): re-entrant calls return at once
    bool current_allows_expunge_ = true;
    std::optional<FetchJob> fetch_;
    std::uint64_t fetch_gen_ = 0;         // tells a late load callback that its FetchJob is gone
    bool condstore_ = false;              // CONDSTORE enabled (RFC 7162 3.1)
    bool qresync_ = false;                // QRESYNC enabled (RFC 7162 3.2)
    std::optional<std::string> idle_tag_; // inside IDLE: tag of the IDLE command
    std::optional<std::string> auth_tag_; // AUTHENTICATE waiting for the client's response
    bool starttls_requested_ = false;
    std::function<void()> output_cb_;
    std::function<void(CommandId)> command_cb_;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

} // namespace popbridge::protocol::imap
