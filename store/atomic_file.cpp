#include "store/atomic_file.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace popbridge::store {

Error io_error(std::string_view call, const std::filesystem::path& path, int err) {
    return Error{Errc::Io, std::string(call) + "(" + path.string() + "): " + std::strerror(err)};
}

Result<void> write_all(int fd, std::span<const char> bytes, const std::filesystem::path& path) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return tl::unexpected(io_error("write", path, errno));
        }
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return {};
}

Result<void> pwrite_all(int fd, std::span<const char> bytes, std::uint64_t offset,
                        const std::filesystem::path& path) {
    while (!bytes.empty()) {
        ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return tl::unexpected(io_error("pwrite", path, errno));
        }
        bytes = bytes.subspan(static_cast<std::size_t>(n));
        offset += static_cast<std::uint64_t>(n);
    }
    return {};
}

Result<std::string> read_all(int fd, const std::filesystem::path& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return tl::unexpected(io_error("fstat", path, errno));
    }
    std::string out;
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (true) {
        if (done == out.size()) {
            out.resize(out.size() + 4096); // the file may have grown; read to EOF
        }
        ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return tl::unexpected(io_error("pread", path, errno));
        }
        if (n == 0) {
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    out.resize(done);
    return out;
}

Result<void> fsync_dir(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return tl::unexpected(io_error("open", dir, errno));
    }
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) {
        return tl::unexpected(io_error("fsync", dir, err));
    }
    return {};
}

Result<void> make_dir(const std::filesystem::path& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        return tl::unexpected(io_error("mkdir", dir, errno));
    }
    return {};
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::span<const char> bytes) {
    std::filesystem::path tmp = path;
    tmp += ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return tl::unexpected(io_error("open", tmp, errno));
    }
    auto written = write_all(fd, bytes, tmp);
    if (written && ::fsync(fd) != 0) {
        written = tl::unexpected(io_error("fsync", tmp, errno));
    }
    ::close(fd);
    if (!written) {
        ::unlink(tmp.c_str());
        return written;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return tl::unexpected(io_error("rename", path, err));
    }
    return fsync_dir(path.parent_path());
}

} // namespace popbridge::store
