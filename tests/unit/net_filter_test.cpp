// The egress filter end to end on synthetic frames: DNS, pinning, flows, replies, decisions.

#include "net_frames.hpp"
#include "sbx/net/dns_codec.hpp"
#include "sbx/net/filter.hpp"
#include "sbx/net/frame.hpp"

#include <gtest/gtest.h>

using namespace sbx::net;
using namespace sbx::test;

namespace {

const IpAddr k_guest = ip("10.0.2.15");
const IpAddr k_host = ip("10.0.2.2");
const IpAddr k_dns = ip("10.0.2.3");
const IpAddr k_guest6 = ip("fec0::5054:ff:fe12:3456");
const IpAddr k_host6 = ip("fec0::2");
const IpAddr k_dns6 = ip("fec0::3");
const IpAddr k_github = ip("140.82.121.4");
const IpAddr k_github6 = ip("2606:50c0:8000::154");
const IpAddr k_raw = ip("93.184.216.34");
const IpAddr k_raw6 = ip("2606:2800:220:1:248:1893:25c8:1946");

using Kind = GuestFrameResult::Kind;

Rule name_rule(std::string name, std::vector<std::uint16_t> ports, std::uint8_t protos = 1, bool priv = false) {
    Rule r;
    r.kind = Rule::Kind::name;
    r.name = std::move(name);
    r.ports = std::move(ports);
    r.protos = protos;
    r.allow_private = priv;
    r.source = r.name;
    return r;
}

Policy allowlist() {
    Policy p;
    p.rules.push_back(name_rule("github.com", {22, 443}));
    Rule wild = name_rule("githubusercontent.com", {443});
    wild.kind = Rule::Kind::suffix;
    p.rules.push_back(wild);
    Rule cidr;
    cidr.kind = Rule::Kind::cidr;
    cidr.cidr = *Cidr::parse("140.82.112.0/20");
    cidr.ports = {22};
    p.rules.push_back(cidr);
    p.rules.push_back(name_rule("ollama.lan", {11434}, 1, true));
    p.rules.push_back(name_rule("udp.example", {5000}, 2));
    p.rules.push_back(name_rule("ping.example", {}, 4));
    p.host_ports = {5432};
    return p;
}

Limits limits() {
    Limits l;
    l.hash_seed = 42;
    return l;
}

struct Reply {
    Frame frame;
    Packet p;
};

Reply reply_of(const GuestFrameResult& r) {
    EXPECT_EQ(r.kind, Kind::reply);
    Reply out;
    out.frame.assign(r.reply.begin(), r.reply.end());
    out.p = parse_packet(out.frame);
    EXPECT_EQ(out.p.kind, Packet::Kind::ip);
    return out;
}

Reply reply_of(std::span<const std::byte> f) {
    GuestFrameResult r;
    r.kind = Kind::reply;
    r.reply = f;
    return reply_of(r);
}

// Every crafted frame: Ethernet back to the guest, correct IP and transport checksums.
void expect_well_formed(const Reply& r) {
    ASSERT_EQ(r.p.kind, Packet::Kind::ip);
    Mac dst{};
    for (std::size_t i = 0; i < 6; ++i) dst[i] = get8(r.frame, i);
    EXPECT_EQ(dst, k_guest_mac);
    if (!r.p.v6) {
        EXPECT_EQ(inet_checksum(Frame(r.frame.begin() + 14, r.frame.begin() + 34)), 0);
    }
    auto l4 = std::span<const std::byte>(r.frame).subspan(r.p.l4_offset, r.p.l4_len);
    if (r.p.protocol == 1) {
        EXPECT_EQ(inet_checksum(Frame(l4.begin(), l4.end())), 0);
    } else {
        EXPECT_EQ(verify_transport(r.p.src, r.p.dst, r.p.protocol, l4), 0);
    }
}

DnsResponseView dns_of(const Reply& r) {
    expect_well_formed(r);
    EXPECT_EQ(r.p.protocol, 17);
    EXPECT_EQ(r.p.sport, 53);
    auto v = parse_dns_response(std::span<const std::byte>(r.frame).subspan(r.p.udp_payload_offset, r.p.udp_payload_len));
    EXPECT_TRUE(v);
    return v.value_or(DnsResponseView{});
}

Frame query(std::string_view name, std::uint16_t qtype = k_dns_type_a, bool v6 = false, std::uint16_t id = 0x1234) {
    return v6 ? udp_frame(k_guest6, k_dns6, 33000, 53, dns_query(id, name, qtype))
              : udp_frame(k_guest, k_dns, 33000, 53, dns_query(id, name, qtype));
}

// Resolves `name` through the filter with the upstream answer `addrs`; returns the reply.
DnsResponseView resolve(Filter& f, std::string_view name, std::vector<IpAddr> addrs, Millis now,
                        std::uint16_t qtype = k_dns_type_a, bool v6 = false, std::uint32_t ttl = 60) {
    auto r = f.on_guest_frame(query(name, qtype, v6), now);
    EXPECT_EQ(r.kind, Kind::dns_lookup) << name;
    if (r.kind != Kind::dns_lookup) {
        return {};
    }
    EXPECT_EQ(r.lookup.name, name);
    EXPECT_EQ(r.lookup.qtype, qtype);
    auto frame = f.complete_dns(r.lookup.token, addrs, ttl, now);
    EXPECT_FALSE(frame.empty());
    return dns_of(reply_of(frame));
}

std::vector<Decision> drain(Filter& f) {
    std::vector<Decision> out(4096);
    out.resize(f.drain_decisions(out));
    return out;
}

}  // namespace

