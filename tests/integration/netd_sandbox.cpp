// netd's seccomp sandbox and privilege drop, on real processes: a forked child enters the very
// sandbox netd enters (sbx::net::enter_sandbox, after sbx::net::drop_root when root) and then
// tries things. What the loop needs keeps working; what it does not need kills the child (or
// fails with EPERM where documented).

#include "sbx/net/filter.hpp"
#include "sbx/net/host_watch.hpp"
#include "sbx/net/sandbox.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

namespace {

struct Outcome {
    bool exited = false;
    int code = -1;   // exit code when exited
    int signal = 0;  // terminating signal otherwise
};

// Runs `body` in a child after `enter` (netd's sandbox by default); the child's exit code is
// body's return value.
Outcome in_child(const std::function<void()>& enter, const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        try {
            enter();
        } catch (...) {
            ::_exit(100);
        }
        ::_exit(body());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    Outcome o;
    if (WIFEXITED(status)) {
        o.exited = true;
        o.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        o.signal = WTERMSIG(status);
    }
    return o;
}

Outcome in_sandbox(const std::function<int()>& body) {
    return in_child([] { sbx::net::enter_sandbox(); }, body);
}

// The sandbox's SIGSYS handler exits with 128 + SIGSYS; without it the kernel kills with SIGSYS.
bool killed_by_seccomp(const Outcome& o) {
    return (o.exited && o.code == 128 + SIGSYS) || (!o.exited && o.signal == SIGSYS);
}

}  // namespace

TEST(NetdSandbox, WhatTheLoopNeedsStillWorks) {
    auto o = in_sandbox([] {
        int s4 = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int s6 = ::socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (s4 < 0 || s6 < 0) {
            return 1;
        }
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(s4, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            return 2;
        }
        void* p = std::malloc(1 << 20);  // malloc: brk/mmap without PROT_EXEC
        if (!p) {
            return 3;
        }
        std::free(p);
        ::close(s4);
        ::close(s6);
        return 0;
    });
    EXPECT_TRUE(o.exited) << "signal " << o.signal;
    EXPECT_EQ(o.code, 0);
}

// netd's host-address watch opens its netlink socket before the sandbox; under it, the
// socket still reads and sends: the whole set is listed again over it (what netd does when
// the kernel dropped notifications).
TEST(NetdSandbox, TheHostAddressWatchListsAgainUnderTheSandbox) {
    std::unique_ptr<sbx::net::Filter> filter;
    std::unique_ptr<sbx::net::HostAddressWatch> watch;
    auto o = in_child(
        [&] {
            filter = std::make_unique<sbx::net::Filter>(sbx::net::Policy{}, sbx::net::GuestNet{},
                                                        sbx::net::Limits{});
            watch = std::make_unique<sbx::net::HostAddressWatch>(*filter);
            sbx::net::enter_sandbox();
        },
        [&] {
            const std::size_t before = watch->size();
            watch->relist();
            if (!watch->listing()) {
                return 1;
            }
            for (int i = 0; i < 100 && watch->listing(); ++i) {
                pollfd p{watch->fd(), POLLIN, 0};
                ::poll(&p, 1, 50);
                watch->process();
            }
            if (watch->listing()) {
                return 2;
            }
            return watch->size() == before ? 0 : 3;
        });
    EXPECT_TRUE(o.exited) << "signal " << o.signal;
    EXPECT_EQ(o.code, 0);
}

TEST(NetdSandbox, StreamDatagramPingAndUnixStreamPairsAreAllowed) {
    auto o = in_sandbox([] {
        int code = 1;
        for (int family : {AF_INET, AF_INET6}) {
            for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
                for (int flags : {0, SOCK_NONBLOCK | SOCK_CLOEXEC}) {
                    int fd = ::socket(family, type | flags, 0);
                    if (fd < 0) {
                        return code;
                    }
                    ::close(fd);
                    ++code;
                }
            }
        }
        for (auto [family, type, proto] : {std::tuple{AF_INET, SOCK_STREAM, int{IPPROTO_TCP}},
                                           std::tuple{AF_INET6, SOCK_DGRAM, int{IPPROTO_UDP}}}) {
            int fd = ::socket(family, type, proto);
            if (fd < 0) {
                return 20;
            }
            ::close(fd);
        }
        // Ping sockets: allowed by the filter; the kernel may still refuse them
        // (net.ipv4.ping_group_range), which is EACCES, not death.
        for (auto [family, proto] :
             {std::pair{AF_INET, int{IPPROTO_ICMP}}, std::pair{AF_INET6, int{IPPROTO_ICMPV6}}}) {
            int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
            if (fd < 0 && errno != EACCES) {
                return 30;
            }
            if (fd >= 0) {
                ::close(fd);
            }
        }
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
            return 40;
        }
        if (::write(pair[0], "x", 1) != 1) {
            return 41;
        }
        char c = 0;
        if (::read(pair[1], &c, 1) != 1 || c != 'x') {
            return 42;
        }
        ::close(pair[0]);
        ::close(pair[1]);
        return 0;
    });
    EXPECT_TRUE(o.exited) << "signal " << o.signal;
    EXPECT_EQ(o.code, 0);
}

