#include "net_frames.hpp"
#include "sbx/net/matcher.hpp"

#include <gtest/gtest.h>

#include <chrono>

using namespace sbx::net;
using sbx::test::ip;

namespace {

Rule name_rule(std::string name, std::vector<std::uint16_t> ports, std::uint8_t protos = 1, bool priv = false) {
    Rule r;
    r.kind = Rule::Kind::name;
    r.name = std::move(name);
    r.ports = std::move(ports);
    r.protos = protos;
    r.allow_private = priv;
    return r;
}

Rule suffix_rule(std::string name, std::vector<std::uint16_t> ports) {
    Rule r = name_rule(std::move(name), std::move(ports));
    r.kind = Rule::Kind::suffix;
    return r;
}

Rule cidr_rule(const char* cidr, std::vector<std::uint16_t> ports, std::uint8_t protos = 1) {
    Rule r;
    r.kind = Rule::Kind::cidr;
    r.cidr = *Cidr::parse(cidr);
    r.ports = std::move(ports);
    r.protos = protos;
    return r;
}

constexpr std::uint8_t k_tcp = 1, k_udp = 2, k_icmp = 4;

}  // namespace

TEST(NetMatcher, ExactNames) {
    PolicyMatcher m({name_rule("GitHub.com.", {22, 443})});
    EXPECT_EQ(m.name_access("github.com", Proto::tcp, 443, false), Access::allowed);
    EXPECT_EQ(m.name_access("github.com", Proto::tcp, 22, false), Access::allowed);
    EXPECT_EQ(m.name_access("github.com", Proto::tcp, 80, false), Access::port_not_allowed);
    EXPECT_EQ(m.name_access("github.com", Proto::udp, 443, false), Access::proto_not_allowed);
    EXPECT_EQ(m.name_access("api.github.com", Proto::tcp, 443, false), Access::unlisted);
    EXPECT_EQ(m.name_access("notgithub.com", Proto::tcp, 443, false), Access::unlisted);
    EXPECT_TRUE(m.name_listed("github.com"));
    EXPECT_FALSE(m.name_listed("github.co"));
}

TEST(NetMatcher, WildcardMatchesSubdomainsNotApex) {
    PolicyMatcher m({suffix_rule("example.com", {443})});
    EXPECT_EQ(m.name_access("a.example.com", Proto::tcp, 443, false), Access::allowed);
    EXPECT_EQ(m.name_access("a.b.c.example.com", Proto::tcp, 443, false), Access::allowed);
    EXPECT_EQ(m.name_access("example.com", Proto::tcp, 443, false), Access::unlisted);
    EXPECT_EQ(m.name_access("badexample.com", Proto::tcp, 443, false), Access::unlisted);
    EXPECT_EQ(m.name_access("example.com.evil.net", Proto::tcp, 443, false), Access::unlisted);
    EXPECT_FALSE(m.name_listed("example.com"));
    EXPECT_TRUE(m.name_listed("x.example.com"));
}

TEST(NetMatcher, SeveralRulesCombine) {
    PolicyMatcher m({name_rule("api.example.com", {443}), suffix_rule("example.com", {22}),
                     name_rule("dns.example.com", {53}, k_udp), name_rule("lan.example.com", {8080}, k_tcp, true)});
    EXPECT_EQ(m.name_access("api.example.com", Proto::tcp, 443, false), Access::allowed);
    EXPECT_EQ(m.name_access("api.example.com", Proto::tcp, 22, false), Access::allowed);
    EXPECT_EQ(m.name_access("api.example.com", Proto::tcp, 80, false), Access::port_not_allowed);
    EXPECT_EQ(m.name_access("dns.example.com", Proto::udp, 53, false), Access::allowed);
    EXPECT_EQ(m.name_access("dns.example.com", Proto::tcp, 53, false), Access::port_not_allowed);
    // Private addresses: only the rule with private = true accepts them.
    EXPECT_EQ(m.name_access("lan.example.com", Proto::tcp, 8080, true), Access::allowed);
    EXPECT_EQ(m.name_access("lan.example.com", Proto::tcp, 22, true), Access::private_not_allowed);
    EXPECT_EQ(m.name_access("api.example.com", Proto::tcp, 443, true), Access::private_not_allowed);
    EXPECT_TRUE(m.name_allows_private("lan.example.com"));
    EXPECT_FALSE(m.name_allows_private("api.example.com"));
}

