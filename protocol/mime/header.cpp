#include "protocol/mime/header.h"

namespace popbridge::protocol::mime {

namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// End of the line starting at `pos`: the index after its LF, or size().
std::size_t line_end(std::string_view s, std::size_t pos) {
    std::size_t lf = s.find('\n', pos);
    return lf == std::string_view::npos ? s.size() : lf + 1;
}

std::string_view strip_line_break(std::string_view s) {
    if (!s.empty() && s.back() == '\n')
        s.remove_suffix(1);
    if (!s.empty() && s.back() == '\r')
        s.remove_suffix(1);
    return s;
}

} // namespace

void for_each_field(std::string_view header, const std::function<bool(const HeaderField&)>& fn) {
    std::size_t pos = 0;
    while (pos < header.size()) {
        std::size_t end = line_end(header, pos);
        std::string_view first = header.substr(pos, end - pos);
        if (strip_line_break(first).empty())
            return; // the empty line that ends the header
        // Continuation lines belong to this field.
        while (end < header.size() && is_blank(header[end]))
            end = line_end(header, end);
        HeaderField f;
        f.raw = header.substr(pos, end - pos);
        std::size_t colon = first.find(':');
        if (colon != std::string_view::npos && !is_blank(first[0])) {
            std::string_view name = first.substr(0, colon);
            while (!name.empty() && is_blank(name.back()))
                name.remove_suffix(1);
            f.name = name;
            f.value = strip_line_break(f.raw.substr(colon + 1));
        }
        if (!fn(f))
            return;
        pos = end;
    }
}

bool field_name_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    }
    return true;
}

std::string unfold(std::string_view value, std::size_t max_bytes) {
    if (value.size() > max_bytes)
        value = value.substr(0, max_bytes);
    // Blanks after the colon go; blanks that start a continuation line stay (as Dovecot does:
    // "Message-ID:\r\n <x>" gives " <x>").
    std::size_t b = 0;
    while (b < value.size() && is_blank(value[b]))
        ++b;
    std::string out;
    out.reserve(value.size() - b);
    for (char c : value.substr(b)) {
        if (c == '\r' || c == '\n')
            continue;
        out.push_back(c);
    }
    std::size_t e = out.size();
    while (e > 0 && is_blank(out[e - 1]))
        --e;
    out.resize(e);
    return out;
}

std::optional<std::string> find_field(std::string_view header, std::string_view name,
                                      std::size_t max_bytes) {
    std::optional<std::string> out;
    for_each_field(header, [&](const HeaderField& f) {
        if (!f.name.empty() && field_name_equal(f.name, name)) {
            out = unfold(f.value, max_bytes);
            return false;
        }
        return true;
    });
    return out;
}

std::string select_fields(std::string_view header, std::span<const std::string> names,
                          bool not_in) {
    std::string out;
    for_each_field(header, [&](const HeaderField& f) {
        bool listed = false;
        for (const auto& n : names) {
            if (field_name_equal(f.name, n)) {
                listed = true;
                break;
            }
        }
        if (listed != not_in) {
            out.append(f.raw);
            if (f.raw.empty() || f.raw.back() != '\n')
                out.append("\r\n"); // a last field cut by the end of the message
        }
        return true;
    });
    // The empty line that ends the fields; Dovecot leaves it out when nothing was selected
    // from a header that had no empty line either.
    bool had_blank = header.ends_with("\n\n") || header.ends_with("\n\r\n") || header == "\r\n" ||
                     header == "\n";
    if (!out.empty() || had_blank)
        out.append("\r\n");
    return out;
}

} // namespace popbridge::protocol::mime
