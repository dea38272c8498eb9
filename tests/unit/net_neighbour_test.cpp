// netd's ARP and Neighbour Discovery answers: requests are built here byte by byte (checksums
// by net_frames.hpp's independent RFC 1071 code), every field of each reply is checked, and
// every refusal (wrong address, wrong format, truncation, hop limit, checksum, DAD rules, a
// short buffer) answers nothing.

#include "net_frames.hpp"

#include "sbx/net/frame.hpp"
#include "sbx/net/neighbour.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace sbx::test {
namespace {

using net::Bytes;
using net::GuestNet;
using net::IpAddr;
using net::MacAddr;

const IpAddr k_guest6 = ip("fec0::15");
constexpr Mac k_broadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr Mac k_netd = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
constexpr Mac k_all_nodes_mac = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};

MacAddr mac(const Mac& m) {
    MacAddr out{};
    for (std::size_t i = 0; i < 6; ++i) {
        out[i] = std::byte{m[i]};
    }
    return out;
}

void put_mac(Frame& f, const Mac& m) {
    for (auto b : m) {
        put8(f, b);
    }
}
void put_addr(Frame& f, const IpAddr& a) {
    for (auto b : a.bytes) {
        put8(f, b);
    }
}

Mac mac_at(const Frame& f, std::size_t at) {
    Mac m{};
    for (std::size_t i = 0; i < 6; ++i) {
        m[i] = get8(f, at + i);
    }
    return m;
}
IpAddr addr_at(const Frame& f, std::size_t at) {
    std::array<std::uint8_t, 16> b{};
    for (std::size_t i = 0; i < 16; ++i) {
        b[i] = get8(f, at + i);
    }
    return IpAddr::v6(b);
}

// ---- ARP requests -------------------------------------------------------------------------

struct Arp {
    std::uint16_t htype = 1;
    std::uint16_t ptype = 0x0800;
    std::uint8_t hlen = 6;
    std::uint8_t plen = 4;
    std::uint16_t op = 1;
    Mac sha = k_guest_mac;
    std::uint32_t spa = 0x0A00020F;  // 10.0.2.15
    Mac tha = {};
    std::uint32_t tpa = 0x0A000202;  // 10.0.2.2
    Mac eth_src = k_guest_mac;
    Mac eth_dst = k_broadcast;
};

Frame arp_frame(const Arp& a) {
    Frame f;
    put_mac(f, a.eth_dst);
    put_mac(f, a.eth_src);
    put16(f, 0x0806);
    put16(f, a.htype);
    put16(f, a.ptype);
    put8(f, a.hlen);
    put8(f, a.plen);
    put16(f, a.op);
    put_mac(f, a.sha);
    put32(f, a.spa);
    put_mac(f, a.tha);
    put32(f, a.tpa);
    return f;
}

// ---- Neighbour Solicitations --------------------------------------------------------------

IpAddr solicited_node(const IpAddr& target) {
    std::array<std::uint8_t, 16> b = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
    b[13] = target.bytes[13];
    b[14] = target.bytes[14];
    b[15] = target.bytes[15];
    return IpAddr::v6(b);
}

struct Ns {
    IpAddr src = ip("fec0::15");
    IpAddr target = ip("fec0::2");
    std::optional<IpAddr> dst;  // the target's solicited-node group when unset
    std::uint8_t hop_limit = 255;
    std::uint8_t type = 135;
    std::uint8_t code = 0;
    bool source_lla = true;
    std::vector<std::uint8_t> extra_options;  // raw bytes after the source link-layer option
    bool corrupt_checksum = false;
    bool hop_by_hop = false;   // an extension header in front of ICMPv6
    std::size_t icmp_cut = 0;  // bytes cut off the message's end (checksum and lengths agree)
    Mac eth_src = k_guest_mac;
};

