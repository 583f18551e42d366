#include "protocol/imap/parse/parse.h"

namespace popbridge::protocol::imap {

// id = "ID" SP id-params-list ; id-params-list = "(" *(string SP nstring) ")" / nil
// RFC 2971 3.3: at most 30 pairs, field names up to 30 octets, values up to 1024.
Parsed<CommandArgs> parse_id(ArgCursor& args) {
    IdArgs out;
    if (args.nil()) {
        auto end = args.end();
        if (!end)
            return tl::unexpected(end.error());
        return CommandArgs(std::move(out));
    }
    if (!args.list_open())
        return parse_error("Expected ID parameter list or NIL");
    out.params.emplace();
    while (!args.list_close()) {
        if (out.params->size() >= 30)
            return parse_error("Too many ID parameters");
        auto field = args.string();
        if (!field)
            return tl::unexpected(field.error());
        auto value = args.nstring();
        if (!value)
            return tl::unexpected(value.error());
        if (field->size() > 30 || (*value && (*value)->size() > 1024))
            return parse_error("ID parameter too long");
        out.params->emplace_back(std::move(*field), std::move(*value));
    }
    auto end = args.end();
    if (!end)
        return tl::unexpected(end.error());
    return CommandArgs(std::move(out));
}

} // namespace popbridge::protocol::imap
