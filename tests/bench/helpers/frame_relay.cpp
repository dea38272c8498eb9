// frame_relay: the network benchmark's tap-to-socket relay. It stands where QEMU (or User Mode
// Linux) stands in front of a user-mode network stack, so that every socket-attached backend is
// measured through the very same program.
//
//   frame_relay --tap TAP --socket PATH [--framing stream|seqpacket]
//
//   stream     (default) QEMU's -netdev stream framing on a SOCK_STREAM unix socket: a 4-byte
//              big-endian length, then the Ethernet frame. `sbx _netd` and `passt` speak it.
//   seqpacket  one Ethernet frame per message on a SOCK_SEQPACKET unix socket, no length: the
//              BESS transport of User Mode Linux, which `slirp4netns --target-type=bess` serves.
//
// Theory of operation: one poll() over a signalfd, the tap and the socket. Per turn, up to
// k_batch frames are read from the (non-blocking) tap and written to the socket (blocking: the
// backend's receive queue pushes back, as it does on QEMU), and the socket is drained: one bulk
// read of up to k_in_buffer bytes in stream mode, up to k_batch messages in seqpacket mode.
// Frames toward the guest are written to the tap; a full tap queue drops, like a NIC.
// tests/integration/helpers/tap_relay.cpp is the same relay for stream framing only (one tap
// frame per turn, plus frame injection for the tests); the benchmark uses this one for all.
//
// Exit status: 0 on SIGTERM/SIGINT; 3 when the backend closes the connection; 1 on setup errors.

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

constexpr std::size_t k_max_frame = 65535 + 14;  // an MTU 65521 frame and its Ethernet header
constexpr std::size_t k_in_buffer = 4u << 20;    // stream mode: bulk reads up to 4 MiB
constexpr int k_batch = 64;                      // frames per direction per turn
constexpr int k_socket_buffer = 4 << 20;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "frame_relay: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

int closed() {
    std::fprintf(stderr, "frame_relay: the backend closed the connection\n");
    return 3;
}

bool write_all(int fd, const unsigned char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
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

}  // namespace

int main(int argc, char** argv) {
    std::string tap, sock, framing = "stream";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--tap") {
            tap = argv[i + 1];
        } else if (k == "--socket") {
            sock = argv[i + 1];
        } else if (k == "--framing") {
            framing = argv[i + 1];
        }
    }
    if (tap.empty() || sock.empty() || (framing != "stream" && framing != "seqpacket")) {
        std::fprintf(stderr, "usage: frame_relay --tap TAP --socket PATH [--framing stream|seqpacket]\n");
        return 1;
    }
    const bool seqpacket = framing == "seqpacket";

    int tfd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (tfd < 0) {
        die("open /dev/net/tun");
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, tap.c_str(), IFNAMSIZ - 1);
    if (::ioctl(tfd, TUNSETIFF, &ifr) != 0) {
        die("TUNSETIFF " + tap);
    }
    int nfd = ::socket(AF_UNIX, (seqpacket ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (sock.size() >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        die("socket path " + sock);
    }
    std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
    if (::connect(nfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        die("connect " + sock);
    }
    int size = k_socket_buffer;
    ::setsockopt(nfd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(nfd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    ::sigprocmask(SIG_BLOCK, &mask, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
    std::fprintf(stderr, "frame_relay: %s <-> %s (%s)\n", tap.c_str(), sock.c_str(), framing.c_str());

    std::vector<unsigned char> frame(k_max_frame + 4);
    std::vector<unsigned char> in(k_in_buffer);
    std::size_t in_len = 0;
    for (;;) {
        pollfd fds[3] = {{sfd, POLLIN, 0}, {tfd, POLLIN, 0}, {nfd, POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("poll");
        }
        if (fds[0].revents) {
            return 0;
        }
        if (fds[1].revents & POLLIN) {
            for (int i = 0; i < k_batch; ++i) {
                ssize_t r = ::read(tfd, frame.data() + 4, k_max_frame);
                if (r <= 0) {
                    break;  // EAGAIN: the tap is drained
                }
                auto n = static_cast<std::size_t>(r);
                bool ok;
                if (seqpacket) {
                    ok = ::send(nfd, frame.data() + 4, n, 0) == r;
                } else {
                    std::uint32_t len = htonl(static_cast<std::uint32_t>(n));
                    std::memcpy(frame.data(), &len, 4);
                    ok = write_all(nfd, frame.data(), n + 4);
                }
                if (!ok) {
                    return closed();
                }
            }
        }
        if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (seqpacket) {
                for (int i = 0; i < k_batch; ++i) {
                    ssize_t r = ::recv(nfd, in.data(), k_max_frame, MSG_DONTWAIT);
                    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                        return closed();
                    }
                    if (r < 0) {
                        break;
                    }
                    ssize_t w = ::write(tfd, in.data(), static_cast<std::size_t>(r));
                    (void)w;  // a full tap queue drops, like a NIC
                }
                continue;
            }
            ssize_t r = ::read(nfd, in.data() + in_len, in.size() - in_len);
            if (r <= 0) {
                return closed();
            }
            in_len += static_cast<std::size_t>(r);
            std::size_t off = 0;
            while (in_len - off >= 4) {
                std::uint32_t len;
                std::memcpy(&len, in.data() + off, 4);
                len = ntohl(len);
                if (len == 0 || len > k_max_frame) {
                    std::fprintf(stderr, "frame_relay: the backend sent a bad length %u\n", len);
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
    }
}