Frame ns_frame(const Ns& n) {
    IpAddr dst = n.dst ? *n.dst : solicited_node(n.target);
    Frame m;
    put8(m, n.type);
    put8(m, n.code);
    put16(m, 0);  // checksum, below
    put32(m, 0);  // reserved
    put_addr(m, n.target);
    if (n.source_lla) {
        put8(m, 1);
        put8(m, 1);
        put_mac(m, n.eth_src);
    }
    for (auto b : n.extra_options) {
        put8(m, b);
    }
    m.resize(m.size() - n.icmp_cut);
    std::uint16_t c = verify_transport(n.src, dst, 58, m);
    if (n.corrupt_checksum) {
        c = static_cast<std::uint16_t>(c ^ 0x0101);
    }
    m[2] = static_cast<std::byte>(c >> 8);
    m[3] = static_cast<std::byte>(c & 0xff);

    Frame f;
    Mac eth_dst = {0x33, 0x33, dst.bytes[12], dst.bytes[13], dst.bytes[14], dst.bytes[15]};
    put_mac(f, eth_dst);
    put_mac(f, n.eth_src);
    put16(f, 0x86DD);
    put32(f, 0x60000000u);
    put16(f, static_cast<std::uint16_t>(m.size() + (n.hop_by_hop ? 8 : 0)));
    put8(f, n.hop_by_hop ? 0 : 58);
    put8(f, n.hop_limit);
    put_addr(f, n.src);
    put_addr(f, dst);
    if (n.hop_by_hop) {
        put8(f, 58);  // next header
        put8(f, 0);   // 8 bytes
        put8(f, 1);   // PadN
        put8(f, 4);
        put32(f, 0);
    }
    f.insert(f.end(), m.begin(), m.end());
    return f;
}

// ---- Running the responder ----------------------------------------------------------------

Frame answer(const Frame& request, const GuestNet& net = {}, const IpAddr& guest6 = k_guest6,
             std::size_t out_size = 1514) {
    Frame out(out_size, std::byte{0xee});
    std::size_t n = net::answer_neighbour(out, request, net, guest6);
    out.resize(n);
    return out;
}

void expect_arp_reply(const Frame& r, std::uint32_t asked, const Mac& requester_mac = k_guest_mac,
                      std::uint32_t requester_ip = 0x0A00020F) {
    ASSERT_EQ(r.size(), 60u);
    ASSERT_EQ(r.size(), net::k_arp_reply_size);
    EXPECT_EQ(mac_at(r, 0), k_guest_mac);  // to the requester's Ethernet source
    EXPECT_EQ(mac_at(r, 6), k_netd);
    EXPECT_EQ(get16(r, 12), 0x0806);
    EXPECT_EQ(get16(r, 14), 1);       // htype Ethernet
    EXPECT_EQ(get16(r, 16), 0x0800);  // ptype IPv4
    EXPECT_EQ(get8(r, 18), 6);
    EXPECT_EQ(get8(r, 19), 4);
    EXPECT_EQ(get16(r, 20), 2);  // reply
    EXPECT_EQ(mac_at(r, 22), k_netd);
    EXPECT_EQ(get32(r, 28), asked);
    EXPECT_EQ(mac_at(r, 32), requester_mac);
    EXPECT_EQ(get32(r, 38), requester_ip);
    for (std::size_t i = 42; i < 60; ++i) {
        EXPECT_EQ(get8(r, i), 0) << "padding byte " << i;
    }
    EXPECT_EQ(net::parse_packet(r).kind, net::Packet::Kind::arp);
}

