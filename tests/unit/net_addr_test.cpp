#include "net_frames.hpp"
#include "sbx/net/addr_class.hpp"

#include <gtest/gtest.h>

using namespace sbx::net;
using sbx::test::ip;

TEST(NetAddr, ParseAndPrint) {
    EXPECT_EQ(ip("10.0.2.15").to_string(), "10.0.2.15");
    EXPECT_TRUE(ip("10.0.2.15").is_v4());
    EXPECT_EQ(ip("10.0.2.15").v4_host_order(), 0x0A00020Fu);
    EXPECT_EQ(ip("2001:DB8::1").to_string(), "2001:db8::1");
    EXPECT_FALSE(ip("2001:db8::1").is_v4());
    EXPECT_EQ(ip("::ffff:1.2.3.4"), ip("1.2.3.4"));  // one form for both families
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "::g", "example.com", "01.2.3.4x"}) {
        EXPECT_FALSE(IpAddr::parse(bad)) << bad;
    }
}

TEST(NetAddr, Cidr) {
    auto c = Cidr::parse("140.82.112.0/20");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->prefix, 116);
    EXPECT_EQ(c->to_string(), "140.82.112.0/20");
    EXPECT_TRUE(c->contains(ip("140.82.127.255")));
    EXPECT_FALSE(c->contains(ip("140.82.128.0")));
    EXPECT_FALSE(c->contains(ip("2001:db8::1")));
    auto c6 = Cidr::parse("2001:db8::/32");
    ASSERT_TRUE(c6);
    EXPECT_EQ(c6->to_string(), "2001:db8::/32");
    EXPECT_TRUE(c6->contains(ip("2001:db8:ffff::1")));
    EXPECT_FALSE(c6->contains(ip("2001:db9::1")));
    auto all = Cidr::parse("0.0.0.0/0");
    ASSERT_TRUE(all);
    EXPECT_TRUE(all->contains(ip("8.8.8.8")));
    EXPECT_FALSE(all->contains(ip("2001:db8::1")));
    for (const char* bad : {"10.0.0.0/33", "10.0.0.1/24", "2001:db8::/129", "10.0.0.0", "10.0.0.0/", "10.0.0.0/2x",
                            "2001:db8::1/64", "/8"}) {
        EXPECT_FALSE(Cidr::parse(bad)) << bad;
    }
}

TEST(NetAddr, Ipv4Classes) {
    struct Case {
        const char* addr;
        std::uint32_t cls;
    } cases[] = {
        {"127.0.0.1", addr_class::loopback},
        {"127.255.255.254", addr_class::loopback},
        {"10.1.2.3", addr_class::private_net},
        {"172.16.0.1", addr_class::private_net},
        {"172.31.255.255", addr_class::private_net},
        {"192.168.1.1", addr_class::private_net},
        {"169.254.1.1", addr_class::link_local},
        {"169.254.169.254", addr_class::link_local | addr_class::metadata},
        {"100.64.0.1", addr_class::cgnat},
        {"100.127.255.255", addr_class::cgnat},
        {"100.100.100.200", addr_class::cgnat | addr_class::metadata},
        {"168.63.129.16", addr_class::metadata},
        {"224.0.0.251", addr_class::multicast},
        {"239.255.255.250", addr_class::multicast},
        {"0.0.0.0", addr_class::unspecified},
        {"0.1.2.3", addr_class::unspecified},
        {"255.255.255.255", addr_class::broadcast | addr_class::reserved},
        {"240.0.0.1", addr_class::reserved},
        {"8.8.8.8", 0},
        {"172.32.0.1", 0},
        {"100.128.0.1", 0},
        {"192.169.0.1", 0},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(classify(ip(c.addr)), c.cls) << c.addr << " " << describe_classes(classify(ip(c.addr)));
        EXPECT_EQ(is_rebinding_target(ip(c.addr)), c.cls != 0) << c.addr;
    }
}

TEST(NetAddr, Ipv6Classes) {
    struct Case {
        const char* addr;
        bool rebinding;
    } cases[] = {
        {"::1", true},
        {"::", true},
        {"fe80::1", true},
        {"fec0::2", true},  // site-local: libslirp's guest prefix
        {"fc00::1", true},
        {"fd12:3456::1", true},
        {"fd00:ec2::254", true},
        {"ff02::1", true},
        {"ff05::1:3", true},
        {"::ffff:127.0.0.1", true},     // mapped
        {"::ffff:169.254.169.254", true},
        {"::127.0.0.1", true},          // v4-compatible
        {"::10.0.0.1", true},
        {"::ffff:0:10.0.0.1", true},    // SIIT translated
        {"64:ff9b::10.0.0.1", true},    // NAT64
        {"64:ff9b::169.254.169.254", true},
        {"64:ff9b::8.8.8.8", false},
        {"64:ff9b:1::8.8.8.8", true},   // local-use NAT64 prefix
        {"2002:0a00:0001::1", true},    // 6to4 of 10.0.0.1
        {"2002:7f00:0001::1", true},    // 6to4 of 127.0.0.1
        {"2002:0808:0808::1", false},   // 6to4 of 8.8.8.8
        {"2001:0:4136:e378:8000:63bf:f5ff:fffe", true},   // Teredo client 10.0.0.1 (inverted)
        {"2001:0:4136:e378:8000:63bf:3fff:fdd2", false},  // Teredo client 192.0.2.45
        {"2001:0:0a00:0001::1", true},  // Teredo server 10.0.0.1
        {"2606:4700:4700::1111", false},
        {"2001:db8::1", false},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(is_rebinding_target(ip(c.addr)), c.rebinding)
            << c.addr << " " << describe_classes(classify(ip(c.addr)));
    }
    EXPECT_NE(classify(ip("fd00:ec2::254")) & addr_class::metadata, 0u);
    EXPECT_NE(classify(ip("64:ff9b::169.254.169.254")) & addr_class::metadata, 0u);
    EXPECT_NE(classify(ip("64:ff9b::8.8.8.8")) & addr_class::embeds_v4, 0u);
    EXPECT_EQ(embedded_v4(ip("2002:0a00:0001::1")), 0x0A000001u);
    EXPECT_EQ(embedded_v4(ip("::1")), std::nullopt);
    EXPECT_EQ(embedded_v4(ip("1.2.3.4")), std::nullopt);
}
