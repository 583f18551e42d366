#pragma once
// Logging set-up (spdlog). Everything else logs through spdlog's default logger.
//
// Formats (one event per line on stderr):
//   text: 2026-03-01T12:00:05.123+0000 info message
//   json: {"time":"2026-03-01T12:00:05.123+0000","level":"info","msg":"message"}
// In both, the message cannot break the line structure: in text, control characters
// (CR, LF, ...) are written as \xNN; in json the message is a JSON string escaped per
// RFC 8259 (and invalid UTF-8 bytes become U+FFFD), so every line parses as JSON.

#include <string>
#include <string_view>

namespace popbridge::proxy {

// level: trace|debug|info|warn|error; format: text|json. Logs go to stderr.
void init_logging(const std::string& level, const std::string& format);

// RFC 8259 string body (no surrounding quotes): ", \, control characters escaped;
// invalid UTF-8 replaced by U+FFFD.
std::string json_escape(std::string_view s);
// Control characters (< 0x20 and 0x7f) as \xNN; everything else unchanged.
std::string escape_control(std::string_view s);

} // namespace popbridge::proxy
