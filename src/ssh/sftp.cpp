// Theory of operation
//
// One SSH connection (session.cpp's: strict host key, the instance's own identity) carries
// one SFTP session. Each direction is a small recursive walk:
//
//   host -> guest   the host tree is read through directory fds (openat + O_NOFOLLOW), so a
//                   symlink inside it is copied as a symlink and never followed; each file
//                   is written to a temporary name beside its destination in the guest,
//                   given its mode, then renamed into place (an existing file is removed
//                   just before: SFTP v3 rename, all libssh 0.10 offers, never replaces).
//   guest -> host   the guest is not trusted. Every name it lists is checked (not empty, no
//                   "/", not "." or "..", at most 255 bytes), folder depth is bounded, and
//                   everything is created relative to an open directory fd with O_NOFOLLOW /
//                   O_EXCL: nothing is ever written through a symlink, whatever the guest (or
//                   a shared folder it can change under us) does. Files are fetched with up
//                   to k_reads_in_flight pipelined reads of k_chunk bytes, written with
//                   pwrite at the offset each answer belongs to, then renamed into place.
//
// Memory is bounded by the chunk size times the requests in flight; nothing from the guest
// is held beyond one directory entry at a time. SIGINT/SIGTERM/SIGHUP set a flag that the
// copy checks between chunks and entries: the partial temporary file is removed and the
// copy stops with an error. A second signal kills the process the default way.

#include "sbx/ssh/sftp.hpp"

#include "libssh_support.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/strings.hpp"

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <utility>

namespace sbx::ssh {

namespace {

using Clock = std::chrono::steady_clock;

// Bytes per SFTP read or write request (what OpenSSH's sftp client uses by default).
constexpr std::uint32_t k_chunk = 32 * 1024;
// Reads kept in flight per file when copying from the guest.
constexpr std::size_t k_reads_in_flight = 16;
// Deepest folder nesting copied (a hostile guest could otherwise recurse without end).
constexpr int k_max_depth = 256;
// Longest symlink target accepted from the guest.
constexpr std::size_t k_max_link = 4095;
// Longest file name (Linux NAME_MAX).
constexpr std::size_t k_max_name = 255;
// Files at least this large get a progress line (on a TTY).
constexpr std::uint64_t k_progress_min = 1024 * 1024;
// How long one SFTP request may take before the copy gives up.
constexpr long k_request_timeout_s = 120;

// --- interruption -------------------------------------------------------------------------

std::atomic<int> g_interrupted{0};
static_assert(std::atomic<int>::is_always_lock_free, "used from a signal handler");

void on_interrupt(int sig) {
    if (g_interrupted.exchange(sig) != 0) {
        // The second signal: stop at once, the default way.
        ::signal(sig, SIG_DFL);
        ::raise(sig);
    }
}

// SIGINT, SIGTERM and SIGHUP become a flag for the life of the object.
class InterruptGuard {
public:
    InterruptGuard() {
        g_interrupted.store(0);
        for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
            struct sigaction sa {};
            sa.sa_handler = on_interrupt;
            sigemptyset(&sa.sa_mask);
            struct sigaction old {};
            if (::sigaction(sig, &sa, &old) == 0) {
                m_saved.push_back({sig, old});
            }
        }
    }
    ~InterruptGuard() {
        for (auto& [sig, old] : m_saved) {
            ::sigaction(sig, &old, nullptr);
        }
    }
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

private:
    std::vector<std::pair<int, struct sigaction>> m_saved;
};

[[noreturn]] void throw_interrupted() {
    int sig = g_interrupted.load();
    throw Error(fmt::format("copy interrupted by {}", ::strsignal(sig)),
                {"files copied before the interruption are in place; a partly copied file was removed"},
                ExitCode::failure);
}

void check_interrupted() {
    if (g_interrupted.load() != 0) {
        throw_interrupted();
    }
}

// --- small helpers ------------------------------------------------------------------------

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& o) noexcept : m_fd(o.release()) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset(o.release());
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const { return m_fd; }
    explicit operator bool() const { return m_fd >= 0; }
    int release() { return std::exchange(m_fd, -1); }
    void reset(int fd = -1) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = fd;
    }

private:
    int m_fd = -1;
};

struct AttrFree {
    void operator()(sftp_attributes a) const { sftp_attributes_free(a); }
};
using AttrPtr = std::unique_ptr<std::remove_pointer_t<sftp_attributes>, AttrFree>;

// Text from the guest (names, link targets) made safe for a terminal.
std::string printable(std::string_view s) {
    std::string out;
    for (char ch : s.substr(0, 300)) {
        auto c = static_cast<unsigned char>(ch);
        out.push_back((c >= 0x20 && c != 0x7f) ? ch : '?');
    }
    return out;
}

