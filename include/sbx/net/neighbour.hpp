#pragma once
// Link-layer answers netd gives the guest itself, now that libslirp is gone from its path:
// ARP replies and IPv6 Neighbour Advertisements for the addresses netd stands for on the
// guest's link (the host alias, the resolver, and every other on-link destination), all with
// one MAC. Pure functions over the guest's frame and a caller's buffer: no allocation, no I/O.

#include "sbx/net/frame.hpp"
#include "sbx/net/policy.hpp"

#include <cstddef>

namespace sbx::net {

// netd's MAC on the guest's link: libslirp's 52:55 followed by the IPv4 address of its virtual
// host (10.0.2.2), the source libslirp put on every IPv4 frame it sent, so a guest's
// neighbour cache stays right across the change.
inline constexpr MacAddr k_netd_mac = {std::byte{0x52}, std::byte{0x55}, std::byte{0x0a},
                                       std::byte{0x00}, std::byte{0x02}, std::byte{0x02}};

// An ARP reply is 42 bytes, padded with zeros to the 60-byte Ethernet minimum (as libslirp
// did); a Neighbour Advertisement with its target link-layer address option is 86 bytes.
inline constexpr std::size_t k_arp_reply_size = 60;
inline constexpr std::size_t k_neighbour_advert_size = 86;

// Answers one guest frame when it asks for the link-layer address of an address netd stands
// for, writing the reply into `out` and returning its size; 0 for every other frame, for a
// malformed one, and when `out` is too small. `guest6` is the guest's own IPv6 address
// (GuestNet has only its prefix), which netd never answers for.
//  - ARP request (htype 1, ptype 0x0800, hlen 6, plen 4, op 1) for any address of
//    net.network except net.guest, the network and the broadcast address: an ARP reply
//    from k_netd_mac to the requester. Gratuitous ARP (sender IP = target IP) gets nothing.
//  - Neighbour Solicitation valid per RFC 4861 7.1.1 (hop limit 255, code 0, checksum,
//    options, no extension headers) for any address of net.guest6_prefix/64 except guest6:
//    a Neighbour Advertisement with Router, Solicited and Override set, hop limit 255 and a
//    target link-layer address option, to the solicitor. A Duplicate Address Detection
//    probe (source ::) for such an address is answered too, without Solicited, to ff02::1
//    (RFC 4861 7.2.4): the guest must not take an address netd stands for.
std::size_t answer_neighbour(MutBytes out, Bytes frame, const GuestNet& net, const IpAddr& guest6) noexcept;

// The Ethernet source of `frame` when it is a unicast, non-zero MAC: the guest's MAC, which
// netd puts as the destination of frames it originates. False (and `mac` untouched) otherwise.
bool guest_mac_of(Bytes frame, MacAddr& mac) noexcept;

}  // namespace sbx::net
