// netd's privilege drop and seccomp allowlist. See include/sbx/net/sandbox.hpp for what is
// refused and how.
// The list is what netd's steady state needs: the poll loop (poll, read/write on the QEMU
// socket, signalfd), the flow engines (TCP, UDP and ping sockets: socket, connect, accept for
// forwards, send/recv, sockopts, epoll, ioctl SIOCOUTQ/FIONREAD; the stream hook's
// socketpairs), c-ares (UDP/TCP sockets to the nameservers), the host-address watch (recvfrom
// and sendto on the netlink socket it opened at setup: notifications, and its dump request;
// no new netlink socket), malloc
// (brk, mmap without PROT_EXEC, madvise) and the stats/log writes (pwrite, ftruncate on files
// opened at setup).

#include "sbx/net/sandbox.hpp"

#include "sbx/util/error.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <linux/capability.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

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

// LeakSanitizer's check stops the process's threads with ptrace, which a non-dumpable process
// without capabilities (after drop_root) cannot do, nor a process under the filter. Later
// calls do nothing, and the end-of-process check is then skipped.
void leak_check_now() {
    if (__lsan_do_leak_check) {
        __lsan_do_leak_check();
    }
}

// Which user netd becomes: `nobody` and its primary group, as passt does when started as
// root, and Debian's ids for nobody/nogroup when the name is missing. A uid of its own per
// instance would need an allocator and a range nobody else uses; nobody exists everywhere.
// Sharing it is acceptable because netd is made non-dumpable: another process running as
// nobody cannot ptrace it, or read its memory or descriptors through /proc; it can signal
// it, which at worst kills netd, and then the supervisor stops the VM (fail closed).
constexpr uid_t k_nobody_uid = 65534;
constexpr gid_t k_nogroup_gid = 65534;

struct CapSets {
    std::uint64_t effective = 0, permitted = 0, inheritable = 0;
};

bool read_caps(CapSets& out) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    if (::syscall(SYS_capget, &header, data) != 0) {
        return false;
    }
    auto both = [&](std::uint32_t __user_cap_data_struct::*set) {
        return std::uint64_t{data[0].*set} | (std::uint64_t{data[1].*set} << 32);
    };
    out.effective = both(&__user_cap_data_struct::effective);
    out.permitted = both(&__user_cap_data_struct::permitted);
    out.inheritable = both(&__user_cap_data_struct::inheritable);
    return true;
}

bool clear_caps() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
    return ::syscall(SYS_capset, &header, data) == 0;
}

[[noreturn]] void drop_failed(const std::string& what) {
    throw Error(fmt::format("netd: the drop of root's privileges did not take: {}", what),
                {"netd does not filter a VM's network as root; run sbx as a normal user, or find what keeps "
                 "it privileged (a security module, a container's settings; in a user namespace the ids of "
                 "nobody must be mapped)"});
}

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

