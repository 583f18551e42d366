#include "protocol/imap/fetch_att.h"

namespace popbridge::protocol::imap {

std::string fetch_att_response_name(const FetchAtt& att) {
    if (att.item != FetchItem::BodySection)
        return std::string(to_string(att.item));
    std::string out = "BODY[";
    for (std::size_t i = 0; i < att.section.part.size(); ++i) {
        if (i > 0)
            out.push_back('.');
        out += std::to_string(att.section.part[i]);
    }
    if (att.section.text != SectionText::None) {
        if (!att.section.part.empty())
            out.push_back('.');
        out += to_string(att.section.text);
    }
    if (!att.section.fields.empty()) {
        out += " (";
        for (std::size_t i = 0; i < att.section.fields.size(); ++i) {
            if (i > 0)
                out.push_back(' ');
            out += att.section.fields[i];
        }
        out.push_back(')');
    }
    out.push_back(']');
    // Only the origin octet is echoed (RFC 3501 7.4.2).
    if (att.partial) {
        out.push_back('<');
        out += std::to_string(att.partial->offset);
        out.push_back('>');
    }
    return out;
}

} // namespace popbridge::protocol::imap