// The advertisement for `target`: to `to` at `to_mac`, with `flags` in the top byte.
void expect_na(const Frame& r, const IpAddr& target, const IpAddr& to, const Mac& to_mac,
               std::uint8_t flags) {
    ASSERT_EQ(r.size(), 86u);
    ASSERT_EQ(r.size(), net::k_neighbour_advert_size);
    EXPECT_EQ(mac_at(r, 0), to_mac);
    EXPECT_EQ(mac_at(r, 6), k_netd);
    EXPECT_EQ(get16(r, 12), 0x86DD);
    EXPECT_EQ(get32(r, 14), 0x60000000u);  // version 6, no traffic class, no flow label
    EXPECT_EQ(get16(r, 18), 32);           // payload length
    EXPECT_EQ(get8(r, 20), 58);            // ICMPv6
    EXPECT_EQ(get8(r, 21), 255);           // hop limit
    EXPECT_EQ(addr_at(r, 22), target);     // from the address asked for
    EXPECT_EQ(addr_at(r, 38), to);
    EXPECT_EQ(get8(r, 54), 136);  // Neighbour Advertisement
    EXPECT_EQ(get8(r, 55), 0);
    EXPECT_EQ(get8(r, 58), flags);
    EXPECT_EQ(get8(r, 59), 0);
    EXPECT_EQ(get16(r, 60), 0);
    EXPECT_EQ(addr_at(r, 62), target);
    EXPECT_EQ(get8(r, 78), 2);  // target link-layer address option
    EXPECT_EQ(get8(r, 79), 1);  // 8 bytes
    EXPECT_EQ(mac_at(r, 80), k_netd);
    Bytes icmp = Bytes(r).subspan(54);
    EXPECT_EQ(net::transport_checksum(target, to, net::k_ipproto_icmpv6, icmp, true), 0);
    EXPECT_EQ(verify_transport(target, to, 58, icmp), 0);
    net::Packet p = net::parse_packet(r);
    EXPECT_EQ(p.kind, net::Packet::Kind::ip);
    EXPECT_EQ(p.icmp_type, 136);
}

constexpr std::uint8_t k_rso = 0xE0;  // Router, Solicited, Override
constexpr std::uint8_t k_ro = 0xA0;   // Router, Override

}  // namespace

TEST(NetNeighbour, MacIsLibslirpVirtualHostMac) {
    // libslirp: special_ethaddr 52:55:00:00:00:00 with bytes 2..5 the host's IPv4 address.
    EXPECT_EQ(net::k_netd_mac, mac(k_netd));
    EXPECT_EQ(net::k_netd_mac, mac(k_slirp_mac));
}

TEST(NetNeighbour, ArpForHostAliasAndResolver) {
    for (std::uint32_t asked : {0x0A000202u, 0x0A000203u}) {
        Arp a;
        a.tpa = asked;
        expect_arp_reply(answer(arp_frame(a)), asked);
    }
}

TEST(NetNeighbour, ArpForEveryOtherOnLinkAddress) {
    for (std::uint32_t asked : {0x0A000201u, 0x0A000204u, 0x0A00024Du, 0x0A0002FEu}) {
        Arp a;
        a.tpa = asked;
        expect_arp_reply(answer(arp_frame(a)), asked);
    }
}

TEST(NetNeighbour, ArpRepliesToTheRequesterWhateverItsEthernetDestination) {
    Arp a;
    a.eth_dst = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x03};  // libslirp's MAC for 10.0.2.3, cached
    a.tpa = 0x0A000203;
    a.tha = a.eth_dst;
    expect_arp_reply(answer(arp_frame(a)), 0x0A000203);
}

TEST(NetNeighbour, ArpTargetHardwareAddressIsTheSendersField) {
    Arp a;
    a.sha = {0x02, 0x00, 0x00, 0x00, 0x00, 0x99};  // differs from the Ethernet source
    Frame r = answer(arp_frame(a));
    expect_arp_reply(r, 0x0A000202, a.sha);
}

TEST(NetNeighbour, ArpProbeFromUnspecifiedIsAnswered) {
    Arp a;  // RFC 5227 probe: sender IP 0.0.0.0
    a.spa = 0;
    a.tpa = 0x0A000203;
    expect_arp_reply(answer(arp_frame(a)), 0x0A000203, k_guest_mac, 0);
}