RootDrop drop_root() {
    RootDrop out;
    uid_t ruid = 0, euid = 0, suid = 0;
    if (::getresuid(&ruid, &euid, &suid) != 0) {
        throw_errno("netd: getresuid", errno);
    }
    if (ruid != 0 && euid != 0 && suid != 0) {
        return out;  // a normal user's netd: nothing to drop
    }
    leak_check_now();
    uid_t uid = k_nobody_uid;
    gid_t gid = k_nogroup_gid;
    if (const passwd* pw = ::getpwnam("nobody")) {
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (uid == 0 || gid == 0) {
        drop_failed(fmt::format("the user nobody is uid {} gid {} on this host", uid, gid));
    }

    // The bounding set limits what an execve() could gain, which the filter refuses anyway;
    // emptied as well where netd may (CAP_SETPCAP), before the uid change takes that away.
    out.bounding_cleared = true;
    int caps = 0;
    for (; ::prctl(PR_CAPBSET_READ, caps, 0, 0, 0) >= 0; ++caps) {
        if (::prctl(PR_CAPBSET_DROP, caps, 0, 0, 0) != 0) {
            out.bounding_cleared = false;
        }
    }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);  // EINVAL before Linux 4.3: none to clear

    if (::setgroups(0, nullptr) != 0) {
        drop_failed(fmt::format("setgroups: {}", std::strerror(errno)));
    }
    if (::setresgid(gid, gid, gid) != 0) {
        drop_failed(fmt::format("cannot switch to group {} (setresgid): {}", gid, std::strerror(errno)));
    }
    if (::setresuid(uid, uid, uid) != 0) {
        drop_failed(fmt::format("cannot switch to user {} (setresuid): {}", uid, std::strerror(errno)));
    }
    // Leaving uid 0 empties the permitted, effective and ambient sets (no SECBIT_KEEP_CAPS);
    // the inheritable set stays as it was: cleared here.
    if (!clear_caps()) {
        drop_failed(fmt::format("capset: {}", std::strerror(errno)));
    }
    // Also what keeps other processes of uid nobody out of netd (ptrace, /proc/<pid>/mem, fd).
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        throw_errno("netd: PR_SET_DUMPABLE", errno);
    }

    uid_t r = 0, e = 0, sv = 0;
    if (::getresuid(&r, &e, &sv) != 0 || r != uid || e != uid || sv != uid) {
        drop_failed(fmt::format("the uids are {}/{}/{}, not {}", r, e, sv, uid));
    }
    gid_t rg = 0, eg = 0, sg = 0;
    if (::getresgid(&rg, &eg, &sg) != 0 || rg != gid || eg != gid || sg != gid) {
        drop_failed(fmt::format("the gids are {}/{}/{}, not {}", rg, eg, sg, gid));
    }
    if (int n = ::getgroups(0, nullptr); n != 0) {
        drop_failed(fmt::format("{} supplementary groups are left", n));
    }
    CapSets c;
    if (!read_caps(c) || c.effective != 0 || c.permitted != 0 || c.inheritable != 0) {
        drop_failed(
            fmt::format("capabilities are left (effective {:016x}, permitted {:016x}, inheritable {:016x})",
                        c.effective, c.permitted, c.inheritable));
    }
    for (int cap = 0; cap < caps; ++cap) {
        if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) {
            drop_failed(fmt::format("capability {} is left in the ambient set", cap));
        }
    }
    if (::setuid(0) == 0) {
        drop_failed("uid 0 can be regained");
    }
    out.dropped = true;
    out.uid = uid;
    out.gid = gid;
    return out;
}

SandboxInfo enter_sandbox() {
    SandboxInfo info;
    leak_check_now();  // the end-of-process check would need ptrace under the filter
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
        // socket(): IPv4 and IPv6 streams (TCP) and datagrams (UDP, ping sockets), whatever
        // the SOCK_NONBLOCK/SOCK_CLOEXEC flags; no raw sockets, no SCTP or other protocols a
        // socket() call could load a kernel module for. Compared as 32 bits: the kernel reads
        // int arguments.
        constexpr scmp_datum_t k_type_mask =
            0xffffffffu & ~static_cast<scmp_datum_t>(SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct SocketKind {
            int family, type, protocol;
        };
        // clang-format off
        for (SocketKind k : {
                 SocketKind{AF_INET, SOCK_STREAM, 0},  SocketKind{AF_INET, SOCK_STREAM, IPPROTO_TCP},
                 SocketKind{AF_INET, SOCK_DGRAM, 0},   SocketKind{AF_INET, SOCK_DGRAM, IPPROTO_UDP},
                 SocketKind{AF_INET, SOCK_DGRAM, IPPROTO_ICMP},
                 SocketKind{AF_INET6, SOCK_STREAM, 0}, SocketKind{AF_INET6, SOCK_STREAM, IPPROTO_TCP},
                 SocketKind{AF_INET6, SOCK_DGRAM, 0},  SocketKind{AF_INET6, SOCK_DGRAM, IPPROTO_UDP},
                 SocketKind{AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6}}) {
            // clang-format on
            scmp_arg_cmp a[] = {
                SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, static_cast<scmp_datum_t>(k.family)),
                SCMP_A1(SCMP_CMP_MASKED_EQ, k_type_mask, static_cast<scmp_datum_t>(k.type)),
                SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, static_cast<scmp_datum_t>(k.protocol)),
            };
            add(ctx, SCMP_ACT_ALLOW, "socket", n, 3, a);
        }
        // socketpair(): AF_UNIX streams only, the stream hook's terminated flows
        // (include/sbx/net/stream_hook.hpp).
        {
            scmp_arg_cmp a[] = {
                SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, static_cast<scmp_datum_t>(AF_UNIX)),
                SCMP_A1(SCMP_CMP_MASKED_EQ, k_type_mask, static_cast<scmp_datum_t>(SOCK_STREAM)),
                SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, 0),
            };
            add(ctx, SCMP_ACT_ALLOW, "socketpair", n, 3, a);
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
