#include "proxy/log.h"

#include <ctime>
#include <memory>

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace popbridge::proxy {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t utf8_length(std::string_view s, size_t i) {
    auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + n > s.size())
        return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (b(i + k) & 0x3f);
    }
    // Overlong forms, surrogates, beyond U+10FFFF.
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void iso_time(spdlog::log_clock::time_point tp, spdlog::memory_buf_t& out) {
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(tp);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp - secs).count();
    std::time_t t = spdlog::log_clock::to_time_t(tp);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[64];
    size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    n += size_t(std::snprintf(buf + n, sizeof buf - n, ".%03d", int(ms)));
    n += std::strftime(buf + n, sizeof buf - n, "%z", &tm);
    out.append(buf, buf + n);
}

void append(spdlog::memory_buf_t& out, std::string_view s) {
    out.append(s.data(), s.data() + s.size());
}

class LineFormatter final : public spdlog::formatter {
public:
    explicit LineFormatter(bool json) : json_(json) {}

    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        std::string_view text(msg.payload.data(), msg.payload.size());
        std::string_view level = spdlog::level::to_string_view(msg.level).data();
        if (json_) {
            append(dest, "{\"time\":\"");
            iso_time(msg.time, dest);
            append(dest, "\",\"level\":\"");
            append(dest, level);
            append(dest, "\",\"msg\":\"");
            append(dest, json_escape(text));
            append(dest, "\"}\n");
        } else {
            iso_time(msg.time, dest);
            append(dest, " ");
            append(dest, level);
            append(dest, " ");
            append(dest, escape_control(text));
            append(dest, "\n");
        }
    }

    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<LineFormatter>(json_);
    }

private:
    bool json_;
};

} // namespace

std::string json_escape(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() + 8);
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        } else if (c >= 0x80) {
            size_t n = utf8_length(s, i);
            if (n == 0) {
                out += "\xef\xbf\xbd"; // U+FFFD
                ++i;
                continue;
            }
            out.append(s.substr(i, n));
            i += n;
            continue;
        } else {
            out += char(c);
        }
        ++i;
    }
    return out;
}

std::string escape_control(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        } else {
            out += ch;
        }
    }
    return out;
}

void init_logging(const std::string& level, const std::string& format) {
    auto logger = spdlog::stderr_logger_mt("popbridge");
    logger->set_formatter(std::make_unique<LineFormatter>(format == "json"));
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(level.empty() ? "info" : level));
    spdlog::flush_on(spdlog::level::trace);
}

} // namespace popbridge::proxy