TEST(NetMatcher, IcmpIgnoresPorts) {
    PolicyMatcher m({name_rule("ping.example", {}, k_icmp), cidr_rule("192.0.2.0/24", {}, k_icmp)});
    EXPECT_EQ(m.name_access("ping.example", Proto::icmp, 0, false), Access::allowed);
    EXPECT_EQ(m.name_access("ping.example", Proto::tcp, 443, false), Access::proto_not_allowed);
    EXPECT_EQ(m.cidr_access(ip("192.0.2.9"), Proto::icmp, 0), Access::allowed);
}

TEST(NetMatcher, Cidrs) {
    PolicyMatcher m({cidr_rule("140.82.112.0/20", {22}), cidr_rule("140.82.112.0/24", {443}),
                     cidr_rule("2001:db8::/32", {443}, k_tcp | k_udp), cidr_rule("198.51.100.7/32", {53}, k_udp)});
    EXPECT_EQ(m.cidr_access(ip("140.82.113.1"), Proto::tcp, 22), Access::allowed);
    EXPECT_EQ(m.cidr_access(ip("140.82.112.1"), Proto::tcp, 443), Access::allowed);  // the /24
    EXPECT_EQ(m.cidr_access(ip("140.82.113.1"), Proto::tcp, 443), Access::port_not_allowed);
    EXPECT_EQ(m.cidr_access(ip("140.82.128.1"), Proto::tcp, 22), Access::unlisted);
    EXPECT_EQ(m.cidr_access(ip("2001:db8:1::5"), Proto::udp, 443), Access::allowed);
    EXPECT_EQ(m.cidr_access(ip("2001:db8:1::5"), Proto::icmp, 0), Access::proto_not_allowed);
    EXPECT_EQ(m.cidr_access(ip("2001:db9::5"), Proto::tcp, 443), Access::unlisted);
    EXPECT_EQ(m.cidr_access(ip("198.51.100.7"), Proto::udp, 53), Access::allowed);
    EXPECT_EQ(m.cidr_access(ip("198.51.100.8"), Proto::udp, 53), Access::unlisted);
}

TEST(NetMatcher, TenThousandRules) {
    std::vector<Rule> rules;
    for (int i = 0; i < 5000; ++i) {
        rules.push_back(name_rule("host" + std::to_string(i) + ".example.org", {443}));
        rules.push_back(suffix_rule("zone" + std::to_string(i) + ".example.net", {443}));
    }
    for (int i = 0; i < 2000; ++i) {
        auto r = cidr_rule("10.0.0.0/8", {443});
        r.cidr = Cidr{IpAddr::v4(0xC6120000u + (static_cast<std::uint32_t>(i) << 8)), 96 + 24};
        rules.push_back(r);
    }
    PolicyMatcher m(rules);
    EXPECT_EQ(m.rule_count(), 12000u);
    EXPECT_EQ(m.name_access("host4999.example.org", Proto::tcp, 443, false), Access::allowed);
    EXPECT_EQ(m.name_access("host5000.example.org", Proto::tcp, 443, false), Access::unlisted);
    EXPECT_EQ(m.name_access("www.zone17.example.net", Proto::tcp, 443, false), Access::allowed);
    EXPECT_EQ(m.name_access("zone17.example.net", Proto::tcp, 443, false), Access::unlisted);
    EXPECT_EQ(m.cidr_access(IpAddr::v4(0xC6120000u + (1999u << 8) + 5), Proto::tcp, 443), Access::allowed);
    EXPECT_EQ(m.cidr_access(IpAddr::v4(0xC6120000u + (2000u << 8) + 5), Proto::tcp, 443), Access::unlisted);
    // A generous bound (sanitizers on): 100 000 lookups well under a second.
    auto start = std::chrono::steady_clock::now();
    int allowed = 0;
    for (int i = 0; i < 100000; ++i) {
        allowed += m.name_access("a.b.zone" + std::to_string(i % 6000) + ".example.net", Proto::tcp, 443, false) ==
                   Access::allowed;
    }
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(allowed, 100000 / 6000 * 5000 + std::min(100000 % 6000, 5000));
    EXPECT_LT(took, std::chrono::seconds(2));
}