TEST(NetFilter, AllowedNameResolvesPinsAndConnects) {
    Filter f(allowlist(), GuestNet{}, limits());
    auto dns = resolve(f, "github.com", {k_github}, 1000);
    EXPECT_EQ(dns.rcode, dns_rcode::noerror);
    EXPECT_EQ(dns.id, 0x1234);
    EXPECT_EQ(dns.qname, "github.com");
    ASSERT_EQ(dns.answers.size(), 1u);
    EXPECT_EQ(dns.answers[0].addr, k_github);
    EXPECT_EQ(dns.answers[0].ttl, 60u);

    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443), 1100).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443, k_ack, 1001, 1, 100), 1101).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40001, 22), 1102).kind, Kind::pass);

    // The same address on a port the rule does not name.
    auto r = reply_of(f.on_guest_frame(tcp_frame(k_guest, k_github, 40002, 80), 1103));
    EXPECT_NE(r.p.tcp_flags & k_rst, 0);

    auto d = drain(f);
    ASSERT_GE(d.size(), 4u);
    EXPECT_TRUE(d[0].dns);
    EXPECT_EQ(std::string(d[0].name), "github.com");
    EXPECT_EQ(d[0].verdict, Verdict::allow);
    EXPECT_EQ(d[1].verdict, Verdict::allow);
    EXPECT_EQ(std::string(d[1].name), "github.com");
    EXPECT_EQ(d[1].addr, k_github);
    EXPECT_EQ(d[1].port, 443);
    const Decision& deny = d.back();
    EXPECT_EQ(deny.verdict, Verdict::deny);
    EXPECT_EQ(deny.reason, Reason::port_not_allowed);
    EXPECT_EQ(std::string(deny.name), "github.com");
    EXPECT_EQ(deny.port, 80);
    EXPECT_EQ(f.counters().flows_allowed, 2u);
    EXPECT_EQ(f.counters().flows_denied, 1u);
    EXPECT_EQ(f.counters().dns_allowed, 1u);
}

TEST(NetFilter, WildcardSubdomainButNotApex) {
    Filter f(allowlist(), GuestNet{}, limits());
    auto ok = resolve(f, "raw.githubusercontent.com", {ip("185.199.108.133")}, 0);
    EXPECT_EQ(ok.answers.size(), 1u);
    auto apex = dns_of(reply_of(f.on_guest_frame(query("githubusercontent.com"), 1)));
    EXPECT_EQ(apex.rcode, dns_rcode::nxdomain);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("185.199.108.133"), 40000, 443), 2).kind, Kind::pass);
}

TEST(NetFilter, RawIpDeniedWithCorrectResets) {
    Filter f(allowlist(), GuestNet{}, limits());
    Frame syn = tcp_frame(k_guest, k_raw, 40000, 443, k_syn, 1000);
    auto r = reply_of(f.on_guest_frame(syn, 0));
    expect_well_formed(r);
    EXPECT_EQ(r.p.src, k_raw);
    EXPECT_EQ(r.p.dst, k_guest);
    EXPECT_EQ(r.p.sport, 443);
    EXPECT_EQ(r.p.dport, 40000);
    EXPECT_EQ(r.p.tcp_flags, k_rst | k_ack);
    EXPECT_EQ(r.p.tcp_seq, 0u);
    EXPECT_EQ(r.p.tcp_ack, 1001u);  // SEG.SEQ + SYN

    // A data segment with ACK on the same (denied) flow: <SEQ=SEG.ACK><CTL=RST>.
    auto r2 = reply_of(f.on_guest_frame(tcp_frame(k_guest, k_raw, 40000, 443, k_ack | k_psh, 1001, 5555, 10), 1));
    EXPECT_EQ(r2.p.tcp_flags, k_rst);
    EXPECT_EQ(r2.p.tcp_seq, 5555u);
    // Without ACK, data and FIN count in the acknowledgement.
    auto r3 = reply_of(f.on_guest_frame(tcp_frame(k_guest, k_raw, 40000, 443, k_fin, 2000, 0, 10), 2));
    EXPECT_EQ(r3.p.tcp_flags, k_rst | k_ack);
    EXPECT_EQ(r3.p.tcp_ack, 2011u);
    // A RST is never answered.
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_raw, 40000, 443, k_rst, 1, 0), 3).kind, Kind::drop);

    auto d = drain(f);
    ASSERT_EQ(d.size(), 1u);  // one decision for the flow, not one per frame
    EXPECT_EQ(d[0].reason, Reason::not_resolved);
    EXPECT_EQ(d[0].addr, k_raw);
    EXPECT_EQ(d[0].proto, Proto::tcp);
    EXPECT_EQ(f.counters().replies, 3u);
}

TEST(NetFilter, CidrRuleAllowsRawIp) {
    Filter f(allowlist(), GuestNet{}, limits());
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("140.82.114.4"), 40000, 22), 0).kind, Kind::pass);
    auto r = reply_of(f.on_guest_frame(tcp_frame(k_guest, ip("140.82.114.4"), 40001, 443), 0));
    EXPECT_NE(r.p.tcp_flags & k_rst, 0);
    auto d = drain(f);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[1].reason, Reason::port_not_allowed);
}

TEST(NetFilter, UdpDeniedGetsIcmpProhibited) {
    Filter f(allowlist(), GuestNet{}, limits());
    Frame udp = udp_frame(k_guest, k_raw, 5000, 9999, Frame(100, std::byte{7}));
    auto r = reply_of(f.on_guest_frame(udp, 0));
    expect_well_formed(r);
    EXPECT_EQ(r.p.protocol, 1);
    EXPECT_EQ(r.p.icmp_type, 3);
    EXPECT_EQ(r.p.icmp_code, 13);
    EXPECT_EQ(r.p.src, k_raw);
    // Quote: the original IP header and the first 8 bytes after it.
    ASSERT_EQ(r.p.l4_len, 8u + 20u + 8u);
    for (std::size_t i = 0; i < 28; ++i) {
        EXPECT_EQ(r.frame[r.p.l4_offset + 8 + i], udp[14 + i]) << i;
    }
    // IPv6: type 1 code 1, the whole (short) packet quoted.
    Frame udp6 = udp_frame(k_guest6, k_raw6, 5000, 9999, Frame(100, std::byte{7}));
    auto r6 = reply_of(f.on_guest_frame(udp6, 1));
    expect_well_formed(r6);
    EXPECT_EQ(r6.p.protocol, 58);
    EXPECT_EQ(r6.p.icmp_type, 1);
    EXPECT_EQ(r6.p.icmp_code, 1);
    EXPECT_EQ(r6.p.l4_len, 8u + udp6.size() - 14);
    // A large IPv6 datagram: the error stays within 1280 bytes.
    Frame big6 = udp_frame(k_guest6, k_raw6, 5001, 9999, Frame(3000, std::byte{7}));
    auto rb = reply_of(f.on_guest_frame(big6, 2));
    EXPECT_EQ(rb.p.l3_total_len, 1280u);
    expect_well_formed(rb);
}

