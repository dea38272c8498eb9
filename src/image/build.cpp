// Building an image: mmdebstrap -> ext4 (mke2fs -d) -> qcow2, plus kernel and initrd.
//
// Theory of operation. mmdebstrap installs the system into a throwaway chroot (format
// "null", target /dev/null) and does the real work in hooks, the same way as root
// (--mode=root) and without root (--mode=unshare, where hooks run inside the user namespace,
// so file owners inside the ext4 image come out as root):
//
//   essential hook  copy images/guest/ into /tmp/guest, `install.sh early` (initramfs config,
//                   before the kernel is installed so the initrd is built once)
//   customize hooks `install.sh main` (units, sshd, network, masks), the recipe's setup,
//                   `install.sh finish`, then the filesystem: clean the chroot of build leftovers, and in a private
//                   mount namespace (without mmdebstrap's /proc, /sys, /dev/pts mounts) run
//                   `mke2fs -d` into the image file, then hand out the kernel and initrd
//                   with mmdebstrap's `download` hook.
//
// The raw image file is created here and given to mmdebstrap as its standard input; the hook
// writes it through /proc/self/fd/0. That way the hook needs no path into our (private)
// folders, which a user-namespace root could not reach. Everything happens in a hidden
// sibling folder that is renamed into place at the end, under a per-image lock.

#include "sbx/image/guest.hpp"
#include "sbx/image/image.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/process.hpp"
#include "sbx/util/strings.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>

namespace sbx::image {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds k_bootstrap_timeout{3600};
constexpr std::chrono::seconds k_convert_timeout{900};
constexpr std::size_t k_error_tail_lines = 25;

// What every sbx image has, whatever the recipe says (see docs/images.md).
const std::vector<std::string>& base_packages() {
    static const std::vector<std::string> k_packages = {
        "systemd", "systemd-sysv", "udev", "kmod", "openssh-server", "sudo", "passwd",
        "iproute2", "ca-certificates", "e2fsprogs", "initramfs-tools", "lz4", "busybox-static", "acpid",
    };
    return k_packages;
}

std::string kernel_package(const std::string& flavour) {
    // "amd64" is Debian's generic kernel; every other flavour is linux-image-<flavour>-amd64.
    return flavour == "amd64" ? "linux-image-amd64" : fmt::format("linux-image-{}-amd64", flavour);
}

// Lean images: no documentation, manuals or translations (copyright files stay).
const std::vector<std::string>& dpkg_options() {
    static const std::vector<std::string> k_opts = {
        "path-exclude=/usr/share/doc/*",
        "path-include=/usr/share/doc/*/copyright",
        "path-exclude=/usr/share/man/*",
        "path-exclude=/usr/share/info/*",
        "path-exclude=/usr/share/locale/*",
        "path-include=/usr/share/locale/locale.alias",
        "path-exclude=/usr/share/lintian/*",
    };
    return k_opts;
}

bool names_suite(const std::string& text, const std::string& suite) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        auto hash = line.find('#');
        if (hash != std::string::npos) {
            line.erase(hash);
        }
        std::istringstream words(line);
        std::string w;
        while (words >> w) {
            if (w == suite) {
                return true;
            }
        }
    }
    return false;
}

// The host's own apt configuration for the suite: mmdebstrap pastes the file into the chroot.
std::filesystem::path choose_sources(const std::string& suite) {
    std::error_code ec;
    if (const char* forced = std::getenv("SBX_APT_SOURCES"); forced && *forced) {
        std::filesystem::path p(forced);
        if (!std::filesystem::is_regular_file(p, ec)) {
            throw Error(fmt::format("SBX_APT_SOURCES names {}, which is not a file", p.string()),
                        {"point SBX_APT_SOURCES at an apt sources file (deb822 .sources or one-line .list)"},
                        ExitCode::config);
        }
        return p;
    }
    const std::filesystem::path candidates[] = {"/etc/apt/sources.list.d/debian.sources",
                                                "/etc/apt/sources.list"};
    for (const auto& c : candidates) {
        if (std::filesystem::is_regular_file(c, ec) && names_suite(read_file(c), suite)) {
            return c;
        }
    }
    throw Error(
        fmt::format("no apt source on this host names the suite {}", suite),
        {fmt::format("sbx uses the host's Debian mirror: /etc/apt/sources.list.d/debian.sources or "
                     "/etc/apt/sources.list must list {}",
                     suite),
         "or set SBX_APT_SOURCES to an apt sources file that does (e.g. one naming "
         "your usual Debian mirror)"},
        ExitCode::config);
}

