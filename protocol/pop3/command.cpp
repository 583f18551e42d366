#include "protocol/pop3/command.h"

#include "protocol/pop3/md5.h"

namespace popbridge::protocol::pop3 {

bool is_safe_argument(std::string_view arg) {
    return !arg.empty() &&
           arg.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string cmd_capa() {
    return "CAPA\r\n";
}
std::string cmd_stls() {
    return "STLS\r\n";
}

std::string cmd_user(std::string_view name) {
    std::string s = "USER ";
    s += name;
    s += "\r\n";
    return s;
}

std::string cmd_pass(std::string_view password) {
    std::string s = "PASS ";
    s += password;
    s += "\r\n";
    return s;
}

std::string cmd_apop(std::string_view name, std::string_view digest_hex) {
    std::string s = "APOP ";
    s += name;
    s += ' ';
    s += digest_hex;
    s += "\r\n";
    return s;
}

std::string cmd_auth(std::string_view mechanism, std::string_view initial_b64) {
    std::string s = "AUTH ";
    s += mechanism;
    if (!initial_b64.empty()) {
        s += ' ';
        s += initial_b64;
    }
    s += "\r\n";
    return s;
}

std::string cmd_uidl() {
    return "UIDL\r\n";
}
std::string cmd_list() {
    return "LIST\r\n";
}
std::string cmd_retr(std::uint32_t msgno) {
    return "RETR " + std::to_string(msgno) + "\r\n";
}
std::string cmd_top(std::uint32_t msgno, std::uint32_t lines) {
    return "TOP " + std::to_string(msgno) + " " + std::to_string(lines) + "\r\n";
}
std::string cmd_dele(std::uint32_t msgno) {
    return "DELE " + std::to_string(msgno) + "\r\n";
}
std::string cmd_quit() {
    return "QUIT\r\n";
}

std::string apop_digest(std::string_view timestamp, std::string_view secret) {
    std::string joined(timestamp);
    joined += secret;
    return md5_hex(joined);
}

std::string apop_timestamp(std::string_view greeting_text) {
    const std::size_t open = greeting_text.find('<');
    if (open == std::string_view::npos) {
        return {};
    }
    const std::size_t close = greeting_text.find('>', open);
    if (close == std::string_view::npos || close == open + 1) {
        return {};
    }
    for (std::size_t i = open + 1; i < close; ++i) {
        const auto c = static_cast<unsigned char>(greeting_text[i]);
        if (c <= 0x20 || c >= 0x7f || c == '<') {
            return {};
        }
    }
    return std::string(greeting_text.substr(open, close - open + 1));
}

std::string sasl_plain(std::string_view user, std::string_view password) {
    std::string s;
    s.push_back('\0');
    s += user;
    s.push_back('\0');
    s += password;
    return s;
}

std::string sasl_xoauth2(std::string_view user, std::string_view token) {
    std::string s = "user=";
    s += user;
    s += "\x01"
         "auth=Bearer ";
    s += token;
    s += "\x01\x01";
    return s;
}

std::string sasl_oauthbearer(std::string_view user, std::string_view token) {
    std::string s = "n,a=";
    for (char c : user) {
        if (c == ',') {
            s += "=2C";
        } else if (c == '=') {
            s += "=3D";
        } else {
            s.push_back(c);
        }
    }
    s += ",\x01"
         "auth=Bearer ";
    s += token;
    s += "\x01\x01";
    return s;
}

} // namespace popbridge::protocol::pop3
