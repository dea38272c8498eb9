// The watch over the host's addresses; see host_watch.hpp.

#include "sbx/net/host_watch.hpp"

#include "sbx/net/engine_io.hpp"
#include "sbx/net/filter.hpp"
#include "sbx/util/error.hpp"

#include <fmt/format.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sbx::net {

namespace {

constexpr std::size_t k_logged_refusals = 8;
constexpr std::size_t k_logged_malformed = 8;

}  // namespace

HostAddressWatch::HostAddressWatch(Filter& filter) : m_set(filter) {
    m_fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (m_fd < 0) {
        throw_errno("netd: cannot open a netlink socket to follow the host's addresses", errno);
    }
    // A larger buffer makes ENOBUFS (and a dump) rarer; the forced size needs CAP_NET_ADMIN,
    // which netd started as root has at this point.
    int size = k_socket_buffer;
    if (::setsockopt(m_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
        ::setsockopt(m_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if (::bind(m_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        int err = errno;
        ::close(m_fd);
        throw_errno("netd: cannot subscribe to the host's address changes (netlink bind)", err);
    }
    m_messages.reserve(256);
    // Subscribed first, then listed: a change made meanwhile arrives as a notification too.
    request_dump();
    const std::uint64_t deadline = monotonic_ms() + k_first_dump_ms;
    while (m_set.dumping() || m_retry) {
        std::uint64_t now = monotonic_ms();
        if (m_retry || now >= deadline) {
            ::close(m_fd);
            throw Error(fmt::format("netd: the kernel did not list the host's addresses within {} ms",
                                    k_first_dump_ms),
                        {"netd closes the host's own addresses to the guest and must know them; "
                         "see netd's stderr above for what the kernel answered"});
        }
        pollfd p{m_fd, POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(deadline - now));
        process();
    }
    m_quiet_dump = false;
}

HostAddressWatch::~HostAddressWatch() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

void HostAddressWatch::request_dump() noexcept {
    std::array<std::byte, 64> req{};
    std::uint32_t seq = ++m_seq;
    std::size_t n = write_address_dump_request(req, seq);
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    ssize_t sent = ::sendto(m_fd, req.data(), n, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
    if (sent != static_cast<ssize_t>(n)) {
        std::fprintf(stderr, "netd: cannot ask the kernel for the host's addresses: %s; retrying\n",
                     std::strerror(errno));
        m_set.lost();
        m_retry = true;
        return;
    }
    m_set.dump_started(seq);
}

void HostAddressWatch::report(HostAddresses::Change c, const IpAddr& a) noexcept {
    try {
        switch (c) {
            case HostAddresses::Change::none:
                break;
            case HostAddresses::Change::closed:
                if (!m_quiet_dump) {
                    std::fprintf(stderr, "netd: host address %s added: closed to the guest\n",
                                 a.to_string().c_str());
                }
                break;
            case HostAddresses::Change::reopened:
                std::fprintf(stderr,
                             "netd: host address %s removed: no longer the host's, the policy decides\n",
                             a.to_string().c_str());
                break;
            case HostAddresses::Change::full:
                if (++m_refused <= k_logged_refusals) {
                    std::fprintf(stderr,
                                 "netd: warning: the host has more than %zu addresses; %s is not closed to "
                                 "the guest\n",
                                 HostAddresses::k_max_addresses, a.to_string().c_str());
                }
                break;
            case HostAddresses::Change::dump_done:
                if (!m_quiet_dump) {
                    std::fprintf(stderr, "netd: host addresses listed again: %zu\n", m_set.size());
                }
                break;
            case HostAddresses::Change::dump_failed:
                m_retry = true;
                break;
        }
    } catch (...) {
        // to_string() could not allocate: the change itself is applied, only its line is lost
    }
}

bool HostAddressWatch::read_one() noexcept {
    sockaddr_nl from{};
    socklen_t from_len = sizeof from;
    ssize_t n = ::recvfrom(m_fd, m_buf.data(), m_buf.size(), MSG_DONTWAIT | MSG_TRUNC,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
        if (errno == EINTR) {
            return true;
        }
        if (errno == ENOBUFS) {
            // The kernel dropped notifications: whatever they said is re-read whole.
            std::fprintf(stderr, "netd: host address notifications were lost; listing them again\n");
            m_set.lost();
            return true;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            std::fprintf(stderr, "netd: reading host address changes: %s\n", std::strerror(errno));
        }
        return false;
    }
    if (static_cast<std::size_t>(n) > m_buf.size()) {
        m_set.lost();  // cut (MSG_TRUNC gave its real size): never happens with 64 KiB
        return true;
    }
    if (from.nl_pid != 0) {
        return true;  // not from the kernel (sending here needs CAP_NET_ADMIN): ignored
    }
    m_messages.clear();
    AddressParse r;
    try {
        r = parse_address_messages(Bytes(m_buf.data(), static_cast<std::size_t>(n)), m_messages);
    } catch (...) {
        m_set.lost();  // no memory for the messages: list them again later
        return true;
    }
    if (r.malformed > 0 && m_malformed < k_logged_malformed) {
        m_malformed += r.malformed;
        std::fprintf(stderr, "netd: %zu malformed netlink address messages skipped\n", r.malformed);
    }
    for (const AddressMessage& m : m_messages) {
        IpAddr changed;
        HostAddresses::Change c = HostAddresses::Change::none;
        try {
            c = m_set.apply(m, changed);
        } catch (...) {
            m_set.lost();
            continue;
        }
        if (c == HostAddresses::Change::dump_failed) {
            std::fprintf(stderr, "netd: the kernel refused to list the host's addresses: %s\n",
                         std::strerror(m.error));
        }
        report(c, changed);
    }
    return true;
}

void HostAddressWatch::process() noexcept {
    for (int i = 0; i < k_reads_per_call; ++i) {
        if (!read_one()) {
            break;
        }
    }
    if (m_set.want_dump() && !m_retry) {
        request_dump();
    }
}

void HostAddressWatch::relist() noexcept {
    m_set.lost();
    if (m_set.want_dump() && !m_retry) {
        request_dump();
    }
}

void HostAddressWatch::tick() noexcept {
    if (m_retry && !m_set.dumping()) {
        m_retry = false;
        request_dump();
    }
}

}  // namespace sbx::net
