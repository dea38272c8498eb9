#pragma once
// Bounds-checked views over Ethernet frames from the guest, and the checksum helpers the
// packet crafter needs. Every view is made by `of(bytes)`, which returns nothing unless the
// whole header (and the length fields it declares) fits in `bytes`; after that its accessors
// read inside the checked range only. Fields are read with memcpy, never by casting pointers
// into the buffer (frames sit at any alignment in the stream buffer).
//
// parse_packet() composes the views into one flat Packet: what the filter needs to decide,
// with lengths taken from the IP headers (never from the frame size alone: Ethernet padding
// is not payload). Its limits: IPv4 options are skipped via IHL; at most
// k_max_ipv6_ext_headers IPv6 extension headers are walked (more is malformed); a Fragment
// header or an IPv4 fragment yields Packet::Kind::fragment; 802.1Q/802.1ad tags and unknown
// ethertypes are malformed.

#include "sbx/net/policy.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace sbx::net {

using Bytes = std::span<const std::byte>;
using MutBytes = std::span<std::byte>;

inline std::uint8_t load_u8(const std::byte* p) noexcept {
    return static_cast<std::uint8_t>(*p);
}
inline std::uint16_t load_be16(const std::byte* p) noexcept {
    std::uint8_t b[2];
    std::memcpy(b, p, 2);
    return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
}
inline std::uint32_t load_be32(const std::byte* p) noexcept {
    std::uint8_t b[4];
    std::memcpy(b, p, 4);
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
           std::uint32_t{b[3]};
}
inline void store_u8(std::byte* p, std::uint8_t v) noexcept {
    *p = static_cast<std::byte>(v);
}
inline void store_be16(std::byte* p, std::uint16_t v) noexcept {
    std::uint8_t b[2] = {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    std::memcpy(p, b, 2);
}
inline void store_be32(std::byte* p, std::uint32_t v) noexcept {
    std::uint8_t b[4] = {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                         static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    std::memcpy(p, b, 4);
}

inline constexpr std::uint16_t k_ethertype_ipv4 = 0x0800;
inline constexpr std::uint16_t k_ethertype_arp = 0x0806;
inline constexpr std::uint16_t k_ethertype_ipv6 = 0x86DD;
inline constexpr std::uint16_t k_ethertype_vlan = 0x8100;
inline constexpr std::uint16_t k_ethertype_qinq = 0x88A8;

inline constexpr std::uint8_t k_ipproto_icmp = 1;
inline constexpr std::uint8_t k_ipproto_tcp = 6;
inline constexpr std::uint8_t k_ipproto_udp = 17;
inline constexpr std::uint8_t k_ipproto_icmpv6 = 58;

inline constexpr std::uint8_t k_tcp_fin = 0x01;
inline constexpr std::uint8_t k_tcp_syn = 0x02;
inline constexpr std::uint8_t k_tcp_rst = 0x04;
inline constexpr std::uint8_t k_tcp_psh = 0x08;
inline constexpr std::uint8_t k_tcp_ack = 0x10;

using MacAddr = std::array<std::byte, 6>;

class EthernetView {
public:
    static constexpr std::size_t k_size = 14;
    static std::optional<EthernetView> of(Bytes frame) noexcept;
    MacAddr dst() const noexcept;
    MacAddr src() const noexcept;
    std::uint16_t ethertype() const noexcept { return load_be16(m_b.data() + 12); }
    Bytes payload() const noexcept { return m_b.subspan(k_size); }

private:
    explicit EthernetView(Bytes b) : m_b(b) {}
    Bytes m_b;
};

// ARP for IPv4 over Ethernet only (htype 1, ptype 0x0800, hlen 6, plen 4).
class ArpView {
public:
    static constexpr std::size_t k_size = 28;
    static std::optional<ArpView> of(Bytes l3) noexcept;
    std::uint16_t op() const noexcept { return load_be16(m_b.data() + 6); }

private:
    explicit ArpView(Bytes b) : m_b(b) {}
    Bytes m_b;
};

class Ipv4View {
public:
    static constexpr std::size_t k_min_size = 20;
    // Checks version 4, IHL >= 5, IHL*4 <= total length <= bytes.size().
    static std::optional<Ipv4View> of(Bytes l3) noexcept;
    std::size_t header_len() const noexcept { return (load_u8(m_b.data()) & 0x0fu) * 4u; }
    std::size_t total_len() const noexcept { return load_be16(m_b.data() + 2); }
    std::uint16_t ident() const noexcept { return load_be16(m_b.data() + 4); }
    bool more_fragments() const noexcept { return (load_u8(m_b.data() + 6) & 0x20) != 0; }
    std::uint16_t fragment_offset() const noexcept { return load_be16(m_b.data() + 6) & 0x1fff; }
    bool is_fragment() const noexcept { return more_fragments() || fragment_offset() != 0; }
    std::uint8_t ttl() const noexcept { return load_u8(m_b.data() + 8); }
    std::uint8_t protocol() const noexcept { return load_u8(m_b.data() + 9); }
    IpAddr src() const noexcept { return IpAddr::v4(load_be32(m_b.data() + 12)); }
    IpAddr dst() const noexcept { return IpAddr::v4(load_be32(m_b.data() + 16)); }
    Bytes header() const noexcept { return m_b.first(header_len()); }
    // The packet as its header declares it (without Ethernet padding).
    Bytes packet() const noexcept { return m_b.first(total_len()); }
    Bytes payload() const noexcept { return m_b.subspan(header_len(), total_len() - header_len()); }

private:
    explicit Ipv4View(Bytes b) : m_b(b) {}
    Bytes m_b;
};

class Ipv6View {
public:
    static constexpr std::size_t k_size = 40;
    // Checks version 6 and 40 + payload length <= bytes.size().
    static std::optional<Ipv6View> of(Bytes l3) noexcept;
    std::size_t payload_len() const noexcept { return load_be16(m_b.data() + 4); }
    std::uint8_t next_header() const noexcept { return load_u8(m_b.data() + 6); }
    std::uint8_t hop_limit() const noexcept { return load_u8(m_b.data() + 7); }
    IpAddr src() const noexcept { return addr_at(8); }
    IpAddr dst() const noexcept { return addr_at(24); }
    Bytes packet() const noexcept { return m_b.first(k_size + payload_len()); }
    Bytes payload() const noexcept { return m_b.subspan(k_size, payload_len()); }

private:
    explicit Ipv6View(Bytes b) : m_b(b) {}
    IpAddr addr_at(std::size_t off) const noexcept;
    Bytes m_b;
};

inline constexpr std::size_t k_max_ipv6_ext_headers = 4;

// Where the transport header of an IPv6 packet starts, after walking extension headers.
struct Ipv6Transport {
    std::uint8_t protocol = 0;
    std::size_t offset = 0;  // from the start of the IPv6 header
    bool fragment = false;   // a Fragment header was met (the walk stops there)
};
// Walks hop-by-hop, routing, destination options and fragment headers, at most
// k_max_ipv6_ext_headers of them; nothing when one does not fit or there are more.
std::optional<Ipv6Transport> walk_ipv6_ext(const Ipv6View& ip) noexcept;

class TcpView {
public:
    static constexpr std::size_t k_min_size = 20;
    // Checks 20 <= data offset * 4 <= bytes.size().
    static std::optional<TcpView> of(Bytes l4) noexcept;
    std::uint16_t sport() const noexcept { return load_be16(m_b.data()); }
    std::uint16_t dport() const noexcept { return load_be16(m_b.data() + 2); }
    std::uint32_t seq() const noexcept { return load_be32(m_b.data() + 4); }
    std::uint32_t ack() const noexcept { return load_be32(m_b.data() + 8); }
    std::size_t header_len() const noexcept { return (load_u8(m_b.data() + 12) >> 4) * 4u; }
    std::uint8_t flags() const noexcept { return load_u8(m_b.data() + 13); }
    std::size_t payload_len() const noexcept { return m_b.size() - header_len(); }

private:
    explicit TcpView(Bytes b) : m_b(b) {}
    Bytes m_b;
};

class UdpView {
public:
    static constexpr std::size_t k_size = 8;
    // Checks 8 <= UDP length <= bytes.size().
    static std::optional<UdpView> of(Bytes l4) noexcept;
    std::uint16_t sport() const noexcept { return load_be16(m_b.data()); }
    std::uint16_t dport() const noexcept { return load_be16(m_b.data() + 2); }
    std::size_t length() const noexcept { return load_be16(m_b.data() + 4); }
    Bytes payload() const noexcept { return m_b.subspan(k_size, length() - k_size); }

private:
    explicit UdpView(Bytes b) : m_b(b) {}
    Bytes m_b;
};

// ICMP and ICMPv6 share the first 8 bytes' layout (type, code, checksum, 4 bytes of rest).
class IcmpView {
public:
    static constexpr std::size_t k_size = 8;
    static std::optional<IcmpView> of(Bytes l4) noexcept;
    std::uint8_t type() const noexcept { return load_u8(m_b.data()); }
    std::uint8_t code() const noexcept { return load_u8(m_b.data() + 1); }
    std::uint16_t ident() const noexcept { return load_be16(m_b.data() + 4); }  // echo

private:
    explicit IcmpView(Bytes b) : m_b(b) {}
    Bytes m_b;
};

// What the filter knows about one frame after parsing.
struct Packet {
    enum class Kind : std::uint8_t {
        malformed,  // runt, bad lengths, VLAN tag, unknown ethertype, truncated transport header
        arp,
        ip,         // IPv4 or IPv6, not a fragment; transport fields filled for TCP/UDP/ICMP
        fragment,   // IPv4 MF/offset or an IPv6 Fragment header: never forwarded
    };
    // Offsets and lengths are 32-bit (an IP packet is at most 64 KiB plus headers) and the
    // fields are ordered for packing: at 80 bytes the compiler zeroes a Packet with a few
    // vector stores, where a bigger one costs a `rep stos` on every frame.
    std::uint32_t l3_header_len = 0;  // IPv4 header with options, or IPv6 header + extensions
    std::uint32_t l3_total_len = 0;   // the whole IP packet as its header declares it
    std::uint32_t l4_offset = 0;      // from the start of the frame
    std::uint32_t l4_len = 0;         // transport header + payload
    std::uint32_t tcp_seq = 0, tcp_ack = 0;
    std::uint32_t tcp_payload_len = 0;
    std::uint32_t udp_payload_offset = 0, udp_payload_len = 0;  // from the start of the frame
    IpAddr src, dst;
    std::uint16_t sport = 0, dport = 0;  // TCP/UDP ports; the ICMP echo identifier as sport
    std::uint16_t l3_offset = EthernetView::k_size;
    Kind kind = Kind::malformed;
    bool v6 = false;
    std::uint8_t protocol = 0;      // transport protocol (after IPv6 extension headers)
    std::uint8_t tcp_flags = 0;
    std::uint8_t icmp_type = 0, icmp_code = 0;
};
static_assert(sizeof(Packet) <= 80, "a bigger Packet is zeroed with rep stos on every frame");

Packet parse_packet(Bytes frame) noexcept;

// Internet checksum pieces: a running 32-bit sum of 16-bit big-endian words.
std::uint32_t checksum_partial(Bytes data, std::uint32_t sum = 0) noexcept;
std::uint16_t checksum_fold(std::uint32_t sum) noexcept;
// The IPv4 header checksum over `header` (its checksum field must be zero or is included).
std::uint16_t ipv4_header_checksum(Bytes header) noexcept;
// TCP, UDP or ICMPv6 checksum over `segment` with the IPv4 or IPv6 pseudo-header.
std::uint16_t transport_checksum(const IpAddr& src, const IpAddr& dst, std::uint8_t protocol,
                                 Bytes segment, bool v6) noexcept;

}  // namespace sbx::net
