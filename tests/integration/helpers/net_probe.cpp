// net_probe: small network probes and servers for the namespace tests and benchmarks, so
// they need neither netcat, ping nor python.
//
//   net_probe udp-echo ADDR PORT            serve: echo every UDP datagram back (until killed)
//   net_probe udp ADDR PORT [TIMEOUT_MS]    send one datagram, wait for its echo
//   net_probe icmp ADDR [TIMEOUT_MS]        one ICMP/ICMPv6 echo request (raw socket: root)
//   net_probe tcp ADDR PORT [TIMEOUT_MS]    one TCP connect
//   net_probe tcp-read ADDR PORT [TIMEOUT_MS]  connect and wait for "sbx-probe" from a tcp-serve
//   net_probe tcp-serve ADDR PORT           serve: accept, write "sbx-probe\n", close (until killed)
//
// Prints one line "<result> <elapsed_ms>ms" and exits: 0 answered/connected, 1 timed out,
// 2 refused (TCP RST, or an ICMP unreachable for UDP), 3 any other error.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;
Clock::time_point g_start;

int finish(const char* what, int code) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - g_start).count();
    std::printf("%s %lldms\n", what, static_cast<long long>(ms));
    return code;
}

int fail(const char* what) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - g_start).count();
    std::printf("error %s: %s %lldms\n", what, std::strerror(errno), static_cast<long long>(ms));
    return 3;
}

struct Addr {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family = AF_INET;
};

bool parse(const char* text, int port, Addr& a) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    if (::inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        a.len = sizeof(sockaddr_in);
        a.family = AF_INET;
        return true;
    }
    if (::inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        a.len = sizeof(sockaddr_in6);
        a.family = AF_INET6;
        return true;
    }
    return false;
}

int wait_readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms);
}

int udp_echo(const Addr& a) {
    int fd = ::socket(a.family, SOCK_DGRAM, 0);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) {
        return fail("bind");
    }
    char buf[65536];
    for (;;) {
        sockaddr_storage from{};
        socklen_t fl = sizeof from;
        ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (n >= 0) {
            ::sendto(fd, buf, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), fl);
        }
    }
}

int udp(const Addr& a, int timeout_ms) {
    int fd = ::socket(a.family, SOCK_DGRAM, 0);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) {
        return fail("connect");
    }
    const char msg[] = "sbx-probe";
    if (::send(fd, msg, sizeof msg, 0) < 0) {
        return fail("send");
    }
    if (wait_readable(fd, timeout_ms) <= 0) {
        return finish("timeout", 1);
    }
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 &&
        (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH || errno == EACCES)) {
        return finish("refused", 2);
    }
    if (n == static_cast<ssize_t>(sizeof msg) && std::memcmp(buf, msg, sizeof msg) == 0) {
        return finish("answered", 0);
    }
    return fail("recv");
}

std::uint16_t checksum(const unsigned char* p, std::size_t n) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) {
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    }
    if (n & 1) {
        sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum);
}

int icmp_echo(const Addr& a, int timeout_ms) {
    bool v6 = a.family == AF_INET6;
    int fd =
        ::socket(a.family, SOCK_RAW, v6 ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP));
    if (fd < 0) {
        return fail("socket");
    }
    unsigned char pkt[16] = {};
    pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    std::uint16_t id = static_cast<std::uint16_t>(::getpid());
    pkt[4] = static_cast<unsigned char>(id >> 8);
    pkt[5] = static_cast<unsigned char>(id);
    pkt[7] = 1;
    std::memcpy(pkt + 8, "sbxprobe", 8);
    if (!v6) {  // the kernel computes the ICMPv6 checksum
        std::uint16_t c = checksum(pkt, sizeof pkt);
        pkt[2] = static_cast<unsigned char>(c >> 8);
        pkt[3] = static_cast<unsigned char>(c);
    }
    if (::sendto(fd, pkt, sizeof pkt, 0, reinterpret_cast<const sockaddr*>(&a.ss), a.len) < 0) {
        return fail("sendto");
    }
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0 || wait_readable(fd, static_cast<int>(left)) <= 0) {
            return finish("timeout", 1);
        }
        unsigned char buf[1500];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            continue;
        }
        // IPv4 raw sockets include the IP header; IPv6 ones do not.
        std::size_t off = v6 ? 0 : static_cast<std::size_t>((buf[0] & 0x0f) * 4);
        if (static_cast<std::size_t>(n) < off + 8) {
            continue;
        }
        unsigned char type = buf[off];
        if (type == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) &&
            std::memcmp(buf + off + 8, "sbxprobe", 8) == 0) {
            return finish("answered", 0);
        }
        if (type == (v6 ? ICMP6_DST_UNREACH : ICMP_DEST_UNREACH)) {
            return finish("unreachable", 2);
        }
    }
}

int tcp_serve(const Addr& a) {
    int fd = ::socket(a.family, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0 || ::listen(fd, 16) != 0) {
        return fail("bind");
    }
    for (;;) {
        int c = ::accept(fd, nullptr, nullptr);
        if (c >= 0) {
            ssize_t w = ::write(c, "sbx-probe\n", 10);
            (void)w;
            ::close(c);
        }
    }
}

int tcp(const Addr& a, int timeout_ms, bool read_hello = false) {
    int fd = ::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len);
    if (rc != 0 && errno != EINPROGRESS) {
        if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) {
            return finish("refused", 2);
        }
        return fail("connect");
    }
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) {
        return finish("timeout", 1);
    }
    int err = 0;
    socklen_t el = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err == 0 && read_hello) {
        if (wait_readable(fd, timeout_ms) <= 0) {
            return finish("timeout", 1);
        }
        char buf[16] = {};
        ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
        if (n >= 9 && std::memcmp(buf, "sbx-probe", 9) == 0) {
            return finish("answered", 0);
        }
        return finish(n == 0 ? "closed" : "refused", 2);
    }
    if (err == 0) {
        return finish("connected", 0);
    }
    if (err == ECONNREFUSED || err == ECONNRESET || err == EHOSTUNREACH || err == ENETUNREACH) {
        return finish("refused", 2);
    }
    errno = err;
    return fail("connect");
}

}  // namespace

int main(int argc, char** argv) {
    g_start = Clock::now();
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc < 3) {
        std::fprintf(stderr, "usage: net_probe udp-echo|udp|icmp|tcp ADDR [PORT] [TIMEOUT_MS]\n");
        return 3;
    }
    std::string mode = argv[1];
    bool has_port = mode != "icmp";
    int port = has_port && argc > 3 ? std::atoi(argv[3]) : 0;
    int timeout = argc > (has_port ? 4 : 3) ? std::atoi(argv[has_port ? 4 : 3]) : 3000;
    Addr a;
    if (!parse(argv[2], port, a)) {
        std::fprintf(stderr, "net_probe: not an address: %s\n", argv[2]);
        return 3;
    }
    if (mode == "udp-echo") {
        return udp_echo(a);
    }
    if (mode == "udp") {
        return udp(a, timeout);
    }
    if (mode == "icmp") {
        return icmp_echo(a, timeout);
    }
    if (mode == "tcp-serve") {
        return tcp_serve(a);
    }
    if (mode == "tcp-read") {
        return tcp(a, timeout, true);
    }
    if (mode == "tcp") {
        return tcp(a, timeout);
    }
    std::fprintf(stderr, "net_probe: unknown mode %s\n", mode.c_str());
    return 3;
}
