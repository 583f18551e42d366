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

namespace {

// RFC 5322 3.2.3 atext.
bool is_atext(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
           std::string_view::npos;
}

std::string hex_byte(unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string("0x") + kHex[c >> 4] + kHex[c & 15];
}

} // namespace

ApopTimestamp parse_apop_timestamp(std::string_view text) {
    ApopTimestamp out;
    const std::size_t open = text.find('<');
    if (open == std::string_view::npos)
        return out; // no challenge at all
    auto refuse = [&](std::string why) {
        out.refused = std::move(why);
        return out;
    };
    if (text.find('<', open + 1) != std::string_view::npos)
        return refuse("several '<' in the greeting");
    const std::size_t close = text.find('>', open);
    if (close == std::string_view::npos)
        return refuse("'<' without '>'");
    if (text.find('>', close + 1) != std::string_view::npos)
        return refuse("several '>' in the greeting");
    if (close + 1 - open > kMaxApopTimestamp)
        return refuse("longer than " + std::to_string(kMaxApopTimestamp) + " bytes");
    const std::string_view id = text.substr(open + 1, close - open - 1);
    if (id.empty())
        return refuse("empty <>");
    for (char ch : id) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x21 || c > 0x7e)
            return refuse("byte " + hex_byte(c) + " is not printable ASCII");
    }
    const std::size_t at = id.find('@');
    if (at == std::string_view::npos)
        return refuse("no '@' (not a msg-id)");
    if (id.find('@', at + 1) != std::string_view::npos)
        return refuse("several '@'");
    const std::string_view left = id.substr(0, at), right = id.substr(at + 1);
    if (left.empty() || right.empty())
        return refuse("empty side of '@'");
    auto dot_atoms = [](std::string_view s) {
        for (char ch : s)
            if (ch != '.' && !is_atext(static_cast<unsigned char>(ch)))
                return false;
        return true;
    };
    if (!dot_atoms(left))
        return refuse("id-left has a character outside atext");
    bool literal = right.size() >= 2 && right.front() == '[' && right.back() == ']';
    if (literal) {
        for (char ch : right.substr(1, right.size() - 2))
            if (ch == '[' || ch == ']' || ch == '\\')
                return refuse("bad id-right literal");
    } else if (!dot_atoms(right)) {
        return refuse("id-right has a character outside atext");
    }
    out.value = std::string(text.substr(open, close - open + 1));
    return out;
}

std::string apop_timestamp(std::string_view greeting_text) {
    return parse_apop_timestamp(greeting_text).value;
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
