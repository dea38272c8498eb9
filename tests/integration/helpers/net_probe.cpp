// net_probe: small network probes and servers for the namespace tests and benchmarks, so
// they need neither netcat, ping nor python.
//
//   net_probe udp-echo ADDR PORT            serve: echo every UDP datagram back (until killed);
//                                           prints "listening" on stderr once bound
//   net_probe udp ADDR PORT [TIMEOUT_MS]    send one datagram, wait for its echo
//   net_probe icmp ADDR [TIMEOUT_MS]        one ICMP/ICMPv6 echo request (raw socket: root)
//   net_probe tcp ADDR PORT [TIMEOUT_MS]    one TCP connect
//   net_probe tcp-read ADDR PORT [TIMEOUT_MS]  connect and wait for "sbx-probe" from a tcp-serve
//   net_probe tcp-serve ADDR PORT           serve: accept, write "sbx-probe\n", close (until killed)
//
// Prints one line "<result> <elapsed_ms>ms" and exits: 0 answered/connected, 1 timed out,
// 2 refused (TCP RST, or an ICMP unreachable for UDP), 3 any other error.
//
// Bulk data for the data-path tests (tests/integration/netd_flows_netns.cpp). "The pattern" is
// a fixed-seed pseudo-random byte stream (xorshift64*), the same however it is chunked, so
// both ends can produce or check it without a file. Servers print "listening" on stderr once
// they listen and serve each connection in a child process; their status goes to stderr.
//
//   net_probe gen BYTES SEED                      the pattern on stdout
//   net_probe tcp-source ADDR PORT BYTES SEED     serve: send BYTES of the pattern (0: without
//                                                 end), then close
//   net_probe tcp-reset ADDR PORT BYTES PAUSE_MS  serve: send BYTES of the pattern (seed 1),
//                                                 wait PAUSE_MS, close with SO_LINGER 0 (a RST)
//   net_probe tcp-echo ADDR PORT                  serve: echo every byte until the peer's FIN
//   net_probe tcp-send ADDR PORT                  serve one connection: stdin to it, then
//                                                 close and exit 0
//   net_probe tcp-recv ADDR PORT                  serve one connection: its bytes to stdout
//                                                 until the peer's FIN, then exit 0
//   net_probe tcp-cat ADDR PORT [IDLE_MS]         connect; stdin to the socket (then FIN), the
//                                                 socket to stdout until the peer's FIN
//   net_probe tcp-parallel ADDR PORT N BYTES SEED N connections at once, each must get exactly
//                                                 BYTES of the pattern, then the peer's FIN
//   net_probe tcp-stall ADDR PORT STALL_MS BYTES SEED  connect, print "connected", read nothing
//                                                 for STALL_MS, print "reading", then check
//                                                 BYTES of the pattern in order
//
// These exit 0 on success, 1 when nothing moved for IDLE_MS (default 10 000), 2 on a reset
// (ECONNRESET; tcp-cat prints "reset after N bytes"), 3 on any other error or a mismatch.
//
// Faults (tests/integration/netd_faults_netns.cpp):
//
//   net_probe tcp-chunks ADDR PORT CHUNK SEED [echo]  connect, print "connected"; for each line
//                                                 on stdin read CHUNK bytes of the pattern from a
//                                                 tcp-source (with `echo`: send them to a
//                                                 tcp-echo and read them back), checked, and print
//                                                 "chunk K ok MSms"; stdin's end closes
//   net_probe syn-flood ADDR PORT FIRST PORTS RATE  raw SYNs (root), RATE a second, from source
//                                                 ports FIRST.. in turn until SIGTERM, then a RST
//                                                 from each port; "sent N resets R synacks S"
//   net_probe dns ADDR NAME [TIMEOUT_MS] [QTYPE]  one query to ADDR:53 (labels written as given,
//                                                 unchecked); "rcode R id I qd Q an A [addr] MSms"
//   net_probe dns-raw ADDR HEX [TIMEOUT_MS]       the same for a query given as hex bytes
//   net_probe dns-flood ADDR NAME COUNT RATE [WAIT_MS]  COUNT A queries at RATE a second,
//                                                 answers counted by rcode (see dns_flood)
//
// dns and dns-raw exit 0 on an answer, 1 on a timeout; dns-flood 0 when every query was
// answered once; syn-flood 0 when it sent.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
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
    std::fprintf(stderr, "listening\n");
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

// ---- bulk data ----

