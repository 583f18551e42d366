#include "protocol/mime/bodystructure.h"

#include <algorithm>

#include "protocol/mime/envelope.h"
#include "protocol/mime/header.h"

namespace popbridge::protocol::mime {

namespace {

struct Writer {
    const Message& msg;
    bool ext;
    const Limits& limits;

    std::optional<std::string> field(const Part& p, std::string_view name) const {
        return find_field(p.header.in(msg.bytes), name, limits.max_header_field);
    }

    static std::string params(const std::vector<Parameter>& ps) {
        if (ps.empty())
            return "NIL";
        std::string out = "(";
        for (std::size_t i = 0; i < ps.size(); ++i) {
            if (i)
                out += ' ';
            out += imap_string(ps[i].wire_name) + " " + imap_string(ps[i].wire_value);
        }
        return out + ")";
    }

    std::string nstring_field(const Part& p, std::string_view name) const {
        auto v = field(p, name);
        return v ? imap_string(*v, true) : std::string("NIL");
    }

    std::string disposition(const Part& p) const {
        auto v = field(p, "Content-Disposition");
        if (!v)
            return "NIL";
        FieldWithParams f = parse_field_with_params(*v, limits.max_parameters);
        if (f.value.empty())
            return "NIL";
        return "(" + imap_string(f.value) + " " + params(f.params) + ")";
    }

    std::string language(const Part& p) const {
        auto v = field(p, "Content-Language");
        if (!v)
            return "NIL";
        std::vector<std::string> tags;
        std::string cur;
        for (char c : *v + ",") {
            if (c == ',' || c == ' ' || c == '\t') {
                if (!cur.empty())
                    tags.push_back(cur);
                cur.clear();
            } else {
                cur.push_back(c);
            }
        }
        if (tags.empty())
            return "NIL";
        std::string out = "(";
        for (std::size_t i = 0; i < tags.size(); ++i)
            out += (i ? " " : "") + imap_string(tags[i]);
        return out + ")";
    }

    std::string extension(const Part& p) const {
        return disposition(p) + " " + language(p) + " " + nstring_field(p, "Content-Location");
    }

    std::vector<Parameter> content_params(const Part& p) const {
        auto v = field(p, "Content-Type");
        if (!v || !p.has_content_type)
            return {};
        return parse_field_with_params(*v, limits.max_parameters).params;
    }

    // type and subtype with the case they were written in (Dovecot keeps it).
    std::pair<std::string, std::string> media_type(const Part& p) const {
        if (p.has_content_type && !p.truncated) {
            if (auto v = field(p, "Content-Type")) {
                std::string raw = parse_field_with_params(*v, 0).raw_value;
                std::size_t slash = raw.find('/');
                if (slash != std::string::npos)
                    return {raw.substr(0, slash), raw.substr(slash + 1)};
            }
        }
        return {p.type, p.subtype};
    }

    std::string write(std::uint32_t idx) const {
        const Part& p = msg.parts[idx];
        if (p.kind == PartKind::Multipart) {
            std::string out = "(";
            for (std::uint32_t c : p.children)
                out += write(c);
            if (p.children.empty()) {
                // No body part at all (no boundary line, or no boundary parameter): RFC 3501
                // needs one; Dovecot reports an empty text/plain part.
                out += "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0";
                out += ext ? " NIL NIL NIL NIL)" : ")";
            }
            out += " " + imap_string(media_type(p).second);
            if (ext)
                out += " " + params(content_params(p)) + " " + extension(p);
            return out + ")";
        }
        auto [type, subtype] = media_type(p);
        std::string out = "(" + imap_string(type) + " " + imap_string(subtype) + " ";
        std::vector<Parameter> ps = content_params(p);
        if (p.truncated)
            ps.erase(std::remove_if(ps.begin(), ps.end(),
                                    [](const Parameter& x) { return x.name == "boundary"; }),
                     ps.end());
        if (p.type == "text" && std::none_of(ps.begin(), ps.end(), [](const Parameter& x) {
                return x.name == "charset";
            }))
            ps.push_back({"charset", "us-ascii", "charset", "us-ascii"});
        out += params(ps) + " ";
        out += nstring_field(p, "Content-ID") + " ";
        out += nstring_field(p, "Content-Description") + " ";
        auto enc = field(p, "Content-Transfer-Encoding");
        out += (enc && !enc->empty() ? imap_string(*enc) : std::string("\"7bit\"")) + " ";
        out += std::to_string(p.body.size());
        if (p.kind == PartKind::Message) {
            std::uint32_t inner = p.children.front();
            out += " " + envelope(msg, inner, limits) + " " + write(inner) + " " +
                   std::to_string(p.body_lines);
        } else if (p.type == "text") {
            out += " " + std::to_string(p.body_lines);
        }
        if (ext)
            out += " " + nstring_field(p, "Content-MD5") + " " + extension(p);
        return out + ")";
    }
};

} // namespace

std::string bodystructure(const Message& msg, bool extensible, std::uint32_t part,
                          const Limits& limits) {
    if (part >= msg.parts.size())
        return "NIL";
    return Writer{msg, extensible, limits}.write(part);
}

} // namespace popbridge::protocol::mime