std::optional<std::filesystem::path> find_admin_program(const std::string& name) {
    if (auto p = find_program(name)) {
        return p;
    }
    for (const char* dir : {"/usr/sbin", "/sbin"}) {
        std::filesystem::path p = std::filesystem::path(dir) / name;
        if (::access(p.c_str(), X_OK) == 0) {
            return p;
        }
    }
    return std::nullopt;
}

void require_tools(bool as_root) {
    struct Tool {
        const char* name;
        const char* package;
    };
    std::vector<Tool> tools = {{"mmdebstrap", "mmdebstrap"}, {"qemu-img", "qemu-utils"},
                               {"mke2fs", "e2fsprogs"},      {"unshare", "util-linux"},
                               {"setpriv", "util-linux"}};
    if (!as_root) {
        tools.push_back({"newuidmap", "uidmap"});
    }
    std::vector<std::string> missing;
    std::vector<std::string> packages;
    for (const auto& t : tools) {
        if (!find_admin_program(t.name)) {
            missing.push_back(t.name);
            if (std::find(packages.begin(), packages.end(), t.package) == packages.end()) {
                packages.push_back(t.package);
            }
        }
    }
    if (!missing.empty()) {
        throw Error(fmt::format("building images needs {}, which {} not installed", fmt::join(missing, ", "),
                                missing.size() == 1 ? "is" : "are"),
                    {fmt::format("sudo apt-get install {}", fmt::join(packages, " "))});
    }
    if (!as_root) {
        const passwd* pw = ::getpwuid(::getuid());
        std::string user = pw ? pw->pw_name : "";
        bool found = false;
        std::ifstream in("/etc/subuid");
        std::string line;
        while (std::getline(in, line)) {
            auto colon = line.find(':');
            std::string who = line.substr(0, colon);
            if (who == user || who == std::to_string(::getuid())) {
                found = true;
            }
        }
        if (!found) {
            throw Error(fmt::format("building images without root needs subordinate ids for {} in /etc/subuid",
                                    user.empty() ? std::to_string(::getuid()) : user),
                        {fmt::format("sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}",
                                     user),
                         "or build as root: sudo sbx image build NAME"});
        }
    }
}

// Holds <images_root>/.NAME.lock for the whole build.
class BuildLock {
public:
    BuildLock(const std::filesystem::path& file, const std::string& name) {
        m_fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (m_fd < 0) {
            throw_errno(fmt::format("cannot open {}", file.string()), errno);
        }
        if (::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
            ::close(m_fd);
            throw Error(fmt::format("image {} is being built by another sbx process", name),
                        {"wait for that build to finish"});
        }
    }
    ~BuildLock() { ::close(m_fd); }
    BuildLock(const BuildLock&) = delete;
    BuildLock& operator=(const BuildLock&) = delete;

private:
    int m_fd = -1;
};

// Removes the staging folder unless the build succeeded and moved it.
class Staging {
public:
    explicit Staging(std::filesystem::path dir) : m_dir(std::move(dir)) {}
    ~Staging() {
        if (!m_dir.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(m_dir, ec);
        }
    }
    Staging(const Staging&) = delete;
    Staging& operator=(const Staging&) = delete;
    const std::filesystem::path& dir() const { return m_dir; }
    void release() { m_dir.clear(); }

private:
    std::filesystem::path m_dir;
};