TEST(NetNeighbour, ArpWithEthernetPaddingIsAnswered) {
    Frame f = arp_frame(Arp{});
    f.resize(60);
    expect_arp_reply(answer(f), 0x0A000202);
}

TEST(NetNeighbour, ArpRefusedForAddressesNetdDoesNotStandFor) {
    for (std::uint32_t asked : {0x0A00020Fu,  // the guest itself
                                0x0A000200u,  // network address
                                0x0A0002FFu,  // broadcast
                                0x0A000302u,  // 10.0.3.2, outside 10.0.2.0/24
                                0x0A000102u,  // 10.0.1.2
                                0x08080808u,  // 8.8.8.8
                                0x00000000u, 0xFFFFFFFFu}) {
        Arp a;
        a.tpa = asked;
        EXPECT_TRUE(answer(arp_frame(a)).empty()) << std::hex << asked;
    }
}

TEST(NetNeighbour, GratuitousArpIsNotAnswered) {
    for (std::uint32_t addr : {0x0A00020Fu, 0x0A000202u}) {
        Arp a;
        a.spa = addr;
        a.tpa = addr;
        EXPECT_TRUE(answer(arp_frame(a)).empty()) << std::hex << addr;
    }
}

TEST(NetNeighbour, ArpOtherThanARequestIsNotAnswered) {
    for (std::uint16_t op : std::array<std::uint16_t, 5>{0, 2, 3, 4, 0x0101}) {
        Arp a;
        a.op = op;
        EXPECT_TRUE(answer(arp_frame(a)).empty()) << op;
    }
}

TEST(NetNeighbour, ArpOfAnotherFormatIsNotAnswered) {
    std::vector<std::pair<const char*, Arp>> cases(6);
    cases[0] = {"htype 6", {}};
    cases[0].second.htype = 6;
    cases[1] = {"ptype IPv6", {}};
    cases[1].second.ptype = 0x86DD;
    cases[2] = {"hlen 8", {}};
    cases[2].second.hlen = 8;
    cases[3] = {"hlen 0", {}};
    cases[3].second.hlen = 0;
    cases[4] = {"plen 16", {}};
    cases[4].second.plen = 16;
    cases[5] = {"plen 6", {}};
    cases[5].second.plen = 6;
    for (const auto& [name, a] : cases) {
        EXPECT_TRUE(answer(arp_frame(a)).empty()) << name;
    }
}

TEST(NetNeighbour, RequestsFromMulticastOrZeroMacAreNotAnswered) {
    for (Mac src : {k_broadcast, Mac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}, Mac{0x33, 0x33, 0, 0, 0, 1},
                    Mac{0, 0, 0, 0, 0, 0}}) {
        Arp a;
        a.eth_src = src;
        EXPECT_TRUE(answer(arp_frame(a)).empty());
        Ns n;
        n.eth_src = src;
        EXPECT_TRUE(answer(ns_frame(n)).empty());
    }
}

TEST(NetNeighbour, EveryTruncationIsRefused) {
    std::vector<Frame> requests = {arp_frame(Arp{}), ns_frame(Ns{})};
    for (const Frame& full : requests) {
        ASSERT_FALSE(answer(full).empty());
        for (std::size_t len = 0; len < full.size(); ++len) {
            Frame cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
            EXPECT_TRUE(answer(cut).empty()) << "length " << len << " of " << full.size();
        }
    }
}

TEST(NetNeighbour, ABufferTooSmallGetsNothing) {
    Frame arp = arp_frame(Arp{});
    for (std::size_t size : {0u, 1u, 41u, 42u, 59u}) {
        EXPECT_TRUE(answer(arp, {}, k_guest6, size).empty()) << size;
    }
    expect_arp_reply(answer(arp, {}, k_guest6, 60), 0x0A000202);

    Frame ns = ns_frame(Ns{});
    for (std::size_t size : {0u, 14u, 54u, 85u}) {
        EXPECT_TRUE(answer(ns, {}, k_guest6, size).empty()) << size;
    }
    expect_na(answer(ns, {}, k_guest6, 86), ip("fec0::2"), k_guest6, k_guest_mac, k_rso);
}