TEST(NetFilter, UdpRuleAndIcmpRule) {
    Filter f(allowlist(), GuestNet{}, limits());
    resolve(f, "udp.example", {ip("198.51.100.10")}, 0);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, ip("198.51.100.10"), 5000, 5000), 1).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("198.51.100.10"), 5000, 5000), 1).kind, Kind::reply);
    resolve(f, "ping.example", {ip("198.51.100.11")}, 0);
    EXPECT_EQ(f.on_guest_frame(icmp_echo(k_guest, ip("198.51.100.11")), 1).kind, Kind::pass);
    auto r = reply_of(f.on_guest_frame(icmp_echo(k_guest, ip("198.51.100.10")), 1));
    EXPECT_EQ(r.p.icmp_type, 3);
    auto d = drain(f);
    EXPECT_EQ(d.back().reason, Reason::proto_not_allowed);
    EXPECT_EQ(d.back().proto, Proto::icmp);
}

TEST(NetFilter, DnsToAnotherServerDenied) {
    Filter f(allowlist(), GuestNet{}, limits());
    auto r = reply_of(f.on_guest_frame(udp_frame(k_guest, ip("8.8.8.8"), 33000, 53, dns_query(1, "github.com", 1)), 0));
    EXPECT_EQ(r.p.icmp_type, 3);
    auto t = reply_of(f.on_guest_frame(tcp_frame(k_guest, ip("8.8.8.8"), 33001, 53), 0));
    EXPECT_NE(t.p.tcp_flags & k_rst, 0);
    // TCP to netd's resolver: refused too (it speaks UDP).
    auto t2 = reply_of(f.on_guest_frame(tcp_frame(k_guest, k_dns, 33002, 53), 0));
    EXPECT_NE(t2.p.tcp_flags & k_rst, 0);
    auto d = drain(f);
    ASSERT_EQ(d.size(), 3u);
    EXPECT_EQ(d[0].reason, Reason::dns_elsewhere);
    EXPECT_EQ(d[1].reason, Reason::dns_elsewhere);
}

TEST(NetFilter, UnlistedNameGetsNxdomain) {
    Filter f(allowlist(), GuestNet{}, limits());
    auto v = dns_of(reply_of(f.on_guest_frame(query("evil.example"), 0)));
    EXPECT_EQ(v.rcode, dns_rcode::nxdomain);
    EXPECT_EQ(v.qname, "evil.example");
    auto d = drain(f);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_TRUE(d[0].dns);
    EXPECT_EQ(d[0].verdict, Verdict::deny);
    EXPECT_EQ(d[0].reason, Reason::not_in_allowlist);
    EXPECT_EQ(std::string(d[0].name), "evil.example");
    EXPECT_EQ(f.counters().dns_denied, 1u);
}

TEST(NetFilter, DnsShapes) {
    Limits l = limits();
    l.pending_dns = 1;
    Filter f(allowlist(), GuestNet{}, l);
    // Other qtypes for an allowed name: NODATA.
    auto txt = dns_of(reply_of(f.on_guest_frame(query("github.com", 16), 0)));
    EXPECT_EQ(txt.rcode, dns_rcode::noerror);
    EXPECT_TRUE(txt.answers.empty());
    // Malformed: FORMERR with the ID.
    Frame bad = dns_query(0x7777, "github.com", 1);
    bad[5] = std::byte{2};
    auto fe = dns_of(reply_of(f.on_guest_frame(udp_frame(k_guest, k_dns, 33000, 53, bad), 0)));
    EXPECT_EQ(fe.rcode, dns_rcode::formerr);
    EXPECT_EQ(fe.id, 0x7777);
    // A response sent to the resolver is dropped, not answered.
    Frame resp = dns_query(1, "github.com", 1);
    resp[2] = std::byte{0x81};
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_dns, 33000, 53, resp), 0).kind, Kind::drop);
    // The pending table (1 slot) full: SERVFAIL.
    auto first = f.on_guest_frame(query("github.com"), 0);
    ASSERT_EQ(first.kind, Kind::dns_lookup);
    auto sf = dns_of(reply_of(f.on_guest_frame(query("github.com", k_dns_type_aaaa), 0)));
    EXPECT_EQ(sf.rcode, dns_rcode::servfail);
    // fail_dns frees the slot; an unknown or finished token yields nothing.
    auto nx = dns_of(reply_of(f.fail_dns(first.lookup.token, true, 0)));
    EXPECT_EQ(nx.rcode, dns_rcode::nxdomain);
    EXPECT_TRUE(f.fail_dns(first.lookup.token, false, 0).empty());
    EXPECT_TRUE(f.complete_dns(first.lookup.token, {}, 60, 0).empty());
    auto second = f.on_guest_frame(query("github.com"), 0);
    ASSERT_EQ(second.kind, Kind::dns_lookup);
    EXPECT_NE(second.lookup.token, first.lookup.token);
    auto servfail = dns_of(reply_of(f.fail_dns(second.lookup.token, false, 0)));
    EXPECT_EQ(servfail.rcode, dns_rcode::servfail);
    // An empty upstream answer: NOERROR/NODATA.
    auto third = f.on_guest_frame(query("github.com"), 0);
    ASSERT_EQ(third.kind, Kind::dns_lookup);
    auto empty = dns_of(reply_of(f.complete_dns(third.lookup.token, {}, 60, 0)));
    EXPECT_EQ(empty.rcode, dns_rcode::noerror);
    EXPECT_TRUE(empty.answers.empty());
}