struct ToolResult {
    int exit_code = -1;
    std::deque<std::string> tail;  // the last lines of output
};

// Runs a build tool with `stdin_fd` as its standard input, feeding each output line to
// on_line. A timeout stops the whole process group (TERM, then KILL) and throws.
ToolResult run_tool(const std::vector<std::string>& argv, int stdin_fd,
                    const std::function<void(const std::string&)>& on_line, std::chrono::seconds timeout) {
    ToolResult result;
    // mmdebstrap echoes each shell hook's whole text ("I: running --customize-hook in shell:
    // sh -c '...' exec DIR"): kept out of the tail, which is for what went wrong.
    bool in_hook_text = false;
    RunOptions options;
    options.on_line = [&](const std::string& line) {
        if (on_line) {
            on_line(line);
        }
        if (line.rfind("I: running --", 0) == 0 && line.find(" in shell: ") != std::string::npos) {
            in_hook_text = line.find("' exec ") == std::string::npos;
            return;
        }
        if (in_hook_text) {
            in_hook_text = line.find("' exec ") == std::string::npos;
            return;
        }
        result.tail.push_back(line);
        if (result.tail.size() > 200) {
            result.tail.pop_front();
        }
    };
    options.timeout = timeout;
    // Hooks run mke2fs, unshare and chroot, which live in sbin: a user's PATH may lack it.
    options.extra_path = ":/usr/sbin:/sbin";
    // Hooks in --mode=unshare run as a user-namespace root that cannot enter a private
    // working directory (find(1), for one, fails then); every path given is absolute.
    options.cwd = "/";
    options.stdin_fd = stdin_fd;
    result.exit_code = run_command(argv, options).exit_code;
    return result;
}

std::string tail_text(const std::deque<std::string>& lines) {
    std::string out;
    std::size_t start = lines.size() > k_error_tail_lines ? lines.size() - k_error_tail_lines : 0;
    for (std::size_t i = start; i < lines.size(); ++i) {
        out += "\n  " + lines[i];
    }
    return out;
}

std::string utc_now_iso8601() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", tm);
}

