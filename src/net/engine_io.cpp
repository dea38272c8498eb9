// Helpers the flow engines share (engine_io.hpp).

#include "sbx/net/engine_io.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <ctime>

namespace sbx::net {

std::uint64_t monotonic_ms() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000u;
}

SocketAddress host_socket_address(const GuestNet& net, const IpAddr& dst, std::uint16_t port) noexcept {
    SocketAddress out;
    if (dst.is_v4()) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        sin.sin_addr.s_addr = dst == net.host ? htonl(INADDR_LOOPBACK) : htonl(dst.v4_host_order());
        std::memcpy(&out.storage, &sin, sizeof sin);
        out.len = sizeof sin;
        return out;
    }
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    if (dst == net.host6) {
        sin6.sin6_addr = in6addr_loopback;
    } else {
        std::memcpy(&sin6.sin6_addr, dst.bytes.data(), 16);
    }
    std::memcpy(&out.storage, &sin6, sizeof sin6);
    out.len = sizeof sin6;
    out.v6 = true;
    return out;
}

}  // namespace sbx::net
