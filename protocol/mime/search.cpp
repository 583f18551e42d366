#include "protocol/mime/search.h"

#include "protocol/mime/bodystructure.h"
#include "protocol/mime/encoded_word.h"
#include "protocol/mime/header.h"

namespace popbridge::protocol::mime {

namespace {

bool leaf_matches(const Message& msg, const Part& p, std::string_view needle,
                  const Limits& limits) {
    std::string_view header = p.header.in(msg.bytes);
    std::string charset;
    if (auto ct = find_field(header, "Content-Type", limits.max_header_field)) {
        for (auto& prm : parse_field_with_params(*ct, limits.max_parameters).params) {
            if (prm.name == "charset") {
                charset = prm.value;
                break;
            }
        }
    }
    std::string enc = find_field(header, "Content-Transfer-Encoding", 256).value_or("");
    return contains_folded(decode_body_text(p.body.in(msg.bytes), enc, charset), needle);
}

} // namespace

bool search_header(const Message& msg, std::string_view name, std::string_view needle,
                   const Limits& limits) {
    bool found = false;
    for_each_field(msg.root().header.in(msg.bytes), [&](const HeaderField& f) {
        if (f.name.empty() || !field_name_equal(f.name, name))
            return true;
        found =
            contains_folded(decode_encoded_words(unfold(f.value, limits.max_header_field)), needle);
        return !found;
    });
    return found;
}

bool search_body(const Message& msg, std::string_view needle, const Limits& limits) {
    for (const Part& p : msg.parts) {
        if (p.kind != PartKind::Leaf)
            continue;
        if (p.type != "text" && p.type != "message")
            continue;
        if (leaf_matches(msg, p, needle, limits))
            return true;
    }
    return false;
}

bool search_text(const Message& msg, std::string_view needle, const Limits& limits) {
    bool found = false;
    for_each_field(msg.root().header.in(msg.bytes), [&](const HeaderField& f) {
        found =
            contains_folded(decode_encoded_words(unfold(f.raw, limits.max_header_field)), needle);
        return !found;
    });
    return found || search_body(msg, needle, limits);
}

} // namespace popbridge::protocol::mime