std::string random_suffix() {
    static std::random_device rd;
    return fmt::format("{:08x}", rd());
}

// ".NAME.sbx-XXXXXXXX": beside the destination, hidden, never a valid final name of ours.
std::string temp_name(const std::string& final_name) {
    std::string base = final_name.substr(0, k_max_name - 20);
    return fmt::format(".{}.sbx-{}", base, random_suffix());
}

// Guest paths are POSIX strings; they are joined and split as text.
std::string guest_join(const std::string& dir, const std::string& name) {
    if (dir.empty() || dir == ".") {
        return name;
    }
    return dir.back() == '/' ? dir + name : dir + "/" + name;
}

std::string without_trailing_slashes(std::string p) {
    while (p.size() > 1 && p.back() == '/') {
        p.pop_back();
    }
    return p;
}

std::pair<std::string, std::string> guest_split(const std::string& path) {
    std::string p = without_trailing_slashes(path);
    auto slash = p.rfind('/');
    if (slash == std::string::npos) {
        return {"", p};
    }
    return {slash == 0 ? "/" : p.substr(0, slash), p.substr(slash + 1)};
}

// The name a source gets inside a destination folder; empty for ".", ".." and "/", whose
// contents go straight into the folder (as `cp -r . dst` does).
std::string source_name(const std::string& source) {
    auto parts = guest_split(source);
    // Compared as a string_view: GCC 12 at -O2 warns (falsely) on std::string == "..." here.
    std::string_view name = parts.second;
    if (name.empty() || name == "." || name == ".." || name == "/") {
        return "";
    }
    return parts.second;
}

bool valid_entry_name(const char* name) {
    if (name == nullptr) {
        return false;
    }
    std::string_view n(name);
    return !n.empty() && n.size() <= k_max_name && n != "." && n != ".." &&
           n.find('/') == std::string_view::npos;
}

// The file type bits of guest attributes (from the mode when the server sent one).
mode_t guest_type(sftp_attributes a) {
    if ((a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) != 0 && (a->permissions & S_IFMT) != 0) {
        return a->permissions & S_IFMT;
    }
    switch (a->type) {
    case SSH_FILEXFER_TYPE_REGULAR:
        return S_IFREG;
    case SSH_FILEXFER_TYPE_DIRECTORY:
        return S_IFDIR;
    case SSH_FILEXFER_TYPE_SYMLINK:
        return S_IFLNK;
    default:
        return 0;
    }
}

mode_t guest_mode(sftp_attributes a, mode_t fallback) {
    if ((a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) == 0) {
        return fallback;
    }
    return static_cast<mode_t>(a->permissions) & 07777;
}

// Modes are kept, except setuid and setgid (a copy must not create privileges).
mode_t file_mode(mode_t m) { return m & 0777; }
mode_t dir_mode(mode_t m) { return m & 01777; }

void warn(const std::string& msg) { fmt::print(stderr, "sbx: warning: {}\n", msg); }

// --- progress -----------------------------------------------------------------------------

// "\r<label>  12M / 20M  35M/s" on stderr, redrawn at most ten times a second.
class Progress {
public:
    Progress(bool enabled, std::string label, std::uint64_t total)
        : m_enabled(enabled && total >= k_progress_min), m_label(std::move(label)), m_total(total),
          m_start(Clock::now()) {
        if (m_label.size() > 40) {
            m_label = "..." + m_label.substr(m_label.size() - 37);
        }
    }
    ~Progress() {
        if (m_drawn) {
            fmt::print(stderr, "\r\x1b[K");
            std::fflush(stderr);
        }
    }
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void update(std::uint64_t done) {
        if (!m_enabled) {
            return;
        }
        auto now = Clock::now();
        if (m_drawn && now - m_last < std::chrono::milliseconds(100) && done < m_total) {
            return;
        }
        m_last = now;
        m_drawn = true;
        double secs = std::chrono::duration<double>(now - m_start).count();
        auto rate = secs > 0.05 ? static_cast<std::uint64_t>(static_cast<double>(done) / secs) : 0;
        int pct = m_total > 0 ? static_cast<int>(std::min<std::uint64_t>(100, done * 100 / m_total)) : 100;
        fmt::print(stderr, "\r\x1b[K{}  {} / {}  {:>3}%  {}/s", m_label, format_size(done), format_size(m_total),
                   pct, rate > 0 ? format_size(rate) : std::string("-"));
        std::fflush(stderr);
    }

private:
    bool m_enabled;
    std::string m_label;
    std::uint64_t m_total;
    Clock::time_point m_start;
    Clock::time_point m_last{};
    bool m_drawn = false;
};

// --- the SFTP session ---------------------------------------------------------------------