TEST(NetFilter, DnsRateCapAndTtlClamp) {
    Limits l = limits();
    l.dns_per_second = 2;  // burst 4
    Filter f(allowlist(), GuestNet{}, l);
    for (int i = 0; i < 4; ++i) {
        auto r = f.on_guest_frame(query("evil.example"), 0);
        EXPECT_EQ(dns_of(reply_of(r)).rcode, dns_rcode::nxdomain);
    }
    EXPECT_EQ(dns_of(reply_of(f.on_guest_frame(query("evil.example"), 0))).rcode, dns_rcode::refused);
    // Half a second later one more token.
    auto v = resolve(f, "github.com", {k_github}, 500, k_dns_type_a, false, 5);
    ASSERT_EQ(v.answers.size(), 1u);
    EXPECT_EQ(v.answers[0].ttl, 30u);  // clamped up to min_ttl_s
    auto d = drain(f);
    bool rate_limited = false;
    for (const auto& x : d) {
        rate_limited = rate_limited || x.reason == Reason::rate_limited;
    }
    EXPECT_TRUE(rate_limited);
    // The pin lives clamp(ttl) (+ grace): gone after that.
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443), 500 + 30'000).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40001, 443), 500 + 60'000).kind, Kind::reply);
    // The established flow keeps passing after the pin expired.
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443, k_ack, 2, 2, 5), 500 + 60'000).kind,
              Kind::pass);
}

TEST(NetFilter, PrivateAnswersRefusedUnlessRuleSaysPrivate) {
    Filter f(allowlist(), GuestNet{}, limits());
    auto mixed = resolve(f, "github.com", {ip("10.0.0.5"), k_github, ip("169.254.169.254")}, 0);
    ASSERT_EQ(mixed.answers.size(), 1u);
    EXPECT_EQ(mixed.answers[0].addr, k_github);
    auto only = resolve(f, "github.com", {ip("127.0.0.1")}, 0);
    EXPECT_EQ(only.rcode, dns_rcode::nxdomain);
    auto v6 = resolve(f, "github.com", {ip("::ffff:192.168.0.1"), ip("64:ff9b::a00:1"), ip("fd00::1")}, 0,
                      k_dns_type_aaaa);
    EXPECT_EQ(v6.rcode, dns_rcode::nxdomain);
    // Refused addresses were not pinned.
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("10.0.0.5"), 40000, 443), 1).kind, Kind::reply);
    // Logged once per name within the interval, with the first refused address.
    int logged = 0;
    for (const auto& d : drain(f)) {
        if (d.reason == Reason::private_answer) {
            ++logged;
            EXPECT_TRUE(d.dns);
            EXPECT_EQ(d.verdict, Verdict::deny);
            EXPECT_EQ(std::string(d.name), "github.com");
            EXPECT_EQ(d.addr, ip("10.0.0.5"));
        }
    }
    EXPECT_EQ(logged, 1);

    auto lan = resolve(f, "ollama.lan", {ip("192.168.1.50")}, 0);
    ASSERT_EQ(lan.answers.size(), 1u);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("192.168.1.50"), 40000, 11434), 1).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("192.168.1.50"), 40001, 22), 1).kind, Kind::reply);
}

TEST(NetFilter, HostLoopbackClosedExceptHostPorts) {
    Filter f(allowlist(), GuestNet{}, limits());
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 40000, 5432), 0).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 40001, 22), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_host, 40001, 5432), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("10.0.2.99"), 40002, 5432), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("127.0.0.1"), 40003, 5432), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("0.0.0.0"), 40004, 5432), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(icmp_echo(k_guest, k_host), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest6, k_host6, 40005, 5432), 0).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest6, k_host6, 40006, 22), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest6, ip("::1"), 40007, 5432), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest6, ip("::ffff:127.0.0.1"), 40008, 5432), 0).kind, Kind::reply);
    for (const auto& d : drain(f)) {
        if (d.verdict == Verdict::deny) {
            EXPECT_EQ(d.reason, Reason::host_loopback) << d.addr.to_string();
        }
    }
    // Even in open mode.
    Policy open;
    open.mode = Mode::open;
    Filter o(open, GuestNet{}, limits());
    EXPECT_EQ(o.on_guest_frame(tcp_frame(k_guest, k_host, 40000, 22), 0).kind, Kind::reply);
    EXPECT_EQ(o.on_guest_frame(tcp_frame(k_guest, k_raw, 40000, 22), 0).kind, Kind::pass);
}

// The host's own interface addresses reach services bound to 0.0.0.0 on the host: closed
// in every mode, learn and open included, even where a CIDR rule or a pinned name covers them.
TEST(NetFilter, HostInterfaceAddressesAreClosed) {
    const IpAddr lan = ip("192.168.1.20"), lan6 = ip("2001:db8:5::20");
    Policy open;
    open.mode = Mode::open;
    Filter o(open, GuestNet{}, limits());
    const IpAddr mine[] = {lan, lan6};
    o.set_host_addresses(mine);
    EXPECT_EQ(o.on_guest_frame(tcp_frame(k_guest, lan, 40000, 5432), 0).kind, Kind::reply);
    EXPECT_EQ(o.on_guest_frame(tcp_frame(k_guest6, lan6, 40001, 80), 0).kind, Kind::reply);
    EXPECT_EQ(o.on_guest_frame(udp_frame(k_guest, lan, 40002, 53), 0).kind, Kind::reply);
    EXPECT_EQ(o.on_guest_frame(tcp_frame(k_guest, ip("192.168.1.21"), 40003, 5432), 0).kind, Kind::pass);
    auto ds = drain(o);
    ASSERT_EQ(ds.size(), 4u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(ds[i].verdict, Verdict::deny);
        EXPECT_EQ(ds[i].reason, Reason::host_address) << ds[i].addr.to_string();
    }
    EXPECT_EQ(to_string(Reason::host_address), "host_address");

    Policy learn = allowlist();
    learn.learn = true;
    learn.host_ports = {5432};
    Rule lan_rule;
    lan_rule.kind = Rule::Kind::cidr;
    lan_rule.cidr = *Cidr::parse("192.168.1.0/24");
    lan_rule.ports = {5432};
    learn.rules.push_back(lan_rule);
    Filter l(learn, GuestNet{}, limits());
    l.set_host_addresses(mine);
    EXPECT_EQ(l.on_guest_frame(tcp_frame(k_guest, lan, 40000, 5432), 0).kind, Kind::reply);
    EXPECT_EQ(l.on_guest_frame(tcp_frame(k_guest, ip("192.168.1.21"), 40001, 5432), 0).kind, Kind::pass);
    // host_ports still open the host's loopback through 10.0.2.2.
    EXPECT_EQ(l.on_guest_frame(tcp_frame(k_guest, k_host, 40002, 5432), 0).kind, Kind::pass);
    // Replacing the set: the old addresses are open to the policy again.
    o.set_host_addresses({});
    EXPECT_EQ(o.on_guest_frame(tcp_frame(k_guest, lan, 40010, 5432), 0).kind, Kind::pass);
}

