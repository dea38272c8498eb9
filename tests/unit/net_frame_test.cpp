#include "net_frames.hpp"
#include "sbx/net/frame.hpp"

#include <gtest/gtest.h>

using namespace sbx::net;
using namespace sbx::test;

namespace {

const IpAddr k_guest = ip("10.0.2.15");
const IpAddr k_remote = ip("93.184.216.34");
const IpAddr k_guest6 = ip("fec0::5054:ff:fe12:3456");
const IpAddr k_remote6 = ip("2606:2800:220:1:248:1893:25c8:1946");

}  // namespace

TEST(NetFrame, Ipv4TcpFields) {
    Frame f = tcp_frame(k_guest, k_remote, 40000, 443, k_syn | k_ack, 0x11223344, 0x55667788, 10);
    Packet p = parse_packet(f);
    ASSERT_EQ(p.kind, Packet::Kind::ip);
    EXPECT_FALSE(p.v6);
    EXPECT_EQ(p.protocol, k_ipproto_tcp);
    EXPECT_EQ(p.src, k_guest);
    EXPECT_EQ(p.dst, k_remote);
    EXPECT_EQ(p.sport, 40000);
    EXPECT_EQ(p.dport, 443);
    EXPECT_EQ(p.tcp_flags, k_syn | k_ack);
    EXPECT_EQ(p.tcp_seq, 0x11223344u);
    EXPECT_EQ(p.tcp_ack, 0x55667788u);
    EXPECT_EQ(p.tcp_payload_len, 10u);
    EXPECT_EQ(p.l3_header_len, 20u);
    EXPECT_EQ(p.l4_offset, 34u);
}

TEST(NetFrame, Ipv4OptionsAreSkipped) {
    IpOptions o;
    o.ipv4_option_bytes = 12;
    Frame f = udp_frame(k_guest, k_remote, 5000, 9999, Frame(3, std::byte{1}), o);
    Packet p = parse_packet(f);
    ASSERT_EQ(p.kind, Packet::Kind::ip);
    EXPECT_EQ(p.l3_header_len, 32u);
    EXPECT_EQ(p.dport, 9999);
    EXPECT_EQ(p.udp_payload_len, 3u);
}

TEST(NetFrame, EthernetPaddingIsNotPayload) {
    Frame f = udp_frame(k_guest, k_remote, 5000, 9999, Frame(1, std::byte{1}));
    f.resize(60);  // minimum Ethernet frame
    Packet p = parse_packet(f);
    ASSERT_EQ(p.kind, Packet::Kind::ip);
    EXPECT_EQ(p.udp_payload_len, 1u);
    EXPECT_EQ(p.l3_total_len, 29u);
}

TEST(NetFrame, EveryTruncationIsMalformed) {
    std::vector<Frame> frames = {
        tcp_frame(k_guest, k_remote, 1, 2, k_syn, 1, 0, 5),
        udp_frame(k_guest, k_remote, 1, 2),
        icmp_echo(k_guest, k_remote),
        tcp_frame(k_guest6, k_remote6, 1, 2),
        udp_frame(k_guest6, k_remote6, 1, 2),
        icmp_echo(k_guest6, k_remote6),
    };
    for (const auto& f : frames) {
        ASSERT_EQ(parse_packet(f).kind, Packet::Kind::ip);
        for (std::size_t n = 0; n < f.size(); ++n) {
            EXPECT_EQ(parse_packet(std::span(f).first(n)).kind, Packet::Kind::malformed) << "prefix " << n;
        }
    }
}

TEST(NetFrame, BadIpv4Lengths) {
    Frame base = udp_frame(k_guest, k_remote, 1, 2);
    auto with = [&](std::size_t at, std::uint8_t v) {
        Frame f = base;
        f[at] = static_cast<std::byte>(v);
        return parse_packet(f).kind;
    };
    EXPECT_EQ(with(14, 0x44), Packet::Kind::malformed);  // IHL 4
    EXPECT_EQ(with(14, 0x4f), Packet::Kind::malformed);  // IHL 15 > total length
    EXPECT_EQ(with(14, 0x65), Packet::Kind::malformed);  // version 6 in an IPv4 ethertype
    EXPECT_EQ(with(16, 0xff), Packet::Kind::malformed);  // total length beyond the frame
    EXPECT_EQ(with(17, 0x10), Packet::Kind::malformed);  // total length 16 < header
    Frame udp_long = base;
    udp_long[14 + 20 + 5] = std::byte{0x40};            // UDP length 64 > datagram
    EXPECT_EQ(parse_packet(udp_long).kind, Packet::Kind::malformed);
    Frame udp_short = base;
    udp_short[14 + 20 + 5] = std::byte{0x07};           // UDP length 7 < 8
    EXPECT_EQ(parse_packet(udp_short).kind, Packet::Kind::malformed);
    Frame tcp = tcp_frame(k_guest, k_remote, 1, 2);
    tcp[14 + 20 + 12] = std::byte{0x40};                // data offset 4
    EXPECT_EQ(parse_packet(tcp).kind, Packet::Kind::malformed);
    tcp[14 + 20 + 12] = std::byte{0xf0};                // data offset 60 > segment
    EXPECT_EQ(parse_packet(tcp).kind, Packet::Kind::malformed);
}

