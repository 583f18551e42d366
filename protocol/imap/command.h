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
#include "protocol/imap/seq_set.h"

namespace popbridge::protocol::imap {

enum class CommandId {
    Capability, // CAPABILITY
    Noop,       // NOOP
    Logout,     // LOGOUT
    Id,         // ID (RFC 2971)
    Login,      // LOGIN
    Select,     // SELECT
    Examine,    // EXAMINE
    Check,      // CHECK
    Unselect,   // UNSELECT (RFC 3691)
    Fetch,      // FETCH
    UidFetch,   // UID FETCH
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
    case CommandId::Login:
        return "LOGIN";
    case CommandId::Select:
        return "SELECT";
    case CommandId::Examine:
        return "EXAMINE";
    case CommandId::Check:
        return "CHECK";
    case CommandId::Unselect:
        return "UNSELECT";
    case CommandId::Fetch:
        return "FETCH";
    case CommandId::UidFetch:
        return "UID FETCH";
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
    CommandSpec{"LOGIN", CommandId::Login, kStateNotAuthenticated},
    CommandSpec{"SELECT", CommandId::Select, kStateAuthenticated | kStateSelected},
    CommandSpec{"EXAMINE", CommandId::Examine, kStateAuthenticated | kStateSelected},
    CommandSpec{"CHECK", CommandId::Check, kStateSelected},
    CommandSpec{"UNSELECT", CommandId::Unselect, kStateSelected},
    CommandSpec{"FETCH", CommandId::Fetch, kStateSelected},
    CommandSpec{"UID FETCH", CommandId::UidFetch, kStateSelected},
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

static_assert(kCommandSpecs.size() == static_cast<std::size_t>(CommandId::UidFetch) + 1);

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
};

struct FetchArgs {
    SeqSet set;                 // sequence numbers, or UIDs when `uid`
    std::vector<FetchAtt> atts; // macros already expanded
    bool uid = false;           // UID FETCH
};

using CommandArgs = std::variant<CapabilityArgs, NoopArgs, LogoutArgs, IdArgs, LoginArgs,
                                 SelectArgs, CheckArgs, UnselectArgs, FetchArgs>;

struct Command {
    std::string tag;
    CommandId id = CommandId::Noop;
    CommandArgs args;
};

} // namespace popbridge::protocol::imap