class Sftp {
public:
    Sftp(const Target& target, std::string label) : m_label(std::move(label)), m_target(target) {
        detail::ensure_libssh();
        m_session = detail::connect_authenticated(target);
        long secs = k_request_timeout_s;
        ssh_options_set(m_session, SSH_OPTIONS_TIMEOUT, &secs);
        m_sftp = sftp_new(m_session);
        if (m_sftp == nullptr || sftp_init(m_sftp) != 0) {
            std::string why = ssh_get_error(m_session);
            close();
            throw Error(fmt::format("the guest's SFTP service did not start: {}", printable(why)),
                        {"sbx cp needs the guest's sshd to offer the sftp subsystem "
                         "(`Subsystem sftp internal-sftp` or openssh-sftp-server)"},
                        ExitCode::ssh_failed);
        }
    }
    ~Sftp() { close(); }
    Sftp(const Sftp&) = delete;
    Sftp& operator=(const Sftp&) = delete;

    sftp_session get() const { return m_sftp; }

    // "work:/path" for messages.
    std::string label(const std::string& path) const {
        return m_label.empty() ? path : fmt::format("{}:{}", m_label, path);
    }

    int error_code() const { return sftp_get_error(m_sftp); }

    bool connection_alive() const {
        return ssh_is_connected(m_session) != 0 && m_sftp != nullptr && m_sftp->channel != nullptr &&
               ssh_channel_is_open(m_sftp->channel) != 0;
    }

    // The error for a failed request "cannot <what> <path>: <reason>".
    [[noreturn]] void fail(const std::string& what, const std::string& path) const {
        if (g_interrupted.load() != 0) {
            throw_interrupted();
        }
        std::string where = label(path);
        int code = error_code();
        if (!connection_alive() || code == SSH_FX_CONNECTION_LOST || code == SSH_FX_NO_CONNECTION ||
            code == SSH_FX_OK) {
            const char* e = ssh_get_error(m_session);
            throw Error(fmt::format("cannot {} {}: the SSH connection failed ({})", what, where,
                                    printable(e ? e : "unknown error")),
                        {"is the instance still running? `sbx status` shows it"}, ExitCode::ssh_failed);
        }
        switch (code) {
        case SSH_FX_NO_SUCH_FILE:
        case SSH_FX_NO_SUCH_PATH:
            throw Error(fmt::format("cannot {} {}: no such file or directory", what, where), {},
                        ExitCode::not_found);
        case SSH_FX_PERMISSION_DENIED:
        case SSH_FX_WRITE_PROTECT:
            throw Error(fmt::format("cannot {} {}: permission denied", what, where),
                        {fmt::format("the guest user is {}; files it cannot read or write need sudo "
                                     "inside the guest",
                                     m_target.user)});
        case SSH_FX_FILE_ALREADY_EXISTS:
            throw Error(fmt::format("cannot {} {}: it already exists", what, where));
        case SSH_FX_OP_UNSUPPORTED:
            throw Error(fmt::format("cannot {} {}: the guest's SFTP server does not support it", what, where));
        default:
            throw Error(fmt::format("cannot {} {}: the guest refused (SFTP status {}; for example a "
                                    "full disk, or a folder where a file was expected)",
                                    what, where, code));
        }
    }

    // stat (follows symlinks); nothing when the path does not exist, throws on other errors.
    AttrPtr stat_or_none(const std::string& path, bool follow = true) const {
        AttrPtr a(follow ? sftp_stat(m_sftp, path.c_str()) : sftp_lstat(m_sftp, path.c_str()));
        if (!a) {
            int code = error_code();
            if (connection_alive() && (code == SSH_FX_NO_SUCH_FILE || code == SSH_FX_NO_SUCH_PATH)) {
                return nullptr;
            }
            fail("read the attributes of", path);
        }
        return a;
    }

    // Renames tmp over final (replacing a file or symlink there).
    void rename_over(const std::string& tmp, const std::string& final_path) const {
        if (sftp_rename(m_sftp, tmp.c_str(), final_path.c_str()) == 0) {
            return;
        }
        AttrPtr existing(sftp_lstat(m_sftp, final_path.c_str()));
        if (existing && guest_type(existing.get()) == S_IFDIR) {
            throw Error(fmt::format("cannot overwrite folder {} with a file", label(final_path)), {},
                        ExitCode::failure);
        }
        if (existing) {
            // SFTP v3 rename (all libssh 0.10 sends) refuses to replace an existing file:
            // remove it, then rename. Between the two there is no file under the final
            // name, but never a partial one.
            if (sftp_unlink(m_sftp, final_path.c_str()) == 0 &&
                sftp_rename(m_sftp, tmp.c_str(), final_path.c_str()) == 0) {
                return;
            }
        }
        fail("rename a temporary file onto", final_path);
    }

private:
    void close() {
        if (m_sftp != nullptr) {
            sftp_free(m_sftp);
            m_sftp = nullptr;
        }
        if (m_session != nullptr) {
            ssh_disconnect(m_session);
            ssh_free(m_session);
            m_session = nullptr;
        }
    }

