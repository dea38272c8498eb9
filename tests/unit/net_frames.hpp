#pragma once
// Synthetic guest frames for the egress filter's tests: Ethernet, IPv4/IPv6 (with options,
// extension headers, fragments), TCP/UDP/ICMP and DNS queries, with correct checksums computed
// here independently of the engine, and QEMU stream framing.

#include "sbx/net/policy.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::test {

using Frame = std::vector<std::byte>;
using Mac = std::array<std::uint8_t, 6>;

inline constexpr Mac k_guest_mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
inline constexpr Mac k_slirp_mac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};

inline net::IpAddr ip(std::string_view text) {
    auto a = net::IpAddr::parse(text);
    if (!a) {
        throw std::runtime_error("bad test address " + std::string(text));
    }
    return *a;
}

inline void put8(Frame& f, std::uint8_t v) {
    f.push_back(static_cast<std::byte>(v));
}
inline void put16(Frame& f, std::uint16_t v) {
    put8(f, static_cast<std::uint8_t>(v >> 8));
    put8(f, static_cast<std::uint8_t>(v));
}
inline void put32(Frame& f, std::uint32_t v) {
    put16(f, static_cast<std::uint16_t>(v >> 16));
    put16(f, static_cast<std::uint16_t>(v));
}
inline void put(Frame& f, std::span<const std::byte> b) {
    f.insert(f.end(), b.begin(), b.end());
}
inline std::uint16_t get16(std::span<const std::byte> f, std::size_t at) {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(f[at]) << 8) | std::to_integer<unsigned>(f[at + 1]));
}
inline std::uint32_t get32(std::span<const std::byte> f, std::size_t at) {
    return (std::uint32_t{get16(f, at)} << 16) | get16(f, at + 2);
}
inline std::uint8_t get8(std::span<const std::byte> f, std::size_t at) {
    return std::to_integer<std::uint8_t>(f[at]);
}

// RFC 1071, written out plainly (independent of the engine's helpers).
inline std::uint16_t inet_checksum(const Frame& data) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < data.size(); i += 2) {
        std::uint32_t hi = std::to_integer<std::uint32_t>(data[i]) << 8;
        std::uint32_t lo = i + 1 < data.size() ? std::to_integer<std::uint32_t>(data[i + 1]) : 0;
        sum += hi | lo;
    }
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

inline Frame pseudo_header(const net::IpAddr& src, const net::IpAddr& dst, std::uint8_t proto, std::size_t len) {
    Frame p;
    bool v6 = !src.is_v4();
    if (v6) {
        for (auto b : src.bytes) put8(p, b);
        for (auto b : dst.bytes) put8(p, b);
        put32(p, static_cast<std::uint32_t>(len));
        put32(p, proto);
    } else {
        for (std::size_t i = 12; i < 16; ++i) put8(p, src.bytes[i]);
        for (std::size_t i = 12; i < 16; ++i) put8(p, dst.bytes[i]);
        put8(p, 0);
        put8(p, proto);
        put16(p, static_cast<std::uint16_t>(len));
    }
    return p;
}

// The checksum of `segment` under the pseudo-header; 0 when the stored checksum is right.
inline std::uint16_t verify_transport(const net::IpAddr& src, const net::IpAddr& dst, std::uint8_t proto,
                                      std::span<const std::byte> segment) {
    Frame all = pseudo_header(src, dst, proto, segment.size());
    all.insert(all.end(), segment.begin(), segment.end());
    return inet_checksum(all);
}

struct IpOptions {
    bool more_fragments = false;
    std::uint16_t fragment_offset = 0;   // in 8-byte units
    std::size_t ipv4_option_bytes = 0;   // multiple of 4: NOPs
    std::vector<std::uint8_t> ipv6_ext;  // extension header types in order (0, 43, 60, 44), 8 bytes each
    std::uint8_t ttl = 64;
};

inline Frame ethernet(std::uint16_t type, const Frame& payload, Mac dst = k_slirp_mac, Mac src = k_guest_mac) {
    Frame f;
    for (auto b : dst) put8(f, b);
    for (auto b : src) put8(f, b);
    put16(f, type);
    f.insert(f.end(), payload.begin(), payload.end());
    return f;
}

