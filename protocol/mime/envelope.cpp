#include "protocol/mime/envelope.h"

#include "protocol/mime/header.h"

namespace popbridge::protocol::mime {

namespace {

// RFC 5322 lexical tokens of an address list.
enum class TokKind { Atom, Quoted, Comment, Literal, Special };

struct Tok {
    TokKind kind;
    std::string text; // atom text, unquoted string, comment text, [literal], or the special
};

constexpr std::string_view kMissingMailbox = "MISSING_MAILBOX"; // Dovecot's placeholders
constexpr std::string_view kMissingDomain = "MISSING_DOMAIN";

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool is_special(char c) {
    return c == '<' || c == '>' || c == '@' || c == ',' || c == ';' || c == ':' || c == '.' ||
           c == '(' || c == ')' || c == '"' || c == '[' || c == ']' || c == '\\';
}

class Lexer {
public:
    explicit Lexer(std::string_view s) : s_(s) {}

    // Next token, or nullopt at the end. Comments are returned as tokens.
    std::optional<Tok> next() {
        while (pos_ < s_.size() && is_blank(s_[pos_]))
            ++pos_;
        if (pos_ >= s_.size())
            return std::nullopt;
        char c = s_[pos_];
        if (c == '"')
            return Tok{TokKind::Quoted, read_delimited('"', '"', false)};
        if (c == '(')
            return Tok{TokKind::Comment, read_delimited('(', ')', true)};
        if (c == '[') {
            std::string t = "[" + read_delimited('[', ']', false) + "]";
            return Tok{TokKind::Literal, std::move(t)};
        }
        if (is_special(c)) {
            ++pos_;
            if (c == ')' || c == ']' || c == '\\')
                return next(); // stray closer: skip it
            return Tok{TokKind::Special, std::string(1, c)};
        }
        std::size_t b = pos_;
        while (pos_ < s_.size() && !is_blank(s_[pos_]) && !is_special(s_[pos_]))
            ++pos_;
        return Tok{TokKind::Atom, std::string(s_.substr(b, pos_ - b))};
    }

    bool blank_before_next() const { return pos_ < s_.size() && is_blank(s_[pos_]); }

private:
    std::string read_delimited(char open, char close, bool nests) {
        ++pos_; // opener
        std::string out;
        int depth = 1;
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c == '\\' && pos_ < s_.size()) {
                out.push_back(s_[pos_++]);
                continue;
            }
            if (nests && c == open) {
                ++depth;
            } else if (c == close && --depth == 0) {
                break;
            }
            out.push_back(c);
        }
        return out;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

struct Item {
    Tok tok;
    bool blank_before = false;
};

class AddressParser {
public:
    AddressParser(std::string_view s, std::uint32_t max) : max_(max) {
        Lexer lx(s);
        bool blank = false;
        while (auto t = lx.next()) {
            items_.push_back({std::move(*t), blank});
            blank = lx.blank_before_next();
        }
    }

    std::vector<Address> run() {
        while (i_ < items_.size() && out_.size() < max_) {
            if (is_special(",") || is_special(";")) {
                ++i_;
                continue;
            }
            parse_address(false);
        }
        if (out_.size() > max_)
            out_.resize(max_);
        return std::move(out_);
    }

private:
    bool is_special(std::string_view sp) const {
        return i_ < items_.size() && items_[i_].tok.kind == TokKind::Special &&
               items_[i_].tok.text == sp;
    }

    void emit(Address a) {
        if (out_.size() < max_)
            out_.push_back(std::move(a));
    }

