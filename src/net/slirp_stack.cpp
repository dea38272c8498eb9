// libslirp wrapper. Theory of operation:
//   - slirp_new() with SlirpConfig version 4 and our callbacks; `this` is the opaque pointer.
//   - Timers: libslirp 4.7 asks for one (the IPv6 router advertisement timer) through
//     timer_new_opaque; they live in a fixed table of k_max_timers. run_timers() calls
//     slirp_handle_timer() for each that is due.
//   - Descriptors: libslirp owns its sockets. fill() calls slirp_pollfds_fill(), whose add_poll
//     callback appends to the caller's pollfd vector and returns the index; poll() calls
//     slirp_pollfds_poll(), whose get_revents callback reads the same vector back.
//   - send_packet goes straight to the GuestSink (netd: filter, frame, queue for QEMU).

#include "sbx/net/slirp_stack.hpp"

#include "sbx/util/error.hpp"

#include <arpa/inet.h>
#include <libslirp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>

namespace sbx::net {

std::uint64_t monotonic_ms() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000u;
}

namespace {

in_addr to_in_addr(const IpAddr& a) {
    in_addr out{};
    out.s_addr = htonl(a.v4_host_order());
    return out;
}

in6_addr to_in6_addr(const IpAddr& a) {
    in6_addr out{};
    std::memcpy(&out, a.bytes.data(), 16);
    return out;
}

in_addr mask_of(std::uint8_t prefix128) {
    // Cidr stores IPv4 prefixes over the 128-bit form (a /24 is /120).
    unsigned prefix = prefix128 >= 96 ? prefix128 - 96u : 0u;
    std::uint32_t mask = prefix == 0 ? 0u : ~std::uint32_t{0} << (32u - prefix);
    in_addr out{};
    out.s_addr = htonl(mask);
    return out;
}

short to_poll_events(int slirp_events) {
    int e = 0;
    if (slirp_events & SLIRP_POLL_IN) {
        e |= POLLIN;
    }
    if (slirp_events & SLIRP_POLL_OUT) {
        e |= POLLOUT;
    }
    if (slirp_events & SLIRP_POLL_PRI) {
        e |= POLLPRI;
    }
    return static_cast<short>(e);
}

int to_slirp_events(short revents) {
    int e = 0;
    if (revents & POLLIN) {
        e |= SLIRP_POLL_IN;
    }
    if (revents & POLLOUT) {
        e |= SLIRP_POLL_OUT;
    }
    if (revents & POLLPRI) {
        e |= SLIRP_POLL_PRI;
    }
    if (revents & POLLERR) {
        e |= SLIRP_POLL_ERR;
    }
    if (revents & POLLHUP) {
        e |= SLIRP_POLL_HUP;
    }
    return e;
}

}  // namespace

ssize_t SlirpStack::cb_send_packet(const void* buf, size_t len, void* opaque) {
    auto* self = static_cast<SlirpStack*>(opaque);
    self->m_sink.to_guest(std::span<const std::byte>(static_cast<const std::byte*>(buf), len));
    return static_cast<ssize_t>(len);
}

void SlirpStack::cb_guest_error(const char* msg, void* opaque) {
    auto* self = static_cast<SlirpStack*>(opaque);
    // Guest-triggered: rate-limit to the first few so a hostile guest cannot flood the log.
    if (self->m_guest_errors++ < 20) {
        std::fprintf(stderr, "netd: libslirp: guest error: %s\n", msg);
    }
}

std::int64_t SlirpStack::cb_clock_get_ns(void*) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void* SlirpStack::cb_timer_new_opaque(int id, void* cb_opaque, void* opaque) {
    auto* self = static_cast<SlirpStack*>(opaque);
    for (auto& t : self->m_timers) {
        if (!t.used) {
            t = Timer{true, id, cb_opaque, -1};
            return &t;
        }
    }
    std::fprintf(stderr, "netd: libslirp asked for more than %zu timers\n", k_max_timers);
    return nullptr;
}

void SlirpStack::cb_timer_free(void* timer, void*) {
    if (timer) {
        *static_cast<Timer*>(timer) = Timer{};
    }
}

void SlirpStack::cb_timer_mod(void* timer, std::int64_t expire_ms, void*) {
    if (timer) {
        static_cast<Timer*>(timer)->expire_ms = expire_ms;
    }
}

int SlirpStack::cb_add_poll(int fd, int events, void* opaque) {
    auto* self = static_cast<SlirpStack*>(opaque);
    auto& fds = *self->m_fill_fds;
    fds.push_back(pollfd{fd, to_poll_events(events), 0});
    return static_cast<int>(fds.size() - 1);
}

int SlirpStack::cb_get_revents(int idx, void* opaque) {
    auto* self = static_cast<SlirpStack*>(opaque);
    auto& fds = *self->m_fill_fds;
    if (idx < 0 || static_cast<std::size_t>(idx) >= fds.size()) {
        return 0;
    }
    return to_slirp_events(fds[static_cast<std::size_t>(idx)].revents);
}

