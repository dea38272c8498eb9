#pragma once
// netd's self-confinement, entered once its setup is done: started as root, it first drops to
// an unprivileged user with no capabilities (drop_root); then no new privileges, and a seccomp
// allowlist of the system calls its poll loop, the flow engines, c-ares and malloc need.
//
// What is refused, and how:
//   - execve/execveat, ptrace, and every system call not on the list: the process is killed
//     (SIGSYS is caught just long enough to write "netd: seccomp refused system call N" to
//     stderr, then _exit(159)); if the handler cannot run, the kernel kills the process.
//   - clone/fork/vfork: EPERM (a sanitizer's symbolizer then gives up instead of killing the
//     process in the middle of an error report).
//   - socket(): only AF_INET and AF_INET6, of type SOCK_STREAM (protocol 0 or TCP) or
//     SOCK_DGRAM (0, UDP, or the family's ICMP: ping sockets): no raw, packet or netlink
//     sockets, no SCTP; socketpair(): only AF_UNIX SOCK_STREAM (the stream hook's flows);
//     mmap/mprotect: never PROT_EXEC; ioctl: FIONREAD, FIONBIO and TCGETS (isatty) only.
//   - No open/openat/rename/unlink at all: netd keeps its log and stats files open from setup.
// Sanitizer builds: LeakSanitizer's end-of-process check needs ptrace, so it is run once
// before the privilege drop and the filter (leaks made during the loop are not reported).

#include <sys/types.h>

#include <cstddef>

namespace sbx::net {

struct RootDrop {
    bool dropped = false;  // false: netd was not root, nothing changed
    uid_t uid = 0;
    gid_t gid = 0;
    bool bounding_cleared = false;  // the capability bounding set is empty too
};

// When any of the process's uids is 0: switches to `nobody` (uid and its primary group, no
// supplementary groups), empties the effective, permitted, inheritable and ambient capability
// sets (and the bounding set, given CAP_SETPCAP, which real root has), makes the process
// non-dumpable, then checks that it took (uids, gids, groups, capabilities, uid 0 cannot be
// regained). Throws sbx::Error when any of it fails. Otherwise does nothing. Call after
// everything that needs root and before enter_sandbox().
RootDrop drop_root();

struct SandboxInfo {
    std::size_t allowed_syscalls = 0;
};

// Irreversible for the calling process (single-threaded). Throws sbx::Error when the kernel
// refuses the filter.
SandboxInfo enter_sandbox();

}  // namespace sbx::net