// The pattern: xorshift64* words, little-endian, handed out in any chunk sizes.
class Pattern {
public:
    explicit Pattern(std::uint64_t seed) : m_state(seed * 0x9e3779b97f4a7c15ull | 1) {}
    void next(unsigned char* out, std::size_t n) {
        while (n > 0) {
            if (m_pos == sizeof m_block) {
                refill();
            }
            std::size_t take = std::min(n, sizeof m_block - m_pos);
            std::memcpy(out, m_block + m_pos, take);
            m_pos += take;
            out += take;
            n -= take;
        }
    }
    // Compares the next n bytes of the pattern with `in`; false at the first difference.
    bool check(const unsigned char* in, std::size_t n) {
        while (n > 0) {
            if (m_pos == sizeof m_block) {
                refill();
            }
            std::size_t take = std::min(n, sizeof m_block - m_pos);
            if (std::memcmp(in, m_block + m_pos, take) != 0) {
                return false;
            }
            m_pos += take;
            in += take;
            n -= take;
        }
        return true;
    }

private:
    void refill() {
        for (std::size_t i = 0; i < sizeof m_block; i += 8) {
            m_state ^= m_state >> 12;
            m_state ^= m_state << 25;
            m_state ^= m_state >> 27;
            std::uint64_t v = m_state * 0x2545f4914f6cdd1dull;
            std::memcpy(m_block + i, &v, 8);
        }
        m_pos = 0;
    }
    std::uint64_t m_state;
    unsigned char m_block[65536];
    std::size_t m_pos = sizeof m_block;
};

constexpr std::size_t k_chunk = 256 * 1024;
constexpr int k_idle_ms = 10000;

bool write_all(int fd, const unsigned char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK) {
            w = ::write(fd, p, n);
        }
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

int gen(std::uint64_t bytes, std::uint64_t seed) {
    Pattern pat(seed);
    std::vector<unsigned char> buf(k_chunk);
    while (bytes > 0) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, buf.size()));
        pat.next(buf.data(), n);
        if (!write_all(1, buf.data(), n)) {
            return fail("write");
        }
        bytes -= n;
    }
    return 0;
}

int listen_on(const Addr& a) {
    int fd = ::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0 || ::listen(fd, 256) != 0) {
        return -1;
    }
    std::fprintf(stderr, "listening\n");
    return fd;
}

// Accepts until killed; each connection is served by `serve` in a child that dies with us.
template <typename Serve>
int serve_forked(const Addr& a, Serve serve) {
    int fd = listen_on(a);
    if (fd < 0) {
        return fail("bind");
    }
    ::signal(SIGCHLD, SIG_IGN);  // children are reaped by the kernel
    for (;;) {
        int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
            continue;
        }
        pid_t pid = ::fork();
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::close(fd);
            ::_exit(serve(c));
        }
        ::close(c);
    }
}

int source_one(int c, std::uint64_t bytes, std::uint64_t seed) {
    Pattern pat(seed);
    std::vector<unsigned char> buf(k_chunk);
    bool endless = bytes == 0;
    while (endless || bytes > 0) {
        std::size_t n =
            endless ? buf.size() : static_cast<std::size_t>(std::min<std::uint64_t>(bytes, buf.size()));
        pat.next(buf.data(), n);
        if (!write_all(c, buf.data(), n)) {
            return 2;  // the peer went away
        }
        if (!endless) {
            bytes -= n;
        }
    }
    ::close(c);
    return 0;
}

int reset_one(int c, std::uint64_t bytes, int pause_ms) {
    int rc = source_one(::dup(c), bytes, 1);  // source_one closes its copy; c stays open
    ::usleep(static_cast<useconds_t>(pause_ms) * 1000);
    linger l{1, 0};
    ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(c);
    return rc;
}

int echo_one(int c) {
    std::vector<unsigned char> buf(k_chunk);
    for (;;) {
        ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (!write_all(c, buf.data(), static_cast<std::size_t>(n))) {
            return 2;
        }
    }
    ::shutdown(c, SHUT_WR);
    ::close(c);
    return 0;
}

int tcp_send(const Addr& a) {
    int fd = listen_on(a);
    if (fd < 0) {
        return fail("bind");
    }
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
        return fail("accept");
    }
    std::vector<unsigned char> buf(k_chunk);
    std::uint64_t total = 0;
    for (;;) {
        ssize_t n = ::read(0, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail("read");
        }
        if (n == 0) {
            break;
        }
        if (!write_all(c, buf.data(), static_cast<std::size_t>(n))) {
            return fail("send");
        }
        total += static_cast<std::uint64_t>(n);
    }
    ::close(c);
    std::fprintf(stderr, "sent %llu bytes\n", static_cast<unsigned long long>(total));
    return 0;
}

