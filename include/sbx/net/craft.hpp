#pragma once
// Frames netd writes to the guest on its own: TCP resets and ICMP "administratively
// prohibited" errors for denied flows, and UDP datagrams carrying DNS answers. Everything is
// written into a caller's preallocated buffer (no allocation), with the Ethernet addresses of
// the guest's frame swapped and every checksum computed. Each function returns the frame
// size, or 0 when `out` is too small or the input cannot be answered.

#include "sbx/net/frame.hpp"

#include <cstddef>
#include <cstdint>

namespace sbx::net {

// The largest frame a crafter writes: an ICMPv6 error is at most 1280 bytes of IPv6 (the
// minimum MTU, RFC 4443 2.4(c)), plus Ethernet.
inline constexpr std::size_t k_max_crafted_frame = EthernetView::k_size + 1280;
inline constexpr std::uint8_t k_crafted_ttl = 64;

// A RST answering the guest's TCP segment `p` (parsed from `frame`), per RFC 793: if the
// segment has ACK, <SEQ=SEG.ACK><CTL=RST>; otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
// where SYN and FIN each count one. Nothing for a segment that is itself a RST.
std::size_t craft_tcp_reset(MutBytes out, Bytes frame, const Packet& p) noexcept;

// ICMP destination unreachable, administratively prohibited (IPv4 type 3 code 13; IPv6 type 1
// code 1), from the original destination, quoting the original IPv4 header + 8 bytes, or as
// much of the IPv6 packet as keeps the error within 1280 bytes.
std::size_t craft_icmp_prohibited(MutBytes out, Bytes frame, const Packet& p) noexcept;

// Where a UDP datagram's addresses come from: a reply to a datagram the guest sent.
struct UdpReplyAddr {
    MacAddr guest_mac{}, our_mac{};
    IpAddr guest_ip, our_ip;
    std::uint16_t guest_port = 0, our_port = 0;
    bool v6 = false;
};

// The payload offset in a UDP reply frame: write the payload at out[offset], then finish.
inline constexpr std::size_t udp_reply_payload_offset(bool v6) noexcept {
    return EthernetView::k_size + (v6 ? 40 : 20) + 8;
}
// Writes Ethernet, IP and UDP headers in front of a payload of `payload_len` bytes already at
// out[udp_reply_payload_offset(a.v6)]; returns the frame size.
std::size_t finish_udp_reply(MutBytes out, const UdpReplyAddr& a, std::size_t payload_len) noexcept;

}  // namespace sbx::net
