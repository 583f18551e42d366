#pragma once
// Typed IMAP commands: one argument struct per command, held in a std::variant, and the one
// constexpr table that says how each command is named and in which states it is legal
// (RFC 3501 section 6 / RFC 9051 section 6). parse_command() (parse/parse.h) builds them
// from a RawCommand; the session (server.h) dispatches on the variant.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/imap/fetch_att.h"
#include "protocol/imap/flags.h"
#include "protocol/imap/search.h"
#include "protocol/imap/seq_set.h"

namespace popbridge::protocol::imap {

enum class CommandId {
    Capability,   // CAPABILITY
    Noop,         // NOOP
    Logout,       // LOGOUT
    Id,           // ID (RFC 2971)
    Enable,       // ENABLE (RFC 5161)
    Login,        // LOGIN
    Authenticate, // AUTHENTICATE (RFC 4959 SASL-IR)
    StartTls,     // STARTTLS
    Select,       // SELECT
    Examine,      // EXAMINE
    Namespace,    // NAMESPACE (RFC 2342)
    Create,       // CREATE
    Delete,       // DELETE
    Rename,       // RENAME
    Subscribe,    // SUBSCRIBE
    Unsubscribe,  // UNSUBSCRIBE
    List,         // LIST (RFC 5258, RFC 5819)
    Lsub,         // LSUB
    Status,       // STATUS
    Append,       // APPEND
    Idle,         // IDLE (RFC 2177)
    Check,        // CHECK
    Close,        // CLOSE
    Unselect,     // UNSELECT (RFC 3691)
    Expunge,      // EXPUNGE
    UidExpunge,   // UID EXPUNGE (RFC 4315)
    Search,       // SEARCH
    UidSearch,    // UID SEARCH
    Fetch,        // FETCH
    UidFetch,     // UID FETCH
    Store,        // STORE
    UidStore,     // UID STORE
    Copy,         // COPY
    UidCopy,      // UID COPY
    Move,         // MOVE (RFC 6851)
    UidMove,      // UID MOVE
};

constexpr std::string_view to_string(CommandId id) {
    switch (id) {
    case CommandId::Capability:
        return "CAPABILITY";
    case CommandId::Noop:
        return "NOOP";
    case CommandId::Logout:
        return "LOGOUT";
    case CommandId::Id:
        return "ID";
    case CommandId::Enable:
        return "ENABLE";
    case CommandId::Login:
        return "LOGIN";
    case CommandId::Authenticate:
        return "AUTHENTICATE";
    case CommandId::StartTls:
        return "STARTTLS";
    case CommandId::Select:
        return "SELECT";
    case CommandId::Examine:
        return "EXAMINE";
    case CommandId::Namespace:
        return "NAMESPACE";
    case CommandId::Create:
        return "CREATE";
    case CommandId::Delete:
        return "DELETE";
    case CommandId::Rename:
        return "RENAME";
    case CommandId::Subscribe:
        return "SUBSCRIBE";
    case CommandId::Unsubscribe:
        return "UNSUBSCRIBE";
    case CommandId::List:
        return "LIST";
    case CommandId::Lsub:
        return "LSUB";
    case CommandId::Status:
        return "STATUS";
    case CommandId::Append:
        return "APPEND";
    case CommandId::Idle:
        return "IDLE";
    case CommandId::Check:
        return "CHECK";
    case CommandId::Close:
        return "CLOSE";
    case CommandId::Unselect:
        return "UNSELECT";
    case CommandId::Expunge:
        return "EXPUNGE";
    case CommandId::UidExpunge:
        return "UID EXPUNGE";
    case CommandId::Search:
        return "SEARCH";
    case CommandId::UidSearch:
        return "UID SEARCH";
    case CommandId::Fetch:
        return "FETCH";
    case CommandId::UidFetch:
        return "UID FETCH";
    case CommandId::Store:
        return "STORE";
    case CommandId::UidStore:
        return "UID STORE";
    case CommandId::Copy:
        return "COPY";
    case CommandId::UidCopy:
        return "UID COPY";
    case CommandId::Move:
        return "MOVE";
    case CommandId::UidMove:
        return "UID MOVE";
    }
    return "?";
}

// Session states as bits for the legality table.
enum StateBit : std::uint8_t {
    kStateNotAuthenticated = 1,
    kStateAuthenticated = 2,
    kStateSelected = 4,
    kStateAny = kStateNotAuthenticated | kStateAuthenticated | kStateSelected,
};

struct CommandSpec {
    std::string_view name; // upper case; "UID FETCH" for UID-prefixed commands
    CommandId id;
    std::uint8_t states; // StateBit mask of the states it is legal in
};

inline constexpr std::array kCommandSpecs{
    CommandSpec{"CAPABILITY", CommandId::Capability, kStateAny},
    CommandSpec{"NOOP", CommandId::Noop, kStateAny},
    CommandSpec{"LOGOUT", CommandId::Logout, kStateAny},
    CommandSpec{"ID", CommandId::Id, kStateAny},
    CommandSpec{"ENABLE", CommandId::Enable, kStateAuthenticated | kStateSelected},
    CommandSpec{"LOGIN", CommandId::Login, kStateNotAuthenticated},
    CommandSpec{"AUTHENTICATE", CommandId::Authenticate, kStateNotAuthenticated},
    CommandSpec{"STARTTLS", CommandId::StartTls, kStateNotAuthenticated},
    CommandSpec{"SELECT", CommandId::Select, kStateAuthenticated | kStateSelected},
    CommandSpec{"EXAMINE", CommandId::Examine, kStateAuthenticated | kStateSelected},
    CommandSpec{"NAMESPACE", CommandId::Namespace, kStateAuthenticated | kStateSelected},
    CommandSpec{"CREATE", CommandId::Create, kStateAuthenticated | kStateSelected},
    CommandSpec{"DELETE", CommandId::Delete, kStateAuthenticated | kStateSelected},
    CommandSpec{"RENAME", CommandId::Rename, kStateAuthenticated | kStateSelected},
    CommandSpec{"SUBSCRIBE", CommandId::Subscribe, kStateAuthenticated | kStateSelected},
    CommandSpec{"UNSUBSCRIBE", CommandId::Unsubscribe, kStateAuthenticated | kStateSelected},
    CommandSpec{"LIST", CommandId::List, kStateAuthenticated | kStateSelected},
    CommandSpec{"LSUB", CommandId::Lsub, kStateAuthenticated | kStateSelected},
    CommandSpec{"STATUS", CommandId::Status, kStateAuthenticated | kStateSelected},
    CommandSpec{"APPEND", CommandId::Append, kStateAuthenticated | kStateSelected},
    CommandSpec{"IDLE", CommandId::Idle, kStateAuthenticated | kStateSelected},
    CommandSpec{"CHECK", CommandId::Check, kStateSelected},
    CommandSpec{"CLOSE", CommandId::Close, kStateSelected},
    CommandSpec{"UNSELECT", CommandId::Unselect, kStateSelected},
    CommandSpec{"EXPUNGE", CommandId::Expunge, kStateSelected},
    CommandSpec{"UID EXPUNGE", CommandId::UidExpunge, kStateSelected},
    CommandSpec{"SEARCH", CommandId::Search, kStateSelected},
    CommandSpec{"UID SEARCH", CommandId::UidSearch, kStateSelected},
    CommandSpec{"FETCH", CommandId::Fetch, kStateSelected},
    CommandSpec{"UID FETCH", CommandId::UidFetch, kStateSelected},
    CommandSpec{"STORE", CommandId::Store, kStateSelected},
    CommandSpec{"UID STORE", CommandId::UidStore, kStateSelected},
    CommandSpec{"COPY", CommandId::Copy, kStateSelected},
    CommandSpec{"UID COPY", CommandId::UidCopy, kStateSelected},
    CommandSpec{"MOVE", CommandId::Move, kStateSelected},
    CommandSpec{"UID MOVE", CommandId::UidMove, kStateSelected},
};

constexpr const CommandSpec& command_spec(CommandId id) {
    for (const CommandSpec& s : kCommandSpecs)
        if (s.id == id)
            return s;
    return kCommandSpecs[0]; // unreachable: every CommandId has a row (checked below)
}

constexpr bool command_allowed(CommandId id, StateBit state) {
    return (command_spec(id).states & state) != 0;
}

static_assert(kCommandSpecs.size() == static_cast<std::size_t>(CommandId::UidMove) + 1);

struct CapabilityArgs {};
struct NoopArgs {};
struct LogoutArgs {};
struct CheckArgs {};
struct UnselectArgs {};

struct IdArgs {
    // nullopt for "ID NIL"; otherwise field/value pairs (value nullopt for NIL)
    std::optional<std::vector<std::pair<std::string, std::optional<std::string>>>> params;
};

struct LoginArgs {
    std::string user;
    std::string password;
};

struct SelectArgs {
    std::string mailbox;    // UTF-8, INBOX folded to upper case
    bool read_only = false; // EXAMINE
    bool condstore = false; // (CONDSTORE), RFC 7162 3.1.8
    struct QResync {
        std::uint32_t uid_validity = 0;
        std::uint64_t modseq = 0;
        std::optional<SeqSet> known_uids;
    };
    std::optional<QResync> qresync; // (QRESYNC (...)), RFC 7162 3.2.5
};

struct FetchArgs {
    SeqSet set;                                 // sequence numbers, or UIDs when `uid`
    std::vector<FetchAtt> atts;                 // macros already expanded
    bool uid = false;                           // UID FETCH
    std::optional<std::uint64_t> changed_since; // (CHANGEDSINCE n), RFC 7162 3.1.4
    bool vanished = false;                      // (VANISHED), RFC 7162 3.2.6
};

struct NamespaceArgs {};
struct StartTlsArgs {};
struct IdleArgs {};
struct CloseArgs {};

struct EnableArgs {
    std::vector<std::string> capabilities; // upper-cased
};

// AUTHENTICATE mechanism [initial-response] (RFC 3501 6.2.2, RFC 4959).
struct AuthenticateArgs {
    std::string mechanism;              // upper-cased
    std::optional<std::string> initial; // base64 text as sent ("=" is an empty response)
};

// CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE: one mailbox argument.
struct MailboxArgs {
    std::string mailbox; // UTF-8, INBOX folded
};

struct RenameArgs {
    std::string from;
    std::string to;
};

// STATUS items (RFC 3501 6.3.10, RFC 7162, RFC 8438, RFC 9051).
enum class StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    HighestModSeq
};