int tcp_recv(const Addr& a) {
    int fd = listen_on(a);
    if (fd < 0) {
        return fail("bind");
    }
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
        return fail("accept");
    }
    std::vector<unsigned char> buf(k_chunk);
    std::uint64_t total = 0;
    for (;;) {
        ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail("recv");
        }
        if (n == 0) {
            break;
        }
        if (!write_all(1, buf.data(), static_cast<std::size_t>(n))) {
            return fail("write");
        }
        total += static_cast<std::uint64_t>(n);
    }
    ::close(c);
    std::fprintf(stderr, "received %llu bytes\n", static_cast<unsigned long long>(total));
    return 0;
}

// A blocking connect bounded by timeout_ms; the socket is left non-blocking. -1: errno set.
int connect_to(const Addr& a, int timeout_ms) {
    int fd = ::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) {
        if (errno != EINPROGRESS) {
            return -1;
        }
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int err = 0;
        socklen_t el = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            errno = err;
            return -1;
        }
    }
    return fd;
}

int tcp_cat(const Addr& a, int idle_ms) {
    int fd = connect_to(a, idle_ms);
    if (fd < 0) {
        return fail("connect");
    }
    std::vector<unsigned char> out(k_chunk), in(k_chunk);
    std::size_t out_begin = 0, out_end = 0;
    bool stdin_eof = false;
    std::uint64_t sent = 0, received = 0;
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {-1, POLLIN, 0}};  // stdin only when its last read is sent
        if (out_begin < out_end) {
            p[0].events |= POLLOUT;
        } else if (!stdin_eof) {
            p[1].fd = 0;
        }
        int n = ::poll(p, 2, idle_ms);
        if (n == 0) {
            std::fprintf(stderr, "timeout after %llu bytes\n", static_cast<unsigned long long>(received));
            return 1;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail("poll");
        }
        if (p[1].revents != 0) {
            ssize_t r = ::read(0, out.data(), out.size());
            if (r <= 0) {
                stdin_eof = true;
                ::shutdown(fd, SHUT_WR);
            } else {
                out_begin = 0;
                out_end = static_cast<std::size_t>(r);
            }
        }
        if ((p[0].revents & POLLOUT) != 0 && out_begin < out_end) {
            ssize_t w = ::send(fd, out.data() + out_begin, out_end - out_begin, MSG_NOSIGNAL);
            if (w > 0) {
                out_begin += static_cast<std::size_t>(w);
                sent += static_cast<std::uint64_t>(w);
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                if (errno == ECONNRESET) {
                    std::fprintf(stderr, "reset after %llu bytes\n",
                                 static_cast<unsigned long long>(received));
                    return 2;
                }
                return fail("send");
            }
        }
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            ssize_t r = ::recv(fd, in.data(), in.size(), 0);
            if (r == 0) {
                break;
            }
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    continue;
                }
                if (errno == ECONNRESET) {
                    std::fprintf(stderr, "reset after %llu bytes\n",
                                 static_cast<unsigned long long>(received));
                    return 2;
                }
                return fail("recv");
            }
            if (!write_all(1, in.data(), static_cast<std::size_t>(r))) {
                return fail("write");
            }
            received += static_cast<std::uint64_t>(r);
        }
    }
    std::fprintf(stderr, "sent %llu received %llu bytes\n", static_cast<unsigned long long>(sent),
                 static_cast<unsigned long long>(received));
    return 0;
}