// The shell of the last customize hooks. "$1" is the chroot; standard input is the image file.
std::string filesystem_hook(std::uint64_t size_bytes) {
    return fmt::format(R"(set -eu
echo "sbx-step: filesystem"
r="$1"
# Build leftovers that must not reach the image. mmdebstrap's own cleanup runs later, on the
# throwaway chroot, so do its part here.
rm -rf "$r/tmp/guest" "$r/tmp/sbx-setup.sh"
rm -f "$r/usr/sbin/policy-rc.d"
if [ -e "$r/usr/sbin/start-stop-daemon.REAL" ]; then
  mv "$r/usr/sbin/start-stop-daemon.REAL" "$r/usr/sbin/start-stop-daemon"
elif [ -e "$r/sbin/start-stop-daemon.REAL" ]; then
  mv "$r/sbin/start-stop-daemon.REAL" "$r/sbin/start-stop-daemon"
fi
find "$r/var/lib/apt/lists" -maxdepth 1 -type f -delete
find "$r/var/cache/apt" -name '*.bin' -type f -delete
find "$r/var/cache/apt/archives" -name '*.deb' -type f -delete
rm -f "$r/var/log/dpkg.log" "$r/var/log/alternatives.log" "$r"/var/log/apt/*.log \
  "$r/var/log/apt/eipp.log.xz" "$r/var/cache/ldconfig/aux-cache" "$r/var/lib/dbus/machine-id"
find "$r/var/cache/debconf" -name '*-old' -type f -delete
: > "$r/etc/machine-id"
if [ ! -f /proc/self/fd/0 ] || [ ! -w /proc/self/fd/0 ]; then
  echo "E: sbx: standard input is not the image file" >&2
  exit 1
fi
# mmdebstrap's temporary apt configuration stays for its own cleanup, but not in the image.
stash=$(mktemp -d)
trap 'if [ -e "$stash/00mmdebstrap" ]; then mv "$stash/00mmdebstrap" "$r/etc/apt/apt.conf.d/"; fi; rmdir "$stash"' EXIT
if [ -e "$r/etc/apt/apt.conf.d/00mmdebstrap" ]; then
  mv "$r/etc/apt/apt.conf.d/00mmdebstrap" "$stash/"
fi
# A private mount namespace without mmdebstrap's /proc, /sys and /dev mounts, so that
# mke2fs -d copies the chroot's own files only. Only the outermost mounts are detached (with
# everything below them): in --mode=unshare the inner ones are locked to their parents.
unshare --mount --propagation private sh -euc '
  r="$1"
  grep " $r/" /proc/self/mountinfo | cut -d" " -f5 | sort | {{
    top=//
    while read -r m; do
      case "$m" in "$top"/*) continue ;; esac
      top=$m
      umount -l "$m"
    done
  }}
  if grep -q " $r/" /proc/self/mountinfo; then
    echo "E: sbx: cannot unmount what mmdebstrap mounted in $r" >&2
    exit 1
  fi
  exec mke2fs -q -F -t ext4 -L {label} -m 1 -E root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0 \
    -d "$r" /proc/self/fd/0 {kib}k
' sbx-mkfs "$r"
)",
                       fmt::arg("label", guest::k_root_label), fmt::arg("kib", size_bytes / 1024));
}

// Points /tmp/sbx-boot/{vmlinuz,initrd.img} at the one kernel and the sbx initrd (made by
// install.sh finish), for the download hooks.
constexpr std::string_view k_kernel_hook = R"(set -eu
r="$1"
set -- "$r"/boot/vmlinuz-*
if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
  echo "E: sbx: expected exactly one kernel in /boot, found: $*" >&2
  exit 1
fi
v="${1##*/vmlinuz-}"
if [ ! -s "$r/boot/sbx-initrd.img" ]; then
  echo "E: sbx: the image has no /boot/sbx-initrd.img" >&2
  exit 1
fi
mkdir -p "$r/tmp/sbx-boot"
ln -sf "/boot/vmlinuz-$v" "$r/tmp/sbx-boot/vmlinuz"
ln -sf /boot/sbx-initrd.img "$r/tmp/sbx-boot/initrd.img"
echo "sbx-kernel: $v"
)";

// mmdebstrap splits its special hooks (copy-in, upload, download) at spaces, without any
// shell quoting: such paths must not contain whitespace.
std::string hook_path(const std::filesystem::path& p) {
    std::string s = p.string();
    if (s.find_first_of(" \t\n") != std::string::npos) {
        throw Error(fmt::format("cannot build images with {}: the path contains whitespace", s),
                    {"set SBX_HOME (or XDG_DATA_HOME) to a folder without spaces, and keep recipes in one"},
                    ExitCode::config);
    }
    return s;
}

void require_guest_files(const std::filesystem::path& dir) {
    std::error_code ec;
    for (const char* f : {"install.sh", "sbx-seed", "sbx-seed.service"}) {
        if (!std::filesystem::is_regular_file(dir / f, ec)) {
            throw Error(fmt::format("{} is missing; it is needed to build sbx images", (dir / f).string()),
                        {"the guest/ folder ships beside the recipes (images/guest/ in the source tree, "
                         "share/sbx/images/guest/ when installed)"},
                        ExitCode::not_found);
        }
    }
}

void remove_stale_builds(const std::filesystem::path& images_root, const std::string& name) {
    std::error_code ec;
    std::string prefix = "." + name + ".build-";
    for (const auto& entry : std::filesystem::directory_iterator(images_root, ec)) {
        if (entry.path().filename().string().rfind(prefix, 0) == 0) {
            std::error_code rm_ec;
            std::filesystem::remove_all(entry.path(), rm_ec);
        }
    }
}

}  // namespace

