// conn_rate: the network benchmark's connection-rate client. For SECONDS, one connection after
// another: connect to ADDR:PORT, send one HTTP/1.0 GET, read the answer to the server's close,
// check it is a 200, close. Every connection is a new flow, so a filter's per-flow work (policy,
// pin lookup, flow table insert and expiry) is in every one of them.
//
//   conn_rate ADDR PORT SECONDS [HOST [COUNT]]
//
// With COUNT, the run also stops after COUNT connections (tests/integration/netd_flows_netns.cpp
// makes exactly 1 000), and succeeds only when all COUNT did.
//
// The server closes first (HTTP/1.0), so TIME_WAIT stays on its side and the client never runs
// out of ports. Each connection is bounded by k_timeout_ms; after k_max_errors failures in a row
// the run stops early.
//
// Prints one line: "conns N errors E seconds S rate R p50_us P p99_us Q" and exits 0 when at
// least one connection succeeded and none failed, 1 otherwise.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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

constexpr int k_timeout_ms = 3000;
constexpr int k_max_errors = 20;

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

bool wait_for(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, remaining_ms(deadline));
        if (n > 0) {
            return true;
        }
        if (n == 0 || errno != EINTR) {
            return false;
        }
    }
}

// One request on a fresh non-blocking socket; true on an HTTP 200 followed by the server's close.
bool exchange(int fd, const sockaddr_in& addr, const std::string& request, Clock::time_point deadline) {
    int nodelay = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno != EINPROGRESS || !wait_for(fd, POLLOUT, deadline)) {
            return false;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            return false;
        }
    }
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
        return false;
    }
    char buf[4096];
    char head[16] = {};
    std::size_t got = 0;
    for (;;) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r > 0) {
            if (got < sizeof head - 1) {
                std::size_t take = std::min(sizeof head - 1 - got, static_cast<std::size_t>(r));
                std::memcpy(head + got, buf, take);
            }
            got += static_cast<std::size_t>(r);
        } else if (r == 0) {
            return std::strncmp(head, "HTTP/1.1 200", 12) == 0 || std::strncmp(head, "HTTP/1.0 200", 12) == 0;
        } else if (errno != EINTR && (errno != EAGAIN || !wait_for(fd, POLLIN, deadline))) {
            return false;
        }
    }
}

bool one(const sockaddr_in& addr, const std::string& request) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    bool ok = exchange(fd, addr, request, Clock::now() + std::chrono::milliseconds(k_timeout_ms));
    ::close(fd);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: conn_rate ADDR PORT SECONDS [HOST [COUNT]]\n");
        return 2;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
    if (::inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        std::fprintf(stderr, "conn_rate: %s is not an IPv4 address\n", argv[1]);
        return 2;
    }
    double seconds = std::atof(argv[3]);
    std::string host = argc > 4 ? argv[4] : argv[1];
    long count = argc > 5 ? std::atol(argv[5]) : 0;  // 0: as many as SECONDS allow
    std::string request = "GET / HTTP/1.0\r\nHost: " + host + "\r\nUser-Agent: sbx-conn-rate\r\n\r\n";

    std::vector<double> lat_us;
    lat_us.reserve(1u << 20);
    long conns = 0, errors = 0, errors_in_row = 0;
    auto start = Clock::now();
    auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    Clock::time_point now = start;
    while (now < end && errors_in_row < k_max_errors && (count == 0 || conns + errors < count)) {
        auto t0 = Clock::now();
        bool ok = one(addr, request);
        now = Clock::now();
        if (ok) {
            ++conns;
            errors_in_row = 0;
            lat_us.push_back(std::chrono::duration<double, std::micro>(now - t0).count());
        } else {
            ++errors;
            ++errors_in_row;
        }
    }
    double elapsed = std::chrono::duration<double>(now - start).count();
    std::sort(lat_us.begin(), lat_us.end());
    auto pct = [&](double q) {
        return lat_us.empty() ? 0.0
                              : lat_us[static_cast<std::size_t>(q * static_cast<double>(lat_us.size() - 1))];
    };
    std::printf("conns %ld errors %ld seconds %.3f rate %.1f p50_us %.0f p99_us %.0f\n", conns, errors,
                elapsed, elapsed > 0 ? static_cast<double>(conns) / elapsed : 0.0, pct(0.5), pct(0.99));
    return conns > 0 && errors == 0 && (count == 0 || conns == count) ? 0 : 1;
}