int tcp_parallel(const Addr& a, int count, std::uint64_t bytes, std::uint64_t seed) {
    struct Conn {
        int fd = -1;
        bool connected = false, done = false;
        std::uint64_t got = 0;
        Pattern pat;
        explicit Conn(std::uint64_t s) : pat(s) {}
    };
    std::vector<Conn> conns;
    conns.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        conns.emplace_back(seed);
        Conn& c = conns.back();
        c.fd = ::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0 && errno != EINPROGRESS) {
            return fail("connect");
        }
    }
    std::vector<unsigned char> buf(k_chunk);
    int ok = 0, failed = 0;
    std::vector<pollfd> p;
    while (ok + failed < count) {
        p.clear();
        for (auto& c : conns) {
            p.push_back({c.done ? -1 : c.fd, static_cast<short>(c.connected ? POLLIN : POLLOUT), 0});
        }
        int n = ::poll(p.data(), p.size(), k_idle_ms);
        if (n == 0) {
            break;
        }
        for (std::size_t i = 0; i < conns.size(); ++i) {
            Conn& c = conns[i];
            if (c.done || p[i].revents == 0) {
                continue;
            }
            auto finish_one = [&](bool good, const char* why) {
                c.done = true;
                ::close(c.fd);
                if (good) {
                    ++ok;
                } else {
                    ++failed;
                    std::fprintf(stderr, "connection %zu: %s after %llu bytes\n", i, why,
                                 static_cast<unsigned long long>(c.got));
                }
            };
            if (!c.connected) {
                int err = 0;
                socklen_t el = sizeof err;
                ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err != 0) {
                    finish_one(false, std::strerror(err));
                } else {
                    c.connected = true;
                }
                continue;
            }
            ssize_t r = ::recv(c.fd, buf.data(), buf.size(), 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                continue;
            }
            if (r < 0) {
                finish_one(false, std::strerror(errno));
            } else if (r == 0) {
                finish_one(c.got == bytes, "early end");
            } else if (c.got + static_cast<std::uint64_t>(r) > bytes) {
                finish_one(false, "too many bytes");
            } else if (!c.pat.check(buf.data(), static_cast<std::size_t>(r))) {
                finish_one(false, "wrong bytes");
            } else {
                c.got += static_cast<std::uint64_t>(r);
            }
        }
    }
    int stuck = count - ok - failed;
    std::printf("ok %d failed %d stuck %d %lldms\n", ok, failed, stuck,
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - g_start).count()));
    return ok == count ? 0 : (stuck > 0 ? 1 : 3);
}

int tcp_stall(const Addr& a, int stall_ms, std::uint64_t bytes, std::uint64_t seed) {
    int fd = connect_to(a, k_idle_ms);
    if (fd < 0) {
        return fail("connect");
    }
    std::printf("connected\n");
    ::usleep(static_cast<useconds_t>(stall_ms) * 1000);
    std::printf("reading\n");
    Pattern pat(seed);
    std::vector<unsigned char> buf(k_chunk);
    std::uint64_t got = 0;
    while (got < bytes) {
        if (wait_readable(fd, k_idle_ms) <= 0) {
            std::printf("timeout after %llu bytes\n", static_cast<unsigned long long>(got));
            return 1;
        }
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(bytes - got, buf.size()));
        ssize_t r = ::recv(fd, buf.data(), want, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (r <= 0) {
            std::printf("%s after %llu bytes\n", r == 0 ? "early end" : std::strerror(errno),
                        static_cast<unsigned long long>(got));
            return r < 0 && errno == ECONNRESET ? 2 : 3;
        }
        if (!pat.check(buf.data(), static_cast<std::size_t>(r))) {
            std::printf("wrong bytes after %llu bytes\n", static_cast<unsigned long long>(got));
            return 3;
        }
        got += static_cast<std::uint64_t>(r);
    }
    return finish("ok", 0);
}


// ---- faults: floods and DNS (tests/integration/netd_faults_netns.cpp) ----

volatile sig_atomic_t g_stop = 0;
void on_stop(int) {
    g_stop = 1;
}

std::int64_t elapsed_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - g_start).count();
}

