#pragma once
// Internal to src/share: file-descriptor based tree access that never follows a symlink.
//
// Every path below a tree root is reached by openat() one component at a time from the
// root's fd with O_NOFOLLOW, so a symlink anywhere on the way (planted by the guest in
// work/, or present on the host) is reported instead of followed, and nothing is read or
// written outside the root. Paths are relative, '/'-separated, without ".", ".." or empty
// components (split_rel() enforces it).

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sbx/share/snapshot.hpp"

namespace sbx::share::detail {

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    Fd(Fd&& o) noexcept : m_fd(o.release()) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();

    int get() const { return m_fd; }
    bool valid() const { return m_fd >= 0; }
    int release() {
        int fd = m_fd;
        m_fd = -1;
        return fd;
    }

private:
    int m_fd = -1;
};

// Components of a relative path; throws sbx::Error on "", ".", "..", "//" or a leading '/'.
std::vector<std::string> split_rel(std::string_view rel);
std::string join_rel(const std::vector<std::string>& parts, std::size_t count);

// Opens a tree root folder (following symlinks in the configured path itself). Throws.
Fd open_root(const std::filesystem::path& root);

// Opens folder `name` under `dir` without following a symlink. Nothing (errno in err) when
// it is missing (ENOENT), a symlink (ELOOP) or not a folder (ENOTDIR).
std::optional<Fd> open_subdir(int dir, const std::string& name, int& err);

// Why a walk to a path's parent folder stopped.
struct WalkFailure {
    std::string at;      // the relative path of the component that stopped it
    std::string reason;  // "is a symlink", "is not a folder", "does not exist", strerror
    int err = 0;
};

// Opens the folder holding the last component of `parts`. With create_mode set, missing
// folders are created (mkdirat, that mode) on the way; `created` lists them (relative).
// On failure returns nothing and fills `failure`.
std::optional<Fd> open_parent(int root, const std::vector<std::string>& parts,
                              std::optional<mode_t> create_mode, WalkFailure& failure,
                              std::vector<std::string>* created = nullptr);

// lstat of `name` in `dir`: kind none when missing. Throws on other errors.
struct Stat {
    Entry entry;
    struct stat st {};
};
Stat stat_at(int dir, const std::string& name);

// readlinkat, bounded to PATH_MAX. Throws on errors.
std::string read_link(int dir, const std::string& name);

// Opens a regular file for reading, refusing symlinks and special files (O_NONBLOCK so a
// FIFO swapped in cannot block). Nothing (errno in err) when it is not a regular file.
std::optional<Fd> open_regular(int dir, const std::string& name, int& err);

// Reads all of fd into memory, at most `limit` bytes: nothing when the file is longer.
std::optional<std::string> read_all(int fd, std::size_t limit);

// Names in a folder (not "." or ".."), sorted bytewise. Throws on errors.
std::vector<std::string> list_dir(int dir);

// A fresh temporary name for the folder: ".sbx-<16 hex>.tmp".
std::string temp_name();

// Streams `in` into every fd of `outs` and returns the sha256 of the bytes.
std::string copy_stream(int in, const std::vector<int>& outs);

// Writes a file atomically at `name` in `dir`: temp file, contents from `in` (or `data`
// when in < 0), fsync, fchmod(mode), optional mtime, renameat over `name`. Fills `st`
// with the new file's stat and returns its sha256. Throws sbx::Error.
std::string write_file_at(int dir, const std::string& name, int in, std::string_view data, mode_t mode,
                          const struct timespec* mtime, struct stat* st);

// Creates a symlink atomically at `name` in `dir` (symlinkat to a temp name, renameat).
void write_symlink_at(int dir, const std::string& name, const std::string& target);

// "file", "folder", "symlink", "fifo", "socket", "character device", "block device".
std::string kind_name(mode_t mode);

// st_mode's type and permission bits as git prints them: 100644, 100755, 120000, 040000.
std::string mode_text(std::uint32_t mode);

}  // namespace sbx::share::detail

namespace sbx::share::detail {

// How the host entry at `rel` differs from what was recorded at snapshot time (nothing
// recorded: the path did not exist then). Nothing when it is unchanged. Size, mtime, inode
// and mode equal count as unchanged; otherwise a regular file's content is hashed.
std::optional<std::string> host_drift(int host_root, const std::string& rel, const Identity* recorded);

// The identity of an entry from its lstat (sha256 and target filled in by the caller).
Identity identity_of(const struct stat& st, EntryKind kind);

}  // namespace sbx::share::detail