    std::string m_label;
    Target m_target;
    ssh_session m_session = nullptr;
    sftp_session m_sftp = nullptr;
};

class RemoteFile {
public:
    RemoteFile() = default;
    explicit RemoteFile(sftp_file f) : m_file(f) {}
    ~RemoteFile() {
        if (m_file != nullptr) {
            sftp_close(m_file);
        }
    }
    RemoteFile(const RemoteFile&) = delete;
    RemoteFile& operator=(const RemoteFile&) = delete;

    sftp_file get() const { return m_file; }
    // Closes now; false when the guest reported an error (a failed final write).
    bool close() {
        sftp_file f = std::exchange(m_file, nullptr);
        return f == nullptr || sftp_close(f) == 0;
    }

private:
    sftp_file m_file = nullptr;
};

class RemoteDir {
public:
    explicit RemoteDir(sftp_dir d) : m_dir(d) {}
    ~RemoteDir() {
        if (m_dir != nullptr) {
            sftp_closedir(m_dir);
        }
    }
    RemoteDir(const RemoteDir&) = delete;
    RemoteDir& operator=(const RemoteDir&) = delete;
    sftp_dir get() const { return m_dir; }

private:
    sftp_dir m_dir;
};

// Errors about host paths: "cannot <what> <path>: <strerror>".
[[noreturn]] void host_fail(const std::string& what, const std::string& path, int err) {
    if (g_interrupted.load() != 0) {
        throw_interrupted();
    }
    ExitCode code = err == ENOENT ? ExitCode::not_found : ExitCode::failure;
    std::vector<std::string> hints;
    if (err == ENOENT && path.find(':') != std::string::npos) {
        hints.push_back("guest paths are written NAME:PATH, with the instance's name (lowercase) before the colon");
    }
    const char* reason = err == ENOENT ? "no such file or directory" : std::strerror(err);
    throw Error(fmt::format("cannot {} {}: {}", what, path, reason), std::move(hints), code);
}

std::string host_join(const std::string& dir, const std::string& name) {
    if (dir.empty()) {
        return name;
    }
    return dir.back() == '/' ? dir + name : dir + "/" + name;
}

// --- host -> guest ------------------------------------------------------------------------

class Upload {
public:
    Upload(Sftp& sftp, const CopyOptions& options, CopyStats& stats)
        : m_sftp(sftp), m_options(options), m_stats(stats) {}

    void run(const std::vector<std::filesystem::path>& sources, const std::string& destination) {
        std::string dest = destination.empty() ? "." : destination;
        AttrPtr dattr = m_sftp.stat_or_none(dest);
        bool dest_is_dir = dattr && guest_type(dattr.get()) == S_IFDIR;
        if (sources.size() > 1 && !dest_is_dir) {
            throw Error(fmt::format("{} is not an existing folder; copying several sources needs one",
                                    m_sftp.label(dest)),
                        {}, dattr ? ExitCode::usage : ExitCode::not_found);
        }
        for (const auto& src_path : sources) {
            check_interrupted();
            std::string src = src_path.string();
            // The source named on the command line is followed if it is a symlink (cp, scp).
            // O_NONBLOCK: opening a fifo must not hang; it is refused below.
            Fd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
            if (!fd) {
                host_fail("read", src, errno);
            }
            struct stat st {};
            if (::fstat(fd.get(), &st) != 0) {
                host_fail("read", src, errno);
            }
            if (S_ISDIR(st.st_mode) && !m_options.recursive) {
                throw Error(fmt::format("{} is a folder", src), {"use sbx cp -r to copy folders"},
                            ExitCode::usage);
            }
            std::string name = source_name(src);
            std::string target = dest;
            if (dest_is_dir && !name.empty()) {
                target = guest_join(dest, name);
            } else if (!dattr && dest.back() == '/' && !S_ISDIR(st.st_mode)) {
                throw Error(fmt::format("cannot copy {} to {}: no such folder", src, m_sftp.label(dest)), {},
                            ExitCode::not_found);
            }
            if (S_ISDIR(st.st_mode)) {
                upload_dir(fd.get(), st, src, without_trailing_slashes(target), 0);
            } else if (S_ISREG(st.st_mode)) {
                clear_nonblock(fd.get());
                upload_file(fd.get(), st, src, without_trailing_slashes(target));
            } else {
                throw Error(fmt::format("{} is not a regular file or folder", src));
            }
        }
    }

private:
    static void clear_nonblock(int fd) {
        int fl = ::fcntl(fd, F_GETFL);
        if (fl >= 0) {
            ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        }
    }

