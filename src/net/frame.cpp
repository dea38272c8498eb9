// Header views and parse_packet(). Each `of()` checks its whole range before a view exists.

#include "sbx/net/frame.hpp"

namespace sbx::net {

namespace {

constexpr std::uint8_t k_ext_hop_by_hop = 0;
constexpr std::uint8_t k_ext_routing = 43;
constexpr std::uint8_t k_ext_fragment = 44;
constexpr std::uint8_t k_ext_dest_options = 60;

}  // namespace

std::optional<EthernetView> EthernetView::of(Bytes frame) noexcept {
    if (frame.size() < k_size) {
        return std::nullopt;
    }
    return EthernetView(frame);
}

MacAddr EthernetView::dst() const noexcept {
    MacAddr m;
    std::memcpy(m.data(), m_b.data(), 6);
    return m;
}

MacAddr EthernetView::src() const noexcept {
    MacAddr m;
    std::memcpy(m.data(), m_b.data() + 6, 6);
    return m;
}

std::optional<ArpView> ArpView::of(Bytes l3) noexcept {
    if (l3.size() < k_size) {
        return std::nullopt;
    }
    const std::byte* p = l3.data();
    if (load_be16(p) != 1 || load_be16(p + 2) != k_ethertype_ipv4 || load_u8(p + 4) != 6 ||
        load_u8(p + 5) != 4) {
        return std::nullopt;
    }
    return ArpView(l3.first(k_size));
}

std::optional<Ipv4View> Ipv4View::of(Bytes l3) noexcept {
    if (l3.size() < k_min_size) {
        return std::nullopt;
    }
    std::uint8_t vihl = load_u8(l3.data());
    std::size_t ihl = (vihl & 0x0fu) * 4u;
    std::size_t total = load_be16(l3.data() + 2);
    if ((vihl >> 4) != 4 || ihl < k_min_size || total < ihl || total > l3.size()) {
        return std::nullopt;
    }
    return Ipv4View(l3.first(total));
}

std::optional<Ipv6View> Ipv6View::of(Bytes l3) noexcept {
    if (l3.size() < k_size) {
        return std::nullopt;
    }
    if ((load_u8(l3.data()) >> 4) != 6) {
        return std::nullopt;
    }
    std::size_t payload = load_be16(l3.data() + 4);
    if (k_size + payload > l3.size()) {
        return std::nullopt;  // a jumbogram (payload length 0 + option) is not supported either
    }
    return Ipv6View(l3.first(k_size + payload));
}

IpAddr Ipv6View::addr_at(std::size_t off) const noexcept {
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), m_b.data() + off, 16);
    return IpAddr::v6(b);
}

std::optional<Ipv6Transport> walk_ipv6_ext(const Ipv6View& ip) noexcept {
    Bytes pkt = ip.packet();
    Ipv6Transport t;
    t.protocol = ip.next_header();
    t.offset = Ipv6View::k_size;
    for (std::size_t n = 0;; ++n) {
        switch (t.protocol) {
            case k_ext_hop_by_hop:
            case k_ext_routing:
            case k_ext_dest_options: {
                if (n >= k_max_ipv6_ext_headers || t.offset + 8 > pkt.size()) {
                    return std::nullopt;
                }
                std::size_t len = (std::size_t{load_u8(pkt.data() + t.offset + 1)} + 1) * 8;
                if (t.offset + len > pkt.size()) {
                    return std::nullopt;
                }
                t.protocol = load_u8(pkt.data() + t.offset);
                t.offset += len;
                break;
            }
            case k_ext_fragment:
                if (t.offset + 8 > pkt.size()) {
                    return std::nullopt;
                }
                t.fragment = true;
                return t;
            default:
                return t;
        }
    }
}

std::optional<TcpView> TcpView::of(Bytes l4) noexcept {
    if (l4.size() < k_min_size) {
        return std::nullopt;
    }
    std::size_t hl = (load_u8(l4.data() + 12) >> 4) * 4u;
    if (hl < k_min_size || hl > l4.size()) {
        return std::nullopt;
    }
    return TcpView(l4);
}

std::optional<UdpView> UdpView::of(Bytes l4) noexcept {
    if (l4.size() < k_size) {
        return std::nullopt;
    }
    std::size_t len = load_be16(l4.data() + 4);
    if (len < k_size || len > l4.size()) {
        return std::nullopt;
    }
    return UdpView(l4.first(len));
}

std::optional<IcmpView> IcmpView::of(Bytes l4) noexcept {
    if (l4.size() < k_size) {
        return std::nullopt;
    }
    return IcmpView(l4);
}