    // mailbox / group / bare words up to ',' (or ';' inside a group).
    void parse_address(bool in_group) {
        std::string phrase; // display-name words, joined by one space
        std::string local;  // the same tokens joined as a local part (no blanks)
        bool any_word = false;
        bool spaced = false; // two words with a blank between them (not a dot-atom)
        while (i_ < items_.size()) {
            const Item& it = items_[i_];
            const Tok& t = it.tok;
            if (t.kind == TokKind::Comment) {
                ++i_; // a comment before the address is not its name (Dovecot agrees)
                continue;
            }
            if (t.kind == TokKind::Special) {
                char c = t.text[0];
                if (c == ',' || (c == ';' && in_group) || (c == ';'))
                    break;
                if (c == '<') {
                    ++i_;
                    parse_angle(phrase.empty() ? std::string() : phrase);
                    skip_to_separator(in_group, nullptr);
                    return;
                }
                if (c == ':' && !in_group) {
                    ++i_;
                    parse_group(phrase.empty() ? local : phrase);
                    return;
                }
                if (c == '@') {
                    ++i_;
                    Address a;
                    if (spaced) {
                        // "Alice alice@example.org": a phrase with no angle address. Dovecot
                        // keeps the phrase as the name and marks the address missing.
                        a.name = phrase;
                        a.mailbox = kMissingMailbox;
                        a.host = kMissingDomain;
                        emit(std::move(a));
                        skip_to_separator(in_group, nullptr);
                        return;
                    }
                    a.mailbox = local.empty() ? std::string(kMissingMailbox) : local;
                    a.host = parse_domain();
                    if (a.host.empty())
                        a.host = kMissingDomain;
                    // "joe@example.org (Joe Q. Public)": the comment is the name.
                    skip_to_separator(in_group, &a.name);
                    emit(std::move(a));
                    return;
                }
                if (c == '.') {
                    local += '.';
                    phrase += '.';
                    ++i_;
                    continue;
                }
                ++i_; // '>' or ':' in a group: garbage
                continue;
            }
            // Atom, quoted string or literal.
            if (!phrase.empty() && it.blank_before) {
                phrase += ' ';
                spaced = spaced || local.back() != '.';
            }
            phrase += t.text;
            local += t.text;
            any_word = true;
            ++i_;
        }
        if (any_word) {
            // Words with no '@' and no '<': a mailbox without a domain.
            Address a;
            a.mailbox = local;
            a.host = kMissingDomain;
            emit(std::move(a));
        }
    }

    // Skips to the next ',' (or ';' in a group); the last comment passed is stored in *comment.
    void skip_to_separator(bool in_group, std::string* comment) {
        while (i_ < items_.size() && !is_special(",") && !(in_group && is_special(";"))) {
            if (comment && items_[i_].tok.kind == TokKind::Comment)
                *comment = items_[i_].tok.text;
            ++i_;
        }
    }

    std::string parse_domain() {
        std::string d;
        while (i_ < items_.size()) {
            const Tok& t = items_[i_].tok;
            if (t.kind == TokKind::Comment)
                break; // "a@b (Name)": the comment is the name, read by the caller
            if (t.kind == TokKind::Special && t.text != ".")
                break;
            if (!d.empty() && t.kind != TokKind::Special && d.back() != '.' && t.text != ".")
                break; // "a@b c": the domain ends at the blank
            d += t.text;
            ++i_;
        }
        return d;
    }

    // After '<': [route ':'] local '@' domain '>'.
    void parse_angle(std::string name) {
        std::string route;
        std::string local;
        std::string host;
        // Obsolete route: "@a,@b:"
        if (is_special("@")) {
            std::size_t save = i_;
            std::string r;
            while (i_ < items_.size() && !is_special(":") && !is_special(">"))
                r += items_[i_++].tok.text;
            if (is_special(":")) {
                route = r;
                ++i_;
            } else {
                i_ = save;
            }
        }
        while (i_ < items_.size() && !is_special("@") && !is_special(">")) {
            const Tok& t = items_[i_].tok;
            if (t.kind != TokKind::Comment)
                local += t.text;
            ++i_;
        }
        if (is_special("@")) {
            ++i_;
            while (i_ < items_.size() && !is_special(">")) {
                const Tok& t = items_[i_].tok;
                if (t.kind != TokKind::Comment)
                    host += t.text;
                ++i_;
            }
        }
        if (is_special(">"))
            ++i_;
        if (local.empty() && host.empty() && route.empty())
            return; // "<>": the null reverse-path
        Address a;
        a.name = std::move(name);
        a.route = std::move(route);
        a.mailbox = std::move(local);
        a.host = std::move(host);
        emit(std::move(a));
    }