    void upload_file(int fd, const struct stat& st, const std::string& src, const std::string& target) {
        auto [dir, name] = guest_split(target);
        std::string tmp = guest_join(dir, temp_name(name));
        sftp_session s = m_sftp.get();
        RemoteFile f(sftp_open(s, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600));
        if (f.get() == nullptr) {
            m_sftp.fail("create a file in", dir.empty() ? "." : dir);
        }
        try {
            Progress progress(m_options.progress, m_sftp.label(target), static_cast<std::uint64_t>(st.st_size));
            std::array<char, k_chunk> buf{};
            std::uint64_t done = 0;
            for (;;) {
                check_interrupted();
                ssize_t n = ::read(fd, buf.data(), buf.size());
                if (n < 0) {
                    if (errno == EINTR) {
                        continue;
                    }
                    host_fail("read", src, errno);
                }
                if (n == 0) {
                    break;
                }
                std::size_t off = 0;
                while (off < static_cast<std::size_t>(n)) {
                    ssize_t w = sftp_write(f.get(), buf.data() + off, static_cast<std::size_t>(n) - off);
                    if (w <= 0) {
                        m_sftp.fail("write", target);
                    }
                    off += static_cast<std::size_t>(w);
                }
                done += static_cast<std::uint64_t>(n);
                progress.update(done);
            }
            if (!f.close()) {
                m_sftp.fail("write", target);
            }
            if (sftp_chmod(s, tmp.c_str(), file_mode(st.st_mode)) != 0) {
                m_sftp.fail("set the mode of", target);
            }
            m_sftp.rename_over(tmp, target);
            m_stats.files += 1;
            m_stats.bytes += done;
        } catch (...) {
            f.close();
            sftp_unlink(s, tmp.c_str());
            throw;
        }
    }

    void upload_symlink(const std::string& link, const std::string& target) {
        auto [dir, name] = guest_split(target);
        std::string tmp = guest_join(dir, temp_name(name));
        sftp_session s = m_sftp.get();
        if (sftp_symlink(s, link.c_str(), tmp.c_str()) != 0) {
            m_sftp.fail("create a symlink in", dir.empty() ? "." : dir);
        }
        try {
            m_sftp.rename_over(tmp, target);
        } catch (...) {
            sftp_unlink(s, tmp.c_str());
            throw;
        }
        m_stats.symlinks += 1;
    }

    void upload_dir(int dirfd, const struct stat& st, const std::string& src, const std::string& target, int depth) {
        if (depth > k_max_depth) {
            throw Error(fmt::format("{}: folders nested deeper than {} levels", src, k_max_depth));
        }
        sftp_session s = m_sftp.get();
        bool created = sftp_mkdir(s, target.c_str(), 0700) == 0;
        if (!created) {
            AttrPtr a = m_sftp.stat_or_none(target);
            if (!a) {
                m_sftp.fail("create folder", target);
            }
            if (guest_type(a.get()) != S_IFDIR) {
                throw Error(fmt::format("cannot copy folder {} onto {}: it exists and is not a folder", src,
                                        m_sftp.label(target)));
            }
        }
        m_stats.directories += 1;

        std::vector<std::string> names;
        {
            int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
            DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
            if (d == nullptr) {
                int err = errno;
                if (dup >= 0) {
                    ::close(dup);
                }
                host_fail("list", src, err);
            }
            errno = 0;
            while (dirent* e = ::readdir(d)) {
                std::string_view n = e->d_name;
                if (n != "." && n != "..") {
                    names.emplace_back(n);
                }
            }
            int err = errno;
            ::closedir(d);
            if (err != 0) {
                host_fail("list", src, err);
            }
        }
        std::sort(names.begin(), names.end());

        for (const auto& name : names) {
            check_interrupted();
            std::string child_src = host_join(src, name);
            std::string child_target = guest_join(target, name);
            struct stat cst {};
            if (::fstatat(dirfd, name.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno == ENOENT) {
                    continue;  // gone since it was listed
                }
                host_fail("read", child_src, errno);
            }
            if (S_ISDIR(cst.st_mode)) {
                Fd cfd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (!cfd || ::fstat(cfd.get(), &cst) != 0) {
                    host_fail("open folder", child_src, errno);
                }
                upload_dir(cfd.get(), cst, child_src, child_target, depth + 1);
            } else if (S_ISREG(cst.st_mode)) {
                Fd cfd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
                if (!cfd || ::fstat(cfd.get(), &cst) != 0) {
                    host_fail("read", child_src, errno);
                }
                if (!S_ISREG(cst.st_mode)) {
                    warn(fmt::format("skipped {}: it changed while being copied", child_src));
                    m_stats.skipped += 1;
                    continue;
                }
                clear_nonblock(cfd.get());
                upload_file(cfd.get(), cst, child_src, child_target);
            } else if (S_ISLNK(cst.st_mode)) {
                std::vector<char> buf(k_max_link + 1);
                ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
                if (n < 0) {
                    host_fail("read symlink", child_src, errno);
                }
                if (static_cast<std::size_t>(n) > k_max_link) {
                    throw Error(fmt::format("symlink {} has a target longer than {} bytes", child_src, k_max_link));
                }
                upload_symlink(std::string(buf.data(), static_cast<std::size_t>(n)), child_target);
            } else {
                warn(fmt::format("skipped {}: not a regular file, folder or symlink", child_src));
                m_stats.skipped += 1;
            }
        }
        if (created && sftp_chmod(s, target.c_str(), dir_mode(st.st_mode)) != 0) {
            m_sftp.fail("set the mode of", target);
        }
    }

