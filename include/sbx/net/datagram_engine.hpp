#pragma once
// netd's datagram engine: UDP and ICMP echo in passt's model. Every UDP flow the guest opens
// (and the Filter allows) is one connected, non-blocking host socket; every ICMP echo flow
// one unprivileged ping socket; a UDP [[forward]] is one unconnected socket bound to
// 127.0.0.1:host_port whose peers become flows from 10.0.2.2. Replies are read straight into
// QEMU stream records in netd's output queue. The theory of operation and the limits are at
// the top of datagram_engine.cpp.
//
// Not thread-safe; driven from netd's one poll loop: poll fd() for POLLIN, then process();
// resume() once the output queue has room again; timers() when next_deadline() is due.

#include "sbx/net/engine_io.hpp"
#include "sbx/net/flow_table.hpp"
#include "sbx/net/frame.hpp"
#include "sbx/net/netd_config.hpp"
#include "sbx/net/policy.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace sbx::net {

struct DatagramEngineStats {
    std::uint64_t opened = 0;            // flows opened (guest datagrams, echo, forward peers)
    std::uint64_t table_full = 0;        // datagrams dropped because every flow slot was taken
    std::uint64_t socket_failed = 0;     // a flow's host socket could not be made or connected
    std::uint64_t send_errors = 0;       // send()/sendto() failed (buffer full, refused, too big)
    std::uint64_t host_errors = 0;       // errors the host reported on a socket (port unreachable, ...)
    std::uint64_t expired = 0;           // flows freed after their idle timeout
    std::uint64_t ping_unavailable = 0;  // echo requests dropped: no ping socket (ping_group_range)
    std::uint64_t oversize = 0;          // host datagrams dropped: larger than the guest's MTU allows
    std::uint64_t to_guest = 0;          // datagrams written to the guest
    std::uint64_t from_guest = 0;        // guest datagrams sent to the host
};

class DatagramEngine {
public:
    // Limits, stated once (datagram_engine.cpp uses these and nothing else).
    static constexpr Millis k_udp_idle_ms = 180'000;  // as passt: UDP flows idle this long are freed
    static constexpr Millis k_icmp_idle_ms = 60'000;  // echo flows
    static constexpr Millis k_scan_ms = 1000;         // how often timers() walks the flows
    static constexpr std::size_t k_max_datagrams_per_read = 32;  // per socket per turn (fairness)

    // `flows`: the fixed capacity (Limits::flows). `host_flows` may be nullptr. `hash_seed` 0
    // picks a random seed.
    DatagramEngine(const GuestNet& net, std::size_t flows, GuestQueue& out, HostFlows* host_flows,
                   std::uint64_t hash_seed = 0);
    ~DatagramEngine();
    DatagramEngine(const DatagramEngine&) = delete;
    DatagramEngine& operator=(const DatagramEngine&) = delete;

    // A UDP forward: binds 127.0.0.1:host_port; datagrams to it reach the guest's guest_port.
    // Throws sbx::Error naming the port when it cannot (typically: in use); TCP forwards are
    // not this engine's and throw too.
    void add_forward(const HostForward& forward);

    // The guest's MAC and the one it addresses netd by, as netd learns them from every guest
    // frame: the addresses of every frame the engine writes, a forward's included (until
    // then QEMU's default guest MAC and netd's).
    void set_macs(const MacAddr& guest, const MacAddr& ours) noexcept;

    // A UDP datagram or ICMP/ICMPv6 echo request from the guest that the Filter passed.
    // Returns false when it is not the engine's (other ICMP types, malformed); an allowed
    // datagram the engine cannot carry (table full, no socket) is dropped, counted, and true.
    bool guest_datagram(Bytes frame, const Packet& p, Millis now) noexcept;

    // The epoll descriptor holding every socket: readable when one has a datagram or error.
    int fd() const noexcept;
    // Reads the sockets' datagrams into the output queue (without blocking).
    void process(Millis now) noexcept;
    // Lets sockets that stopped for want of queue space (or after a full read turn) go on.
    void resume(Millis now) noexcept;
    // Idle timeouts.
    void timers(Millis now) noexcept;
    // 0 when a socket waits for resume(); else the next timer scan; nothing without flows.
    std::optional<Millis> next_deadline() const noexcept;

    std::size_t open_flows() const noexcept;
    std::size_t capacity() const noexcept;
    const DatagramEngineStats& stats() const noexcept;

    struct Impl;

private:
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sbx::net
