#pragma once
// The TCP engine's per-flow stream hook (tcp_engine.hpp). Every TCP flow the guest opens and
// the Filter allows is either
//   spliced: the engine's fast path, a host socket connected to the destination and the
//     bytes moved by the kernel (nothing of netd's own touches them); or
//   terminated: the engine keeps the guest's side of the connection and hands an in-process
//     handler the flow's byte stream, so that something can sit between the guest and the
//     world (a TLS server-name gate, a secret injector, a SOCKS5 dialer).
//
// A terminated flow's stream is one end of an AF_UNIX stream socketpair; the engine holds the
// other end where a spliced flow holds its host socket, on the same data path. The handler
// reads the guest's bytes from it in order and writes the bytes the guest is to receive.
// Both directions have back-pressure through the pair's socket buffers: a handler that does
// not read closes the guest's window, a guest that does not read makes the handler's writes
// EAGAIN. So a terminated flow holds at most two socket buffers, and nothing in userspace.
//
// The handler's view of its descriptor (non-blocking, close-on-exec, the handler's to close):
//   - readable data: the guest's bytes; EOF (read returns 0, EPOLLRDHUP): the guest's FIN;
//   - shutdown(SHUT_WR) or close(): a FIN to the guest after the bytes written before it;
//   - EPOLLHUP, EPIPE: the flow is gone (the guest reset it, it timed out, or both sides
//     closed); there is no one left to write to.
// And through the engine, by the StreamId attach() gave (stale ids are ignored):
//   - TcpEngine::accept_stream(): the guest's SYN-ACK goes out (nothing does before it, so a
//     handler can dial first and answer the guest only once the far side said yes);
//   - TcpEngine::reset_stream(): a RST to the guest (refused before the accept, or ended after);
//   - TcpEngine::splice_stream(): the flow leaves the handler for the fast path on a host
//     socket the handler connected, once every byte in between has been passed on.
// A handler that closes its end before accepting, or neither accepts nor resets within
// TcpEngine::k_connect_timeout_ms, has the guest's SYN refused with a RST.
//
// Not thread-safe: the engine calls route() and attach() from inside guest_segment(), and the
// handler calls the engine from netd's same loop.

#include "sbx/net/flow_table.hpp"

#include <cstdint>

namespace sbx::net {

// A terminated flow, as the engine knows it: a slot and the slot's generation, so an id
// outlives its flow harmlessly.
struct StreamId {
    std::uint32_t slot = 0;
    std::uint32_t generation = 0;
};

class StreamHook {
public:
    enum class Route : std::uint8_t { splice, terminate };

    // A new guest connection the Filter allowed (`key` as the guest sends: src = the guest).
    // Asked once per connection, before any socket exists; SYN retransmissions are not asked
    // again, and connections the host opens into the guest (forwards) never.
    virtual Route route(const FlowKey& key) noexcept = 0;

    // The terminated flow `id` and the handler's end of its stream (see above). Called once,
    // after route() said terminate; the handler may call the engine back from here.
    virtual void attach(const FlowKey& key, StreamId id, int fd) noexcept = 0;

protected:
    ~StreamHook() = default;
};

}  // namespace sbx::net