constexpr std::string_view to_string(StatusItem i) {
    switch (i) {
    case StatusItem::Messages:
        return "MESSAGES";
    case StatusItem::Recent:
        return "RECENT";
    case StatusItem::UidNext:
        return "UIDNEXT";
    case StatusItem::UidValidity:
        return "UIDVALIDITY";
    case StatusItem::Unseen:
        return "UNSEEN";
    case StatusItem::Deleted:
        return "DELETED";
    case StatusItem::Size:
        return "SIZE";
    case StatusItem::HighestModSeq:
        return "HIGHESTMODSEQ";
    }
    return "?";
}

struct StatusArgs {
    std::string mailbox;
    std::vector<StatusItem> items;
};

// LIST / LSUB, with RFC 5258 LIST-EXTENDED and RFC 5819 LIST-STATUS options.
struct ListArgs {
    bool lsub = false;
    std::string reference;                 // UTF-8
    std::vector<std::string> patterns;     // UTF-8 (decoded from modified UTF-7)
    bool extended = false;                 // selection or return options, or several patterns
    bool select_subscribed = false;        // (SUBSCRIBED)
    bool select_recursive = false;         // (RECURSIVEMATCH)
    bool select_special_use = false;       // (SPECIAL-USE), RFC 6154
    bool return_subscribed = false;        // RETURN (SUBSCRIBED)
    bool return_children = false;          // RETURN (CHILDREN)
    bool return_special_use = false;       // RETURN (SPECIAL-USE)
    std::vector<StatusItem> return_status; // RETURN (STATUS (...))
};

