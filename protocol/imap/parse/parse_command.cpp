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
