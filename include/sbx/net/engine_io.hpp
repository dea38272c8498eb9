#pragma once
// What netd's flow engines (tcp_engine.hpp, datagram_engine.hpp) are given by the runtime:
// the output queue toward the guest, and a place to report the connections the host opens
// into the guest (forwards), which the Filter must let the guest answer.

#include "sbx/net/flow_table.hpp"
#include "sbx/net/frame.hpp"
#include "sbx/net/policy.hpp"

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace sbx::net {

// Where an engine writes frames for the guest: the free tail of netd's output queue, which
// holds QEMU stream records ([4-byte big-endian length][frame]). The engine writes whole
// records into tail_space() and then calls advance() with the bytes it wrote; an empty or
// short tail is back-pressure (the bytes stay in the host socket until there is room).
class GuestQueue {
public:
    virtual MutBytes tail_space() noexcept = 0;
    virtual void advance(std::size_t bytes, std::size_t frames) noexcept = 0;

protected:
    ~GuestQueue() = default;
};

// Flows the host opened into the guest (an SSH connection, a [[forward]] peer). `key` is as
// the guest sends: src = the guest's address and port, dst = the host side as the guest sees
// it (10.0.2.2 or fec0::2 and the peer's port). host_opened() before the first frame toward
// the guest; host_closed() once the flow is gone (FIN both ways, RST, idle timeout), after
// which the guest's frames on that tuple are decided like any other.
class HostFlows {
public:
    virtual void host_opened(const FlowKey& key) noexcept = 0;
    virtual void host_closed(const FlowKey& key) noexcept = 0;

protected:
    ~HostFlows() = default;
};

// Milliseconds of CLOCK_MONOTONIC: the clock of the Filter, the engines and netd's timers.
std::uint64_t monotonic_ms() noexcept;

// The host socket address a guest destination means: the host alias (10.0.2.2, fec0::2) is
// the host's loopback (the Filter lets through only the ports `host_ports` names); any other
// address is itself.
struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t len = 0;
    bool v6 = false;
    const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
};
SocketAddress host_socket_address(const GuestNet& net, const IpAddr& dst, std::uint16_t port) noexcept;

}  // namespace sbx::net