// The guest reuses source ports: a cached verdict must not outlive its connection. A bare
// SYN is decided again, so a 5-tuple denied before a lookup passes after it, and one
// allowed while its pin lived is denied once the pin is gone; the open connection itself
// keeps its verdict. Datagram verdicts are decided again after a few seconds.
TEST(NetFilter, CachedVerdictsAreDecidedAgainForNewConnections) {
    Filter f(allowlist(), GuestNet{}, limits());
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443), 0).kind, Kind::reply);  // not resolved
    resolve(f, "github.com", {k_github}, 100, k_dns_type_a, false, 60);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443), 200).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443, k_ack, 1001, 1), 300).kind, Kind::pass);
    // Long after the pin expired (60 s + grace): the established flow goes on...
    const Millis later = 200'000;
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443, k_ack | k_psh, 1001, 1, 10), later).kind,
              Kind::pass);
    // ...but a new connection on the same ports is decided again, and denied.
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443), later + 1).kind, Kind::reply);
    const auto ds = drain(f);
    ASSERT_EQ(ds.size(), 4u);  // deny, DNS allow, allow, deny: one per connection attempt
    EXPECT_EQ(ds[2].verdict, Verdict::allow);
    EXPECT_EQ(ds[3].verdict, Verdict::deny);  // port_not_allowed: the pin is gone, the CIDR rule says port 22
    EXPECT_EQ(f.counters().flows_allowed, 1u);
    EXPECT_EQ(f.counters().flows_denied, 2u);

    // UDP: denied before the lookup, allowed once the cached verdict is old enough.
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_raw, 41000, 5000), 0).kind, Kind::reply);
    resolve(f, "udp.example", {k_raw}, 10);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_raw, 41000, 5000), 20).kind, Kind::reply);  // still cached
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_raw, 41000, 5000), 6000).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_raw, 41000, 5000), 7000).kind, Kind::pass);
}

// A forward's flows (host-opened) keep passing, however long they live, until the engine
// says they ended.
TEST(NetFilter, HostOpenedFlowsAreNotDecidedAgain) {
    Filter f(allowlist(), GuestNet{}, limits());
    f.host_opened(FlowKey{k_guest, k_host, 53, 50000, 17}, 0);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_host, 53, 50000), 10).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_host, 53, 50000), 60'000).kind, Kind::pass);
    f.host_opened(FlowKey{k_guest, k_host, 22, 50001, 6}, 0);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 50001, k_syn | k_ack), 10).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 50001, k_ack, 1001, 1, 10), 90'000).kind, Kind::pass);
}

TEST(NetFilter, Ipv6Equivalents) {
    Filter f(allowlist(), GuestNet{}, limits());
    auto v = resolve(f, "github.com", {k_github6, k_github}, 0, k_dns_type_aaaa, true);
    ASSERT_EQ(v.answers.size(), 1u);
    EXPECT_EQ(v.answers[0].addr, k_github6);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest6, k_github6, 40000, 443), 1).kind, Kind::pass);
    auto r = reply_of(f.on_guest_frame(tcp_frame(k_guest6, k_raw6, 40001, 443, k_syn, 77), 1));
    expect_well_formed(r);
    EXPECT_TRUE(r.p.v6);
    EXPECT_EQ(r.p.tcp_ack, 78u);
    EXPECT_EQ(r.p.src, k_raw6);
    auto icmp = reply_of(f.on_guest_frame(icmp_echo(k_guest6, k_raw6), 1));
    EXPECT_EQ(icmp.p.icmp_type, 1);
    // A v4 answer over the IPv6 resolver works too.
    auto a = resolve(f, "github.com", {k_github}, 0, k_dns_type_a, true);
    EXPECT_EQ(a.answers.size(), 1u);
}

TEST(NetFilter, LearnModeAllowsAndRecords) {
    Policy p;
    p.learn = true;
    p.host_ports = {};
    Filter f(p, GuestNet{}, limits());
    auto v = resolve(f, "anything.example", {ip("203.0.113.7")}, 0);
    ASSERT_EQ(v.answers.size(), 1u);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("203.0.113.7"), 40000, 8443), 1).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_raw, 40001, 443), 1).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 40002, 22), 1).kind, Kind::reply);  // still closed
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, ip("8.8.8.8"), 40003, 53), 1).kind, Kind::reply);
    auto d = drain(f);
    ASSERT_EQ(d.size(), 5u);
    EXPECT_EQ(d[0].verdict, Verdict::learn);
    EXPECT_TRUE(d[0].dns);
    EXPECT_EQ(d[1].verdict, Verdict::learn);
    EXPECT_EQ(d[1].reason, Reason::not_in_allowlist);
    EXPECT_EQ(std::string(d[1].name), "anything.example");
    EXPECT_EQ(d[1].port, 8443);
    EXPECT_EQ(d[2].verdict, Verdict::learn);
    EXPECT_EQ(d[2].reason, Reason::not_resolved);
    EXPECT_EQ(d[3].reason, Reason::host_loopback);
    EXPECT_EQ(d[4].reason, Reason::dns_elsewhere);
}

