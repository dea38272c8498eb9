#pragma once
// netd's watch over the host's own addresses, which the Filter closes to the guest
// (host_address): a NETLINK_ROUTE socket subscribed to the IPv4 and IPv6 address groups,
// opened at setup, before the privilege drop and the sandbox (which refuses new netlink
// sockets, but not reads and sends on this one; the groups need no privilege). The set is
// first read with a RTM_GETADDR dump over that socket, then follows every RTM_NEWADDR and
// RTM_DELADDR. When the kernel drops notifications (ENOBUFS: the socket's buffer was full)
// the whole set is dumped again over the same socket (getifaddrs() would open a new one).
// The messages and the set's rules are netlink_addr.hpp's.

#include "sbx/net/netlink_addr.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sbx::net {

class Filter;

class HostAddressWatch {
public:
    // Opens and subscribes the socket and reads the whole set into `filter` (bounded:
    // k_first_dump_ms). Throws sbx::Error when the socket cannot be opened or the kernel does
    // not list the addresses.
    explicit HostAddressWatch(Filter& filter);
    ~HostAddressWatch();
    HostAddressWatch(const HostAddressWatch&) = delete;
    HostAddressWatch& operator=(const HostAddressWatch&) = delete;

    int fd() const noexcept { return m_fd; }
    // Reads what the socket holds (non-blocking, at most k_reads_per_call datagrams) and
    // applies it; a lost notification starts a dump at once. Changes go to stderr.
    void process() noexcept;
    // The housekeeping tick: retries a dump that could not be sent or that the kernel refused.
    void tick() noexcept;
    // Lists the whole set again, as a lost notification does; process() reads the answer.
    void relist() noexcept;
    bool listing() const noexcept { return m_set.dumping(); }
    // The (interface, address) pairs followed.
    std::size_t size() const noexcept { return m_set.size(); }

    static constexpr int k_first_dump_ms = 5000;
    static constexpr int k_reads_per_call = 64;                 // then the guest's frames get their turn
    static constexpr std::size_t k_receive_buffer = 64 * 1024;  // a datagram: 32 KiB at most
    static constexpr int k_socket_buffer = 1 << 20;             // asked of the kernel

private:
    bool read_one() noexcept;  // false: nothing more to read now
    void request_dump() noexcept;
    void report(HostAddresses::Change c, const IpAddr& a) noexcept;

    int m_fd = -1;
    HostAddresses m_set;
    std::uint32_t m_seq = 0;
    bool m_retry = false;       // a dump is due at the next tick
    bool m_quiet_dump = true;   // the first dump: its additions are not logged one by one
    std::size_t m_refused = 0;  // addresses over k_max_addresses, for the warning
    std::size_t m_malformed = 0;
    std::vector<AddressMessage> m_messages;
    std::array<std::byte, k_receive_buffer> m_buf{};
};

}  // namespace sbx::net
