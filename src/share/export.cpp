#include "sbx/share/export.hpp"

#include "sbx/share/hide.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/process.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace sbx::share {

namespace fs = std::filesystem;

std::vector<std::string> export_argv(const fs::path& sbx_exe, const ExportSpec& spec) {
    std::vector<std::string> argv = {sbx_exe.string(), "_share", "--source", spec.source.string(),
                                     "--socket", spec.socket.string(), "--guest-uid",
                                     std::to_string(spec.guest_uid)};
    if (spec.read_only) {
        argv.push_back("--ro");
    }
    for (const auto& h : spec.hide) {
        argv.push_back("--hide");
        argv.push_back(h);
    }
    return argv;
}

namespace {

void walk(const fs::path& root, const std::string& rel, const HideList& list, std::vector<std::string>& out) {
    std::error_code ec;
    fs::directory_iterator it(rel.empty() ? root : root / rel, fs::directory_options::none, ec);
    if (ec) {
        return;  // unreadable: virtiofsd cannot serve it either
    }
    for (const auto& entry : it) {
        std::string name = entry.path().filename().string();
        std::string child = rel.empty() ? name : rel + "/" + name;
        if (list.matches_exactly(child)) {
            out.push_back(child);
            continue;
        }
        if (entry.is_directory(ec) && !entry.is_symlink(ec)) {
            walk(root, child, list, out);
        }
    }
}

// Flags a remount in a user namespace must keep: the kernel refuses to clear locked ones.
unsigned long locked_flags(const fs::path& path) {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) {
        return 0;
    }
    unsigned long f = 0;
    if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) f |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
    if (st.f_flag & ST_NOATIME) f |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME) f |= MS_RELATIME;
    return f;
}

void remount_read_only(const fs::path& path) {
    if (::mount(nullptr, path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(path), nullptr) != 0) {
        throw_errno(fmt::format("share: cannot make {} read-only", path.string()), errno);
    }
}

// Mount points strictly below `root`, from /proc/self/mountinfo (octal escapes decoded).
std::vector<fs::path> mounts_below(const fs::path& root) {
    std::vector<fs::path> out;
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    std::string prefix = root.string() + "/";
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string id, parent, devno, rootfield, point;
        words >> id >> parent >> devno >> rootfield >> point;
        std::string decoded;
        for (std::size_t i = 0; i < point.size(); ++i) {
            if (point[i] == '\\' && i + 3 < point.size()) {
                decoded += static_cast<char>(std::stoi(point.substr(i + 1, 3), nullptr, 8));
                i += 3;
            } else {
                decoded += point[i];
            }
        }
        if (decoded.rfind(prefix, 0) == 0) {
            out.emplace_back(decoded);
        }
    }
    return out;
}

struct IdRange {
    std::uint32_t start = 0;
    std::uint32_t count = 0;
};

// The first subordinate range of `user` (name or uid) in /etc/subuid or /etc/subgid.
std::optional<IdRange> subordinate_range(const char* file, const std::string& name, std::uint32_t id) {
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
        auto a = line.find(':');
        auto b = line.find(':', a == std::string::npos ? a : a + 1);
        if (a == std::string::npos || b == std::string::npos) {
            continue;
        }
        std::string who = line.substr(0, a);
        if (who != name && who != std::to_string(id)) {
            continue;
        }
        try {
            IdRange r{static_cast<std::uint32_t>(std::stoul(line.substr(a + 1, b - a - 1))),
                      static_cast<std::uint32_t>(std::stoul(line.substr(b + 1)))};
            if (r.count > 0) {
                return r;
            }
        } catch (const std::exception&) {
        }
    }
    return std::nullopt;
}

void write_proc(pid_t pid, const char* what, const std::string& text) {
    std::string path = fmt::format("/proc/{}/{}", pid, what);
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        int err = errno;
        if (fd >= 0) {
            ::close(fd);
        }
        throw_errno(fmt::format("share: cannot write {}", path), err);
    }
    ::close(fd);
}

