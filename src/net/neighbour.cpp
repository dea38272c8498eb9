// ARP and IPv6 neighbour discovery answers for the guest; see neighbour.hpp.
//
// Theory of operation. netd is the only other node on the guest's link, so, like passt, it
// answers for every on-link address but the guest's own: 10.0.2.2, 10.0.2.3 and any other
// address of 10.0.2.0/24 (except the network and broadcast addresses), and any address of
// fec0::/64. It answers with one MAC, k_netd_mac, the source of every frame netd originates;
// a guest that caches libslirp's per-address MACs (52:55:<IPv4>, 52:56:<low 32 bits of the
// IPv6 address>) still reaches netd, which does not look at Ethernet destinations. Only
// fec0::/64 targets are answered in IPv6: the guest's gateway is fec0::2 (static, no Router
// Advertisement), so it never resolves a link-local router address such as fe80::1.
//
// Nothing here is trusted: every field read is inside a length checked first (the frame.hpp
// views, then explicit checks on the ARP and ICMPv6 bodies), the reply is built from scratch
// in `out` (never by editing the request), and a request whose Ethernet source is multicast
// or zero gets no answer, so a reply never goes to a broadcast address on a forged request.

#include "sbx/net/neighbour.hpp"

#include <algorithm>
#include <cstring>

