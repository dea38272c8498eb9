#pragma once
// netd's self-confinement, entered once its setup is done: no new privileges, and a seccomp
// allowlist of the system calls its poll loop, the flow engines, c-ares and malloc need.
//
// What is refused, and how:
//   - execve/execveat, ptrace, and every system call not on the list: the process is killed
//     (SIGSYS is caught just long enough to write "netd: seccomp refused system call N" to
//     stderr, then _exit(159)); if the handler cannot run, the kernel kills the process.
//   - clone/fork/vfork: EPERM (a sanitizer's symbolizer then gives up instead of killing the
//     process in the middle of an error report).
//   - socket(): only AF_INET and AF_INET6 (the engines' and c-ares's sockets);
//     mmap/mprotect: never PROT_EXEC; ioctl: FIONREAD, FIONBIO and TCGETS (isatty) only.
//   - No open/openat/rename/unlink at all: netd keeps its log and stats files open from setup.
// Sanitizer builds: LeakSanitizer's end-of-process check needs ptrace, so it is run once
// here, before the filter goes on (leaks made during the loop are not reported).

#include <cstddef>

namespace sbx::net {

struct SandboxInfo {
    std::size_t allowed_syscalls = 0;
};

// Irreversible for the calling process (single-threaded). Throws sbx::Error when the kernel
// refuses the filter.
SandboxInfo enter_sandbox();

}  // namespace sbx::net