// One CHUNK per line on stdin: read it from a tcp-source (or, with `echo`, send it to a
// tcp-echo and read it back), checking the pattern; "chunk K ok MSms" after each.
int tcp_chunks(const Addr& a, std::uint64_t chunk, std::uint64_t seed, bool echo) {
    int fd = connect_to(a, k_idle_ms);
    if (fd < 0) {
        return fail("connect");
    }
    std::printf("connected\n");
    Pattern in_pat(seed), out_pat(seed);
    std::vector<unsigned char> in(k_chunk), out(k_chunk);
    for (int k = 1;; ++k) {
        char line[64];
        if (std::fgets(line, sizeof line, stdin) == nullptr) {
            break;
        }
        auto t0 = Clock::now();
        std::uint64_t got = 0, sent = 0;
        std::size_t out_begin = 0, out_end = 0;
        while (got < chunk) {
            pollfd p{fd, POLLIN, 0};
            if (echo && (sent < chunk || out_begin < out_end)) {
                p.events |= POLLOUT;
            }
            int n = ::poll(&p, 1, k_idle_ms);
            if (n == 0) {
                std::printf("timeout in chunk %d after %llu bytes\n", k, static_cast<unsigned long long>(got));
                return 1;
            }
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return fail("poll");
            }
            if ((p.revents & POLLOUT) != 0) {
                if (out_begin == out_end) {
                    std::size_t m = static_cast<std::size_t>(std::min<std::uint64_t>(chunk - sent, out.size()));
                    out_pat.next(out.data(), m);
                    out_begin = 0;
                    out_end = m;
                    sent += m;
                }
                ssize_t w = ::send(fd, out.data() + out_begin, out_end - out_begin, MSG_NOSIGNAL);
                if (w > 0) {
                    out_begin += static_cast<std::size_t>(w);
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    std::printf("%s in chunk %d (send)\n", std::strerror(errno), k);
                    return errno == ECONNRESET || errno == EPIPE ? 2 : 3;
                }
            }
            if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk - got, in.size()));
                ssize_t r = ::recv(fd, in.data(), want, 0);
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                    continue;
                }
                if (r <= 0) {
                    std::printf("%s in chunk %d after %llu bytes\n", r == 0 ? "early end" : std::strerror(errno),
                                k, static_cast<unsigned long long>(got));
                    return r < 0 && errno == ECONNRESET ? 2 : 3;
                }
                if (!in_pat.check(in.data(), static_cast<std::size_t>(r))) {
                    std::printf("wrong bytes in chunk %d after %llu bytes\n", k,
                                static_cast<unsigned long long>(got));
                    return 3;
                }
                got += static_cast<std::uint64_t>(r);
            }
        }
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
        std::printf("chunk %d ok %lldms\n", k, static_cast<long long>(ms));
    }
    ::close(fd);
    return 0;
}

std::uint32_t sum16(const unsigned char* p, std::size_t n, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2) {
        sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    }
    if (n & 1) {
        sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    }
    return sum;
}

// A bare TCP segment (20-byte header, no options) from src:sport to dst:dport, checksummed.
void tcp_segment(unsigned char* seg, in_addr src, in_addr dst, std::uint16_t sport, std::uint16_t dport,
                 std::uint32_t seq, std::uint8_t flags) {
    std::memset(seg, 0, 20);
    seg[0] = static_cast<unsigned char>(sport >> 8);
    seg[1] = static_cast<unsigned char>(sport);
    seg[2] = static_cast<unsigned char>(dport >> 8);
    seg[3] = static_cast<unsigned char>(dport);
    for (int i = 0; i < 4; ++i) {
        seg[4 + i] = static_cast<unsigned char>(seq >> (24 - 8 * i));
    }
    seg[12] = 5 << 4;
    seg[13] = flags;
    seg[14] = 0xff;
    seg[15] = 0xff;
    unsigned char pseudo[12];
    std::memcpy(pseudo, &src, 4);
    std::memcpy(pseudo + 4, &dst, 4);
    pseudo[8] = 0;
    pseudo[9] = IPPROTO_TCP;
    pseudo[10] = 0;
    pseudo[11] = 20;
    std::uint32_t sum = sum16(seg, 20, sum16(pseudo, sizeof pseudo));
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    auto c = static_cast<std::uint16_t>(~sum);
    seg[16] = static_cast<unsigned char>(c >> 8);
    seg[17] = static_cast<unsigned char>(c);
}