namespace sbx::net {

namespace {

constexpr std::size_t k_eth = EthernetView::k_size;
constexpr std::size_t k_ipv6 = Ipv6View::k_size;
constexpr std::size_t k_arp_body = ArpView::k_size;

constexpr std::uint16_t k_arp_request = 1;
constexpr std::uint16_t k_arp_reply = 2;

constexpr std::uint8_t k_nd_hop_limit = 255;  // RFC 4861 7.1.1: proves the sender is on-link
constexpr std::uint8_t k_icmp6_ns = 135;
constexpr std::uint8_t k_icmp6_na = 136;
constexpr std::size_t k_ns_min = 24;  // type, code, checksum, reserved, target
constexpr std::uint8_t k_opt_source_lla = 1;
constexpr std::uint8_t k_opt_target_lla = 2;
constexpr std::uint32_t k_na_router = 0x80000000u;
constexpr std::uint32_t k_na_solicited = 0x40000000u;
constexpr std::uint32_t k_na_override = 0x20000000u;
constexpr std::size_t k_na_len = 32;  // header, target, one 8-byte option

static_assert(k_arp_reply_size >= k_eth + k_arp_body);
static_assert(k_neighbour_advert_size == k_eth + k_ipv6 + k_na_len);

constexpr MacAddr k_all_nodes_mac = {std::byte{0x33}, std::byte{0x33}, std::byte{0x00},
                                     std::byte{0x00}, std::byte{0x00}, std::byte{0x01}};
const IpAddr k_all_nodes = IpAddr::v6({0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});

IpAddr addr16_at(const std::byte* p) noexcept {
    IpAddr a;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
}

bool is_unspecified(const IpAddr& a) noexcept {
    return std::all_of(a.bytes.begin(), a.bytes.end(), [](std::uint8_t b) { return b == 0; });
}

bool is_multicast6(const IpAddr& a) noexcept {
    return a.bytes[0] == 0xff;
}

// ff02::1:ffXX:XXXX, the address a solicitation for `target` is multicast to (RFC 4291 2.7.1).
bool is_solicited_node_of(const IpAddr& dst, const IpAddr& target) noexcept {
    static constexpr std::uint8_t k_prefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
    return std::equal(k_prefix, k_prefix + 13, dst.bytes.begin()) &&
           std::equal(target.bytes.begin() + 13, target.bytes.end(), dst.bytes.begin() + 13);
}

// An address of the guest's IPv4 network that is neither the guest, the network nor the
// broadcast address. A network that is not an IPv4 one answers nothing.
bool stands_for_v4(std::uint32_t target, const GuestNet& net) noexcept {
    const Cidr& n = net.network;
    if (n.prefix < 96 || n.prefix > 128 || !n.base.is_v4()) {
        return false;
    }
    IpAddr a = IpAddr::v4(target);
    if (!n.contains(a) || a == net.guest) {
        return false;
    }
    unsigned host_bits = 128u - n.prefix;
    if (host_bits >= 2) {  // a /31 or /32 has no network or broadcast address
        std::uint32_t host_mask = host_bits >= 32 ? 0xffffffffu : (std::uint32_t{1} << host_bits) - 1u;
        std::uint32_t host = target & host_mask;
        if (host == 0 || host == host_mask) {
            return false;
        }
    }
    return true;
}

// An address of guest6_prefix/64 other than the guest's own.
bool stands_for_v6(const IpAddr& target, const GuestNet& net, const IpAddr& guest6) noexcept {
    return !is_multicast6(target) &&
           std::equal(target.bytes.begin(), target.bytes.begin() + 8, net.guest6_prefix.bytes.begin()) &&
           target != guest6;
}

void write_ethernet(std::byte* o, const MacAddr& dst, std::uint16_t type) noexcept {
    std::memcpy(o, dst.data(), 6);
    std::memcpy(o + 6, k_netd_mac.data(), 6);
    store_be16(o + 12, type);
}

std::size_t answer_arp(MutBytes out, const MacAddr& requester, Bytes l3, const GuestNet& net) noexcept {
    auto arp = ArpView::of(l3);  // checks the 28 bytes and htype, ptype, hlen, plen
    if (!arp || arp->op() != k_arp_request) {
        return 0;
    }
    const std::byte* a = l3.data();
    const std::byte* sender_mac = a + 8;
    std::uint32_t sender_ip = load_be32(a + 14);
    std::uint32_t target_ip = load_be32(a + 24);
    if (sender_ip == target_ip || !stands_for_v4(target_ip, net)) {
        return 0;  // a gratuitous announcement, or an address netd does not stand for
    }
    if (out.size() < k_arp_reply_size) {
        return 0;
    }
    std::byte* o = out.data();
    std::memset(o, 0, k_arp_reply_size);
    write_ethernet(o, requester, k_ethertype_arp);
    std::byte* r = o + k_eth;
    store_be16(r, 1);
    store_be16(r + 2, k_ethertype_ipv4);
    store_u8(r + 4, 6);
    store_u8(r + 5, 4);
    store_be16(r + 6, k_arp_reply);
    std::memcpy(r + 8, k_netd_mac.data(), 6);
    store_be32(r + 14, target_ip);
    std::memcpy(r + 18, sender_mac, 6);
    store_be32(r + 24, sender_ip);  // 0.0.0.0 for an RFC 5227 probe: the prober knows it
    return k_arp_reply_size;
}

// Options after the solicitation's fixed part: each at least 8 bytes, inside the message
// (RFC 4861 7.1.1); a source link-layer address option is not allowed from ::.
bool ns_options_valid(Bytes icmp, bool from_unspecified) noexcept {
    std::size_t off = k_ns_min;
    while (off < icmp.size()) {
        if (icmp.size() - off < 2) {
            return false;
        }
        std::uint8_t type = load_u8(icmp.data() + off);
        std::size_t len = std::size_t{load_u8(icmp.data() + off + 1)} * 8u;
        if (len == 0 || len > icmp.size() - off) {
            return false;
        }
        if (from_unspecified && type == k_opt_source_lla) {
            return false;
        }
        off += len;
    }
    return true;
}

std::size_t answer_ns(MutBytes out, const MacAddr& requester, Bytes l3, const GuestNet& net,
                      const IpAddr& guest6) noexcept {
    auto ip = Ipv6View::of(l3);
    // Neighbour Discovery never carries extension headers: one in front of ICMPv6 is refused.
    if (!ip || ip->next_header() != k_ipproto_icmpv6 || ip->hop_limit() != k_nd_hop_limit) {
        return 0;
    }
    Bytes icmp = ip->payload();
    if (icmp.size() < k_ns_min || load_u8(icmp.data()) != k_icmp6_ns || load_u8(icmp.data() + 1) != 0) {
        return 0;
    }
    IpAddr src = ip->src();
    IpAddr dst = ip->dst();
    if (transport_checksum(src, dst, k_ipproto_icmpv6, icmp, true) != 0) {
        return 0;
    }
    IpAddr target = addr16_at(icmp.data() + 8);
    bool dad = is_unspecified(src);
    if (is_multicast6(src) || !stands_for_v6(target, net, guest6)) {
        return 0;
    }
    // Sent to the target's solicited-node group, or unicast to the target to confirm it is
    // still reachable; a probe from :: must be multicast (RFC 4861 7.1.1).
    bool to_group = is_solicited_node_of(dst, target);
    if (!to_group && (dad || dst != target)) {
        return 0;
    }
    if (!ns_options_valid(icmp, dad) || out.size() < k_neighbour_advert_size) {
        return 0;
    }
    std::byte* o = out.data();
    write_ethernet(o, dad ? k_all_nodes_mac : requester, k_ethertype_ipv6);
    const IpAddr& reply_dst = dad ? k_all_nodes : src;
    std::byte* h = o + k_eth;
    store_be32(h, 0x60000000u);
    store_be16(h + 4, static_cast<std::uint16_t>(k_na_len));
    store_u8(h + 6, k_ipproto_icmpv6);
    store_u8(h + 7, k_nd_hop_limit);
    std::memcpy(h + 8, target.bytes.data(), 16);
    std::memcpy(h + 24, reply_dst.bytes.data(), 16);
    std::byte* m = h + k_ipv6;
    store_u8(m, k_icmp6_na);
    store_u8(m + 1, 0);
    store_be16(m + 2, 0);
    store_be32(m + 4, k_na_router | (dad ? 0u : k_na_solicited) | k_na_override);
    std::memcpy(m + 8, target.bytes.data(), 16);
    store_u8(m + 24, k_opt_target_lla);
    store_u8(m + 25, 1);  // in units of 8 bytes
    std::memcpy(m + 26, k_netd_mac.data(), 6);
    store_be16(m + 2, transport_checksum(target, reply_dst, k_ipproto_icmpv6, Bytes(m, k_na_len), true));
    return k_neighbour_advert_size;
}

}  // namespace

bool guest_mac_of(Bytes frame, MacAddr& mac) noexcept {
    auto eth = EthernetView::of(frame);
    if (!eth) {
        return false;
    }
    MacAddr src = eth->src();
    bool multicast = (std::to_integer<unsigned>(src[0]) & 1u) != 0;  // includes broadcast
    bool zero = std::all_of(src.begin(), src.end(), [](std::byte b) { return b == std::byte{0}; });
    if (multicast || zero) {
        return false;
    }
    mac = src;
    return true;
}

std::size_t answer_neighbour(MutBytes out, Bytes frame, const GuestNet& net, const IpAddr& guest6) noexcept {
    MacAddr requester{};
    if (!guest_mac_of(frame, requester)) {
        return 0;
    }
    auto eth = EthernetView::of(frame);  // guest_mac_of saw the 14 bytes
    switch (eth->ethertype()) {
        case k_ethertype_arp:
            return answer_arp(out, requester, eth->payload(), net);
        case k_ethertype_ipv6:
            return answer_ns(out, requester, eth->payload(), net, guest6);
        default:
            return 0;
    }
}

}  // namespace sbx::net
