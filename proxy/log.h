#pragma once
// Logging set-up (spdlog). Everything else logs through spdlog's default logger.

#include <string>

namespace popbridge::proxy {

// level: trace|debug|info|warn|error; format: text|json. Logs go to stderr.
void init_logging(const std::string& level, const std::string& format);

} // namespace popbridge::proxy