TEST(NetFilter, PolicyNoneAndOpen) {
    Policy none;
    none.mode = Mode::none;
    Filter n(none, GuestNet{}, limits());
    EXPECT_EQ(dns_of(reply_of(n.on_guest_frame(query("github.com"), 0))).rcode, dns_rcode::nxdomain);
    EXPECT_EQ(n.on_guest_frame(tcp_frame(k_guest, k_raw, 40000, 443), 0).kind, Kind::reply);
    auto d = drain(n);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].reason, Reason::policy_none);
    EXPECT_EQ(d[1].reason, Reason::policy_none);

    Policy open;
    open.mode = Mode::open;
    Filter o(open, GuestNet{}, limits());
    auto v = resolve(o, "anything.example", {ip("10.1.2.3")}, 0);  // private answers kept in open mode
    EXPECT_EQ(v.answers.size(), 1u);
    EXPECT_EQ(o.on_guest_frame(udp_frame(k_guest, k_raw, 40000, 9999), 0).kind, Kind::pass);
    EXPECT_EQ(o.on_guest_frame(udp_frame(k_guest, ip("8.8.8.8"), 40000, 53), 0).kind, Kind::pass);
    EXPECT_EQ(o.on_guest_frame(icmp_echo(k_guest, k_raw), 0).kind, Kind::pass);
}

TEST(NetFilter, FragmentsNeverPass) {
    Filter f(allowlist(), GuestNet{}, limits());
    resolve(f, "github.com", {k_github}, 0);
    IpOptions mf;
    mf.more_fragments = true;
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 40000, 443, k_syn, 1, 0, 0, mf), 1).kind, Kind::drop);
    IpOptions later;
    later.fragment_offset = 100;
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_github, 40000, 443, Frame(8), later), 1).kind, Kind::drop);
    IpOptions frag6;
    frag6.ipv6_ext = {44};
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest6, k_raw6, 1, 2, Frame(8), frag6), 1).kind, Kind::drop);
    EXPECT_EQ(f.counters().fragments, 3u);
    bool logged = false;
    for (const auto& d : drain(f)) {
        logged = logged || d.reason == Reason::fragment;
    }
    EXPECT_TRUE(logged);
}

TEST(NetFilter, NeighbourDiscoveryArpDhcpPass) {
    Filter f(allowlist(), GuestNet{}, limits());
    EXPECT_EQ(f.on_guest_frame(arp_request(), 0).kind, Kind::pass);
    for (std::uint8_t type : {133, 135, 136, 143}) {
        EXPECT_EQ(f.on_guest_frame(icmp6_message(ip("fe80::1"), ip("ff02::2"), type), 0).kind, Kind::pass) << +type;
    }
    EXPECT_EQ(f.on_guest_frame(udp_frame(ip("0.0.0.0"), ip("255.255.255.255"), 68, 67), 0).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(udp_frame(ip("fe80::1"), ip("ff02::1:2"), 546, 547), 0).kind, Kind::pass);
    // Other ICMPv6 (e.g. an unreachable the guest generates) goes nowhere.
    EXPECT_EQ(f.on_guest_frame(icmp6_message(k_guest6, k_raw6, 1), 0).kind, Kind::drop);
    EXPECT_EQ(f.counters().flows_allowed + f.counters().flows_denied, 0u);
}

TEST(NetFilter, AForwardsTuplePassesOnlyWhileItIsOpen) {
    Filter f(allowlist(), GuestNet{}, limits());
    // The TCP engine opens a forwarded connection (sbx ssh) to the guest's port 22.
    const FlowKey ssh{k_guest, k_host, 22, 45000, 6};
    f.host_opened(ssh, 0);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 45000, k_syn | k_ack, 9000, 501), 1).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 45000, k_ack | k_psh, 9001, 501, 50), 2).kind,
              Kind::pass);
    // Without the forward, the same reply is the host's loopback: denied.
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 45001, k_syn | k_ack, 9000, 501), 3).kind, Kind::reply);
    // Once the connection is over, its tuple is the host's loopback again (issue 17 item 2).
    f.host_closed(ssh);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 45000, k_ack | k_psh, 9051, 501, 50), 4).kind,
              Kind::reply);
    // UDP forwards from the host's alias, the same way.
    const FlowKey dns{k_guest, k_host, 5353, 46000, 17};
    f.host_opened(dns, 5);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_host, 5353, 46000), 6).kind, Kind::pass);
    f.host_closed(dns);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_host, 5353, 46000), 7).kind, Kind::reply);
}

// Issue 17 item 2: the tuple of a host-opened connection (sbx ssh) is no way into the host.
TEST(NetFilter, AFreshSynOnAHostOpenedTupleIsDecidedAgain) {
    Filter f(allowlist(), GuestNet{}, limits());
    f.host_opened(FlowKey{k_guest, k_host, 22, 45000, 6}, 0);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 45000, k_syn | k_ack, 9000, 501), 1).kind, Kind::pass);
    // Guest root sends its own SYN from port 22 to the forward's host port: the host's
    // loopback, refused with a RST and logged.
    auto r = f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 45000, k_syn, 7000), 2);
    EXPECT_EQ(r.kind, Kind::reply);
    auto d = drain(f);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0].reason, Reason::host_loopback);
    // The host's own connection still passes.
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 45000, k_ack | k_psh, 9001, 501, 50), 3).kind,
              Kind::pass);
}

