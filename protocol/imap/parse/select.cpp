#include "protocol/imap/mailbox_name.h"
#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

// select = "SELECT" SP mailbox ; examine = "EXAMINE" SP mailbox
Parsed<CommandArgs> parse_select(ArgCursor& args, bool read_only) {
    auto raw = args.astring();
    if (!raw)
        return tl::unexpected(raw.error());
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    auto name = mailbox_from_wire(*raw);
    if (!name)
        return parse_error("Invalid mailbox name encoding");
    return CommandArgs(SelectArgs{std::move(*name), read_only});
}

} // namespace popbridge::protocol::imap