// A SYN flood through a raw socket (root): RATE SYNs a second to ADDR:PORT, from source ports
// FIRST..FIRST+PORTS-1 in turn, until SIGTERM; then a RST for every port (the flooder gives
// up, so whatever it holds in netd is freed). The guest's kernel has no socket on these ports,
// so nothing answers a SYN-ACK: a flow netd opened stays half-open. Prints "flooding" on
// stderr once sending, then "sent N resets R synacks S" and exits 0.
int syn_flood(const Addr& a, int first_port, int ports, int rate) {
    if (a.family != AF_INET || ports <= 0 || rate <= 0) {
        std::fprintf(stderr, "net_probe: syn-flood takes an IPv4 address, ports > 0, rate > 0\n");
        return 3;
    }
    const auto& dst = reinterpret_cast<const sockaddr_in&>(a.ss);
    // The source address the kernel uses toward ADDR.
    int u = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in local{};
    socklen_t ll = sizeof local;
    if (::connect(u, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0 ||
        ::getsockname(u, reinterpret_cast<sockaddr*>(&local), &ll) != 0) {
        return fail("source address");
    }
    ::close(u);
    int fd = ::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_TCP);
    if (fd < 0) {
        return fail("raw socket");
    }
    int big = 8 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    ::signal(SIGTERM, on_stop);
    ::signal(SIGINT, on_stop);
    auto isn = [](int port) { return static_cast<std::uint32_t>(port) * 7919u; };
    auto dport = ntohs(dst.sin_port);
    std::uint64_t sent = 0, resets = 0, synacks = 0;
    auto send_one = [&](int port, std::uint32_t seq, std::uint8_t flags) {
        unsigned char seg[20];
        tcp_segment(seg, local.sin_addr, dst.sin_addr, static_cast<std::uint16_t>(port), dport, seq, flags);
        sockaddr_in to = dst;
        to.sin_port = 0;
        for (int tries = 0; tries < 100; ++tries) {
            if (::sendto(fd, seg, sizeof seg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == sizeof seg) {
                return true;
            }
            if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
                return false;
            }
            ::usleep(1000);
        }
        return false;
    };
    auto drain = [&]() {
        unsigned char buf[256];
        for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                return;
            }
            std::size_t off = static_cast<std::size_t>((buf[0] & 0x0f) * 4);
            if (static_cast<std::size_t>(n) < off + 20 || std::memcmp(buf + 12, &dst.sin_addr, 4) != 0) {
                continue;
            }
            int sport = buf[off] << 8 | buf[off + 1];
            int to_port = buf[off + 2] << 8 | buf[off + 3];
            if (sport != dport || to_port < first_port || to_port >= first_port + ports) {
                continue;
            }
            std::uint8_t flags = buf[off + 13];
            if ((flags & 0x04) != 0) {
                ++resets;
            } else if ((flags & 0x12) == 0x12) {
                ++synacks;
            }
        }
    };
    std::fprintf(stderr, "flooding\n");
    const int per_tick = std::max(1, rate / 100);  // a burst every 10 ms
    int next = 0;
    while (!g_stop) {
        for (int i = 0; i < per_tick && !g_stop; ++i) {
            int port = first_port + next;
            next = (next + 1) % ports;
            if (!send_one(port, isn(port), 0x02)) {
                return fail("sendto");
            }
            ++sent;
        }
        drain();
        ::usleep(10000);
    }
    for (int i = 0; i < ports; ++i) {
        send_one(first_port + i, isn(first_port + i) + 1, 0x04);
    }
    ::usleep(200000);
    drain();
    std::printf("sent %llu resets %llu synacks %llu %lldms\n", static_cast<unsigned long long>(sent),
                static_cast<unsigned long long>(resets), static_cast<unsigned long long>(synacks),
                static_cast<long long>(elapsed_ms()));
    return 0;
}

// ---- DNS ----

constexpr int k_rcodes = 16;

// A query for NAME (labels split at dots, written as given: no length check, so the tests
// can write names a resolver must refuse), type QTYPE, class IN, RD set.
std::vector<unsigned char> dns_query_bytes(std::uint16_t id, const std::string& name, std::uint16_t qtype) {
    std::vector<unsigned char> q = {static_cast<unsigned char>(id >> 8), static_cast<unsigned char>(id), 0x01, 0,
                                    0, 1, 0, 0, 0, 0, 0, 0};
    std::size_t start = 0;
    while (start <= name.size()) {
        auto dot = name.find('.', start);
        auto label = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (!label.empty()) {
            q.push_back(static_cast<unsigned char>(label.size()));
            q.insert(q.end(), label.begin(), label.end());
        }
        if (dot == std::string::npos) {
            break;
        }
        start = dot + 1;
    }
    q.push_back(0);
    q.push_back(static_cast<unsigned char>(qtype >> 8));
    q.push_back(static_cast<unsigned char>(qtype));
    q.push_back(0);
    q.push_back(1);
    return q;
}

struct DnsAnswer {
    int rcode = -1;
    int id = -1, qd = 0, an = 0;
    std::string first_addr;  // of the first A/AAAA record
};

// Skips a (possibly compressed) name; the offset after it, or 0 when it does not fit.
std::size_t skip_name(const unsigned char* m, std::size_t n, std::size_t pos) {
    while (pos < n) {
        unsigned len = m[pos];
        if (len == 0) {
            return pos + 1;
        }
        if ((len & 0xc0) == 0xc0) {
            return pos + 2 <= n ? pos + 2 : 0;
        }
        pos += 1 + len;
    }
    return 0;
}

