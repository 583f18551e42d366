#pragma once
// RFC 5322 header fields: iteration over a raw header block, case-insensitive lookup with
// unfolding, and the exact bytes for FETCH BODY[HEADER.FIELDS (...)] / HEADER.FIELDS.NOT
// (RFC 3501 6.4.5). Pure functions over a header block such as Part::header.in(bytes).

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace popbridge::protocol::mime {

// One field of a header block, as views into the block.
struct HeaderField {
    std::string_view name;  // as written, without the colon and without trailing blanks;
                            // empty for a line without a colon (kept so nothing is lost)
    std::string_view value; // raw value after the colon: folding line breaks kept, the
                            // field's final line break removed
    std::string_view raw;   // the whole field, continuation lines and final line break included
};

// Calls `fn` for each field of `header` in order; stops at the empty line that ends the
// header (or at the end of the block). `fn` returns false to stop early. Linear time.
void for_each_field(std::string_view header, const std::function<bool(const HeaderField&)>& fn);

// ASCII case-insensitive equality of field names.
bool field_name_equal(std::string_view a, std::string_view b);

// Removes folding (CRLF / LF followed by blanks: the line break is dropped, the blank kept,
// RFC 5322 2.2.3), the blanks right after the colon, and trailing blanks. At most `max_bytes` of
// the value are read.
std::string unfold(std::string_view value, std::size_t max_bytes = std::string::npos);

// The unfolded value of the first field named `name`, or nullopt.
std::optional<std::string> find_field(std::string_view header, std::string_view name,
                                      std::size_t max_bytes = 1024 * 1024);

// The raw fields whose names are (not = false) or are not (not = true) in `names`, in header
// order, followed by the empty line RFC 3501 requires ("\r\n"). Lines with no field name
// count as not listed: HEADER.FIELDS.NOT returns them, as Dovecot does. The output keeps every byte
// of the selected fields as stored.
std::string select_fields(std::string_view header, std::span<const std::string> names, bool not_in);

} // namespace popbridge::protocol::mime
