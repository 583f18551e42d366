#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

namespace {

FetchAtt simple(FetchItem item) {
    return FetchAtt{item, false, {}, std::nullopt};
}

Parsed<std::uint32_t> parse_u32(std::string_view s, bool nonzero) {
    if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0'))
        return parse_error("Invalid number");
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return parse_error("Invalid number");
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v > 0xffffffffULL || (nonzero && v == 0))
        return parse_error("Number out of range");
    return static_cast<std::uint32_t>(v);
}

// section-spec without brackets: [section-part ["." section-text]] / section-msgtext
// `fields_follow` is set when the text is HEADER.FIELDS[.NOT] and needs its list.
Parsed<Section> parse_section_spec(std::string_view spec, bool& fields_follow) {
    Section s;
    fields_follow = false;
    std::string upper = to_upper(spec);
    std::string_view rest = upper;
    while (!rest.empty() && rest[0] >= '0' && rest[0] <= '9') {
        auto dot = rest.find('.');
        auto n = parse_u32(rest.substr(0, dot), true);
        if (!n)
            return tl::unexpected(n.error());
        s.part.push_back(*n);
        if (dot == std::string_view::npos) {
            rest = {};
            break;
        }
        rest.remove_prefix(dot + 1);
        if (rest.empty())
            return parse_error("Invalid section");
    }
    if (rest.empty()) {
        s.text = SectionText::None;
    } else if (rest == "HEADER") {
        s.text = SectionText::Header;
    } else if (rest == "HEADER.FIELDS") {
        s.text = SectionText::HeaderFields;
        fields_follow = true;
    } else if (rest == "HEADER.FIELDS.NOT") {
        s.text = SectionText::HeaderFieldsNot;
        fields_follow = true;
    } else if (rest == "TEXT") {
        s.text = SectionText::Text;
    } else if (rest == "MIME" && !s.part.empty()) {
        s.text = SectionText::Mime;
    } else {
        return parse_error("Invalid section");
    }
    return s;
}

// "" or "<offset.length>"
Parsed<std::optional<Partial>> parse_partial(std::string_view suffix) {
    if (suffix.empty())
        return std::optional<Partial>();
    if (suffix.size() < 5 || suffix.front() != '<' || suffix.back() != '>')
        return parse_error("Invalid partial");
    std::string_view inner = suffix.substr(1, suffix.size() - 2);
    auto dot = inner.find('.');
    if (dot == std::string_view::npos)
        return parse_error("Invalid partial");
    auto offset = parse_u32(inner.substr(0, dot), false);
    auto length = parse_u32(inner.substr(dot + 1), true);
    if (!offset || !length)
        return parse_error("Invalid partial");
    return std::optional<Partial>(Partial{*offset, *length});
}

Parsed<FetchAtt> parse_body_section(ArgCursor& args, std::string_view name, std::string_view rest) {
    FetchAtt att{FetchItem::BodySection, false, {}, std::nullopt};
    std::string upper = to_upper(name);
    if (upper == "BODY.PEEK")
        att.peek = true;
    else if (upper != "BODY")
        return parse_error("Unknown fetch attribute");

    bool fields_follow = false;
    std::string_view suffix;
    auto rb = rest.find(']');
    auto section = parse_section_spec(rest.substr(0, rb), fields_follow);
    if (!section)
        return tl::unexpected(section.error());
    att.section = std::move(*section);
    std::string tail; // keeps the closing token's text alive for `suffix`
    if (rb != std::string_view::npos) {
        if (fields_follow)
            return parse_error("Missing header field list");
        suffix = rest.substr(rb + 1);
    } else {
        if (!fields_follow)
            return parse_error("Missing ']'");
        const Token* open = args.peek();
        if (open == nullptr || open->kind != TokenKind::ListOpen || !open->space_before)
            return parse_error("Expected header field list");
        args.advance();
        while (!args.list_close()) {
            auto field = args.astring();
            if (!field)
                return tl::unexpected(field.error());
            att.section.fields.push_back(to_upper(*field));
        }
        if (att.section.fields.empty())
            return parse_error("Empty header field list");
        const Token* close = args.peek();
        if (close == nullptr || close->kind != TokenKind::Atom || close->space_before ||
            close->text.empty() || close->text[0] != ']')
            return parse_error("Missing ']'");
        tail = close->text.substr(1);
        args.advance();
        suffix = tail;
    }
    auto partial = parse_partial(suffix);
    if (!partial)
        return tl::unexpected(partial.error());
    att.partial = *partial;
    return att;
}

