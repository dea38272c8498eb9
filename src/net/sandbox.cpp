// netd's seccomp allowlist. See include/sbx/net/sandbox.hpp for what is refused and how.
// The list is what netd's steady state needs: the poll loop (poll, read/write on the QEMU
// socket, signalfd), the flow engines (TCP, UDP and ping sockets: socket, connect, accept for
// forwards, send/recv, sockopts, epoll, ioctl SIOCOUTQ/FIONREAD), c-ares (UDP/TCP sockets to the nameservers), malloc
// (brk, mmap without PROT_EXEC, madvise) and the stats/log writes (pwrite, ftruncate on files
// opened at setup).

#include "sbx/net/sandbox.hpp"

#include "sbx/util/error.hpp"

#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern "C" {
// Present only in sanitizer builds (weak: null otherwise).
void __lsan_do_leak_check() __attribute__((weak));
}

namespace sbx::net {

namespace {

// clang-format off
// Plain allows: no argument checks.
constexpr const char* k_allowed[] = {
    // I/O on descriptors netd or its libraries already hold
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "lseek", "ftruncate",
    "fstat", "newfstatat", "fcntl", "poll", "ppoll", "epoll_ctl", "epoll_wait", "epoll_pwait",
    // sockets
    "recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg", "connect", "bind", "listen",
    "accept", "accept4", "getsockopt", "setsockopt", "getsockname", "getpeername", "shutdown",
    // time
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
    // memory
    "brk", "munmap", "mremap", "madvise",
    // process basics
    "exit", "exit_group", "rt_sigreturn", "rt_sigprocmask", "futex", "getpid", "gettid", "getrandom",
    "sched_yield", "restart_syscall", "sigaltstack", "sched_getaffinity",
    // anonymous pipes: UBSan's vptr check probes memory through one (harmless: no path, no peer)
    "pipe", "pipe2",
};

// Refused quietly with EPERM: the caller copes (sanitizer symbolizers, glib helpers).
constexpr const char* k_refused_eperm[] = {
    "clone", "fork", "vfork", "open", "openat", "readlink", "readlinkat", "prctl",
};
// clang-format on

void on_sigsys(int, siginfo_t* info, void*) {
    // Async-signal-safe: build the message by hand.
    char msg[96] = "netd: seccomp refused system call ";
    std::size_t n = std::strlen(msg);
    int nr = info ? info->si_syscall : -1;
    char digits[12];
    std::size_t d = 0;
    unsigned v = nr < 0 ? 0u : static_cast<unsigned>(nr);
    do {
        digits[d++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v && d < sizeof digits);
    while (d > 0 && n < sizeof msg - 2) {
        msg[n++] = digits[--d];
    }
    msg[n++] = '\n';
    ssize_t ignored = ::write(2, msg, n);
    (void)ignored;
    ::_exit(128 + SIGSYS);
}

void add(scmp_filter_ctx ctx, std::uint32_t action, const char* name, std::size_t& count,
         unsigned arg_count = 0, const scmp_arg_cmp* args = nullptr) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) {
        return;  // not on this architecture
    }
    int rc = seccomp_rule_add_array(ctx, action, nr, arg_count, args);
    if (rc != 0) {
        throw Error(fmt::format("seccomp: cannot add a rule for {}: {}", name, std::strerror(-rc)));
    }
    ++count;
}

}  // namespace

SandboxInfo enter_sandbox() {
    SandboxInfo info;
    if (__lsan_do_leak_check) {
        __lsan_do_leak_check();  // the end-of-process check would need ptrace under the filter
    }
    struct sigaction sa {};
    sa.sa_sigaction = &on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (::sigaction(SIGSYS, &sa, nullptr) != 0) {
        throw_errno("sandbox: cannot install the SIGSYS handler", errno);
    }
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    ::sigprocmask(SIG_UNBLOCK, &sys, nullptr);

    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        throw_errno("sandbox: PR_SET_NO_NEW_PRIVS failed", errno);
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) {
        throw Error("seccomp: cannot create a filter");
    }
    try {
        std::size_t& n = info.allowed_syscalls;
        for (const char* name : k_allowed) {
            add(ctx, SCMP_ACT_ALLOW, name, n);
        }
        for (const char* name : k_refused_eperm) {
            add(ctx, SCMP_ACT_ERRNO(EPERM), name, n);
        }
        add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", n);  // glibc falls back to clone (refused above)
        // socket(): IPv4 and IPv6 only.
        for (int family : {AF_INET, AF_INET6}) {
            scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family));
            add(ctx, SCMP_ACT_ALLOW, "socket", n, 1, &a);
        }
        // ioctl(): FIONREAD, SIOCOUTQ (the TCP engine's window) and FIONBIO only, and TCGETS
        // (isatty(): sanitizer reports, stdio).
        for (unsigned long req : {static_cast<unsigned long>(FIONREAD), static_cast<unsigned long>(SIOCOUTQ),
                                  static_cast<unsigned long>(FIONBIO), static_cast<unsigned long>(TCGETS)}) {
            scmp_arg_cmp a = SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(req));
            add(ctx, SCMP_ACT_ALLOW, "ioctl", n, 1, &a);
        }
        // mmap()/mprotect(): never executable memory.
        {
            scmp_arg_cmp a = SCMP_A2(SCMP_CMP_MASKED_EQ, static_cast<scmp_datum_t>(PROT_EXEC), 0);
            add(ctx, SCMP_ACT_ALLOW, "mmap", n, 1, &a);
            add(ctx, SCMP_ACT_ALLOW, "mprotect", n, 1, &a);
        }
        // tgkill(): only to ourselves (abort()).
        {
            scmp_arg_cmp a = SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid()));
            add(ctx, SCMP_ACT_ALLOW, "tgkill", n, 1, &a);
        }
        int rc = seccomp_load(ctx);
        if (rc != 0) {
            throw Error(fmt::format("seccomp: the kernel refused netd's filter: {}", std::strerror(-rc)));
        }
    } catch (...) {
        seccomp_release(ctx);
        throw;
    }
    seccomp_release(ctx);
    return info;
}

}  // namespace sbx::net