    Sftp& m_sftp;
    const CopyOptions& m_options;
    CopyStats& m_stats;
};

// --- guest -> host ------------------------------------------------------------------------

// One pipelined read request: `len` bytes at `offset`, answered under `id`.
struct ReadRequest {
    std::uint32_t id = 0;
    std::uint64_t offset = 0;
    std::uint32_t len = 0;
};

class Download {
public:
    Download(Sftp& sftp, const CopyOptions& options, CopyStats& stats)
        : m_sftp(sftp), m_options(options), m_stats(stats) {}

    void run(const std::vector<std::string>& sources, const std::filesystem::path& destination) {
        std::string dest = destination.string();
        bool had_slash = !dest.empty() && dest.back() == '/';
        dest = without_trailing_slashes(dest);
        struct stat dst {};
        bool exists = ::stat(dest.c_str(), &dst) == 0;
        if (!exists && errno != ENOENT) {
            host_fail("read", dest, errno);
        }
        bool dest_is_dir = exists && S_ISDIR(dst.st_mode);
        if (sources.size() > 1 && !dest_is_dir) {
            throw Error(fmt::format("{} is not an existing folder; copying several sources needs one", dest), {},
                        exists ? ExitCode::usage : ExitCode::not_found);
        }
        for (const auto& source : sources) {
            check_interrupted();
            std::string src = source.empty() ? "." : source;
            AttrPtr a = m_sftp.stat_or_none(src);
            if (!a) {
                throw Error(fmt::format("cannot read {}: no such file or directory", m_sftp.label(src)), {},
                            ExitCode::not_found);
            }
            mode_t type = guest_type(a.get());
            if (type == S_IFDIR && !m_options.recursive) {
                throw Error(fmt::format("{} is a folder", m_sftp.label(src)), {"use sbx cp -r to copy folders"},
                            ExitCode::usage);
            }
            if (type != S_IFDIR && type != S_IFREG) {
                throw Error(fmt::format("{} is not a regular file or folder", m_sftp.label(src)));
            }
            std::string name = source_name(src);
            std::string parent;
            std::string final_name;
            if (dest_is_dir) {
                if (name.empty()) {
                    // `sbx cp -r work:. dir`: the contents go straight into dir.
                    Fd dfd(open_host_dir(dest));
                    fill_dir(dfd.get(), src, dest, 0);
                    continue;
                }
                parent = dest;
                final_name = name;
            } else {
                if (!exists && had_slash && type != S_IFDIR) {
                    throw Error(fmt::format("cannot copy {} to {}/: no such folder", m_sftp.label(src), dest), {},
                                ExitCode::not_found);
                }
                auto slash = dest.rfind('/');
                parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : dest.substr(0, slash));
                final_name = slash == std::string::npos ? dest : dest.substr(slash + 1);
            }
            Fd pfd(open_host_dir(parent));
            std::string host_path = dest_is_dir ? host_join(dest, final_name) : dest;
            if (type == S_IFDIR) {
                download_dir(pfd.get(), final_name, src, a.get(), host_path, 0);
            } else {
                download_file(pfd.get(), final_name, src, a.get(), host_path);
            }
        }
    }

