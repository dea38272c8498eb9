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
    std::fprintf(stderr, "net_probe: unknown mode %s\n", mode.c_str());
    return 3;
}
