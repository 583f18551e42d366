// Mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND;
// and the small ones: NAMESPACE, STARTTLS, IDLE, CLOSE, EXPUNGE, ENABLE, AUTHENTICATE.
#include <array>

#include "protocol/imap/mailbox_name.h"
#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

namespace {

Parsed<std::string> mailbox_arg(ArgCursor& args) {
    auto raw = args.astring();
    if (!raw)
        return tl::unexpected(raw.error());
    auto name = mailbox_from_wire(*raw);
    if (!name)
        return parse_error("Invalid mailbox name encoding");
    return *name;
}

Parsed<CommandArgs> end_with(ArgCursor& args, CommandArgs value) {
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    return value;
}

// list-mailbox = 1*list-char / string; '%' and '*' are allowed in the atom form.
Parsed<std::string> list_mailbox(ArgCursor& args) {
    const Token* t = args.peek();
    if (t == nullptr)
        return parse_error("Missing mailbox pattern");
    std::string raw;
    if (t->kind == TokenKind::Atom) {
        for (char c : t->text)
            if (!is_astring_char(c) && c != '%' && c != '*')
                return parse_error("Invalid character in mailbox pattern");
        raw = t->text;
        args.advance();
    } else {
        auto s = args.string();
        if (!s)
            return tl::unexpected(s.error());
        raw = std::move(*s);
    }
    auto name = decode_mailbox_name(raw);
    if (!name)
        return parse_error("Invalid mailbox name encoding");
    return *name;
}

Parsed<StatusItem> status_item(ArgCursor& args) {
    auto a = args.atom();
    if (!a)
        return tl::unexpected(a.error());
    static constexpr std::array kItems{
        StatusItem::Messages, StatusItem::Recent,  StatusItem::UidNext, StatusItem::UidValidity,
        StatusItem::Unseen,   StatusItem::Deleted, StatusItem::Size,    StatusItem::HighestModSeq};
    for (StatusItem i : kItems)
        if (iequals(*a, to_string(i)))
            return i;
    return parse_error("Unknown status item " + *a);
}

Parsed<std::vector<StatusItem>> status_list(ArgCursor& args) {
    if (!args.list_open())
        return parse_error("Expected status item list");
    std::vector<StatusItem> items;
    while (!args.list_close()) {
        auto i = status_item(args);
        if (!i)
            return tl::unexpected(i.error());
        items.push_back(*i);
    }
    if (items.empty())
        return parse_error("Empty status item list");
    return items;
}

} // namespace

Parsed<void> parse_flag_list(ArgCursor& args, bool parenthesized_only, std::uint32_t& flags,
                             std::vector<std::string>& keywords) {
    bool list = args.list_open();
    if (!list && parenthesized_only)
        return parse_error("Expected flag list");
    for (;;) {
        if (list && args.list_close())
            break;
        if (!list && args.at_end())
            break;
        const Token* t = args.peek();
        if (t == nullptr || t->kind != TokenKind::Atom || t->text.empty())
            return parse_error("Expected flag");
        const std::string& f = t->text;
        if (f[0] == '\\') {
            auto bit = flag_from_name(f);
            if (!bit || *bit == kFlagRecent)
                return parse_error("Invalid system flag " + f);
            flags |= *bit;
        } else {
            for (char c : f)
                if (!is_atom_char(c))
                    return parse_error("Invalid keyword " + f);
            bool dup = false;
            for (const std::string& k : keywords)
                dup = dup || iequals(k, f);
            if (!dup)
                keywords.push_back(f);
        }
        args.advance();
        if (!list)
            continue;
    }
    return {};
}

// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
Parsed<std::int64_t> parse_date_time(std::string_view s) {
    static constexpr std::array<std::string_view, 12> kMonths = {
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
    if (s.size() != 26 || s[2] != '-' || s[6] != '-' || s[11] != ' ' || s[14] != ':' ||
        s[17] != ':' || s[20] != ' ' || (s[21] != '+' && s[21] != '-'))
        return parse_error("Invalid date-time");
    auto digits = [&](std::size_t pos, std::size_t n, bool leading_space) -> int {
        int v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            char c = s[pos + i];
            if (c == ' ' && leading_space && i == 0)
                continue;
            if (c < '0' || c > '9')
                return -1;
            v = v * 10 + (c - '0');
        }
        return v;
    };
    int day = digits(0, 2, true), year = digits(7, 4, false), hh = digits(12, 2, false),
        mm = digits(15, 2, false), ss = digits(18, 2, false), zone = digits(22, 4, false);
    std::string mon = to_upper(s.substr(3, 3));
    int month = 0;
    for (int i = 0; i < 12; ++i)
        if (kMonths[static_cast<std::size_t>(i)] == mon)
            month = i + 1;
    if (day < 1 || day > 31 || month == 0 || year < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60 || zone < 0 || zone % 100 > 59)
        return parse_error("Invalid date-time");
    auto y = static_cast<std::int64_t>(year) - (month <= 2 ? 1 : 0);
    std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    auto yoe = static_cast<unsigned>(y - era * 400);
    unsigned mo = static_cast<unsigned>(month);
    unsigned doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + static_cast<unsigned>(day) - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    std::int64_t days = era * 146097 + static_cast<std::int64_t>(doe) - 719468;
    std::int64_t offset = (zone / 100 * 60 + zone % 100) * 60;
    if (s[21] == '-')
        offset = -offset;
    return days * 86400 + hh * 3600 + mm * 60 + ss - offset;
}

Parsed<CommandArgs> parse_mailbox_only(ArgCursor& args) {
    auto name = mailbox_arg(args);
    if (!name)
        return tl::unexpected(name.error());
    return end_with(args, MailboxArgs{std::move(*name)});
}