private:
    // A folder the user named (symlinks followed: it is the user's own path).
    static int open_host_dir(const std::string& path) {
        int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            host_fail("open folder", path, errno);
        }
        return fd;
    }

    void download_dir(int parent_fd, const std::string& name, const std::string& src, sftp_attributes attr,
                      const std::string& host_path, int depth) {
        if (depth > k_max_depth) {
            throw Error(fmt::format("{}: folders nested deeper than {} levels", m_sftp.label(src), k_max_depth));
        }
        bool created = ::mkdirat(parent_fd, name.c_str(), 0700) == 0;
        if (!created && errno != EEXIST) {
            host_fail("create folder", host_path, errno);
        }
        // O_NOFOLLOW: an existing symlink here is never written through.
        Fd dfd(::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dfd) {
            if (errno == ENOTDIR || errno == ELOOP) {
                throw Error(fmt::format("cannot copy folder {} onto {}: it exists and is not a folder (or is a "
                                        "symlink, which sbx cp does not write through)",
                                        m_sftp.label(src), host_path));
            }
            host_fail("open folder", host_path, errno);
        }
        fill_dir(dfd.get(), src, host_path, depth);
        if (created && ::fchmod(dfd.get(), dir_mode(guest_mode(attr, 0755))) != 0) {
            host_fail("set the mode of", host_path, errno);
        }
    }

    // Copies the entries of guest folder `src` into the open host folder `dfd`.
    void fill_dir(int dfd, const std::string& src, const std::string& host_path, int depth) {
        sftp_session s = m_sftp.get();
        RemoteDir dir(sftp_opendir(s, src.c_str()));
        if (dir.get() == nullptr) {
            m_sftp.fail("list", src);
        }
        m_stats.directories += 1;
        for (;;) {
            check_interrupted();
            AttrPtr e(sftp_readdir(s, dir.get()));
            if (!e) {
                if (sftp_dir_eof(dir.get()) == 0) {
                    m_sftp.fail("list", src);
                }
                break;
            }
            if (e->name != nullptr && (std::strcmp(e->name, ".") == 0 || std::strcmp(e->name, "..") == 0)) {
                continue;
            }
            if (!valid_entry_name(e->name)) {
                throw Error(fmt::format("the guest listed an invalid name in {}: \"{}\"; stopping the copy",
                                        m_sftp.label(src), printable(e->name ? e->name : "")));
            }
            std::string name = e->name;
            std::string child_src = guest_join(src, name);
            std::string child_host = host_join(host_path, name);
            mode_t type = guest_type(e.get());
            if (type == 0) {
                // No type in the listing: ask (without following a symlink).
                AttrPtr l = m_sftp.stat_or_none(child_src, false);
                if (!l) {
                    continue;
                }
                e = std::move(l);
                type = guest_type(e.get());
            }
            if (type == S_IFDIR) {
                download_dir(dfd, name, child_src, e.get(), child_host, depth + 1);
            } else if (type == S_IFREG) {
                download_file(dfd, name, child_src, e.get(), child_host);
            } else if (type == S_IFLNK) {
                download_symlink(dfd, name, child_src, child_host);
            } else {
                warn(fmt::format("skipped {}: not a regular file, folder or symlink", m_sftp.label(child_src)));
                m_stats.skipped += 1;
            }
        }
    }

    void download_symlink(int dfd, const std::string& name, const std::string& src, const std::string& host_path) {
        char* raw = sftp_readlink(m_sftp.get(), src.c_str());
        if (raw == nullptr) {
            m_sftp.fail("read symlink", src);
        }
        std::string link(raw);
        ssh_string_free_char(raw);
        if (link.empty() || link.size() > k_max_link) {
            throw Error(fmt::format("the guest's symlink {} has an invalid target", m_sftp.label(src)));
        }
        std::string tmp = temp_name(name);
        if (::symlinkat(link.c_str(), dfd, tmp.c_str()) != 0) {
            host_fail("create a symlink beside", host_path, errno);
        }
        if (::renameat(dfd, tmp.c_str(), dfd, name.c_str()) != 0) {
            int err = errno;
            ::unlinkat(dfd, tmp.c_str(), 0);
            if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
                throw Error(fmt::format("cannot overwrite folder {} with a symlink", host_path));
            }
            host_fail("rename a temporary symlink onto", host_path, err);
        }
        m_stats.symlinks += 1;
    }

    void download_file(int dfd, const std::string& name, const std::string& src, sftp_attributes attr,
                       const std::string& host_path) {
        sftp_session s = m_sftp.get();
        RemoteFile f(sftp_open(s, src.c_str(), O_RDONLY, 0));
        if (f.get() == nullptr) {
            m_sftp.fail("open", src);
        }
        std::string tmp = temp_name(name);
        Fd out(::openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!out) {
            host_fail("create a file beside", host_path, errno);
        }
        try {
            std::uint64_t size_hint = (attr->flags & SSH_FILEXFER_ATTR_SIZE) != 0 ? attr->size : 0;
            std::uint64_t done = fetch(f.get(), out.get(), src, host_path, size_hint);
            if (::fchmod(out.get(), file_mode(guest_mode(attr, 0644))) != 0) {
                host_fail("set the mode of", host_path, errno);
            }
            if (::close(out.release()) != 0) {
                host_fail("write", host_path, errno);
            }
            if (::renameat(dfd, tmp.c_str(), dfd, name.c_str()) != 0) {
                int err = errno;
                if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
                    throw Error(fmt::format("cannot overwrite folder {} with a file", host_path));
                }
                host_fail("rename a temporary file onto", host_path, err);
            }
            m_stats.files += 1;
            m_stats.bytes += done;
        } catch (...) {
            ::unlinkat(dfd, tmp.c_str(), 0);
            throw;
        }
    }

    // Reads the whole guest file into `out` with pipelined requests; returns the bytes.
    std::uint64_t fetch(sftp_file f, int out, const std::string& src, const std::string& host_path,
                        std::uint64_t size_hint) {
        Progress progress(m_options.progress, host_path, size_hint);
        std::deque<ReadRequest> pending;
        std::uint64_t next = 0;  // where the next sequential request starts
        bool eof = false;
        std::uint64_t done = 0;
        std::vector<char> buf(k_chunk);

        auto issue = [&](std::uint64_t offset, std::uint32_t len) {
            if (sftp_seek64(f, offset) != 0) {
                m_sftp.fail("read", src);
            }
            int id = sftp_async_read_begin(f, len);
            if (id < 0) {
                m_sftp.fail("read", src);
            }
            pending.push_back({static_cast<std::uint32_t>(id), offset, len});
        };

        for (;;) {
            check_interrupted();
            // Keep the pipe full up to the expected size; past it, one request at a time
            // finds the real end (the file may have grown).
            while (!eof && pending.size() < k_reads_in_flight && (next < size_hint || pending.empty())) {
                issue(next, k_chunk);
                next += k_chunk;
            }
            if (pending.empty()) {
                break;
            }
            ReadRequest r = pending.front();
            pending.pop_front();
            // An earlier end-of-file answer makes libssh skip later answers; this clears it.
            sftp_seek64(f, r.offset);
            int n = sftp_async_read(f, buf.data(), r.len, r.id);
            if (n < 0) {
                m_sftp.fail("read", src);
            }
            if (n == 0) {
                eof = true;
                continue;
            }
            auto got = static_cast<std::size_t>(n);
            if (got > r.len) {
                throw Error(fmt::format("the guest sent more data than asked for while reading {}",
                                        m_sftp.label(src)));
            }
            std::size_t off = 0;
            while (off < got) {
                ssize_t w = ::pwrite(out, buf.data() + off, got - off, static_cast<off_t>(r.offset + off));
                if (w < 0) {
                    if (errno == EINTR) {
                        continue;
                    }
                    host_fail("write", host_path, errno);
                }
                off += static_cast<std::size_t>(w);
            }
            done += got;
            progress.update(done);
            if (got < r.len) {
                // A short answer before the end: ask again for the rest of this range.
                issue(r.offset + got, r.len - static_cast<std::uint32_t>(got));
            }
        }
        return done;
    }

    Sftp& m_sftp;
    const CopyOptions& m_options;
    CopyStats& m_stats;
};