// An IP packet (v4 or v6 by the source's family) around `l4`, in an Ethernet frame.
inline Frame ip_frame(const net::IpAddr& src, const net::IpAddr& dst, std::uint8_t proto, const Frame& l4,
                      const IpOptions& o = {}) {
    Frame p;
    if (src.is_v4()) {
        std::size_t hl = 20 + o.ipv4_option_bytes;
        put8(p, static_cast<std::uint8_t>(0x40 | (hl / 4)));
        put8(p, 0);
        put16(p, static_cast<std::uint16_t>(hl + l4.size()));
        put16(p, 0x1234);
        put16(p, static_cast<std::uint16_t>((o.more_fragments ? 0x2000 : 0) | o.fragment_offset));
        put8(p, o.ttl);
        put8(p, proto);
        put16(p, 0);
        for (std::size_t i = 12; i < 16; ++i) put8(p, src.bytes[i]);
        for (std::size_t i = 12; i < 16; ++i) put8(p, dst.bytes[i]);
        for (std::size_t i = 0; i < o.ipv4_option_bytes; ++i) put8(p, 1);  // NOP
        std::uint16_t c = inet_checksum(Frame(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(hl)));
        p[10] = static_cast<std::byte>(c >> 8);
        p[11] = static_cast<std::byte>(c & 0xff);
        p.insert(p.end(), l4.begin(), l4.end());
        return ethernet(0x0800, p);
    }
    Frame ext;
    for (std::size_t i = 0; i < o.ipv6_ext.size(); ++i) {
        std::uint8_t next = i + 1 < o.ipv6_ext.size() ? o.ipv6_ext[i + 1] : proto;
        put8(ext, next);
        if (o.ipv6_ext[i] == 44) {
            put8(ext, 0);
            put16(ext, static_cast<std::uint16_t>((o.fragment_offset << 3) | (o.more_fragments ? 1 : 0)));
            put32(ext, 0xabcd);
        } else {
            put8(ext, 0);  // 8 bytes
            for (int k = 0; k < 6; ++k) put8(ext, k == 0 ? 1 : 0);  // PadN-ish filler
        }
    }
    put32(p, 0x60000000);
    put16(p, static_cast<std::uint16_t>(ext.size() + l4.size()));
    put8(p, o.ipv6_ext.empty() ? proto : o.ipv6_ext[0]);
    put8(p, o.ttl);
    for (auto b : src.bytes) put8(p, b);
    for (auto b : dst.bytes) put8(p, b);
    p.insert(p.end(), ext.begin(), ext.end());
    p.insert(p.end(), l4.begin(), l4.end());
    return ethernet(0x86DD, p);
}

inline Frame tcp_segment(const net::IpAddr& src, const net::IpAddr& dst, std::uint16_t sport, std::uint16_t dport,
                         std::uint8_t flags, std::uint32_t seq, std::uint32_t ack, std::size_t payload) {
    Frame t;
    put16(t, sport);
    put16(t, dport);
    put32(t, seq);
    put32(t, ack);
    put8(t, 5 << 4);
    put8(t, flags);
    put16(t, 65535);
    put16(t, 0);
    put16(t, 0);
    for (std::size_t i = 0; i < payload; ++i) put8(t, static_cast<std::uint8_t>('a' + i % 26));
    std::uint16_t c = verify_transport(src, dst, 6, t);
    t[16] = static_cast<std::byte>(c >> 8);
    t[17] = static_cast<std::byte>(c & 0xff);
    return t;
}

inline constexpr std::uint8_t k_fin = 0x01, k_syn = 0x02, k_rst = 0x04, k_psh = 0x08, k_ack = 0x10;

inline Frame tcp_frame(const net::IpAddr& src, const net::IpAddr& dst, std::uint16_t sport, std::uint16_t dport,
                       std::uint8_t flags = k_syn, std::uint32_t seq = 1000, std::uint32_t ack = 0,
                       std::size_t payload = 0, const IpOptions& o = {}) {
    return ip_frame(src, dst, 6, tcp_segment(src, dst, sport, dport, flags, seq, ack, payload), o);
}