TEST(NetNeighbour, ABufferTooSmallIsNotWritten) {
    Frame out(59, std::byte{0xee});
    EXPECT_EQ(net::answer_neighbour(out, arp_frame(Arp{}), GuestNet{}, k_guest6), 0u);
    for (auto b : out) {
        EXPECT_EQ(b, std::byte{0xee});
    }
}

TEST(NetNeighbour, OtherFramesAreNotAnswered) {
    EXPECT_TRUE(answer(tcp_frame(ip("10.0.2.15"), ip("10.0.2.2"), 40000, 22, k_syn)).empty());
    EXPECT_TRUE(answer(udp_frame(ip("10.0.2.15"), ip("10.0.2.3"), 40000, 53)).empty());
    EXPECT_TRUE(answer(icmp_echo(k_guest6, ip("fec0::2"))).empty());
    EXPECT_TRUE(answer(icmp6_message(k_guest6, ip("fec0::2"), 133)).empty());  // Router Solicitation
    Frame vlan = arp_frame(Arp{});
    vlan[12] = std::byte{0x81};
    vlan[13] = std::byte{0x00};
    EXPECT_TRUE(answer(vlan).empty());
    Frame v4type = arp_frame(Arp{});
    v4type[13] = std::byte{0x00};  // 0x0800 with an ARP body
    EXPECT_TRUE(answer(v4type).empty());
    EXPECT_TRUE(answer(Frame{}).empty());
}

TEST(NetNeighbour, SolicitationForHostAndResolver) {
    for (const char* t : {"fec0::2", "fec0::3"}) {
        Ns n;
        n.target = ip(t);
        expect_na(answer(ns_frame(n)), n.target, k_guest6, k_guest_mac, k_rso);
    }
}

TEST(NetNeighbour, SolicitationForAnyOtherAddressOfThePrefix) {
    for (const char* t : {"fec0::1", "fec0::16", "fec0::1:2", "fec0::ffff:ffff:ffff:ffff", "fec0::"}) {
        Ns n;
        n.target = ip(t);
        expect_na(answer(ns_frame(n)), n.target, k_guest6, k_guest_mac, k_rso);
    }
}

TEST(NetNeighbour, UnicastSolicitationConfirmingReachability) {
    Ns n;
    n.dst = ip("fec0::2");
    expect_na(answer(ns_frame(n)), n.target, k_guest6, k_guest_mac, k_rso);
}

TEST(NetNeighbour, SolicitationFromLinkLocalSourceIsAnsweredThere) {
    Ns n;
    n.src = ip("fe80::5054:ff:fe12:3456");
    expect_na(answer(ns_frame(n)), n.target, n.src, k_guest_mac, k_rso);
}