void print_summary(const CopyOptions& options, const CopyStats& stats, Clock::time_point t0) {
    if (!options.progress || stats.bytes < k_progress_min) {
        return;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    auto rate = ms > 0 ? stats.bytes * 1000 / static_cast<std::uint64_t>(ms) : 0;
    fmt::print(stderr, "copied {} file{} ({}) in {}{}\n", stats.files, stats.files == 1 ? "" : "s",
               format_size(stats.bytes), format_duration_ms(ms),
               rate > 0 ? fmt::format(", {}/s", format_size(rate)) : std::string());
}

}  // namespace

CopyStats copy_to_guest(const Target& target, const std::vector<std::filesystem::path>& sources,
                        const std::string& destination, const CopyOptions& options) {
    if (sources.empty()) {
        throw Error("internal: copy_to_guest without sources");
    }
    InterruptGuard guard;
    auto t0 = Clock::now();
    Sftp sftp(target, options.guest_label);
    CopyStats stats;
    Upload(sftp, options, stats).run(sources, destination);
    print_summary(options, stats, t0);
    return stats;
}

CopyStats copy_from_guest(const Target& target, const std::vector<std::string>& sources,
                          const std::filesystem::path& destination, const CopyOptions& options) {
    if (sources.empty()) {
        throw Error("internal: copy_from_guest without sources");
    }
    InterruptGuard guard;
    auto t0 = Clock::now();
    Sftp sftp(target, options.guest_label);
    CopyStats stats;
    Download(sftp, options, stats).run(sources, destination);
    print_summary(options, stats, t0);
    return stats;
}

}  // namespace sbx::ssh
