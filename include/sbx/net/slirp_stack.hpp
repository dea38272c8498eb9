#pragma once
// libslirp (Debian's 4.7) behind a small C++ face: the user-mode TCP/IP stack that turns the
// guest's allowed UDP and ICMP frames, and the host forwards (SSH, [[forward]]), into host
// sockets and host replies into frames for the guest. TCP connections the guest opens are
// the flow engine's (tcp_engine.hpp).
//
// Configured for sbx's guest network: 10.0.2.0/24 with the host alias 10.0.2.2, IPv6
// fec0::/64 with host fec0::2, MTU/MRU = GuestNet::mtu. libslirp's DNS, DHCP, TFTP, bootfile
// and "emulation" helpers are off (netd answers DNS itself; the sbx guest is configured
// statically). The owner drives it from one poll loop: fill() before poll, poll() after,
// run_timers() when next_timer_ms() is due. Not thread-safe; one instance per process.

#include "sbx/net/netd_config.hpp"
#include "sbx/net/policy.hpp"

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

struct Slirp;

namespace sbx::net {

// Receives every frame libslirp emits toward the guest.
class GuestSink {
public:
    virtual void to_guest(std::span<const std::byte> frame) noexcept = 0;

protected:
    ~GuestSink() = default;
};

// Milliseconds of CLOCK_MONOTONIC: the clock of Filter, the timers and libslirp.
std::uint64_t monotonic_ms() noexcept;

class SlirpStack {
public:
    // Throws sbx::Error when libslirp refuses the configuration.
    SlirpStack(const GuestNet& net, GuestSink& sink);
    ~SlirpStack();
    SlirpStack(const SlirpStack&) = delete;
    SlirpStack& operator=(const SlirpStack&) = delete;

    // Listens on 127.0.0.1:host_port and forwards to the guest. Throws sbx::Error naming the
    // port when it cannot (typically: in use).
    void add_forward(const HostForward& forward);

    // Hands one allowed guest frame to the stack.
    void input(std::span<const std::byte> frame) noexcept;

    // Appends libslirp's descriptors to `fds` and lowers `timeout_ms` to its next deadline.
    void fill(std::vector<pollfd>& fds, std::uint32_t& timeout_ms) noexcept;
    // After poll(): lets libslirp act on the revents of the entries fill() appended.
    void poll(std::vector<pollfd>& fds, bool poll_failed) noexcept;

    // Fires the timers that are due; next_timer_ms() is the earliest armed deadline.
    void run_timers(std::uint64_t now_ms) noexcept;
    std::optional<std::uint64_t> next_timer_ms() const noexcept;

    // Messages libslirp reported about guest misbehaviour (it has its own log otherwise).
    std::uint64_t guest_errors() const noexcept { return m_guest_errors; }

private:
    struct Timer {
        bool used = false;
        int id = 0;  // SlirpTimerId
        void* cb_opaque = nullptr;
        std::int64_t expire_ms = -1;  // -1: not armed
    };
    static constexpr std::size_t k_max_timers = 16;  // libslirp 4.7 creates one (IPv6 RA)

    static ssize_t cb_send_packet(const void* buf, size_t len, void* opaque);
    static void cb_guest_error(const char* msg, void* opaque);
    static std::int64_t cb_clock_get_ns(void* opaque);
    static void* cb_timer_new_opaque(int id, void* cb_opaque, void* opaque);
    static void cb_timer_free(void* timer, void* opaque);
    static void cb_timer_mod(void* timer, std::int64_t expire_ms, void* opaque);
    static int cb_add_poll(int fd, int events, void* opaque);
    static int cb_get_revents(int idx, void* opaque);

    Slirp* m_slirp = nullptr;
    GuestSink& m_sink;
    GuestNet m_net;
    Timer m_timers[k_max_timers];
    std::vector<pollfd>* m_fill_fds = nullptr;  // only during fill()/poll()
    std::uint64_t m_guest_errors = 0;
};

}  // namespace sbx::net