// Runs outside the new namespace: gives `target` its uid/gid maps. Returns an error text.
std::string map_ids(pid_t target, std::uint32_t guest_id) {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (uid == 0) {
        // Root may map anything: namespace root is "nobody", the guest user is the caller.
        try {
            std::string nobody = "65534";
            write_proc(target, "uid_map", fmt::format("0 {} 1\n{} {} 1\n", nobody, guest_id, uid));
            write_proc(target, "gid_map", fmt::format("0 {} 1\n{} {} 1\n", nobody, guest_id, gid));
        } catch (const std::exception& e) {
            return e.what();
        }
        return {};
    }
    passwd* pw = ::getpwuid(uid);
    std::string name = pw ? pw->pw_name : std::to_string(uid);
    auto su = subordinate_range("/etc/subuid", name, uid);
    auto sg = subordinate_range("/etc/subgid", name, gid);
    if (!su || !sg) {
        return fmt::format("{} has no subordinate ids in /etc/subuid and /etc/subgid; add a line "
                           "'{}:100000:65536' to both (usermod --add-subuids 100000-165535 "
                           "--add-subgids 100000-165535 {}), or use type = \"9p\" for this share",
                           name, name, name);
    }
    // newuidmap and newgidmap (setuid root, package uidmap) check the ranges against
    // /etc/subuid and /etc/subgid and write the maps.
    for (const auto& argv : {std::vector<std::string>{"newuidmap", std::to_string(target), "0",
                                                      std::to_string(su->start), "1", std::to_string(guest_id),
                                                      std::to_string(uid), "1"},
                             std::vector<std::string>{"newgidmap", std::to_string(target), "0",
                                                      std::to_string(sg->start), "1", std::to_string(guest_id),
                                                      std::to_string(gid), "1"}}) {
        try {
            RunOptions opts;
            opts.timeout = std::chrono::seconds(10);
            auto r = run_command(argv, opts);
            if (r.exit_code != 0) {
                while (!r.output.empty() && std::isspace(static_cast<unsigned char>(r.output.back()))) {
                    r.output.pop_back();
                }
                return fmt::format("{} failed (status {}): {} (package uidmap; is it setuid root?)", argv[0],
                                   r.exit_code, r.output);
            }
        } catch (const std::exception& e) {
            return fmt::format("{}: {} (install the package uidmap)", argv[0], e.what());
        }
    }
    return {};
}

}  // namespace

std::vector<std::string> hidden_paths(const fs::path& source, const std::vector<std::string>& hide) {
    std::vector<std::string> out;
    if (hide.empty()) {
        return out;
    }
    HideList list(hide);
    walk(source, "", list, out);
    return out;
}

