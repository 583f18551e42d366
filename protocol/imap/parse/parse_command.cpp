#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

namespace {

Parsed<CommandArgs> dispatch(CommandId id, ArgCursor& args) {
    switch (id) {
    case CommandId::Capability:
        return parse_capability(args);
    case CommandId::Noop:
        return parse_noop(args);
    case CommandId::Logout:
        return parse_logout(args);
    case CommandId::Id:
        return parse_id(args);
    case CommandId::Login:
        return parse_login(args);
    case CommandId::Select:
        return parse_select(args, false);
    case CommandId::Examine:
        return parse_select(args, true);
    case CommandId::Check:
        return parse_check(args);
    case CommandId::Unselect:
        return parse_unselect(args);
    case CommandId::Fetch:
        return parse_fetch(args, false);
    case CommandId::UidFetch:
        return parse_fetch(args, true);
    case CommandId::Enable:
        return parse_enable(args);
    case CommandId::Authenticate:
        return parse_authenticate(args);
    case CommandId::StartTls:
        return parse_starttls(args);
    case CommandId::Namespace:
        return parse_namespace(args);
    case CommandId::Create:
    case CommandId::Delete:
    case CommandId::Subscribe:
    case CommandId::Unsubscribe:
        return parse_mailbox_only(args);
    case CommandId::Rename:
        return parse_rename(args);
    case CommandId::List:
        return parse_list(args, false);
    case CommandId::Lsub:
        return parse_list(args, true);
    case CommandId::Status:
        return parse_status(args);
    case CommandId::Append:
        return parse_append(args);
    case CommandId::Idle:
        return parse_idle(args);
    case CommandId::Close:
        return parse_close(args);
    case CommandId::Expunge:
        return parse_expunge(args, false);
    case CommandId::UidExpunge:
        return parse_expunge(args, true);
    case CommandId::Search:
        return parse_search(args, false);
    case CommandId::UidSearch:
        return parse_search(args, true);
    case CommandId::Store:
        return parse_store(args, false);
    case CommandId::UidStore:
        return parse_store(args, true);
    case CommandId::Copy:
        return parse_copy(args, false, false);
    case CommandId::UidCopy:
        return parse_copy(args, true, false);
    case CommandId::Move:
        return parse_copy(args, false, true);
    case CommandId::UidMove:
        return parse_copy(args, true, true);
    }
    return parse_error("Unknown command");
}

} // namespace

tl::expected<Command, CommandParseError> parse_command(RawCommand raw) {
    ArgCursor args(raw.tokens);
    auto name = args.atom();
    if (!name)
        return tl::unexpected(CommandParseError{"Missing command", true});
    std::string full = to_upper(*name);
    if (full == "UID") {
        auto sub = args.atom();
        if (!sub)
            return tl::unexpected(CommandParseError{"Missing UID command", true});
        full += ' ';
        full += to_upper(*sub);
    }
    for (const CommandSpec& spec : kCommandSpecs) {
        if (spec.name != full)
            continue;
        auto parsed = dispatch(spec.id, args);
        if (!parsed)
            return tl::unexpected(CommandParseError{std::move(parsed.error().message), false});
        return Command{std::move(raw.tag), spec.id, std::move(*parsed)};
    }
    return tl::unexpected(CommandParseError{"Unknown command " + full, true});
}

} // namespace popbridge::protocol::imap
