#include "tree_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>

#include "sbx/share/sha256.hpp"
#include "sbx/util/error.hpp"

namespace sbx::share::detail {

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = o.release();
    }
    return *this;
}

Fd::~Fd() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

std::vector<std::string> split_rel(std::string_view rel) {
    if (rel.empty() || rel.front() == '/') {
        throw Error(fmt::format("not a relative path inside the share: \"{}\"", rel));
    }
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= rel.size()) {
        std::size_t slash = rel.find('/', start);
        if (slash == std::string_view::npos) {
            slash = rel.size();
        }
        auto part = rel.substr(start, slash - start);
        if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) {
            throw Error(fmt::format("not a plain relative path inside the share: \"{}\"", rel));
        }
        parts.emplace_back(part);
        start = slash + 1;
    }
    return parts;
}

std::string join_rel(const std::vector<std::string>& parts, std::size_t count) {
    std::string out;
    for (std::size_t i = 0; i < count && i < parts.size(); ++i) {
        if (i > 0) {
            out += '/';
        }
        out += parts[i];
    }
    return out;
}

Fd open_root(const std::filesystem::path& root) {
    int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        throw_errno(fmt::format("cannot open folder {}", root.string()), errno);
    }
    return Fd(fd);
}

std::optional<Fd> open_subdir(int dir, const std::string& name, int& err) {
    int fd = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        return std::nullopt;
    }
    err = 0;
    return Fd(fd);
}

std::optional<Fd> open_parent(int root, const std::vector<std::string>& parts,
                              std::optional<mode_t> create_mode, WalkFailure& failure,
                              std::vector<std::string>* created) {
    int dup = ::fcntl(root, F_DUPFD_CLOEXEC, 3);
    if (dup < 0) {
        failure = {"", std::strerror(errno), errno};
        return std::nullopt;
    }
    Fd cur(dup);
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        int err = 0;
        auto next = open_subdir(cur.get(), parts[i], err);
        if (!next && err == ENOENT && create_mode) {
            if (::mkdirat(cur.get(), parts[i].c_str(), *create_mode) != 0 && errno != EEXIST) {
                failure = {join_rel(parts, i + 1), std::strerror(errno), errno};
                return std::nullopt;
            }
            if (created) {
                created->push_back(join_rel(parts, i + 1));
            }
            next = open_subdir(cur.get(), parts[i], err);
        }
        if (!next) {
            std::string reason;
            struct stat st {};
            bool is_link =
                ::fstatat(cur.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
            if (err == ELOOP || (err == ENOTDIR && is_link)) {
                err = ELOOP;  // O_DIRECTORY|O_NOFOLLOW on a symlink may say ENOTDIR
                reason = "is a symlink";
            } else if (err == ENOTDIR) {
                reason = "is not a folder";
            } else if (err == ENOENT) {
                reason = "does not exist";
            } else {
                reason = std::strerror(err);
            }
            failure = {join_rel(parts, i + 1), reason, err};
            return std::nullopt;
        }
        cur = std::move(*next);
    }
    return cur;
}

std::string kind_name(mode_t mode) {
    switch (mode & S_IFMT) {
        case S_IFREG:
            return "file";
        case S_IFDIR:
            return "folder";
        case S_IFLNK:
            return "symlink";
        case S_IFIFO:
            return "fifo";
        case S_IFSOCK:
            return "socket";
        case S_IFCHR:
            return "character device";
        case S_IFBLK:
            return "block device";
        default:
            return "unknown file type";
    }
}

std::string mode_text(std::uint32_t mode) {
    if (S_ISLNK(mode)) {
        return "120000";  // a symlink's own bits mean nothing (git prints this too)
    }
    return fmt::format("{:06o}", mode & (S_IFMT | 07777));
}

