#include "store/names.h"

#include <string>

namespace popbridge::store {

namespace {

bool has_control(std::string_view s) {
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            return true;
        }
    }
    return false;
}

tl::unexpected<Error> bad(std::string_view what, std::string_view why) {
    return make_error(Errc::InvalidName, std::string(what) + ": " + std::string(why));
}

} // namespace

Result<void> validate_user_name(std::string_view user) {
    if (user.empty() || user.size() > kMaxUserName) {
        return bad("user name", "must be 1..64 bytes");
    }
    if (has_control(user)) {
        return bad("user name", "contains a control byte");
    }
    if (user.find_first_of("/\\") != std::string_view::npos) {
        return bad("user name", "contains a path separator");
    }
    if (user.find("..") != std::string_view::npos || user.front() == '.') {
        return bad("user name", "contains '..' or starts with '.'");
    }
    return {};
}

Result<void> validate_folder_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxFolderName) {
        return bad("folder name", "must be 1..1024 bytes");
    }
    if (has_control(name)) {
        return bad("folder name", "contains a control byte");
    }
    // '/' is the hierarchy separator: every level must be 1..255 bytes, so no leading,
    // trailing or doubled '/'.
    std::size_t start = 0;
    while (true) {
        std::size_t slash = name.find('/', start);
        std::size_t len = (slash == std::string_view::npos ? name.size() : slash) - start;
        if (len == 0) {
            return bad("folder name", "has an empty level (leading, trailing or doubled '/')");
        }
        if (len > kMaxFolderLevel) {
            return bad("folder name", "has a level over 255 bytes");
        }
        if (slash == std::string_view::npos) {
            break;
        }
        start = slash + 1;
    }
    return {};
}

Result<void> validate_keyword(std::string_view keyword) {
    if (keyword.empty() || keyword.size() > kMaxKeyword) {
        return bad("keyword", "must be 1..255 bytes");
    }
    if (has_control(keyword) || keyword.find(' ') != std::string_view::npos) {
        return bad("keyword", "contains a control byte or space");
    }
    return {};
}

Result<void> validate_origin_field(std::string_view field) {
    if (field.empty() || field.size() > kMaxOriginField) {
        return bad("origin", "account and uidl must be 1..255 bytes");
    }
    if (has_control(field)) {
        return bad("origin", "contains a control byte");
    }
    return {};
}

} // namespace popbridge::store