TEST(NetFilter, DenyDecisionsRateLimitedPerDestination) {
    Filter f(allowlist(), GuestNet{}, limits());
    for (std::uint16_t i = 0; i < 20; ++i) {
        f.on_guest_frame(tcp_frame(k_guest, k_raw, static_cast<std::uint16_t>(40000 + i), 443), 1000 + i);
    }
    EXPECT_EQ(drain(f).size(), 1u);
    f.on_guest_frame(tcp_frame(k_guest, k_raw, 41000, 443), 5000);
    EXPECT_EQ(drain(f).size(), 0u);
    f.on_guest_frame(tcp_frame(k_guest, k_raw, 41001, 443), 12'000);
    EXPECT_EQ(drain(f).size(), 1u);
    // Another port is another destination.
    f.on_guest_frame(tcp_frame(k_guest, k_raw, 41002, 8443), 12'001);
    EXPECT_EQ(drain(f).size(), 1u);
    EXPECT_EQ(f.counters().flows_denied, 23u);
    // Every denial is counted by its reason, the ones the log's rate limit left out too.
    EXPECT_EQ(f.counters().denied_by_reason[static_cast<std::size_t>(Reason::not_resolved)], 23u);
    // Allows are per flow.
    resolve(f, "github.com", {k_github}, 13'000);
    drain(f);
    for (std::uint16_t i = 0; i < 3; ++i) {
        f.on_guest_frame(tcp_frame(k_guest, k_github, static_cast<std::uint16_t>(50000 + i), 443), 13'001);
    }
    EXPECT_EQ(drain(f).size(), 3u);
}

TEST(NetFilter, DeniedDestinationsAreCountedAndNeverPushedOut) {
    Filter f(allowlist(), GuestNet{}, limits());
    std::uint64_t changes = f.denied_changes();
    for (std::uint16_t i = 0; i < 5; ++i) {
        f.on_guest_frame(tcp_frame(k_guest, k_raw, static_cast<std::uint16_t>(40000 + i), 443), 1000 + i);
    }
    EXPECT_GT(f.denied_changes(), changes);
    // A flood of new destinations after it, three times what the table holds.
    for (std::uint32_t i = 0; i < 3 * k_denied_destinations; ++i) {
        f.on_guest_frame(tcp_frame(k_guest, IpAddr::v4(0x5DB80000u + i), 40000, 443), 2000);
    }
    f.on_guest_frame(tcp_frame(k_guest, k_raw, 40100, 443), 3000);  // the first one, once more
    auto d = f.denied_destinations();
    ASSERT_EQ(d.size(), k_denied_destinations);
    EXPECT_EQ(d[0].first.addr, k_raw);
    EXPECT_EQ(d[0].first.port, 443);
    EXPECT_EQ(d[0].first.reason, Reason::not_resolved);
    EXPECT_EQ(d[0].first.at, 1000u);
    EXPECT_EQ(d[0].last, 3000u);
    EXPECT_EQ(d[0].count, 6u);
    EXPECT_EQ(d[1].first.addr, IpAddr::v4(0x5DB80000u));
    EXPECT_EQ(d[1].count, 1u);
    EXPECT_EQ(d.back().first.addr, IpAddr::v4(0x5DB80000u + k_denied_destinations - 2));
    EXPECT_EQ(f.counters().denied_unlisted, 3 * k_denied_destinations - (k_denied_destinations - 1));
    // Every denial is in a listed count or the unlisted one.
    std::uint64_t listed = 0;
    for (const auto& e : d) {
        listed += e.count;
    }
    EXPECT_EQ(listed + f.counters().denied_unlisted, f.counters().flows_denied);
    // Allowed flows are not destinations of this table.
    resolve(f, "github.com", {k_github}, 4000);
    f.on_guest_frame(tcp_frame(k_guest, k_github, 50000, 443), 4001);
    EXPECT_EQ(f.denied_destinations().size(), k_denied_destinations);
}

TEST(NetFilter, DecisionRingDropsOldest) {
    Limits l = limits();
    l.decisions = 4;
    Filter f(allowlist(), GuestNet{}, l);
    for (std::uint32_t i = 0; i < 10; ++i) {
        f.on_guest_frame(tcp_frame(k_guest, IpAddr::v4(0x5DB80000u + i), 40000, 443), 0);
    }
    auto d = drain(f);
    ASSERT_EQ(d.size(), 4u);
    EXPECT_EQ(d[0].addr, IpAddr::v4(0x5DB80000u + 6));
    EXPECT_EQ(d[3].addr, IpAddr::v4(0x5DB80000u + 9));
    EXPECT_EQ(f.counters().decisions_dropped, 6u);
}

TEST(NetFilter, ReplyRateCap) {
    Limits l = limits();
    l.replies_per_second = 1;  // burst 2
    Filter f(allowlist(), GuestNet{}, l);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_raw, 40000, 443), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_raw, 40001, 443), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_raw, 40002, 443), 0).kind, Kind::drop);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_raw, 40003, 443), 1000).kind, Kind::reply);
    EXPECT_EQ(f.counters().replies_limited, 1u);
    // No ICMP errors about multicast destinations.
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, ip("224.0.0.251"), 5353, 5353), 5000).kind, Kind::drop);
}

TEST(NetFilter, CountersAndMalformed) {
    Filter f(allowlist(), GuestNet{}, limits());
    f.on_guest_frame(Frame(10), 0);
    f.on_guest_frame(ethernet(0x8100, Frame(50)), 0);
    Frame trunc = tcp_frame(k_guest, k_raw, 1, 2);
    trunc.resize(40);
    f.on_guest_frame(trunc, 0);
    f.on_guest_frame(tcp_frame(k_guest, k_raw, 1, 2), 0);
    const Counters& c = f.counters();
    EXPECT_EQ(c.frames_in, 4u);
    EXPECT_EQ(c.malformed, 3u);
    EXPECT_EQ(c.flows_denied, 1u);
    EXPECT_EQ(c.bytes_in, 10u + 64u + 40u + 54u);
    auto t = f.tables();
    EXPECT_EQ(t.flows, 1u);
    EXPECT_EQ(t.flow_capacity, Limits{}.flows);
    EXPECT_GT(t.memory_bytes, 0u);
}

