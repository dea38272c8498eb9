// netd's seccomp sandbox, on real processes: a forked child enters the very sandbox netd
// enters (sbx::net::enter_sandbox) and then tries things. What the loop needs keeps working;
// what it does not need kills the child (or fails with EPERM where documented).

#include "sbx/net/sandbox.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <string>

namespace {

struct Outcome {
    bool exited = false;
    int code = -1;   // exit code when exited
    int signal = 0;  // terminating signal otherwise
};

// Runs `body` in a child after enter_sandbox(); the child's exit code is body's return value.
Outcome in_sandbox(const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        try {
            sbx::net::enter_sandbox();
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
