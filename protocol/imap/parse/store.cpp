// STORE, COPY, MOVE, EXPUNGE and their UID forms.
#include "protocol/imap/mailbox_name.h"
#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

namespace {

Parsed<SeqSet> seq_set_arg(ArgCursor& args) {
    const Token* t = args.peek();
    if (t == nullptr || t->kind != TokenKind::Atom)
        return parse_error("Expected sequence set");
    auto set = SeqSet::parse(t->text);
    if (!set)
        return parse_error("Invalid sequence set");
    args.advance();
    return *set;
}

Parsed<std::uint64_t> number64(ArgCursor& args) {
    const Token* t = args.peek();
    if (t == nullptr || t->kind != TokenKind::Atom || t->text.empty() || t->text.size() > 19)
        return parse_error("Expected a number");
    std::uint64_t v = 0;
    for (char c : t->text) {
        if (c < '0' || c > '9')
            return parse_error("Expected a number");
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    args.advance();
    return v;
}

} // namespace

Parsed<std::uint64_t> parse_number64(ArgCursor& args) {
    return number64(args);
}

// store = "STORE" SP sequence-set [SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"]
//         SP store-att-flags
// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
Parsed<CommandArgs> parse_store(ArgCursor& args, bool uid) {
    StoreArgs out;
    out.uid = uid;
    auto set = seq_set_arg(args);
    if (!set)
        return tl::unexpected(set.error());
    out.set = std::move(*set);
    if (args.list_open()) {
        auto mod = args.atom();
        if (!mod || !iequals(*mod, "UNCHANGEDSINCE"))
            return parse_error("Expected UNCHANGEDSINCE");
        auto n = number64(args);
        if (!n)
            return tl::unexpected(n.error());
        out.unchanged_since = *n;
        if (!args.list_close())
            return parse_error("Expected ')'");
    }
    auto item = args.atom();
    if (!item)
        return tl::unexpected(item.error());
    std::string name = to_upper(*item);
    if (name.starts_with("+")) {
        out.op = FlagOp::Add;
        name.erase(0, 1);
    } else if (name.starts_with("-")) {
        out.op = FlagOp::Remove;
        name.erase(0, 1);
    }
    if (name == "FLAGS.SILENT")
        out.silent = true;
    else if (name != "FLAGS")
        return parse_error("Expected FLAGS, +FLAGS or -FLAGS");
    if (args.at_end())
        return parse_error("Missing flags");
    auto flags = parse_flag_list(args, false, out.flags, out.keywords);
    if (!flags)
        return tl::unexpected(flags.error());
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    return CommandArgs(std::move(out));
}

// copy = "COPY" SP sequence-set SP mailbox ; move = "MOVE" SP sequence-set SP mailbox
Parsed<CommandArgs> parse_copy(ArgCursor& args, bool uid, bool move) {
    CopyArgs out;
    out.uid = uid;
    out.move = move;
    auto set = seq_set_arg(args);
    if (!set)
        return tl::unexpected(set.error());
    out.set = std::move(*set);
    auto raw = args.astring();
    if (!raw)
        return tl::unexpected(raw.error());
    auto name = mailbox_from_wire(*raw);
    if (!name)
        return parse_error("Invalid mailbox name encoding");
    out.mailbox = std::move(*name);
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    return CommandArgs(std::move(out));
}

// expunge = "EXPUNGE" ; uid-expunge = "UID EXPUNGE" SP sequence-set
Parsed<CommandArgs> parse_expunge(ArgCursor& args, bool uid) {
    ExpungeArgs out;
    if (uid) {
        auto set = seq_set_arg(args);
        if (!set)
            return tl::unexpected(set.error());
        out.uids = std::move(*set);
    }
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    return CommandArgs(std::move(out));
}

} // namespace popbridge::protocol::imap