Stat stat_at(int dir, const std::string& name) {
    Stat s;
    if (::fstatat(dir, name.c_str(), &s.st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return s;
        }
        throw_errno(fmt::format("cannot stat {}", name), errno);
    }
    s.entry.mode = s.st.st_mode;
    s.entry.size = static_cast<std::uint64_t>(s.st.st_size);
    switch (s.st.st_mode & S_IFMT) {
        case S_IFREG:
            s.entry.kind = EntryKind::file;
            break;
        case S_IFDIR:
            s.entry.kind = EntryKind::dir;
            s.entry.size = 0;
            break;
        case S_IFLNK:
            s.entry.kind = EntryKind::symlink;
            s.entry.target = read_link(dir, name);
            break;
        default:
            s.entry.kind = EntryKind::special;
            s.entry.size = 0;
            break;
    }
    return s;
}

std::string read_link(int dir, const std::string& name) {
    std::array<char, PATH_MAX + 1> buf{};
    ssize_t n = ::readlinkat(dir, name.c_str(), buf.data(), buf.size());
    if (n < 0) {
        throw_errno(fmt::format("cannot read symlink {}", name), errno);
    }
    if (static_cast<std::size_t>(n) >= buf.size()) {
        throw Error(fmt::format("symlink {} has a target longer than {} bytes", name, PATH_MAX));
    }
    return std::string(buf.data(), static_cast<std::size_t>(n));
}

std::optional<Fd> open_regular(int dir, const std::string& name, int& err) {
    int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        err = errno;
        return std::nullopt;
    }
    Fd f(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        err = errno;
        return std::nullopt;
    }
    if (!S_ISREG(st.st_mode)) {
        err = EINVAL;
        return std::nullopt;
    }
    // Back to blocking reads for a regular file.
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) {
        ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }
    err = 0;
    return f;
}

std::optional<std::string> read_all(int fd, std::size_t limit) {
    std::string out;
    std::array<char, 65536> buf{};
    while (true) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("read", errno);
        }
        if (n == 0) {
            break;
        }
        if (out.size() + static_cast<std::size_t>(n) > limit) {
            return std::nullopt;
        }
        out.append(buf.data(), static_cast<std::size_t>(n));
    }
    return out;
}

std::vector<std::string> list_dir(int dir) {
    int dup = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup < 0) {
        throw_errno("cannot open folder", errno);
    }
    DIR* d = ::fdopendir(dup);
    if (!d) {
        int err = errno;
        ::close(dup);
        throw_errno("cannot list folder", err);
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") {
            names.emplace_back(n);
        }
        errno = 0;
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) {
        throw_errno("cannot list folder", err);
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::string temp_name() {
    std::array<unsigned char, 8> rnd{};
    if (::getrandom(rnd.data(), rnd.size(), 0) != static_cast<ssize_t>(rnd.size())) {
        throw_errno("getrandom", errno);
    }
    std::string name = ".sbx-";
    for (unsigned char c : rnd) {
        name += fmt::format("{:02x}", c);
    }
    return name + ".tmp";
}

namespace {

void write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("write", errno);
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

}  // namespace

std::string copy_stream(int in, const std::vector<int>& outs) {
    Sha256 hash;
    std::array<char, 65536> buf{};
    while (true) {
        ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("read", errno);
        }
        if (n == 0) {
            break;
        }
        auto len = static_cast<std::size_t>(n);
        hash.add(std::string_view(buf.data(), len));
        for (int out : outs) {
            write_all(out, buf.data(), len);
        }
    }
    return hash.hex();
}