void run_export(const ExportSpec& spec) {
    std::error_code ec;
    if (!fs::is_directory(spec.source, ec)) {
        throw Error(fmt::format("share: {} is not a folder", spec.source.string()));
    }
    if (::access(spec.virtiofsd.c_str(), X_OK) != 0) {
        throw Error(fmt::format("share: {} is not installed", spec.virtiofsd.string()),
                    {"Debian ships it in qemu-system-common (scripts/install-deps.sh installs it)",
                     "or use type = \"9p\" for this share"});
    }
    const fs::path source = fs::canonical(spec.source);
    auto hidden = hidden_paths(source, spec.hide);

    // The socket, as the calling user, before any namespace: QEMU (same user) connects to it.
    std::string sock = spec.socket.string();
    if (sock.size() >= sizeof(sockaddr_un{}.sun_path)) {
        throw Error(fmt::format("share: socket path {} is too long", sock));
    }
    ::unlink(sock.c_str());
    int lfd = ::socket(AF_UNIX, SOCK_STREAM, 0);  // inherited by virtiofsd (--fd)
    if (lfd < 0) {
        throw_errno("share: socket", errno);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
    mode_t old = ::umask(077);
    int rc = ::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::umask(old);
    if (rc != 0 || ::listen(lfd, 4) != 0) {
        throw_errno(fmt::format("share: cannot listen on {}", sock), rc != 0 ? err : errno);
    }

    // Empty stand-ins for hidden paths, beside the socket (outside the share).
    fs::path empty_dir = spec.socket.string() + ".d";
    fs::path empty_file = spec.socket.string() + ".f";
    if (!hidden.empty()) {
        fs::remove_all(empty_dir, ec);
        fs::remove(empty_file, ec);
        if (::mkdir(empty_dir.c_str(), 0500) != 0 && errno != EEXIST) {
            throw_errno(fmt::format("share: cannot create {}", empty_dir.string()), errno);
        }
        int f = ::open(empty_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0400);
        if (f < 0) {
            throw_errno(fmt::format("share: cannot create {}", empty_file.string()), errno);
        }
        ::close(f);
    }

    // virtiofsd keeps one descriptor per inode the guest has looked up.
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }

    // A helper outside the new user namespace writes our id maps.
    int go[2], done[2];
    if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(done, O_CLOEXEC) != 0) {
        throw_errno("share: pipe", errno);
    }
    pid_t self = ::getpid();
    pid_t helper = ::fork();
    if (helper < 0) {
        throw_errno("share: fork", errno);
    }
    if (helper == 0) {
        ::close(go[1]);
        ::close(done[0]);
        char c;
        std::string why = ::read(go[0], &c, 1) == 1 ? map_ids(self, spec.guest_uid) : "the exporter went away";
        (void)!::write(done[1], why.data(), why.size());
        ::_exit(why.empty() ? 0 : 1);
    }
    ::close(go[0]);
    ::close(done[1]);
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
        err = errno;
        ::kill(helper, SIGKILL);
        ::waitpid(helper, nullptr, 0);
        throw_errno("share: cannot create a user and mount namespace (are user namespaces enabled? "
                    "sysctl kernel.unprivileged_userns_clone)", err);
    }
    (void)!::write(go[1], "x", 1);
    std::string why;
    char buf[512];
    ssize_t n;
    while ((n = ::read(done[0], buf, sizeof buf)) > 0) {
        why.append(buf, static_cast<std::size_t>(n));
    }
    int status = 0;
    ::waitpid(helper, &status, 0);
    if (!why.empty() || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw Error(fmt::format("share: cannot map ids for {}: {}", source.string(), why.empty() ? "helper failed" : why));
    }
    if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) {
        throw_errno("share: cannot become root of the share's user namespace", errno);
    }
    ::setgroups(0, nullptr);
    // A change of credentials clears the death signal spawn() set: set it again.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);

    // Our own mount namespace: nothing here reaches the host's mount table.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        throw_errno("share: cannot make the mount namespace private", errno);
    }
    if (::mount(source.c_str(), source.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        throw_errno(fmt::format("share: cannot bind {}", source.string()), errno);
    }
    if (spec.read_only) {
        remount_read_only(source);
        for (const auto& m : mounts_below(source)) {
            remount_read_only(m);
        }
    }
    for (const auto& rel : hidden) {
        fs::path p = source / rel;
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0) {
            continue;
        }
        if (S_ISLNK(st.st_mode)) {
            std::fprintf(stderr, "share: hide: %s is a symlink; its target text stays visible\n", rel.c_str());
            continue;
        }
        const fs::path& stand_in = S_ISDIR(st.st_mode) ? empty_dir : empty_file;
        if (::mount(stand_in.c_str(), p.c_str(), nullptr, MS_BIND, nullptr) != 0) {
            throw_errno(fmt::format("share: cannot hide {}", p.string()), errno);
        }
        remount_read_only(p);
    }
    std::fprintf(stderr, "share: %s%s, %zu hidden path%s covered, guest uid %u is the host user\n",
                 source.c_str(), spec.read_only ? " read-only" : "", hidden.size(), hidden.size() == 1 ? "" : "s",
                 spec.guest_uid);

    if (::dup2(lfd, 3) < 0) {
        throw_errno("share: dup2", errno);
    }
    std::vector<std::string> argv = {spec.virtiofsd.string(), "--fd=3", "-o", "source=" + source.string(),
                                     "-o", "sandbox=namespace", "-o", "cache=auto", "--rlimit-nofile=0"};
    std::vector<char*> a;
    for (auto& s : argv) {
        a.push_back(s.data());
    }
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    throw_errno(fmt::format("share: cannot run {}", spec.virtiofsd.string()), errno);
}

}  // namespace sbx::share
