#pragma once
// Base64 encoding (RFC 4648 section 4, with padding) for SASL responses
// (RFC 5034 section 4). Encoding only: popbridge never needs to decode a
// server challenge.

#include <string>
#include <string_view>

namespace popbridge::protocol::pop3 {

std::string base64_encode(std::string_view bytes);

} // namespace popbridge::protocol::pop3