SlirpStack::SlirpStack(const GuestNet& net, GuestSink& sink) : m_sink(sink), m_net(net) {
    SlirpConfig cfg{};
    cfg.version = 4;
    cfg.restricted = 0;  // the filter decides; libslirp's own restrict mode would block all egress
    cfg.in_enabled = true;
    cfg.vnetwork = to_in_addr(net.network.base);
    cfg.vnetmask = mask_of(net.network.prefix);
    cfg.vhost = to_in_addr(net.host);
    cfg.in6_enabled = true;
    cfg.vprefix_addr6 = to_in6_addr(net.guest6_prefix);
    cfg.vprefix_len = 64;
    cfg.vhost6 = to_in6_addr(net.host6);
    cfg.vhostname = nullptr;
    cfg.tftp_server_name = nullptr;
    cfg.tftp_path = nullptr;  // no TFTP
    cfg.bootfile = nullptr;
    cfg.vdhcp_start = to_in_addr(net.guest);
    cfg.vnameserver = to_in_addr(net.dns);
    cfg.vnameserver6 = to_in6_addr(net.dns6);
    cfg.vdnssearch = nullptr;
    cfg.vdomainname = nullptr;
    cfg.if_mtu = net.mtu;
    cfg.if_mru = net.mtu;
    cfg.disable_host_loopback =
        false;               // host_ports reach 127.0.0.1 through 10.0.2.2; the filter closes the rest
    cfg.enable_emu = false;  // the FTP/IRC/... helpers have had security bugs
    cfg.outbound_addr = nullptr;
    cfg.outbound_addr6 = nullptr;
    cfg.disable_dns = true;   // netd is the guest's only resolver
    cfg.disable_dhcp = true;  // the sbx guest is configured statically

    static const SlirpCb callbacks = [] {
        SlirpCb cb{};
        cb.send_packet = &SlirpStack::cb_send_packet;
        cb.guest_error = &SlirpStack::cb_guest_error;
        cb.clock_get_ns = &SlirpStack::cb_clock_get_ns;
        cb.timer_new = nullptr;
        cb.timer_free = &SlirpStack::cb_timer_free;
        cb.timer_mod = &SlirpStack::cb_timer_mod;
        cb.register_poll_fd = [](int, void*) {};  // fill() enumerates every descriptor each turn
        cb.unregister_poll_fd = [](int, void*) {};
        cb.notify = [](void*) {};  // single-threaded: the loop polls again anyway
        cb.init_completed = nullptr;
        cb.timer_new_opaque = [](SlirpTimerId id, void* cb_opaque, void* opaque) -> void* {
            return SlirpStack::cb_timer_new_opaque(static_cast<int>(id), cb_opaque, opaque);
        };
        return cb;
    }();
    m_slirp = slirp_new(&cfg, &callbacks, this);
    if (!m_slirp) {
        throw Error("libslirp refused the guest network configuration",
                    {"check guest.network, guest.host and guest.mtu in netd.json"});
    }
}

SlirpStack::~SlirpStack() {
    if (m_slirp) {
        slirp_cleanup(m_slirp);
    }
}

void SlirpStack::add_forward(const HostForward& f) {
    in_addr loopback{};
    loopback.s_addr = htonl(INADDR_LOOPBACK);
    errno = 0;
    int rc = slirp_add_hostfwd(m_slirp, f.proto == Proto::udp ? 1 : 0, loopback, f.host_port,
                               to_in_addr(m_net.guest), f.guest_port);
    if (rc < 0) {
        int err = errno;
        throw Error(fmt::format("cannot forward 127.0.0.1:{} ({}) to the guest's port {}: {}", f.host_port,
                                to_string(f.proto), f.guest_port,
                                err == EADDRINUSE || err == 0 ? "the port is in use" : std::strerror(err)),
                    {fmt::format("find what listens there with: ss -ltnup 'sport = :{}'", f.host_port),
                     "or choose another host port in the profile's [[forward]] / [ssh] section"});
    }
}

void SlirpStack::input(std::span<const std::byte> frame) noexcept {
    if (frame.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        return;
    }
    slirp_input(m_slirp, reinterpret_cast<const std::uint8_t*>(frame.data()), static_cast<int>(frame.size()));
}

void SlirpStack::fill(std::vector<pollfd>& fds, std::uint32_t& timeout_ms) noexcept {
    m_fill_fds = &fds;
    slirp_pollfds_fill(m_slirp, &timeout_ms, &SlirpStack::cb_add_poll, this);
    m_fill_fds = nullptr;
}

void SlirpStack::poll(std::vector<pollfd>& fds, bool poll_failed) noexcept {
    m_fill_fds = &fds;
    slirp_pollfds_poll(m_slirp, poll_failed ? 1 : 0, &SlirpStack::cb_get_revents, this);
    m_fill_fds = nullptr;
}

void SlirpStack::run_timers(std::uint64_t now_ms) noexcept {
    for (auto& t : m_timers) {
        if (t.used && t.expire_ms >= 0 && static_cast<std::uint64_t>(t.expire_ms) <= now_ms) {
            t.expire_ms = -1;
            slirp_handle_timer(m_slirp, static_cast<SlirpTimerId>(t.id), t.cb_opaque);
        }
    }
}

std::optional<std::uint64_t> SlirpStack::next_timer_ms() const noexcept {
    std::optional<std::uint64_t> next;
    for (const auto& t : m_timers) {
        if (t.used && t.expire_ms >= 0) {
            auto at = static_cast<std::uint64_t>(t.expire_ms);
            if (!next || at < *next) {
                next = at;
            }
        }
    }
    return next;
}

}  // namespace sbx::net
