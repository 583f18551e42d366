// Validation of every string the store receives from outside. Only user names
// ever become path components; folder names, keywords and origins never do.
#pragma once

#include <cstddef>
#include <string_view>

#include "store/errc.h"

namespace popbridge::store {

inline constexpr std::size_t kMaxUserName = 64;
inline constexpr std::size_t kMaxFolderName = 1024;
inline constexpr std::size_t kMaxFolderLevel = 255; // bytes between two '/'
inline constexpr std::size_t kMaxKeyword = 255;
inline constexpr std::size_t kMaxKeywordsPerMessage = 128;
inline constexpr std::size_t kMaxOriginField = 255;

// 1..64 bytes; no '/', '\\', NUL or control bytes; no "..", not starting with '.'.
Result<void> validate_user_name(std::string_view user);
// 1..1024 bytes, no control bytes; '/' separates levels of 1..255 bytes each (no empty
// level). The name is stored, never used as a path.
Result<void> validate_folder_name(std::string_view name);
// 1..255 bytes, no control bytes, no space.
Result<void> validate_keyword(std::string_view keyword);
// account and uidl: 1..255 bytes each, no control bytes.
Result<void> validate_origin_field(std::string_view field);

} // namespace popbridge::store
