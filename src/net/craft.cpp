// Crafted replies to the guest; see craft.hpp.

#include "sbx/net/craft.hpp"

#include <algorithm>

namespace sbx::net {

namespace {

constexpr std::size_t k_eth = EthernetView::k_size;
constexpr std::size_t k_ipv4 = 20;
constexpr std::size_t k_ipv6 = 40;

void write_ethernet(std::byte* out, const MacAddr& dst, const MacAddr& src, std::uint16_t type) noexcept {
    std::memcpy(out, dst.data(), 6);
    std::memcpy(out + 6, src.data(), 6);
    store_be16(out + 12, type);
}

// An IPv4 header without options (DF set, ID 0), checksum included.
void write_ipv4(std::byte* out, const IpAddr& src, const IpAddr& dst, std::uint8_t protocol,
                std::size_t total_len) noexcept {
    store_u8(out, 0x45);
    store_u8(out + 1, 0);
    store_be16(out + 2, static_cast<std::uint16_t>(total_len));
    store_be16(out + 4, 0);
    store_be16(out + 6, 0x4000);
    store_u8(out + 8, k_crafted_ttl);
    store_u8(out + 9, protocol);
    store_be16(out + 10, 0);
    std::memcpy(out + 12, src.bytes.data() + 12, 4);
    std::memcpy(out + 16, dst.bytes.data() + 12, 4);
    store_be16(out + 10, ipv4_header_checksum(Bytes(out, k_ipv4)));
}

void write_ipv6(std::byte* out, const IpAddr& src, const IpAddr& dst, std::uint8_t next,
                std::size_t payload_len) noexcept {
    store_be32(out, 0x60000000u);
    store_be16(out + 4, static_cast<std::uint16_t>(payload_len));
    store_u8(out + 6, next);
    store_u8(out + 7, k_crafted_ttl);
    std::memcpy(out + 8, src.bytes.data(), 16);
    std::memcpy(out + 24, dst.bytes.data(), 16);
}

// Ethernet + IP header of a reply to `p`, addresses swapped; returns the transport offset.
std::size_t write_reply_headers(std::byte* out, Bytes frame, const Packet& p, std::uint8_t protocol,
                                std::size_t l4_len) noexcept {
    auto eth = EthernetView::of(frame);  // parse_packet saw it whole
    write_ethernet(out, eth->src(), eth->dst(), p.v6 ? k_ethertype_ipv6 : k_ethertype_ipv4);
    if (p.v6) {
        write_ipv6(out + k_eth, p.dst, p.src, protocol, l4_len);
        return k_eth + k_ipv6;
    }
    write_ipv4(out + k_eth, p.dst, p.src, protocol, k_ipv4 + l4_len);
    return k_eth + k_ipv4;
}

}  // namespace

std::size_t craft_tcp_reset(MutBytes out, Bytes frame, const Packet& p) noexcept {
    if (p.kind != Packet::Kind::ip || p.protocol != k_ipproto_tcp || (p.tcp_flags & k_tcp_rst) != 0) {
        return 0;
    }
    constexpr std::size_t k_tcp = 20;
    std::size_t size = k_eth + (p.v6 ? k_ipv6 : k_ipv4) + k_tcp;
    if (out.size() < size || frame.size() < k_eth) {
        return 0;
    }
    std::uint32_t seq = 0;
    std::uint32_t ack = 0;
    std::uint8_t flags = k_tcp_rst;
    if ((p.tcp_flags & k_tcp_ack) != 0) {
        seq = p.tcp_ack;
    } else {
        std::uint32_t len = p.tcp_payload_len;
        len += (p.tcp_flags & k_tcp_syn) != 0 ? 1u : 0u;
        len += (p.tcp_flags & k_tcp_fin) != 0 ? 1u : 0u;
        ack = p.tcp_seq + len;
        flags |= k_tcp_ack;
    }
    std::byte* o = out.data();
    std::size_t l4 = write_reply_headers(o, frame, p, k_ipproto_tcp, k_tcp);
    std::byte* t = o + l4;
    store_be16(t, p.dport);
    store_be16(t + 2, p.sport);
    store_be32(t + 4, seq);
    store_be32(t + 8, ack);
    store_u8(t + 12, 5 << 4);
    store_u8(t + 13, flags);
    store_be16(t + 14, 0);  // window
    store_be16(t + 16, 0);  // checksum, below
    store_be16(t + 18, 0);  // urgent pointer
    store_be16(t + 16, transport_checksum(p.dst, p.src, k_ipproto_tcp, Bytes(t, k_tcp), p.v6));
    return size;
}

std::size_t craft_icmp_prohibited(MutBytes out, Bytes frame, const Packet& p) noexcept {
    if (p.kind != Packet::Kind::ip || frame.size() < p.l3_offset + p.l3_total_len) {
        return 0;
    }
    Bytes original = frame.subspan(p.l3_offset, p.l3_total_len);
    std::size_t quote = 0;
    if (p.v6) {
        quote = std::min(original.size(), std::size_t{1280} - k_ipv6 - 8);
    } else {
        quote = std::min(original.size(), std::size_t{p.l3_header_len} + 8);
    }
    std::size_t l4_len = 8 + quote;
    std::size_t size = k_eth + (p.v6 ? k_ipv6 : k_ipv4) + l4_len;
    if (out.size() < size) {
        return 0;
    }
    std::byte* o = out.data();
    std::uint8_t protocol = p.v6 ? k_ipproto_icmpv6 : k_ipproto_icmp;
    std::size_t l4 = write_reply_headers(o, frame, p, protocol, l4_len);
    std::byte* m = o + l4;
    store_u8(m, p.v6 ? 1 : 3);
    store_u8(m + 1, p.v6 ? 1 : 13);
    store_be16(m + 2, 0);
    store_be32(m + 4, 0);
    std::memcpy(m + 8, original.data(), quote);
    std::uint16_t csum = p.v6 ? transport_checksum(p.dst, p.src, k_ipproto_icmpv6, Bytes(m, l4_len), true)
                              : checksum_fold(checksum_partial(Bytes(m, l4_len)));
    store_be16(m + 2, csum);
    return size;
}

std::size_t finish_udp_reply(MutBytes out, const UdpReplyAddr& a, std::size_t payload_len) noexcept {
    std::size_t l4 = k_eth + (a.v6 ? k_ipv6 : k_ipv4);
    std::size_t size = l4 + 8 + payload_len;
    if (out.size() < size || 8 + payload_len > 0xffff) {
        return 0;
    }
    std::byte* o = out.data();
    write_ethernet(o, a.guest_mac, a.our_mac, a.v6 ? k_ethertype_ipv6 : k_ethertype_ipv4);
    if (a.v6) {
        write_ipv6(o + k_eth, a.our_ip, a.guest_ip, k_ipproto_udp, 8 + payload_len);
    } else {
        write_ipv4(o + k_eth, a.our_ip, a.guest_ip, k_ipproto_udp, k_ipv4 + 8 + payload_len);
    }
    std::byte* u = o + l4;
    store_be16(u, a.our_port);
    store_be16(u + 2, a.guest_port);
    store_be16(u + 4, static_cast<std::uint16_t>(8 + payload_len));
    store_be16(u + 6, 0);
    store_be16(u + 6, transport_checksum(a.our_ip, a.guest_ip, k_ipproto_udp, Bytes(u, 8 + payload_len), a.v6));
    return size;
}

}  // namespace sbx::net