TEST(NetFilter, FlowEvictionIsSafe) {
    Limits l = limits();
    l.flows = 64;
    Filter f(allowlist(), GuestNet{}, l);
    resolve(f, "github.com", {k_github}, 0);
    for (std::uint16_t i = 0; i < 500; ++i) {
        f.on_guest_frame(tcp_frame(k_guest, k_github, static_cast<std::uint16_t>(10000 + i), 443), 1 + i);
    }
    EXPECT_GT(f.counters().flow_evictions, 0u);
    EXPECT_LE(f.tables().flows, 64u);
    // An evicted flow's next segment is decided again: still allowed while the pin lives.
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_github, 10000, 443, k_ack, 5, 5, 10), 1000).kind, Kind::pass);
}

// A forward (sbx ssh) idle while the guest opens flow after flow: its tuple is the host's
// loopback, so were its cached verdict evicted like any other, its next segment would be
// decided again and refused (found by NetdFaults.SynFloodPastTheFlowTableIsRefusedAnd...).
TEST(NetFilter, AnIdleForwardOutlivesAFloodOfNewFlows) {
    Limits l = limits();
    l.flows = 64;
    Policy open;
    open.mode = Mode::open;
    Filter f(open, GuestNet{}, l);
    const FlowKey ssh{k_guest, k_host, 22, 45000, 6};
    const FlowKey udp{k_guest, k_host, 5353, 46000, 17};
    f.host_opened(ssh, 0);
    f.host_opened(udp, 0);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 45000, k_syn | k_ack, 9000, 501), 1).kind, Kind::pass);
    for (std::uint32_t i = 0; i < 5000; ++i) {
        f.on_guest_frame(tcp_frame(k_guest, k_raw, static_cast<std::uint16_t>(10000 + i), 443), 2 + i);
    }
    EXPECT_GT(f.counters().flow_evictions, 4000u);
    EXPECT_LE(f.tables().flows, 64u + 2u);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_host, 22, 45000, k_ack | k_psh, 9001, 501, 50), 6000).kind,
              Kind::pass);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, k_host, 5353, 46000), 6001).kind, Kind::pass);
    EXPECT_EQ(f.counters().flows_denied, 0u);
}

// Cloud metadata and link-local space: closed in open policy and learn mode too (a guest on a
// cloud machine would read the host's credentials there), in every form, unless a cidr rule
// names them narrowly.
TEST(NetFilter, MetadataAndLinkLocalClosedInEveryMode) {
    const std::vector<IpAddr> targets = {ip("169.254.169.254"), ip("168.63.129.16"),   ip("100.100.100.200"),
                                         ip("169.254.1.1"),     ip("fd00:ec2::254"),   ip("fe80::1"),
                                         ip("::ffff:169.254.169.254"), ip("64:ff9b::a9fe:a9fe")};
    Policy open;
    open.mode = Mode::open;
    Policy learn;
    learn.learn = true;
    Policy broad;  // an allowlist with a catch-all cidr: that does not name the metadata service
    Rule all;
    all.kind = Rule::Kind::cidr;
    all.cidr = *Cidr::parse("0.0.0.0/0");
    all.protos = 1 | 2 | 4;
    all.ports = {80};
    broad.rules.push_back(all);
    Rule all6 = all;
    all6.cidr = *Cidr::parse("::/0");
    broad.rules.push_back(all6);
    for (const Policy& p : {open, learn, broad}) {
        Filter f(p, GuestNet{}, limits());
        std::uint16_t port = 40000;
        for (const IpAddr& t : targets) {
            auto r = f.on_guest_frame(tcp_frame(t.is_v4() ? k_guest : k_guest6, t, port++, 80), 0);
            ASSERT_EQ(r.kind, Kind::reply) << t.to_string();
            EXPECT_NE(reply_of(r).p.tcp_flags & k_rst, 0);
            EXPECT_EQ(f.on_guest_frame(udp_frame(t.is_v4() ? k_guest : k_guest6, t, port++, 80), 0).kind, Kind::reply);
        }
        EXPECT_EQ(f.on_guest_frame(icmp_echo(k_guest, ip("169.254.169.254")), 0).kind, Kind::reply);
        for (const Decision& d : drain(f)) {
            EXPECT_EQ(d.verdict, Verdict::deny);
            EXPECT_EQ(d.reason, Reason::metadata) << d.addr.to_string();
        }
        // An ordinary public address still passes in these modes.
        EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, k_raw, 41000, 80), 0).kind, Kind::pass)
            << "mode " << static_cast<int>(p.mode) << " learn " << p.learn;
    }
    // Open policy: a name that resolves to the metadata address is answered, the flow is not.
    Filter o(open, GuestNet{}, limits());
    resolve(o, "metadata.example", {ip("169.254.169.254")}, 0);
    EXPECT_EQ(o.on_guest_frame(tcp_frame(k_guest, ip("169.254.169.254"), 40000, 80), 0).kind, Kind::reply);
}

TEST(NetFilter, NarrowCidrRuleOpensMetadata) {
    Policy p;
    Rule md;
    md.kind = Rule::Kind::cidr;
    md.cidr = *Cidr::parse("169.254.169.254/32");
    md.ports = {80};
    p.rules.push_back(md);
    Rule ll6 = md;
    ll6.cidr = *Cidr::parse("fe80::/10");
    p.rules.push_back(ll6);
    Filter f(p, GuestNet{}, limits());
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("169.254.169.254"), 40000, 80), 0).kind, Kind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest6, ip("fe80::1"), 40001, 80), 0).kind, Kind::pass);
    // Not on another port, and not a neighbour of the named address.
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("169.254.169.254"), 40002, 443), 0).kind, Kind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, ip("169.254.169.253"), 40003, 80), 0).kind, Kind::reply);
    auto d = drain(f);
    ASSERT_EQ(d.size(), 4u);
    EXPECT_EQ(d[0].verdict, Verdict::allow);
    EXPECT_EQ(d[1].verdict, Verdict::allow);
    EXPECT_EQ(d[2].reason, Reason::metadata);
    EXPECT_EQ(d[3].reason, Reason::metadata);
}

