#pragma once
// netd's TCP flow engine: every TCP connection the guest opens (and the Filter allows) becomes
// one non-blocking host socket, spliced to the guest without a TCP stack of netd's own. The
// model is passt's: the host kernel's socket buffers are the only buffers, so a connection
// costs a descriptor and one fixed-size table entry, nothing per byte. The theory of
// operation, the states and the timers are described at the top of tcp_engine.cpp.
//
// Host -> guest connections (the SSH port, TCP [[forward]]s) are the engine's too: it
// listens on 127.0.0.1 and opens each accepted connection into the guest itself (a SYN from
// 10.0.2.2:<the host client's port>), on the same data path. A segment for a 5-tuple the
// engine does not hold, other than a guest SYN, is not the engine's (guest_segment() returns
// false).
//
// A flow can be terminated instead of spliced: with a StreamHook set, the hook decides per
// new connection, and a terminated flow's bytes go to an in-process handler over a socketpair
// (stream_hook.hpp) on the same data path.
//
// Not thread-safe; driven from netd's one poll loop: guest_segment() for each guest segment
// and flush_acks() after each batch of them; poll fd() for POLLIN, then process(); resume()
// once the output queue has room again; timers() when next_deadline() is due.

#include "sbx/net/engine_io.hpp"
#include "sbx/net/flow_table.hpp"
#include "sbx/net/frame.hpp"
#include "sbx/net/netd_config.hpp"
#include "sbx/net/policy.hpp"
#include "sbx/net/stream_hook.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace sbx::net {

struct TcpEngineStats {
    std::uint64_t opened = 0;          // host connections completed
    std::uint64_t connect_failed = 0;  // refused, unreachable, timed out: the guest got a RST
    std::uint64_t table_full = 0;      // SYNs refused because every flow slot was taken
    std::uint64_t guest_resets = 0;    // flows the guest reset
    std::uint64_t host_resets = 0;     // flows the host side reset or failed (RST to the guest)
    std::uint64_t timeouts = 0;        // flows reset because the guest stopped acknowledging
    std::uint64_t retransmits = 0;     // rewinds (timer or three duplicate ACKs)
    std::uint64_t out_of_window = 0;   // guest segments ignored (not at the next expected byte)
    std::uint64_t forwarded = 0;       // host connections accepted on a forward and opened into the guest
    std::uint64_t forward_refused = 0;  // ... closed at once: table full, or the guest never answered
    std::uint64_t terminated = 0;       // flows handed to the stream hook's handler
    std::uint64_t spliced_later = 0;    // ... of which the handler passed on to a host socket
};

class TcpEngine {
public:
    // Limits, stated once (tcp_engine.cpp uses these and nothing else).
    static constexpr Millis k_rto_ms = 1000;               // first retransmission timeout
    static constexpr std::uint8_t k_max_retries = 7;       // 1+2+...+64 s: then RST both ways
    static constexpr Millis k_connect_timeout_ms = 30'000;  // host connect(), then RST
    static constexpr Millis k_scan_ms = 100;               // how often timers() walks the flows
    static constexpr std::uint8_t k_our_wscale = 8;        // windows up to 16 MiB toward the guest
    static constexpr std::size_t k_max_frames_per_read = 32;
    static constexpr std::size_t k_max_forwards = 64;      // listening sockets (add_forward)
    static constexpr int k_listen_backlog = 64;
    static constexpr std::uint32_t k_logged_failures = 32;  // connect failures named on stderr

    // `flows`: the fixed capacity (Limits::flows). `host_flows` (may be null) hears of every
    // connection a forward opens into the guest. `hash_seed` 0 picks a random seed.
    TcpEngine(const GuestNet& net, std::size_t flows, GuestQueue& out, HostFlows* host_flows = nullptr,
              std::uint64_t hash_seed = 0);
    ~TcpEngine();
    TcpEngine(const TcpEngine&) = delete;
    TcpEngine& operator=(const TcpEngine&) = delete;

    // Listens on 127.0.0.1:host_port; every connection accepted there is opened into the
    // guest's guest_port. Returns the port bound (the kernel's choice for host_port 0).
    // Throws sbx::Error naming the port when it cannot (typically: in use), or when
    // k_max_forwards are set already. TCP forwards only.
    std::uint16_t add_forward(const HostForward& forward);

    // The guest's MAC and the one it addresses netd by: the destination and source of the
    // frames the engine originates (a forward's SYN). Until the guest's is known, a
    // forward's SYN waits (it is retried on the retransmission timer).
    void set_macs(const MacAddr& guest, const MacAddr& ours) noexcept;

    // The hook asked about every new guest connection from now on (null: every flow is
    // spliced). It must outlive the engine or be unset first.
    void set_stream_hook(StreamHook* hook) noexcept;

    // A terminated flow's handler answers (stream_hook.hpp). Each returns false, and changes
    // nothing, for an id whose flow is gone or is not a terminated flow.
    //   accept_stream: the guest's SYN-ACK goes out (false too once accepted already).
    //   reset_stream: a RST to the guest; the engine closes its end of the stream.
    //   splice_stream: `host_fd`, a connected TCP socket, takes the place of the stream, and
    //     the flow runs on the fast path from here (accepted too, if it was not yet). Only
    //     when nothing is in between: the handler has read every byte the guest sent, and
    //     every byte the handler wrote has been acknowledged by the guest; otherwise false,
    //     and host_fd stays the caller's. On true the engine owns host_fd and has closed its
    //     end of the stream (the handler sees EPOLLHUP and closes its own).
    bool accept_stream(StreamId id, Millis now) noexcept;
    bool reset_stream(StreamId id) noexcept;
    bool splice_stream(StreamId id, int host_fd, Millis now) noexcept;

    // A TCP segment from the guest that the Filter passed. Returns false when the segment is
    // not the engine's (no flow for its 5-tuple and not a new connection).
    bool guest_segment(Bytes frame, const Packet& p, Millis now) noexcept;

    // The epoll descriptor holding every flow's socket: readable when one has an event.
    int fd() const noexcept;
    // Acts on the sockets' events (without blocking).
    void process(Millis now) noexcept;
    // Sends the ACKs guest_segment() deferred: call once the frames one read from QEMU
    // brought are all handled (resume() does too). One ACK then answers a batch of segments.
    void flush_acks() noexcept;
    // Lets flows that stopped for want of queue space send again (and flushes ACKs).
    void resume(Millis now) noexcept;
    // Retransmissions, connect and acknowledgement timeouts.
    void timers(Millis now) noexcept;
    std::optional<Millis> next_deadline() const noexcept;

    std::size_t open_flows() const noexcept;
    std::size_t capacity() const noexcept;
    const TcpEngineStats& stats() const noexcept;

    // Test seam: false makes every new socket use the MSG_PEEK path without SO_PEEK_OFF (the
    // path kernels before 6.9 take).
    void use_peek_offset(bool use) noexcept;

    struct Impl;

private:
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sbx::net
