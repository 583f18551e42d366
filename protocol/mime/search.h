#pragma once
// SEARCH helpers over a parsed message (RFC 3501 6.4.4, RFC 9051 6.4.4). Needles are UTF-8
// (the session converts a CHARSET argument first); comparison is contains_folded().

#include <string_view>

#include "protocol/mime/message.h"

namespace popbridge::protocol::mime {

// SEARCH HEADER name / SUBJECT / FROM / TO / CC / BCC: true when some field `name` of the top
// level header contains `needle` after unfolding and RFC 2047 decoding. An empty needle
// matches every message that has the field (RFC 3501 6.4.4 HEADER).
bool search_header(const Message& msg, std::string_view name, std::string_view needle,
                   const Limits& limits = {});

// SEARCH BODY: `needle` in the body of any text/* (or message/* without structure) leaf part,
// after transfer decoding and charset conversion to UTF-8.
bool search_body(const Message& msg, std::string_view needle, const Limits& limits = {});

// SEARCH TEXT: search_body, or any top-level header field (decoded) contains `needle`.
bool search_text(const Message& msg, std::string_view needle, const Limits& limits = {});

} // namespace popbridge::protocol::mime