void build_image(const Recipe& recipe, const std::filesystem::path& images_root_in, const Progress& progress_in) {
    const auto images_root = std::filesystem::absolute(images_root_in);
    hook_path(images_root);
    auto progress = [&](std::string_view step, std::string_view detail) {
        if (progress_in) {
            progress_in(step, detail);
        }
    };
    const bool as_root = ::geteuid() == 0;
    const auto t0 = Clock::now();
    require_tools(as_root);
    const auto guest = guest_dir(recipe);
    require_guest_files(guest);
    const auto sources = choose_sources(recipe.suite);
    const std::string fingerprint = recipe.fingerprint();

    make_private_dirs(images_root);
    BuildLock lock(images_root / fmt::format(".{}.lock", recipe.name), recipe.name);
    remove_stale_builds(images_root, recipe.name);

    std::string tmpl = (images_root / fmt::format(".{}.build-XXXXXX", recipe.name)).string();
    if (!::mkdtemp(tmpl.data())) {
        throw_errno(fmt::format("cannot create a build folder in {}", images_root.string()), errno);
    }
    Staging staging{std::filesystem::path(tmpl)};
    const auto& dir = staging.dir();
    const auto raw = dir / "root.raw";
    const auto files = image_files(dir.parent_path(), dir.filename().string());

    // The image file: mmdebstrap's standard input. World-writable only while the build runs,
    // inside our private folder, so that the user-namespace root of --mode=unshare can open
    // it through /proc/self/fd/0 (it cannot reach it by path).
    int raw_fd = ::open(raw.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (raw_fd < 0) {
        throw_errno(fmt::format("cannot create {}", raw.string()), errno);
    }
    struct FdCloser {
        int fd;
        ~FdCloser() { ::close(fd); }
    } raw_closer{raw_fd};
    if (!as_root && ::fchmod(raw_fd, 0666) != 0) {
        throw_errno(fmt::format("cannot chmod {}", raw.string()), errno);
    }

    std::vector<std::string> packages = base_packages();
    packages.push_back(kernel_package(recipe.kernel));
    for (const auto& p : recipe.packages) {
        if (std::find(packages.begin(), packages.end(), p) == packages.end()) {
            packages.push_back(p);
        }
    }

    // setpriv: if sbx dies, mmdebstrap gets TERM (and unmounts its chroot) instead of KILL.
    std::vector<std::string> argv = {"setpriv", "--pdeathsig", "TERM", "--", "mmdebstrap",
                                     "--variant=apt", as_root ? "--mode=root" : "--mode=unshare",
                                     "--format=null", fmt::format("--include={}", fmt::join(packages, ","))};
    for (const auto& o : dpkg_options()) {
        argv.push_back("--dpkgopt=" + o);
    }
    argv.push_back(fmt::format("--essential-hook=copy-in {} /tmp", hook_path(guest)));
    argv.push_back("--essential-hook=chroot \"$1\" /bin/sh /tmp/guest/install.sh early");
    argv.push_back(
        "--customize-hook=echo 'sbx-step: configure'; chroot \"$1\" /bin/sh /tmp/guest/install.sh main");
    if (!recipe.setup.empty()) {
        auto setup = dir / "setup.sh";
        write_file_atomic(setup, recipe.setup + "\n");
        argv.push_back(fmt::format("--customize-hook=upload {} /tmp/sbx-setup.sh", hook_path(setup)));
        argv.push_back(
            "--customize-hook=echo 'sbx-step: setup'; chroot \"$1\" env DEBIAN_FRONTEND=noninteractive "
            "/bin/sh -e /tmp/sbx-setup.sh");
    }
    argv.push_back("--customize-hook=chroot \"$1\" /bin/sh /tmp/guest/install.sh finish");
    argv.push_back("--customize-hook=" + filesystem_hook(recipe.size_bytes));
    argv.push_back("--customize-hook=" + std::string(k_kernel_hook));
    argv.push_back(fmt::format("--customize-hook=download /tmp/sbx-boot/vmlinuz {}", hook_path(files.kernel)));
    argv.push_back(
        fmt::format("--customize-hook=download /tmp/sbx-boot/initrd.img {}", hook_path(files.initrd)));
    argv.push_back(recipe.suite);
    argv.push_back("/dev/null");
    argv.push_back(sources.string());

    std::string step = "bootstrap";
    std::string kernel_version;
    progress(step, fmt::format("{} from {} ({} mode)", recipe.suite, sources.string(), as_root ? "root" : "unshare"));
    auto on_line = [&](const std::string& line) {
        if (line.rfind("sbx-step: ", 0) == 0) {
            step = line.substr(10);
            progress(step, "");
        } else if (line.rfind("sbx-kernel: ", 0) == 0) {
            kernel_version = line.substr(12);
        } else if (line.rfind("I: running ", 0) == 0) {
            // mmdebstrap echoes each hook's whole shell text: not for people.
        } else if (line.rfind("I: ", 0) == 0) {
            progress(step, line.substr(3));
        } else if (line.rfind("sbx: ", 0) == 0) {
            progress(step, line.substr(5));
        }
    };
    auto r = run_tool(argv, raw_fd, on_line, k_bootstrap_timeout);
    if (r.exit_code != 0) {
        throw Error(fmt::format("building image {} failed in step {}: mmdebstrap exited with status {}:{}",
                                recipe.name, step, r.exit_code, tail_text(r.tail)),
                    {fmt::format("apt sources used: {}; check that `apt-get update` works on this host",
                                 sources.string())});
    }
    ::fchmod(raw_fd, 0600);
    std::error_code ec;
    for (const auto* p : {&raw, &files.kernel, &files.initrd}) {
        if (std::filesystem::file_size(*p, ec) == 0 || ec) {
            throw Error(fmt::format("building image {} failed: mmdebstrap left no {}{}", recipe.name,
                                    p->filename().string(), tail_text(r.tail)));
        }
    }

    progress("convert", "qcow2");
    auto c = run_tool({"qemu-img", "convert", "-O", "qcow2", raw.string(), files.disk.string()}, -1, {},
                      k_convert_timeout);
    if (c.exit_code != 0) {
        throw Error(fmt::format("building image {} failed: qemu-img convert exited with status {}:{}",
                                recipe.name, c.exit_code, tail_text(c.tail)));
    }
    std::filesystem::remove(raw, ec);
    std::filesystem::remove(dir / "setup.sh", ec);

    std::uint64_t disk_bytes = std::filesystem::file_size(files.disk, ec);
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - t0).count();
    nlohmann::json info = {
        {"name", recipe.name},
        {"fingerprint", fingerprint},
        {"built_at", utc_now_iso8601()},
        {"disk_bytes", disk_bytes},
        {"size_bytes", recipe.size_bytes},
        {"suite", recipe.suite},
        {"kernel_package", kernel_package(recipe.kernel)},
        {"kernel_version", kernel_version},
        {"packages", packages},
        {"recipe", recipe.file.string()},
        {"build_seconds", seconds},
        {"built_by", fmt::format("sbx {}", SBX_VERSION)},
    };
    write_file_atomic(files.info, info.dump(2) + "\n",
                      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                          std::filesystem::perms::group_read | std::filesystem::perms::others_read);

    // Into place. An existing image is swapped out atomically, then deleted.
    auto final_dir = images_root / recipe.name;
    if (std::filesystem::exists(final_dir, ec)) {
        if (::renameat2(AT_FDCWD, dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) != 0) {
            throw_errno(fmt::format("cannot replace {}", final_dir.string()), errno);
        }
        // The staging path now holds the old image; the guard deletes it.
    } else {
        if (::rename(dir.c_str(), final_dir.c_str()) != 0) {
            throw_errno(fmt::format("cannot move the image into {}", final_dir.string()), errno);
        }
        staging.release();
    }
    progress("done", format_size(disk_bytes));
}

}  // namespace sbx::image