struct AppendArgs {
    std::string mailbox;
    std::uint32_t flags = 0;
    std::vector<std::string> keywords;
    std::optional<std::int64_t> date; // unix seconds (UTC)
    std::string message;
};

struct StoreArgs {
    SeqSet set;
    bool uid = false;
    FlagOp op = FlagOp::Replace;
    bool silent = false;
    std::uint32_t flags = 0;
    std::vector<std::string> keywords;
    std::optional<std::uint64_t> unchanged_since; // RFC 7162
};

// COPY / MOVE (and their UID forms).
struct CopyArgs {
    SeqSet set;
    bool uid = false;
    bool move = false;
    std::string mailbox;
};

struct ExpungeArgs {
    std::optional<SeqSet> uids; // UID EXPUNGE
};

using CommandArgs =
    std::variant<CapabilityArgs, NoopArgs, LogoutArgs, IdArgs, LoginArgs, SelectArgs, CheckArgs,
                 UnselectArgs, FetchArgs, NamespaceArgs, StartTlsArgs, IdleArgs, CloseArgs,
                 EnableArgs, AuthenticateArgs, MailboxArgs, RenameArgs, StatusArgs, ListArgs,
                 AppendArgs, StoreArgs, CopyArgs, ExpungeArgs, SearchArgs>;

struct Command {
    std::string tag;
    CommandId id = CommandId::Noop;
    CommandArgs args;
};

} // namespace popbridge::protocol::imap