// netd never asks for these; an attempt is a compromised netd, which ends.
TEST(NetdSandbox, RawPacketNetlinkAndOtherProtocolSocketsKillTheProcess) {
    struct Try {
        const char* what;
        int family, type, protocol;
    };
    for (Try t :
         {Try{"AF_INET SOCK_RAW IPPROTO_ICMP", AF_INET, SOCK_RAW, IPPROTO_ICMP},
          Try{"AF_INET6 SOCK_RAW IPPROTO_ICMPV6", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6},
          Try{"AF_INET SOCK_RAW|SOCK_NONBLOCK IPPROTO_RAW", AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_RAW},
          Try{"AF_PACKET SOCK_RAW ETH_P_ALL", AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)},
          Try{"AF_PACKET SOCK_DGRAM ETH_P_IP", AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP)},
          Try{"AF_NETLINK SOCK_RAW NETLINK_ROUTE", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE},
          Try{"AF_INET SOCK_STREAM IPPROTO_SCTP", AF_INET, SOCK_STREAM, IPPROTO_SCTP},
          Try{"AF_INET SOCK_DGRAM IPPROTO_ICMPV6", AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6},
          Try{"AF_INET6 SOCK_SEQPACKET 0", AF_INET6, SOCK_SEQPACKET, 0}}) {
        auto o = in_sandbox([t] { return ::socket(t.family, t.type, t.protocol) >= 0 ? 0 : 1; });
        EXPECT_TRUE(killed_by_seccomp(o))
            << t.what << ": exited=" << o.exited << " code=" << o.code << " signal=" << o.signal;
    }
}

TEST(NetdSandbox, SocketpairsOtherThanUnixStreamsKillTheProcess) {
    for (auto [family, type] : {std::pair{AF_UNIX, SOCK_DGRAM}, std::pair{AF_UNIX, SOCK_SEQPACKET},
                                std::pair{AF_INET, SOCK_STREAM}}) {
        auto o = in_sandbox([family, type] {
            int pair[2];
            return ::socketpair(family, type, 0, pair) == 0 ? 0 : 1;
        });
        EXPECT_TRUE(killed_by_seccomp(o))
            << "family " << family << " type " << type << ": exited=" << o.exited << " code=" << o.code
            << " signal=" << o.signal;
    }
}

// What netd does when started as root (docs/network.md, "netd as a process"): the drop, then
// the sandbox. Checked in the child's own /proc/self/status, the lines the e2e test reads for
// the real netd (tests/e2e/vm_lifecycle.sh).
TEST(NetdSandbox, AsRootDropsToAnUnprivilegedUserWithNoCapabilities) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "skipped: not root (the drop happens only when netd is root)";
    }
    auto o = in_child(
        [] {
            sbx::net::RootDrop d = sbx::net::drop_root();
            if (!d.dropped || d.uid == 0 || d.gid == 0 || !d.bounding_cleared) {
                ::_exit(1);
            }
        },
        [] {
            std::ifstream in("/proc/self/status");
            std::string line;
            int seen = 0;
            while (std::getline(in, line)) {
                for (const char* set : {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"}) {
                    if (line.rfind(set, 0) == 0) {
                        if (line.find_first_not_of("0", line.find_first_not_of(" \t", 7)) !=
                            std::string::npos) {
                            return 2;
                        }
                        ++seen;
                    }
                }
                if (line.rfind("Uid:", 0) == 0 || line.rfind("Gid:", 0) == 0) {
                    // "Uid:\t65534\t65534\t65534\t65534": real, effective, saved, fs
                    if (line.find("\t0\t") != std::string::npos || line.ends_with("\t0")) {
                        return 3;
                    }
                    ++seen;
                }
                if (line.rfind("Groups:", 0) == 0 && line.find_first_not_of(" \t", 7) != std::string::npos) {
                    return 4;
                }
            }
            if (seen != 7) {
                return 5;
            }
            if (::setuid(0) == 0) {
                return 6;
            }
            // The sandbox goes on over the drop, and what the loop needs still works.
            sbx::net::enter_sandbox();
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            return fd >= 0 ? 0 : 7;
        });
    EXPECT_TRUE(o.exited) << "signal " << o.signal;
    EXPECT_EQ(o.code, 0);
}

TEST(NetdSandbox, ExecveKillsTheProcess) {
    auto o = in_sandbox([] {
        char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
        ::execve("/bin/true", argv, nullptr);
        return 0;  // reaching this means execve failed without killing us: also a failure
    });
    EXPECT_TRUE(killed_by_seccomp(o))
        << "exited=" << o.exited << " code=" << o.code << " signal=" << o.signal;
}

TEST(NetdSandbox, UnixSocketsAreRefused) {
    auto o = in_sandbox([] { return ::socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 1; });
    EXPECT_TRUE(killed_by_seccomp(o)) << "exited=" << o.exited << " code=" << o.code;
}

TEST(NetdSandbox, ExecutableMemoryIsRefused) {
    auto o = in_sandbox([] {
        void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? 1 : 0;
    });
    EXPECT_TRUE(killed_by_seccomp(o)) << "exited=" << o.exited << " code=" << o.code;
}

TEST(NetdSandbox, OpeningFilesAndForkingFailWithEperm) {
    auto o = in_sandbox([] {
        int fd = ::open("/etc/hostname", O_RDONLY);
        if (fd >= 0 || errno != EPERM) {
            return 1;
        }
        pid_t p = ::fork();
        if (p == 0) {
            ::_exit(0);
        }
        return (p < 0 && errno == EPERM) ? 0 : 2;
    });
    EXPECT_TRUE(o.exited) << "signal " << o.signal;
    EXPECT_EQ(o.code, 0);
}