    void parse_group(std::string name) {
        Address start;
        start.mailbox = std::move(name);
        start.is_group_start = true;
        emit(std::move(start));
        while (i_ < items_.size() && out_.size() < max_) {
            if (is_special(";")) {
                ++i_;
                break;
            }
            if (is_special(",")) {
                ++i_;
                continue;
            }
            parse_address(true);
        }
        Address end;
        end.is_group_end = true;
        emit(std::move(end));
    }

    std::vector<Item> items_;
    std::size_t i_ = 0;
    std::uint32_t max_;
    std::vector<Address> out_;
};

} // namespace

std::vector<Address> parse_address_list(std::string_view value, std::uint32_t max_addresses) {
    return AddressParser(value, max_addresses).run();
}

std::string imap_string(std::string_view s, bool nil_if_empty) {
    if (s.empty() && nil_if_empty)
        return "NIL";
    bool quotable = s.size() <= 4096;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u == 0 || u >= 0x80 || c == '\r' || c == '\n') {
            quotable = false;
            break;
        }
    }
    std::string out;
    if (!quotable) {
        out = "{" + std::to_string(s.size()) + "}\r\n";
        out.append(s);
        return out;
    }
    out.reserve(s.size() + 2);
    out.push_back('"');
    for (char c : s) {
        if (c == '"' || c == '\\')
            out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

std::string imap_nstring(const std::string* s) {
    return s ? imap_string(*s) : "NIL";
}

std::string imap_address_list(const std::vector<Address>& list) {
    if (list.empty())
        return "NIL";
    std::string out = "(";
    for (const Address& a : list) {
        if (a.is_group_end) {
            out += "(NIL NIL NIL NIL)";
            continue;
        }
        if (a.is_group_start) {
            out += "(NIL NIL " + imap_string(a.mailbox) + " NIL)";
            continue;
        }
        out += "(" + imap_string(a.name, true) + " " + imap_string(a.route, true) + " " +
               imap_string(a.mailbox) + " " + imap_string(a.host, true) + ")";
    }
    out += ")";
    return out;
}

std::string envelope(const Message& msg, std::uint32_t part, const Limits& limits) {
    if (part < msg.parts.size() && !msg.parts[part].is_message &&
        msg.parts[part].kind == PartKind::Message)
        part = msg.parts[part].children.front();
    std::string_view header =
        part < msg.parts.size() ? msg.parts[part].header.in(msg.bytes) : std::string_view();
    auto field = [&](std::string_view name) {
        return find_field(header, name, limits.max_header_field);
    };
    auto text = [&](std::string_view name) {
        auto v = field(name);
        return v ? imap_string(*v, true) : std::string("NIL");
    };
    auto addresses = [&](std::string_view name) {
        auto v = field(name);
        return v ? parse_address_list(*v, limits.max_addresses) : std::vector<Address>();
    };
    std::vector<Address> from = addresses("From");
    std::vector<Address> sender = addresses("Sender");
    std::vector<Address> reply_to = addresses("Reply-To");
    if (sender.empty())
        sender = from;
    if (reply_to.empty())
        reply_to = from;
    std::string out = "(";
    out += text("Date") + " ";
    out += text("Subject") + " ";
    out += imap_address_list(from) + " ";
    out += imap_address_list(sender) + " ";
    out += imap_address_list(reply_to) + " ";
    out += imap_address_list(addresses("To")) + " ";
    out += imap_address_list(addresses("Cc")) + " ";
    out += imap_address_list(addresses("Bcc")) + " ";
    out += text("In-Reply-To") + " ";
    out += text("Message-ID") + ")";
    return out;
}

} // namespace popbridge::protocol::mime
