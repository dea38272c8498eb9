#pragma once
// `sbx _share`: serves one host folder to the guest over virtiofs, with what the share
// promises enforced on the host side, where a guest root cannot undo it.
//
//   sbx _share --source DIR --socket SOCK [--ro] [--hide ENTRY]... [--guest-uid N]
//
// Theory of operation. The process
//   1. finds every path under DIR the hide list matches (lstat, never following links);
//   2. binds and listens on SOCK as the calling user (mode 0600; QEMU connects here and
//      its connection waits in the backlog until virtiofsd accepts it);
//   3. enters a new user namespace and mount namespace. A short-lived helper left outside
//      writes the uid/gid maps: the guest user's id (guest_uid) <-> the calling user, and
//      namespace root <-> an id that owns nothing (nobody for root, the user's first
//      subordinate id otherwise, via newuidmap/newgidmap). Files the guest user creates
//      belong to the host user; host files of the host user are the guest user's;
//   4. in its private mount namespace: binds DIR onto itself and, for --ro, remounts it
//      and every mount below it read-only (the kernel refuses writes, whatever the guest
//      sends); binds an empty read-only folder (or file) over every hidden path, so its
//      contents cannot be listed, read, written, renamed or replaced, and its parent
//      folder cannot be renamed away (a mount point is busy);
//   5. execs virtiofsd (Debian's C one) on the listening socket, in its own namespace
//      sandbox (it pivots into DIR).
// virtiofsd's exit is this process's exit: the supervisor stops the VM when it goes.
//
// Limits (docs/shares.md): a hidden name still appears, as an empty folder or file; a
// hidden path that does not exist when the VM starts can be created by the guest in a
// rw share (review mode never copies it back); a hidden symlink cannot be covered (its
// target text stays readable, the target itself is resolved inside the guest).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sbx::share {

inline constexpr const char* k_virtiofsd = "/usr/lib/qemu/virtiofsd";

struct ExportSpec {
    std::filesystem::path source;  // absolute folder
    std::filesystem::path socket;  // the vhost-user socket QEMU connects to
    bool read_only = false;
    std::vector<std::string> hide;  // HideList entries
    std::uint32_t guest_uid = 1000;  // the guest user's uid and gid (image::guest::k_user_uid)
    std::filesystem::path virtiofsd = k_virtiofsd;
};

// argv of the export process, for the launch plan.
std::vector<std::string> export_argv(const std::filesystem::path& sbx_exe, const ExportSpec& spec);

// Paths under `source` the hide list matches, relative, without descending into them.
std::vector<std::string> hidden_paths(const std::filesystem::path& source, const std::vector<std::string>& hide);

// Does the work above, then execs virtiofsd; returns only by throwing sbx::Error.
[[noreturn]] void run_export(const ExportSpec& spec);

}  // namespace sbx::share
