#include "sbx/util/fs.hpp"

#include "sbx/util/error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace sbx {

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw_errno(fmt::format("cannot read {}", path.string()), errno);
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file_atomic(const std::filesystem::path& path, std::string_view data,
                       std::filesystem::perms perms) {
    auto tmp = path;
    tmp += fmt::format(".tmp{}", ::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    static_cast<mode_t>(perms));
    if (fd < 0) {
        throw_errno(fmt::format("cannot write {}", tmp.string()), errno);
    }
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw_errno(fmt::format("cannot write {}", tmp.string()), err);
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw_errno(fmt::format("cannot write {}", tmp.string()), err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw_errno(fmt::format("cannot rename {} to {}", tmp.string(), path.string()), err);
    }
}

void make_private_dirs(const std::filesystem::path& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        return;
    }
    if (path.has_parent_path() && path.parent_path() != path) {
        make_private_dirs(path.parent_path());
    }
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
        throw_errno(fmt::format("cannot create folder {}", path.string()), errno);
    }
}

std::filesystem::path expand_home(const std::string& path) {
    if (path == "~" || path.rfind("~/", 0) == 0) {
        const char* home = std::getenv("HOME");
        if (!home || !*home) {
            throw Error(fmt::format("cannot expand {}: HOME is not set", path));
        }
        return std::filesystem::path(home) / path.substr(path.size() > 1 ? 2 : 1);
    }
    return path;
}

}  // namespace sbx
