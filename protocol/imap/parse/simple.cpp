// Commands without arguments: CAPABILITY, NOOP, LOGOUT, CHECK, UNSELECT.
#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

namespace {

template <class Args>
Parsed<CommandArgs> no_arguments(ArgCursor& args) {
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    return CommandArgs(Args{});
}

} // namespace

Parsed<CommandArgs> parse_capability(ArgCursor& args) {
    return no_arguments<CapabilityArgs>(args);
}
Parsed<CommandArgs> parse_noop(ArgCursor& args) {
    return no_arguments<NoopArgs>(args);
}
Parsed<CommandArgs> parse_logout(ArgCursor& args) {
    return no_arguments<LogoutArgs>(args);
}
Parsed<CommandArgs> parse_check(ArgCursor& args) {
    return no_arguments<CheckArgs>(args);
}
Parsed<CommandArgs> parse_unselect(ArgCursor& args) {
    return no_arguments<UnselectArgs>(args);
}

} // namespace popbridge::protocol::imap
