#include "proxy/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace popbridge::proxy {

void init_logging(const std::string& level, const std::string& format) {
    auto logger = spdlog::stderr_logger_mt("popbridge");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(level.empty() ? "info" : level));
    if (format == "json")
        spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%v"})");
    else
        spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
    spdlog::flush_on(spdlog::level::trace);
}

} // namespace popbridge::proxy