namespace {

// A Packet's 32-bit offsets and lengths: every value comes from 16-bit header fields (plus a
// header's own bounded size), checked against the frame by the views.
std::uint32_t u32(std::size_t v) noexcept {
    return static_cast<std::uint32_t>(v);
}

// Fills the transport fields of `p` from `l4`; false when the transport header is truncated.
bool parse_transport(Packet& p, Bytes l4) noexcept {
    switch (p.protocol) {
        case k_ipproto_tcp: {
            auto tcp = TcpView::of(l4);
            if (!tcp) {
                return false;
            }
            p.sport = tcp->sport();
            p.dport = tcp->dport();
            p.tcp_flags = tcp->flags();
            p.tcp_seq = tcp->seq();
            p.tcp_ack = tcp->ack();
            p.tcp_payload_len = u32(tcp->payload_len());
            return true;
        }
        case k_ipproto_udp: {
            auto udp = UdpView::of(l4);
            if (!udp) {
                return false;
            }
            p.sport = udp->sport();
            p.dport = udp->dport();
            p.udp_payload_offset = u32(p.l4_offset + UdpView::k_size);
            p.udp_payload_len = u32(udp->length() - UdpView::k_size);
            return true;
        }
        case k_ipproto_icmp:
        case k_ipproto_icmpv6: {
            if (p.protocol == k_ipproto_icmp && p.v6) {
                return true;  // ICMPv4 inside IPv6: no meaning, left to policy as an unknown protocol
            }
            auto icmp = IcmpView::of(l4);
            if (!icmp) {
                return false;
            }
            p.icmp_type = icmp->type();
            p.icmp_code = icmp->code();
            p.sport = icmp->ident();
            return true;
        }
        default:
            return true;  // other protocols: the filter decides on the protocol number alone
    }
}

}  // namespace

Packet parse_packet(Bytes frame) noexcept {
    Packet p;
    auto eth = EthernetView::of(frame);
    if (!eth) {
        return p;
    }
    Bytes l3 = eth->payload();
    switch (eth->ethertype()) {
        case k_ethertype_arp:
            if (ArpView::of(l3)) {
                p.kind = Packet::Kind::arp;
            }
            return p;
        case k_ethertype_ipv4: {
            auto ip = Ipv4View::of(l3);
            if (!ip) {
                return p;
            }
            p.src = ip->src();
            p.dst = ip->dst();
            p.protocol = ip->protocol();
            p.l3_header_len = u32(ip->header_len());
            p.l3_total_len = u32(ip->total_len());
            if (ip->is_fragment()) {
                p.kind = Packet::Kind::fragment;
                return p;
            }
            break;
        }
        case k_ethertype_ipv6: {
            auto ip = Ipv6View::of(l3);
            if (!ip) {
                return p;
            }
            auto t = walk_ipv6_ext(*ip);
            if (!t) {
                return p;
            }
            p.v6 = true;
            p.src = ip->src();
            p.dst = ip->dst();
            p.protocol = t->protocol;
            p.l3_header_len = u32(t->offset);
            p.l3_total_len = u32(Ipv6View::k_size + ip->payload_len());
            if (t->fragment) {
                p.kind = Packet::Kind::fragment;
                return p;
            }
            break;
        }
        default:
            return p;  // VLAN tags, unknown ethertypes: malformed for this network
    }
    p.l4_offset = p.l3_offset + p.l3_header_len;
    p.l4_len = p.l3_total_len - p.l3_header_len;
    if (!parse_transport(p, frame.subspan(p.l4_offset, p.l4_len))) {
        return p;
    }
    p.kind = Packet::Kind::ip;
    return p;
}

std::uint32_t checksum_partial(Bytes data, std::uint32_t sum) noexcept {
    std::uint64_t acc = sum;
    std::size_t i = 0;
    for (; i + 1 < data.size(); i += 2) {
        acc += load_be16(data.data() + i);
    }
    if (i < data.size()) {
        acc += std::uint64_t{load_u8(data.data() + i)} << 8;
    }
    while ((acc >> 32) != 0) {
        acc = (acc & 0xffffffffu) + (acc >> 32);
    }
    return static_cast<std::uint32_t>(acc);
}

std::uint16_t checksum_fold(std::uint32_t sum) noexcept {
    while ((sum >> 16) != 0) {
        sum = (sum & 0xffffu) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum & 0xffffu);
}

std::uint16_t ipv4_header_checksum(Bytes header) noexcept {
    return checksum_fold(checksum_partial(header));
}

std::uint16_t transport_checksum(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol,
                                 Bytes segment, bool v6) noexcept {
    std::uint32_t sum = 0;
    auto len = static_cast<std::uint32_t>(segment.size());
    if (v6) {
        sum = checksum_partial(std::as_bytes(std::span(src.bytes)), sum);
        sum = checksum_partial(std::as_bytes(std::span(dst.bytes)), sum);
        std::byte tail[8];
        store_be32(tail, len);
        store_be32(tail + 4, protocol);
        sum = checksum_partial(Bytes(tail, 8), sum);
    } else {
        sum = checksum_partial(std::as_bytes(std::span(src.bytes)).subspan(12), sum);
        sum = checksum_partial(std::as_bytes(std::span(dst.bytes)).subspan(12), sum);
        std::byte tail[4];
        store_u8(tail, 0);
        store_u8(tail + 1, protocol);
        store_be16(tail + 2, static_cast<std::uint16_t>(len));
        sum = checksum_partial(Bytes(tail, 4), sum);
    }
    sum = checksum_partial(segment, sum);
    std::uint16_t c = checksum_fold(sum);
    if (protocol == k_ipproto_udp && c == 0) {
        c = 0xffff;  // 0 means "no checksum" for UDP
    }
    return c;
}

}  // namespace sbx::net