DnsAnswer read_answer(const unsigned char* m, std::size_t n) {
    DnsAnswer a;
    if (n < 12) {
        return a;
    }
    a.id = m[0] << 8 | m[1];
    a.rcode = m[3] & 0x0f;
    a.qd = m[4] << 8 | m[5];
    a.an = m[6] << 8 | m[7];
    std::size_t pos = 12;
    for (int i = 0; i < a.qd && pos != 0; ++i) {
        pos = skip_name(m, n, pos);
        pos = pos != 0 && pos + 4 <= n ? pos + 4 : 0;
    }
    for (int i = 0; i < a.an && pos != 0 && a.first_addr.empty(); ++i) {
        pos = skip_name(m, n, pos);
        if (pos == 0 || pos + 10 > n) {
            break;
        }
        int type = m[pos] << 8 | m[pos + 1];
        std::size_t rdlen = static_cast<std::size_t>(m[pos + 8] << 8 | m[pos + 9]);
        pos += 10;
        if (pos + rdlen > n) {
            break;
        }
        char text[INET6_ADDRSTRLEN] = {};
        if (type == 1 && rdlen == 4) {
            ::inet_ntop(AF_INET, m + pos, text, sizeof text);
        } else if (type == 28 && rdlen == 16) {
            ::inet_ntop(AF_INET6, m + pos, text, sizeof text);
        }
        a.first_addr = text;
        pos += rdlen;
    }
    return a;
}

// Sends `query` to ADDR (port 53 unless given) and waits for one answer; prints
// "rcode R id I qd Q an A [ADDR] MSms" (0) or "timeout MSms" (1).
int dns_once(const Addr& a, const std::vector<unsigned char>& query, int timeout_ms) {
    int fd = ::socket(a.family, SOCK_DGRAM, 0);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) {
        return fail("connect");
    }
    if (::send(fd, query.data(), query.size(), 0) < 0) {
        return fail("send");
    }
    if (wait_readable(fd, timeout_ms) <= 0) {
        return finish("timeout", 1);
    }
    unsigned char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
        return fail("recv");
    }
    auto ans = read_answer(buf, static_cast<std::size_t>(n));
    char line[160];
    std::snprintf(line, sizeof line, "rcode %d id %d qd %d an %d%s%s", ans.rcode, ans.id, ans.qd, ans.an,
                  ans.first_addr.empty() ? "" : " ", ans.first_addr.c_str());
    return finish(line, 0);
}

bool from_hex(const std::string& hex, std::vector<unsigned char>& out) {
    if (hex.size() % 2 != 0) {
        return false;
    }
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out.push_back(static_cast<unsigned char>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    }
    return true;
}

