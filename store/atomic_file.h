// Small POSIX helpers for durable file work. All block; call them where
// blocking is allowed (worker thread, start-up, rare admin operations).
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "store/errc.h"

namespace popbridge::store {

// Error{Io} naming the call, the path and strerror(errno).
Error io_error(std::string_view call, const std::filesystem::path& path, int err);

// write(2)/pwrite(2) until all bytes are written (retries EINTR and short writes).
Result<void> write_all(int fd, std::span<const char> bytes, const std::filesystem::path& path);
Result<void> pwrite_all(int fd, std::span<const char> bytes, std::uint64_t offset,
                        const std::filesystem::path& path);
// Reads the whole file behind fd from offset 0.
Result<std::string> read_all(int fd, const std::filesystem::path& path);
// open(dir, O_DIRECTORY) + fsync: makes creations/renames/unlinks in dir durable.
Result<void> fsync_dir(const std::filesystem::path& dir);
// mkdir(2) with 0700; an existing directory is fine.
Result<void> make_dir(const std::filesystem::path& dir);
// Writes bytes to `<path>.tmp`, fsyncs it, renames over path, fsyncs the directory.
Result<void> write_file_atomic(const std::filesystem::path& path, std::span<const char> bytes);

} // namespace popbridge::store
