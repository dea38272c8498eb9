// conn_hold: many TCP connections open at the same time, for netd's memory benchmark
// (tests/bench/netd_rss.sh).
//
//   conn_hold serve PORT
//       Accepts every connection on 0.0.0.0:PORT and holds it (reads and drops what comes)
//       until SIGTERM. Prints "listening" once it listens.
//   conn_hold open COUNT PORT FORMAT
//       Resolves COUNT names, FORMAT with %d replaced by 0 .. COUNT-1 (e.g. "n%d.load.test"),
//       one after another through the system resolver (A records only), and prints
//       "resolved R failed F seconds S". On SIGUSR1 it connects to every name's address on
//       PORT, at most k_in_flight handshakes at a time, and prints "connected C failed F
//       seconds S". Then holds them all until SIGTERM, closes them (FIN) and exits. (The pause
//       lets the caller read the filter's memory with the pins made and no flows yet.)
//
// Both raise RLIMIT_NOFILE to its hard limit. Exit status 0 when everything resolved and
// connected, 1 otherwise (the counts say what failed).

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t k_in_flight = 256;  // handshakes at once: below a listener's backlog
constexpr int k_connect_timeout_ms = 10000;

double since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

void raise_nofile() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

// A signalfd for SIGTERM, SIGINT and SIGUSR1 (blocked first), so the holders wait on it.
int signal_fd() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);
    ::sigprocmask(SIG_BLOCK, &mask, nullptr);
    return ::signalfd(-1, &mask, SFD_CLOEXEC);
}

// The next signal from signal_fd().
std::uint32_t next_signal(int fd) {
    signalfd_siginfo si{};
    while (::read(fd, &si, sizeof si) != static_cast<ssize_t>(sizeof si)) {
        if (errno != EINTR) {
            return SIGTERM;
        }
    }
    return si.ssi_signo;
}

std::string name_of(const std::string& format, int i) {
    std::string out;
    auto at = format.find("%d");
    if (at == std::string::npos) {
        return format;
    }
    return format.substr(0, at) + std::to_string(i) + format.substr(at + 2);
}

int serve(std::uint16_t port) {
    raise_nofile();
    int sig = signal_fd();
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 4096) != 0) {
        std::fprintf(stderr, "conn_hold: cannot listen on port %u: %s\n", port, std::strerror(errno));
        return 1;
    }
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = sig;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, sig, &ev);
    std::printf("listening\n");
    std::fflush(stdout);
    std::vector<epoll_event> events(256);
    long held = 0;
    for (;;) {
        int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
        for (int i = 0; i < n; ++i) {
            int fd = events[static_cast<std::size_t>(i)].data.fd;
            if (fd == sig) {
                if (next_signal(sig) == SIGUSR1) {
                    continue;
                }
                std::printf("held %ld\n", held);
                return 0;
            }
            if (fd == lfd) {
                for (;;) {
                    int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) {
                        break;
                    }
                    ++held;
                    epoll_event cev{};
                    cev.events = EPOLLIN | EPOLLRDHUP;
                    cev.data.fd = c;
                    ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            char buf[4096];
            ssize_t r = ::read(fd, buf, sizeof buf);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                ::close(fd);
                --held;
            }
        }
    }
}

int open_all(int count, std::uint16_t port, const std::string& format) {
    raise_nofile();
    int sig = signal_fd();
    std::vector<in_addr> addrs;
    addrs.reserve(static_cast<std::size_t>(count));
    long unresolved = 0;
    auto t0 = Clock::now();
    for (int i = 0; i < count; ++i) {
        addrinfo hints{};
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        std::string name = name_of(format, i);
        if (::getaddrinfo(name.c_str(), nullptr, &hints, &res) == 0 && res) {
            sockaddr_in sin{};
            std::memcpy(&sin, res->ai_addr, sizeof sin);
            addrs.push_back(sin.sin_addr);
            ::freeaddrinfo(res);
        } else {
            ++unresolved;
        }
    }
    std::printf("resolved %zu failed %ld seconds %.2f\n", addrs.size(), unresolved, since(t0));
    if (next_signal(sig) != SIGUSR1) {
        return 1;
    }

    // Non-blocking connects, k_in_flight at a time; established sockets stay open.
    t0 = Clock::now();
    std::vector<int> open;
    open.reserve(addrs.size());
    std::vector<pollfd> pending;
    std::vector<Clock::time_point> started;
    std::size_t next = 0;
    long failed = 0;
    while (next < addrs.size() || !pending.empty()) {
        while (next < addrs.size() && pending.size() < k_in_flight) {
            sockaddr_in sin{};
            sin.sin_family = AF_INET;
            sin.sin_port = htons(port);
            sin.sin_addr = addrs[next++];
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                ++failed;
                continue;
            }
            int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
            if (rc == 0) {
                open.push_back(fd);
            } else if (errno == EINPROGRESS) {
                pending.push_back(pollfd{fd, POLLOUT, 0});
                started.push_back(Clock::now());
            } else {
                ::close(fd);
                ++failed;
            }
        }
        if (pending.empty()) {
            continue;
        }
        ::poll(pending.data(), pending.size(), 100);
        for (std::size_t i = 0; i < pending.size();) {
            bool timed_out = Clock::now() - started[i] > std::chrono::milliseconds(k_connect_timeout_ms);
            if (pending[i].revents == 0 && !timed_out) {
                ++i;
                continue;
            }
            int err = timed_out ? ETIMEDOUT : 0;
            socklen_t len = sizeof err;
            if (!timed_out) {
                ::getsockopt(pending[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
            }
            if (err == 0) {
                open.push_back(pending[i].fd);
            } else {
                ::close(pending[i].fd);
                ++failed;
            }
            pending[i] = pending.back();
            pending.pop_back();
            started[i] = started.back();
            started.pop_back();
        }
    }
    std::printf("connected %zu failed %ld seconds %.2f\n", open.size(), failed, since(t0));
    while (next_signal(sig) == SIGUSR1) {
    }
    for (int fd : open) {
        ::close(fd);
    }
    return unresolved == 0 && failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc == 3 && std::strcmp(argv[1], "serve") == 0) {
        return serve(static_cast<std::uint16_t>(std::atoi(argv[2])));
    }
    if (argc == 5 && std::strcmp(argv[1], "open") == 0) {
        return open_all(std::atoi(argv[2]), static_cast<std::uint16_t>(std::atoi(argv[3])), argv[4]);
    }
    std::fprintf(stderr, "usage: conn_hold serve PORT | conn_hold open COUNT PORT FORMAT\n");
    return 2;
}