// COUNT queries for NAME (type A, IDs 0..COUNT-1) at RATE a second, answers read as they come,
// then up to WAIT_MS (3 000) for the last ones. Prints "flooding" on stderr, then
// "sent N answered M noerror A nxdomain X servfail S refused R formerr F other O span_ms T"
// (T: from the first query sent to the last); exits 0 when every query was answered once.
int dns_flood(const Addr& a, const std::string& name, int count, int rate, int wait_ms) {
    int fd = ::socket(a.family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0) {
        return fail("connect");
    }
    std::vector<unsigned char> seen(static_cast<std::size_t>(count), 0);
    std::uint64_t by_rcode[k_rcodes] = {};
    int sent = 0, answered = 0, duplicates = 0;
    auto drain = [&]() {
        unsigned char buf[1024];
        for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                return;
            }
            auto ans = read_answer(buf, static_cast<std::size_t>(n));
            if (ans.id < 0 || ans.id >= count) {
                continue;
            }
            if (seen[static_cast<std::size_t>(ans.id)] != 0) {
                ++duplicates;
                continue;
            }
            seen[static_cast<std::size_t>(ans.id)] = 1;
            ++answered;
            ++by_rcode[ans.rcode & 0x0f];
        }
    };
    std::fprintf(stderr, "flooding\n");
    auto t0 = Clock::now();
    auto last_sent = t0;
    const auto gap = std::chrono::microseconds(1000000 / std::max(rate, 1));
    for (int i = 0; i < count; ++i) {
        auto due = t0 + gap * i;
        while (Clock::now() < due) {
            drain();
            pollfd p{fd, POLLIN, 0};
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()).count();
            ::poll(&p, 1, static_cast<int>(std::max<long long>(left, 0)));
        }
        auto q = dns_query_bytes(static_cast<std::uint16_t>(i), name, 1);
        if (::send(fd, q.data(), q.size(), 0) < 0) {
            return fail("send");
        }
        last_sent = Clock::now();
        ++sent;
        drain();
    }
    auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
    while (answered < sent && Clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, 100);
        drain();
    }
    auto span = std::chrono::duration_cast<std::chrono::milliseconds>(last_sent - t0).count();
    std::uint64_t other = 0;
    for (int r = 0; r < k_rcodes; ++r) {
        if (r != 0 && r != 1 && r != 2 && r != 3 && r != 5) {
            other += by_rcode[r];
        }
    }
    std::printf("sent %d answered %d noerror %llu nxdomain %llu servfail %llu refused %llu formerr %llu other %llu "
                "duplicates %d span_ms %lld\n",
                sent, answered, static_cast<unsigned long long>(by_rcode[0]),
                static_cast<unsigned long long>(by_rcode[3]), static_cast<unsigned long long>(by_rcode[2]),
                static_cast<unsigned long long>(by_rcode[5]), static_cast<unsigned long long>(by_rcode[1]),
                static_cast<unsigned long long>(other), duplicates, static_cast<long long>(span));
    return answered == sent && duplicates == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    g_start = Clock::now();
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: net_probe MODE ADDR [PORT] [ARGS] (modes: see the top of net_probe.cpp)\n");
        return 3;
    }
    std::string mode = argv[1];
    auto arg = [&](int i) { return i < argc ? std::strtoull(argv[i], nullptr, 10) : 0ull; };
    if (mode == "gen") {
        return gen(arg(2), arg(3));
    }
    bool dns = mode.rfind("dns", 0) == 0;  // the DNS modes take a name or bytes, port 53
    bool has_port = mode != "icmp" && !dns;
    int port = dns ? 53 : has_port && argc > 3 ? std::atoi(argv[3]) : 0;
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
    if (mode == "tcp-source") {
        return serve_forked(a, [&](int c) { return source_one(c, arg(4), arg(5)); });
    }
    if (mode == "tcp-reset") {
        return serve_forked(a, [&](int c) { return reset_one(c, arg(4), static_cast<int>(arg(5))); });
    }
    if (mode == "tcp-echo") {
        return serve_forked(a, echo_one);
    }
    if (mode == "tcp-send") {
        return tcp_send(a);
    }
    if (mode == "tcp-recv") {
        return tcp_recv(a);
    }
    if (mode == "tcp-cat") {
        return tcp_cat(a, argc > 4 ? static_cast<int>(arg(4)) : k_idle_ms);
    }
    if (mode == "tcp-parallel") {
        return tcp_parallel(a, static_cast<int>(arg(4)), arg(5), arg(6));
    }
    if (mode == "tcp-stall") {
        return tcp_stall(a, static_cast<int>(arg(4)), arg(5), arg(6));
    }
    if (mode == "tcp-chunks") {
        return tcp_chunks(a, arg(4), arg(5), argc > 6 && std::string(argv[6]) == "echo");
    }
    if (mode == "syn-flood") {
        return syn_flood(a, static_cast<int>(arg(4)), static_cast<int>(arg(5)), static_cast<int>(arg(6)));
    }
    if (mode == "dns" && argc > 3) {
        auto qtype = static_cast<std::uint16_t>(argc > 5 ? arg(5) : 1);
        return dns_once(a, dns_query_bytes(static_cast<std::uint16_t>(::getpid()), argv[3], qtype),
                        argc > 4 ? static_cast<int>(arg(4)) : 3000);
    }
    if (mode == "dns-raw" && argc > 3) {
        std::vector<unsigned char> q;
        if (!from_hex(argv[3], q)) {
            std::fprintf(stderr, "net_probe: not hex: %s\n", argv[3]);
            return 3;
        }
        return dns_once(a, q, argc > 4 ? static_cast<int>(arg(4)) : 3000);
    }
    if (mode == "dns-flood" && argc > 5) {
        return dns_flood(a, argv[3], static_cast<int>(arg(4)), static_cast<int>(arg(5)),
                         argc > 6 ? static_cast<int>(arg(6)) : 3000);
    }
    std::fprintf(stderr, "net_probe: unknown mode %s\n", mode.c_str());
    return 3;
}