TEST(NetNeighbour, SolicitationWithoutOrWithMoreOptions) {
    Ns none;
    none.source_lla = false;
    expect_na(answer(ns_frame(none)), none.target, k_guest6, k_guest_mac, k_rso);
    Ns more;  // an unknown option (type 200, 16 bytes) is skipped, RFC 4861 7.1.1
    more.extra_options = {200, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    expect_na(answer(ns_frame(more)), more.target, k_guest6, k_guest_mac, k_rso);
}

TEST(NetNeighbour, SolicitationWithEthernetPadding) {
    Ns n;
    n.source_lla = false;  // 14 + 40 + 24 = 78 bytes: pad well past it
    Frame f = ns_frame(n);
    f.resize(f.size() + 20);
    expect_na(answer(f), n.target, k_guest6, k_guest_mac, k_rso);
}

TEST(NetNeighbour, SolicitationNotOnLinkOrMalformedIsRefused) {
    std::vector<std::pair<const char*, Ns>> cases(10);
    cases[0] = {"hop limit 64", {}};
    cases[0].second.hop_limit = 64;
    cases[1] = {"hop limit 254", {}};
    cases[1].second.hop_limit = 254;
    cases[2] = {"code 1", {}};
    cases[2].second.code = 1;
    cases[3] = {"bad checksum", {}};
    cases[3].second.corrupt_checksum = true;
    cases[4] = {"hop-by-hop header", {}};
    cases[4].second.hop_by_hop = true;
    cases[5] = {"zero-length option", {}};
    cases[5].second.extra_options = {200, 0, 0, 0, 0, 0, 0, 0};
    cases[6] = {"option past the end", {}};
    cases[6].second.extra_options = {200, 2, 0, 0, 0, 0, 0, 0};  // says 16 bytes, has 8
    cases[7] = {"one byte of option", {}};
    cases[7].second.extra_options = {200};
    cases[8] = {"20-byte message", {}};  // lengths and checksum agree: below the 24 minimum
    cases[8].second.source_lla = false;
    cases[8].second.icmp_cut = 4;
    cases[9] = {"an advertisement", {}};
    cases[9].second.type = 136;
    for (const auto& [name, n] : cases) {
        EXPECT_TRUE(answer(ns_frame(n)).empty()) << name;
    }
}

TEST(NetNeighbour, SolicitationForAddressesNetdDoesNotStandForIsRefused) {
    for (const char* t : {"fec0::15",  // the guest itself
                          "fe80::1",   // link-local: the guest's router is fec0::2
                          "fe80::2", "fec0:0:0:1::2", "2001:db8::2", "::ffff:10.0.2.2", "ff02::1", "::"}) {
        Ns n;
        n.target = ip(t);
        EXPECT_TRUE(answer(ns_frame(n)).empty()) << t;
    }
}

TEST(NetNeighbour, TheGuestsOwnAddressIsTheParameter) {
    Ns n;
    n.src = ip("fec0::5054:ff:fe12:3456");
    n.target = ip("fec0::5054:ff:fe12:3456");
    n.dst = ip("fec0::5054:ff:fe12:3456");
    Frame own = ns_frame(n);
    EXPECT_TRUE(answer(own, {}, n.src).empty());
    n.target = ip("fec0::15");
    n.dst.reset();
    expect_na(answer(ns_frame(n), {}, ip("fec0::5054:ff:fe12:3456")), n.target, n.src, k_guest_mac, k_rso);
}

TEST(NetNeighbour, SolicitationToAnotherDestinationIsRefused) {
    for (const char* d : {"ff02::1", "fec0::3", "ff02::1:ff00:3"}) {  // target fec0::2
        Ns n;
        n.dst = ip(d);
        EXPECT_TRUE(answer(ns_frame(n)).empty()) << d;
    }
}

TEST(NetNeighbour, SolicitationFromMulticastSourceIsRefused) {
    Ns n;
    n.src = ip("ff02::1");
    EXPECT_TRUE(answer(ns_frame(n)).empty());
}

TEST(NetNeighbour, DuplicateAddressDetectionForAnAddressNetdStandsFor) {
    // The guest probes fec0::2 before taking it: netd defends it, to all nodes, without
    // Solicited (RFC 4861 7.2.4).
    Ns n;
    n.src = ip("::");
    n.source_lla = false;
    expect_na(answer(ns_frame(n)), n.target, ip("ff02::1"), k_all_nodes_mac, k_ro);
}

TEST(NetNeighbour, DuplicateAddressDetectionForTheGuestsAddressesIsNotAnswered) {
    for (const char* t : {"fec0::15", "fe80::5054:ff:fe12:3456"}) {
        Ns n;
        n.src = ip("::");
        n.source_lla = false;
        n.target = ip(t);
        EXPECT_TRUE(answer(ns_frame(n)).empty()) << t;
    }
}

TEST(NetNeighbour, MalformedDuplicateAddressDetectionIsRefused) {
    Ns with_lla;  // a source link-layer option is not allowed from ::
    with_lla.src = ip("::");
    EXPECT_TRUE(answer(ns_frame(with_lla)).empty());
    Ns unicast;  // must go to the solicited-node group
    unicast.src = ip("::");
    unicast.source_lla = false;
    unicast.dst = ip("fec0::2");
    EXPECT_TRUE(answer(ns_frame(unicast)).empty());
}

TEST(NetNeighbour, AnotherGuestNetwork) {
    GuestNet net;
    net.guest = ip("192.168.5.15");
    net.network = {ip("192.168.5.0"), 96 + 24};
    net.guest6_prefix = ip("fd00:1:2:3::");
    Arp a;
    a.spa = 0xC0A8050F;
    a.tpa = 0xC0A80502;
    expect_arp_reply(answer(arp_frame(a), net), 0xC0A80502, k_guest_mac, 0xC0A8050F);
    a.tpa = 0x0A000202;
    EXPECT_TRUE(answer(arp_frame(a), net).empty());
    a.tpa = 0xC0A8050F;
    EXPECT_TRUE(answer(arp_frame(a), net).empty());

    Ns n;
    n.src = ip("fd00:1:2:3::15");
    n.target = ip("fd00:1:2:3::2");
    expect_na(answer(ns_frame(n), net, n.src), n.target, n.src, k_guest_mac, k_rso);
    n.target = ip("fec0::2");
    EXPECT_TRUE(answer(ns_frame(n), net, n.src).empty());

    GuestNet wide;  // a /16: 10.0.255.255 is its broadcast, 10.0.2.255 an ordinary address
    wide.network = {ip("10.0.0.0"), 96 + 16};
    Arp b;
    b.tpa = 0x0A0002FF;
    expect_arp_reply(answer(arp_frame(b), wide), 0x0A0002FF);
    b.tpa = 0x0A00FFFF;
    EXPECT_TRUE(answer(arp_frame(b), wide).empty());

    GuestNet v6net;  // not an IPv4 network: no ARP answers at all
    v6net.network = {ip("fec0::"), 64};
    EXPECT_TRUE(answer(arp_frame(Arp{}), v6net).empty());
}

TEST(NetNeighbour, GuestMacOfUnicastSource) {
    MacAddr m{};
    EXPECT_TRUE(net::guest_mac_of(arp_frame(Arp{}), m));
    EXPECT_EQ(m, mac(k_guest_mac));
    Arp local;
    local.eth_src = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};  // locally administered unicast
    EXPECT_TRUE(net::guest_mac_of(arp_frame(local), m));
    EXPECT_EQ(m, mac(local.eth_src));
}

TEST(NetNeighbour, GuestMacOfRefusesMulticastZeroAndRunts) {
    const MacAddr before = mac({0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0});
    for (Mac src : {k_broadcast, Mac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}, Mac{0x33, 0x33, 0, 0, 0, 1},
                    Mac{0x03, 0, 0, 0, 0, 0}, Mac{0, 0, 0, 0, 0, 0}}) {
        Arp a;
        a.eth_src = src;
        MacAddr m = before;
        EXPECT_FALSE(net::guest_mac_of(arp_frame(a), m));
        EXPECT_EQ(m, before);
    }
    Frame full = arp_frame(Arp{});
    for (std::size_t len = 0; len < 14; ++len) {
        Frame cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
        MacAddr m = before;
        EXPECT_FALSE(net::guest_mac_of(cut, m)) << len;
        EXPECT_EQ(m, before);
    }
    MacAddr m = before;
    EXPECT_TRUE(net::guest_mac_of(Bytes(full).first(14), m));  // the header alone is enough
}

}  // namespace sbx::test