// rename = "RENAME" SP mailbox SP mailbox
Parsed<CommandArgs> parse_rename(ArgCursor& args) {
    auto from = mailbox_arg(args);
    if (!from)
        return tl::unexpected(from.error());
    auto to = mailbox_arg(args);
    if (!to)
        return tl::unexpected(to.error());
    return end_with(args, RenameArgs{std::move(*from), std::move(*to)});
}

// status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"
Parsed<CommandArgs> parse_status(ArgCursor& args) {
    auto name = mailbox_arg(args);
    if (!name)
        return tl::unexpected(name.error());
    auto items = status_list(args);
    if (!items)
        return tl::unexpected(items.error());
    return end_with(args, StatusArgs{std::move(*name), std::move(*items)});
}

// list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
Parsed<CommandArgs> parse_list(ArgCursor& args, bool lsub) {
    ListArgs out;
    out.lsub = lsub;
    if (!lsub && args.list_open()) {
        out.extended = true;
        while (!args.list_close()) {
            auto opt = args.atom();
            if (!opt)
                return tl::unexpected(opt.error());
            if (iequals(*opt, "SUBSCRIBED"))
                out.select_subscribed = true;
            else if (iequals(*opt, "RECURSIVEMATCH"))
                out.select_recursive = true;
            else if (iequals(*opt, "SPECIAL-USE"))
                out.select_special_use = true;
            else if (iequals(*opt, "REMOTE"))
                continue; // no remote mailboxes here
            else
                return parse_error("Unknown LIST selection option " + *opt);
        }
        if (out.select_recursive && !out.select_subscribed && !out.select_special_use)
            return parse_error("RECURSIVEMATCH needs another selection option");
    }
    auto ref = list_mailbox(args);
    if (!ref)
        return tl::unexpected(ref.error());
    out.reference = std::move(*ref);
    if (!lsub && args.list_open()) {
        out.extended = true;
        while (!args.list_close()) {
            auto p = list_mailbox(args);
            if (!p)
                return tl::unexpected(p.error());
            out.patterns.push_back(std::move(*p));
        }
        if (out.patterns.empty())
            return parse_error("Empty pattern list");
    } else {
        auto p = list_mailbox(args);
        if (!p)
            return tl::unexpected(p.error());
        out.patterns.push_back(std::move(*p));
    }
    if (!lsub && !args.at_end()) {
        auto ret = args.atom();
        if (!ret || !iequals(*ret, "RETURN") || !args.list_open())
            return parse_error("Expected RETURN (...)");
        out.extended = true;
        while (!args.list_close()) {
            auto opt = args.atom();
            if (!opt)
                return tl::unexpected(opt.error());
            if (iequals(*opt, "SUBSCRIBED")) {
                out.return_subscribed = true;
            } else if (iequals(*opt, "CHILDREN")) {
                out.return_children = true;
            } else if (iequals(*opt, "SPECIAL-USE")) {
                out.return_special_use = true;
            } else if (iequals(*opt, "STATUS")) {
                auto items = status_list(args);
                if (!items)
                    return tl::unexpected(items.error());
                out.return_status = std::move(*items);
            } else {
                return parse_error("Unknown LIST return option " + *opt);
            }
        }
    }
    return end_with(args, std::move(out));
}

// append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal
Parsed<CommandArgs> parse_append(ArgCursor& args) {
    AppendArgs out;
    auto name = mailbox_arg(args);
    if (!name)
        return tl::unexpected(name.error());
    out.mailbox = std::move(*name);
    const Token* t = args.peek();
    if (t != nullptr && t->kind == TokenKind::ListOpen) {
        auto fl = parse_flag_list(args, true, out.flags, out.keywords);
        if (!fl)
            return tl::unexpected(fl.error());
        t = args.peek();
    }
    if (t != nullptr && t->kind == TokenKind::Quoted) {
        auto date = parse_date_time(t->text);
        if (!date)
            return tl::unexpected(date.error());
        out.date = *date;
        args.advance();
        t = args.peek();
    }
    if (t == nullptr || t->kind != TokenKind::Literal)
        return parse_error("Expected message literal");
    out.message = t->text;
    args.advance();
    if (out.message.empty())
        return parse_error("Empty message");
    return end_with(args, std::move(out));
}

Parsed<CommandArgs> parse_enable(ArgCursor& args) {
    EnableArgs out;
    while (!args.at_end()) {
        auto a = args.atom();
        if (!a)
            return tl::unexpected(a.error());
        out.capabilities.push_back(to_upper(*a));
    }
    if (out.capabilities.empty())
        return parse_error("ENABLE needs a capability");
    return CommandArgs(std::move(out));
}

// authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]
Parsed<CommandArgs> parse_authenticate(ArgCursor& args) {
    AuthenticateArgs out;
    auto mech = args.atom();
    if (!mech)
        return tl::unexpected(mech.error());
    out.mechanism = to_upper(*mech);
    if (!args.at_end()) {
        auto ir = args.atom();
        if (!ir)
            return tl::unexpected(ir.error());
        out.initial = std::move(*ir);
    }
    return end_with(args, std::move(out));
}

Parsed<CommandArgs> parse_namespace(ArgCursor& args) {
    return end_with(args, NamespaceArgs{});
}
Parsed<CommandArgs> parse_starttls(ArgCursor& args) {
    return end_with(args, StartTlsArgs{});
}
Parsed<CommandArgs> parse_idle(ArgCursor& args) {
    return end_with(args, IdleArgs{});
}
Parsed<CommandArgs> parse_close(ArgCursor& args) {
    return end_with(args, CloseArgs{});
}

} // namespace popbridge::protocol::imap
