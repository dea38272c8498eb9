#pragma once
// Address classes the egress filter cares about. Two questions use them: is a destination
// the host itself (the engines take the host alias for the host's loopback), and would a DNS answer be
// rebinding (pointing a public name at loopback, private, link-local, CGNAT, multicast,
// unspecified, broadcast or cloud-metadata space). IPv6 forms that carry an IPv4 address
// (v4-mapped, v4-compatible, SIIT-translated, NAT64, 6to4, Teredo) are classified by the
// IPv4 address they carry as well, so a rebinding answer cannot hide inside IPv6.

#include "sbx/net/policy.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace sbx::net {

// Bits of classify(); an address may have several.
namespace addr_class {
inline constexpr std::uint32_t loopback = 1u << 0;      // 127/8, ::1
inline constexpr std::uint32_t private_net = 1u << 1;   // 10/8, 172.16/12, 192.168/16, fc00::/7, 64:ff9b:1::/48
inline constexpr std::uint32_t link_local = 1u << 2;    // 169.254/16, fe80::/10
inline constexpr std::uint32_t cgnat = 1u << 3;         // 100.64/10
inline constexpr std::uint32_t multicast = 1u << 4;     // 224/4, ff00::/8
inline constexpr std::uint32_t unspecified = 1u << 5;   // 0.0.0.0/8 ("this network"), ::
inline constexpr std::uint32_t broadcast = 1u << 6;     // 255.255.255.255
inline constexpr std::uint32_t metadata = 1u << 7;      // 169.254.169.254, fd00:ec2::254, 168.63.129.16, 100.100.100.200
inline constexpr std::uint32_t reserved = 1u << 8;      // 240/4 (class E)
inline constexpr std::uint32_t site_local = 1u << 9;    // fec0::/10 (deprecated; libslirp's guest prefix)
inline constexpr std::uint32_t embeds_v4 = 1u << 10;    // an IPv6 form carrying an IPv4 address
}  // namespace addr_class

// Every class a DNS answer must not fall in unless the rule says `private = true`.
inline constexpr std::uint32_t k_rebinding_classes =
    addr_class::loopback | addr_class::private_net | addr_class::link_local | addr_class::cgnat |
    addr_class::multicast | addr_class::unspecified | addr_class::broadcast | addr_class::metadata |
    addr_class::reserved | addr_class::site_local;

// The classes of `a` (0 for an ordinary public unicast address).
std::uint32_t classify(const IpAddr& a) noexcept;

// The classes of a host-order IPv4 address.
std::uint32_t classify_v4(std::uint32_t v4) noexcept;

// True when a DNS answer `a` would be rebinding.
inline bool is_rebinding_target(const IpAddr& a) noexcept {
    return (classify(a) & k_rebinding_classes) != 0;
}

// The IPv4 address an IPv6 form carries (host order): v4-compatible ::/96 (not :: or ::1),
// SIIT ::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32 (the client).
// IPv4-mapped addresses are IPv4 already (IpAddr::is_v4) and return nothing here.
std::optional<std::uint32_t> embedded_v4(const IpAddr& a) noexcept;

// "loopback,private" for logs and tests; "public" for 0.
std::string describe_classes(std::uint32_t classes);

}  // namespace sbx::net
