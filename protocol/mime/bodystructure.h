#pragma once
// BODY and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2) from a parsed Message, as exact
// IMAP syntax ready to follow "BODY " / "BODYSTRUCTURE ". Also the typed Content-* field
// parsing they rest on (RFC 2045 5.1, RFC 2183, RFC 2231).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/mime/message.h"

namespace popbridge::protocol::mime {

struct Parameter {
    std::string name;  // lower-cased attribute, without RFC 2231 "*n" / "*" suffixes
    std::string value; // RFC 2231 continuations joined; charset'lang' decoded to UTF-8 when the
                       // charset is known (else the percent-decoded bytes)
    // As Dovecot sends it in BODYSTRUCTURE (clients expect this form): the attribute as first
    // written (case kept), with a trailing '*' when the value is RFC 2231 extended; the
    // sections joined but not decoded ("us-ascii'en'This%20is").
    std::string wire_name;
    std::string wire_value;
    bool operator==(const Parameter&) const = default;
};

// "type/subtype; a=b" or "attachment; filename=x": the token before the first ';' (lower
// cased, may be empty when invalid) and the parameters after it, in order of first
// appearance, at most `max_parameters`.
struct FieldWithParams {
    std::string value;     // lower-cased, blanks and comments removed
    std::string raw_value; // the same with its case kept
    std::vector<Parameter> params;
};
FieldWithParams parse_field_with_params(std::string_view unfolded, std::uint32_t max_parameters);

// BODYSTRUCTURE (`extensible` = true) or BODY (false) of the entity `part` (the root by
// default). Extension data: md5 NIL, disposition, language, location; multipart extension
// data: parameters, disposition, language, location.
std::string bodystructure(const Message& msg, bool extensible, std::uint32_t part = 0,
                          const Limits& limits = {});

} // namespace popbridge::protocol::mime
