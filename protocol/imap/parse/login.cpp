#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

// login = "LOGIN" SP userid SP password ; both astrings
Parsed<CommandArgs> parse_login(ArgCursor& args) {
    auto user = args.astring();
    if (!user)
        return tl::unexpected(user.error());
    auto password = args.astring();
    if (!password)
        return tl::unexpected(password.error());
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    return CommandArgs(LoginArgs{std::move(*user), std::move(*password)});
}

} // namespace popbridge::protocol::imap
