#include "protocol/imap/mailbox_name.h"
#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

// select = "SELECT" SP mailbox ; examine = "EXAMINE" SP mailbox
Parsed<CommandArgs> parse_select(ArgCursor& args, bool read_only) {
    auto raw = args.astring();
    if (!raw)
        return tl::unexpected(raw.error());
    auto name = mailbox_from_wire(*raw);
    if (!name)
        return parse_error("Invalid mailbox name encoding");
    SelectArgs out{std::move(*name), read_only, false, std::nullopt};
    // select-params (RFC 7162): (CONDSTORE) / (QRESYNC (uidvalidity modseq [known-uids]))
    if (args.list_open()) {
        while (!args.list_close()) {
            auto p = args.atom();
            if (!p)
                return tl::unexpected(p.error());
            if (iequals(*p, "CONDSTORE")) {
                out.condstore = true;
            } else if (iequals(*p, "QRESYNC")) {
                if (!args.list_open())
                    return parse_error("Expected QRESYNC parameters");
                SelectArgs::QResync q;
                auto v = args.number(true);
                if (!v)
                    return tl::unexpected(v.error());
                q.uid_validity = *v;
                auto m = parse_number64(args);
                if (!m)
                    return tl::unexpected(m.error());
                q.modseq = *m;
                const Token* t = args.peek();
                if (t != nullptr && t->kind == TokenKind::Atom) {
                    auto set = SeqSet::parse(t->text);
                    if (!set)
                        return parse_error("Invalid known-uids");
                    q.known_uids = std::move(*set);
                    args.advance();
                }
                // The optional (seq-match-data) is accepted and ignored: a server may
                // always answer with more VANISHED UIDs than needed.
                if (args.list_open()) {
                    while (!args.list_close())
                        args.advance();
                }
                if (!args.list_close())
                    return parse_error("Expected ')'");
                out.qresync = std::move(q);
            } else {
                return parse_error("Unknown SELECT parameter " + *p);
            }
        }
    }
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    return CommandArgs(std::move(out));
}

} // namespace popbridge::protocol::imap