TEST(NetFrame, RuntsVlanAndUnknownEthertypes) {
    EXPECT_EQ(parse_packet(Frame(13)).kind, Packet::Kind::malformed);
    Frame vlan = ethernet(0x8100, Frame(60));
    EXPECT_EQ(parse_packet(vlan).kind, Packet::Kind::malformed);
    Frame qinq = ethernet(0x88A8, Frame(60));
    EXPECT_EQ(parse_packet(qinq).kind, Packet::Kind::malformed);
    Frame ipx = ethernet(0x8137, Frame(60));
    EXPECT_EQ(parse_packet(ipx).kind, Packet::Kind::malformed);
    EXPECT_EQ(parse_packet(arp_request()).kind, Packet::Kind::arp);
    Frame short_arp = arp_request();
    short_arp.resize(14 + 27);
    EXPECT_EQ(parse_packet(short_arp).kind, Packet::Kind::malformed);
}

TEST(NetFrame, Ipv4Fragments) {
    IpOptions first;
    first.more_fragments = true;
    EXPECT_EQ(parse_packet(udp_frame(k_guest, k_remote, 1, 2, Frame(8), first)).kind, Packet::Kind::fragment);
    IpOptions later;
    later.fragment_offset = 185;
    Packet p = parse_packet(udp_frame(k_guest, k_remote, 1, 2, Frame(8), later));
    EXPECT_EQ(p.kind, Packet::Kind::fragment);
    EXPECT_EQ(p.dst, k_remote);
}

TEST(NetFrame, Ipv6ExtensionHeaders) {
    IpOptions o;
    o.ipv6_ext = {0, 60, 43};
    Packet p = parse_packet(tcp_frame(k_guest6, k_remote6, 1234, 443, k_syn, 1, 0, 0, o));
    ASSERT_EQ(p.kind, Packet::Kind::ip);
    EXPECT_TRUE(p.v6);
    EXPECT_EQ(p.protocol, k_ipproto_tcp);
    EXPECT_EQ(p.l3_header_len, 40u + 24u);
    EXPECT_EQ(p.dport, 443);

    IpOptions frag;
    frag.ipv6_ext = {0, 44};
    EXPECT_EQ(parse_packet(udp_frame(k_guest6, k_remote6, 1, 2, Frame(8), frag)).kind, Packet::Kind::fragment);
    IpOptions atomic;  // even an "atomic" fragment (offset 0, no MF) is a fragment header
    atomic.ipv6_ext = {44};
    EXPECT_EQ(parse_packet(udp_frame(k_guest6, k_remote6, 1, 2, Frame(8), atomic)).kind, Packet::Kind::fragment);

    IpOptions too_many;
    too_many.ipv6_ext = {0, 60, 60, 60, 60};
    EXPECT_EQ(parse_packet(udp_frame(k_guest6, k_remote6, 1, 2, Frame(8), too_many)).kind,
              Packet::Kind::malformed);

    // An extension header whose length runs past the packet.
    IpOptions one;
    one.ipv6_ext = {60};
    Frame f = udp_frame(k_guest6, k_remote6, 1, 2, Frame(8), one);
    f[14 + 40 + 1] = std::byte{0x20};
    EXPECT_EQ(parse_packet(f).kind, Packet::Kind::malformed);
}

TEST(NetFrame, Ipv6PayloadLengthChecked) {
    Frame f = udp_frame(k_guest6, k_remote6, 1, 2);
    f[14 + 4] = std::byte{0x10};  // payload length 4096+
    EXPECT_EQ(parse_packet(f).kind, Packet::Kind::malformed);
    Frame g = udp_frame(k_guest6, k_remote6, 1, 2);
    g[14] = std::byte{0x40};  // version 4 in an IPv6 ethertype
    EXPECT_EQ(parse_packet(g).kind, Packet::Kind::malformed);
}

TEST(NetFrame, IcmpFields) {
    Packet p = parse_packet(icmp_echo(k_guest, k_remote, 0x4242));
    ASSERT_EQ(p.kind, Packet::Kind::ip);
    EXPECT_EQ(p.icmp_type, 8);
    EXPECT_EQ(p.sport, 0x4242);
    Packet p6 = parse_packet(icmp_echo(k_guest6, k_remote6, 9));
    ASSERT_EQ(p6.kind, Packet::Kind::ip);
    EXPECT_EQ(p6.protocol, k_ipproto_icmpv6);
    EXPECT_EQ(p6.icmp_type, 128);
}

TEST(NetFrame, ChecksumHelpersAgreeWithRfc1071) {
    Frame f = tcp_frame(k_guest, k_remote, 40000, 443, k_syn, 77, 0, 7);
    // The builder stored checksums computed independently; the engine must verify them to 0.
    EXPECT_EQ(ipv4_header_checksum(std::span(f).subspan(14, 20)), 0);
    auto seg = std::span<const std::byte>(f).subspan(34);
    EXPECT_EQ(transport_checksum(k_guest, k_remote, k_ipproto_tcp, seg, false), 0);
    Frame g = udp_frame(k_guest6, k_remote6, 1, 2, Frame(5, std::byte{9}));
    auto seg6 = std::span<const std::byte>(g).subspan(54);
    // UDP maps a computed 0 to 0xffff; over a correct datagram the result is 0 -> 0xffff.
    EXPECT_EQ(transport_checksum(k_guest6, k_remote6, k_ipproto_udp, seg6, true), 0xffff);
}