inline Frame udp_datagram(const net::IpAddr& src, const net::IpAddr& dst, std::uint16_t sport, std::uint16_t dport,
                          const Frame& payload) {
    Frame u;
    put16(u, sport);
    put16(u, dport);
    put16(u, static_cast<std::uint16_t>(8 + payload.size()));
    put16(u, 0);
    u.insert(u.end(), payload.begin(), payload.end());
    std::uint16_t c = verify_transport(src, dst, 17, u);
    if (c == 0) {
        c = 0xffff;
    }
    u[6] = static_cast<std::byte>(c >> 8);
    u[7] = static_cast<std::byte>(c & 0xff);
    return u;
}

inline Frame udp_frame(const net::IpAddr& src, const net::IpAddr& dst, std::uint16_t sport, std::uint16_t dport,
                       const Frame& payload = Frame(4, std::byte{0x42}), const IpOptions& o = {}) {
    return ip_frame(src, dst, 17, udp_datagram(src, dst, sport, dport, payload), o);
}

inline Frame icmp_echo(const net::IpAddr& src, const net::IpAddr& dst, std::uint16_t id = 7, std::uint16_t seq = 1) {
    bool v6 = !src.is_v4();
    Frame m;
    put8(m, v6 ? 128 : 8);
    put8(m, 0);
    put16(m, 0);
    put16(m, id);
    put16(m, seq);
    for (int i = 0; i < 16; ++i) put8(m, static_cast<std::uint8_t>(i));
    std::uint16_t c = v6 ? verify_transport(src, dst, 58, m) : inet_checksum(m);
    m[2] = static_cast<std::byte>(c >> 8);
    m[3] = static_cast<std::byte>(c & 0xff);
    return ip_frame(src, dst, v6 ? 58 : 1, m);
}

inline Frame icmp6_message(const net::IpAddr& src, const net::IpAddr& dst, std::uint8_t type) {
    Frame m;
    put8(m, type);
    put8(m, 0);
    put16(m, 0);
    put32(m, 0);
    for (int i = 0; i < 16; ++i) put8(m, 0);
    std::uint16_t c = verify_transport(src, dst, 58, m);
    m[2] = static_cast<std::byte>(c >> 8);
    m[3] = static_cast<std::byte>(c & 0xff);
    return ip_frame(src, dst, 58, m);
}

inline Frame arp_request() {
    Frame a;
    put16(a, 1);
    put16(a, 0x0800);
    put8(a, 6);
    put8(a, 4);
    put16(a, 1);
    for (auto b : k_guest_mac) put8(a, b);
    put32(a, 0x0A00020F);
    for (int i = 0; i < 6; ++i) put8(a, 0);
    put32(a, 0x0A000202);
    return ethernet(0x0806, a, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
}

// A DNS query message: one question, RD set, optionally an EDNS OPT record.
inline Frame dns_query(std::uint16_t id, std::string_view name, std::uint16_t qtype, bool edns = false) {
    Frame q;
    put16(q, id);
    put16(q, 0x0100);
    put16(q, 1);
    put16(q, 0);
    put16(q, 0);
    put16(q, edns ? 1 : 0);
    std::size_t start = 0;
    while (start <= name.size() && !name.empty()) {
        std::size_t dot = name.find('.', start);
        std::string_view label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        put8(q, static_cast<std::uint8_t>(label.size()));
        for (char c : label) put8(q, static_cast<std::uint8_t>(c));
        if (dot == std::string_view::npos) {
            break;
        }
        start = dot + 1;
    }
    put8(q, 0);
    put16(q, qtype);
    put16(q, 1);
    if (edns) {
        put8(q, 0);
        put16(q, 41);
        put16(q, 1232);
        put32(q, 0);
        put16(q, 0);
    }
    return q;
}

// QEMU stream framing: 4-byte big-endian length + frame.
inline Frame stream(std::initializer_list<Frame> frames) {
    Frame s;
    for (const auto& f : frames) {
        put32(s, static_cast<std::uint32_t>(f.size()));
        s.insert(s.end(), f.begin(), f.end());
    }
    return s;
}

}  // namespace sbx::test
