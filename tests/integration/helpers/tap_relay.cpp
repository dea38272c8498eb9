// tap_relay: stands where QEMU stands in front of netd, for the namespace tests and benchmarks.
//
//   tap_relay --tap TAP --socket NETD_SOCKET [--inject PATH]
//
// Attaches to the tap device TAP (created beforehand, e.g. `ip tuntap add dev tap0 mode tap`,
// in the "guest" network namespace the relay runs in), connects to netd's stream socket, and
// copies frames both ways with QEMU's -netdev stream framing (4-byte big-endian length +
// Ethernet frame). With --inject, it also binds a unix datagram socket at PATH: each datagram
// is written raw into the netd stream between two frames (tests inject malformed frames or
// corrupt length prefixes that way).
//
// Exit status: 0 on SIGTERM/SIGINT; 3 when netd closes the connection ("relay: netd closed
// the connection" on stderr); 1 on setup errors.

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::size_t k_max_frame = 65535 + 14;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "relay: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

bool write_all(int fd, const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                pollfd pfd{fd, POLLOUT, 0};
                ::poll(&pfd, 1, 1000);
                continue;
            }
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

sockaddr_un unix_addr(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) {
        errno = ENAMETOOLONG;
        die("socket path " + path);
    }
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

}  // namespace

int main(int argc, char** argv) {
    std::string tap, sock, inject;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--tap") {
            tap = argv[i + 1];
        } else if (k == "--socket") {
            sock = argv[i + 1];
        } else if (k == "--inject") {
            inject = argv[i + 1];
        }
    }
    if (tap.empty() || sock.empty()) {
        std::fprintf(stderr, "usage: tap_relay --tap TAP --socket NETD_SOCKET [--inject PATH]\n");
        return 1;
    }
    int tfd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tfd < 0) {
        die("open /dev/net/tun");
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, tap.c_str(), IFNAMSIZ - 1);
    if (::ioctl(tfd, TUNSETIFF, &ifr) != 0) {
        die("TUNSETIFF " + tap);
    }
    int nfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto na = unix_addr(sock);
    if (::connect(nfd, reinterpret_cast<sockaddr*>(&na), sizeof na) != 0) {
        die("connect " + sock);
    }
    int size = 4 << 20;
    ::setsockopt(nfd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(nfd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    int ifd = -1;
    if (!inject.empty()) {
        ::unlink(inject.c_str());
        ifd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        auto ia = unix_addr(inject);
        if (::bind(ifd, reinterpret_cast<sockaddr*>(&ia), sizeof ia) != 0) {
            die("bind " + inject);
        }
        int big = 1 << 20;
        ::setsockopt(ifd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    ::sigprocmask(SIG_BLOCK, &mask, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    std::fprintf(stderr, "relay: %s <-> %s\n", tap.c_str(), sock.c_str());

    std::vector<unsigned char> frame(k_max_frame + 4);
    std::vector<unsigned char> in(4 << 20);
    std::size_t in_len = 0;
    std::vector<unsigned char> dgram(1 << 20);
    for (;;) {
        pollfd fds[4] = {{sfd, POLLIN, 0}, {tfd, POLLIN, 0}, {nfd, POLLIN, 0}, {ifd, POLLIN, 0}};
        int n = ::poll(fds, ifd >= 0 ? 4 : 3, -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("poll");
        }
        if (fds[0].revents) {
            return 0;
        }
        if (fds[1].revents & POLLIN) {
            ssize_t r = ::read(tfd, frame.data() + 4, k_max_frame);
            if (r > 0) {
                std::uint32_t len = htonl(static_cast<std::uint32_t>(r));
                std::memcpy(frame.data(), &len, 4);
                if (!write_all(nfd, frame.data(), static_cast<std::size_t>(r) + 4)) {
                    std::fprintf(stderr, "relay: netd closed the connection\n");
                    return 3;
                }
            }
        }
        if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = ::read(nfd, in.data() + in_len, in.size() - in_len);
            if (r <= 0) {
                std::fprintf(stderr, "relay: netd closed the connection\n");
                return 3;
            }
            in_len += static_cast<std::size_t>(r);
            std::size_t off = 0;
            while (in_len - off >= 4) {
                std::uint32_t len;
                std::memcpy(&len, in.data() + off, 4);
                len = ntohl(len);
                if (len == 0 || len > k_max_frame) {
                    std::fprintf(stderr, "relay: netd sent a bad length %u\n", len);
                    return 1;
                }
                if (in_len - off < 4 + len) {
                    break;
                }
                ssize_t w = ::write(tfd, in.data() + off + 4, len);
                (void)w;  // a full tap queue drops, like a NIC
                off += 4 + len;
            }
            std::memmove(in.data(), in.data() + off, in_len - off);
            in_len -= off;
        }
        if (ifd >= 0 && (fds[3].revents & POLLIN)) {
            ssize_t r = ::recv(ifd, dgram.data(), dgram.size(), 0);
            if (r > 0 && !write_all(nfd, dgram.data(), static_cast<std::size_t>(r))) {
                std::fprintf(stderr, "relay: netd closed the connection\n");
                return 3;
            }
        }
    }
}
