#pragma once
// Text decoding for display and SEARCH: RFC 2047 encoded words, RFC 2231 parameter values,
// Content-Transfer-Encoding (RFC 2045 6.7 quoted-printable, 6.8 base64), charset conversion
// to UTF-8, and a case-insensitive substring search.
//
// Charsets converted to UTF-8: utf-8, us-ascii, iso-8859-1 (latin1), iso-8859-15,
// windows-1252 (cp1252), with the usual aliases. Other charsets are left as they are
// (their bytes are passed through unchanged; invalid UTF-8 is not repaired).

#include <optional>
#include <string>
#include <string_view>

namespace popbridge::protocol::mime {

// True when `charset` (any case, aliases accepted) is one charset_to_utf8 converts.
bool charset_known(std::string_view charset);

// Converts `text` in `charset` to UTF-8. nullopt for an unknown charset.
std::optional<std::string> charset_to_utf8(std::string_view text, std::string_view charset);

// Decodes RFC 2047 encoded words ("=?charset?B|Q?text?=", with an optional "*language"
// after the charset) in an unfolded header value. Blanks between two adjacent encoded words
// are dropped (RFC 2047 6.2). Words with an unknown charset or a bad encoding are kept as
// written. Words are also recognised inside other text (as most mail readers do).
std::string decode_encoded_words(std::string_view value);

// base64 (RFC 2045 6.8): characters outside the alphabet are skipped; stops at '='.
std::string decode_base64(std::string_view in);
// quoted-printable (RFC 2045 6.7): soft line breaks removed; a bad "=XY" is kept as is.
std::string decode_quoted_printable(std::string_view in);

// Decodes `body` by its Content-Transfer-Encoding (7bit/8bit/binary/unknown: as is) and, when
// `charset` is known, converts it to UTF-8. For SEARCH BODY / TEXT.
std::string decode_body_text(std::string_view body, std::string_view transfer_encoding,
                             std::string_view charset);

// Case-insensitive substring test on UTF-8 text, folding ASCII and the Latin-1 Supplement
// letters (U+00C0..U+00DE to U+00E0..U+00FE) and Latin Extended-A pairs. An empty needle is
// found everywhere. Linear in the haystack for practical needles.
bool contains_folded(std::string_view haystack, std::string_view needle);

// Folds UTF-8 text the way contains_folded compares it (lower case; invalid bytes kept).
std::string fold_case(std::string_view utf8);

} // namespace popbridge::protocol::mime