std::string write_file_at(int dir, const std::string& name, int in, std::string_view data, mode_t mode,
                          const struct timespec* mtime, struct stat* st) {
    std::string tmp = temp_name();
    int fd = ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        throw_errno(fmt::format("cannot create a temp file next to {}", name), errno);
    }
    Fd out(fd);
    std::string digest;
    try {
        if (in >= 0) {
            digest = copy_stream(in, {fd});
        } else {
            write_all(fd, data.data(), data.size());
            digest = sha256_hex(data);
        }
        if (::fchmod(fd, mode & 0777) != 0) {
            throw_errno(fmt::format("cannot set the mode of {}", name), errno);
        }
        if (mtime) {
            std::array<struct timespec, 2> times{*mtime, *mtime};
            if (::futimens(fd, times.data()) != 0) {
                throw_errno(fmt::format("cannot set the time of {}", name), errno);
            }
        }
        if (::fsync(fd) != 0) {
            throw_errno(fmt::format("cannot flush {}", name), errno);
        }
        if (st && ::fstat(fd, st) != 0) {
            throw_errno(fmt::format("cannot stat {}", name), errno);
        }
        if (::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0) {
            throw_errno(fmt::format("cannot rename the temp file over {}", name), errno);
        }
    } catch (...) {
        ::unlinkat(dir, tmp.c_str(), 0);
        throw;
    }
    ::fsync(dir);
    return digest;
}

void write_symlink_at(int dir, const std::string& name, const std::string& target) {
    std::string tmp = temp_name();
    if (::symlinkat(target.c_str(), dir, tmp.c_str()) != 0) {
        throw_errno(fmt::format("cannot create symlink {}", name), errno);
    }
    if (::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0) {
        int err = errno;
        ::unlinkat(dir, tmp.c_str(), 0);
        throw_errno(fmt::format("cannot rename the temp symlink over {}", name), err);
    }
    ::fsync(dir);
}

}  // namespace sbx::share::detail

namespace sbx::share::detail {

Identity identity_of(const struct stat& st, EntryKind kind) {
    Identity id;
    id.kind = kind;
    id.size = kind == EntryKind::file ? static_cast<std::uint64_t>(st.st_size) : 0;
    id.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    id.inode = static_cast<std::uint64_t>(st.st_ino);
    id.mode = st.st_mode;
    return id;
}

std::optional<std::string> host_drift(int host_root, const std::string& rel, const Identity* recorded) {
    auto parts = split_rel(rel);
    WalkFailure failure;
    auto parent = open_parent(host_root, parts, std::nullopt, failure);
    Stat s;
    if (parent) {
        s = stat_at(parent->get(), parts.back());
    } else if (failure.err != ENOENT) {
        return fmt::format("on the host, {} {}", failure.at, failure.reason);
    }
    const EntryKind now = s.entry.kind;
    if (!recorded || recorded->kind == EntryKind::none) {
        if (now == EntryKind::none) {
            return std::nullopt;
        }
        return fmt::format("the host now has a {} here, created after the snapshot", kind_name(s.st.st_mode));
    }
    if (now == EntryKind::none) {
        return std::string("deleted on the host after the snapshot");
    }
    if (now != recorded->kind) {
        return fmt::format("now a {} on the host (a {} at the snapshot)", kind_name(s.st.st_mode),
                           to_string(recorded->kind));
    }
    if (now == EntryKind::symlink) {
        if (s.entry.target != recorded->target) {
            return std::string("symlink target changed on the host after the snapshot");
        }
        return std::nullopt;
    }
    if (now != EntryKind::file) {
        return std::nullopt;
    }
    if ((s.st.st_mode & 07777) != (recorded->mode & 07777)) {
        return fmt::format("mode changed on the host after the snapshot ({} -> {})",
                           mode_text(recorded->mode), mode_text(s.st.st_mode));
    }
    Identity cur = identity_of(s.st, EntryKind::file);
    if (cur.size == recorded->size && cur.mtime_ns == recorded->mtime_ns && cur.inode == recorded->inode) {
        return std::nullopt;
    }
    if (cur.size != recorded->size) {
        return std::string("content changed on the host after the snapshot");
    }
    int err = 0;
    auto fd = open_regular(parent->get(), parts.back(), err);
    if (!fd) {
        return fmt::format("cannot read the host file to compare it: {}", std::strerror(err));
    }
    if (copy_stream(fd->get(), {}) != recorded->sha256) {
        return std::string("content changed on the host after the snapshot");
    }
    return std::nullopt;
}

}  // namespace sbx::share::detail