Parsed<FetchAtt> parse_one(ArgCursor& args) {
    const Token* t = args.peek();
    if (t == nullptr || t->kind != TokenKind::Atom)
        return parse_error("Expected fetch attribute");
    std::string text = t->text;
    args.advance();
    auto lb = text.find('[');
    if (lb != std::string::npos)
        return parse_body_section(args, std::string_view(text).substr(0, lb),
                                  std::string_view(text).substr(lb + 1));
    std::string upper = to_upper(text);
    static constexpr std::pair<std::string_view, FetchItem> kNames[] = {
        {"FLAGS", FetchItem::Flags},
        {"UID", FetchItem::Uid},
        {"RFC822.SIZE", FetchItem::Rfc822Size},
        {"INTERNALDATE", FetchItem::InternalDate},
        {"ENVELOPE", FetchItem::Envelope},
        {"BODYSTRUCTURE", FetchItem::BodyStructure},
        {"BODY", FetchItem::Body},
        {"RFC822", FetchItem::Rfc822},
        {"RFC822.HEADER", FetchItem::Rfc822Header},
        {"RFC822.TEXT", FetchItem::Rfc822Text},
        {"MODSEQ", FetchItem::ModSeq},
    };
    for (const auto& [name, item] : kNames)
        if (upper == name)
            return simple(item);
    return parse_error("Unknown fetch attribute " + text);
}

} // namespace

Parsed<std::vector<FetchAtt>> parse_fetch_atts(ArgCursor& args) {
    std::vector<FetchAtt> atts;
    if (args.list_open()) {
        while (!args.list_close()) {
            auto att = parse_one(args);
            if (!att)
                return tl::unexpected(att.error());
            atts.push_back(std::move(*att));
        }
        if (atts.empty())
            return parse_error("Empty fetch attribute list");
        return atts;
    }
    const Token* t = args.peek();
    if (t != nullptr && t->kind == TokenKind::Atom) {
        std::string upper = to_upper(t->text);
        // Macros (RFC 3501 6.4.5): ALL, FAST, FULL.
        if (upper == "ALL" || upper == "FAST" || upper == "FULL") {
            args.advance();
            atts = {simple(FetchItem::Flags), simple(FetchItem::InternalDate),
                    simple(FetchItem::Rfc822Size)};
            if (upper != "FAST")
                atts.push_back(simple(FetchItem::Envelope));
            if (upper == "FULL")
                atts.push_back(simple(FetchItem::Body));
            return atts;
        }
    }
    auto att = parse_one(args);
    if (!att)
        return tl::unexpected(att.error());
    atts.push_back(std::move(*att));
    return atts;
}

// fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
//         "(" fetch-att *(SP fetch-att) ")")
Parsed<CommandArgs> parse_fetch(ArgCursor& args, bool uid) {
    const Token* t = args.peek();
    if (t == nullptr || t->kind != TokenKind::Atom)
        return parse_error("Expected sequence set");
    auto set = SeqSet::parse(t->text);
    if (!set)
        return parse_error("Invalid sequence set");
    args.advance();
    auto atts = parse_fetch_atts(args);
    if (!atts)
        return tl::unexpected(atts.error());
    FetchArgs out{std::move(*set), std::move(*atts), uid, std::nullopt, false};
    // fetch-modifiers (RFC 7162): (CHANGEDSINCE n [VANISHED])
    if (args.list_open()) {
        while (!args.list_close()) {
            auto m = args.atom();
            if (!m)
                return tl::unexpected(m.error());
            if (iequals(*m, "CHANGEDSINCE")) {
                auto n = parse_number64(args);
                if (!n)
                    return tl::unexpected(n.error());
                out.changed_since = *n;
            } else if (iequals(*m, "VANISHED")) {
                out.vanished = true;
            } else {
                return parse_error("Unknown FETCH modifier " + *m);
            }
        }
        if (out.vanished && (!uid || !out.changed_since))
            return parse_error("VANISHED needs UID FETCH with CHANGEDSINCE");
    }
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    return CommandArgs(std::move(out));
}

} // namespace popbridge::protocol::imap
