#include "net_frames.hpp"
#include "sbx/net/flow_table.hpp"
#include "sbx/net/pin_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace sbx::net;
using sbx::test::ip;

namespace {

std::vector<std::string> names_of(const PinTable& t, const IpAddr& a, Millis now) {
    std::array<std::string_view, PinTable::k_max_names_per_address> out;
    std::size_t n = t.names(a, now, out);
    std::vector<std::string> v(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
    std::sort(v.begin(), v.end());
    return v;
}

FlowKey key(std::uint32_t i) {
    return FlowKey{IpAddr::v4(0x0A00020F), IpAddr::v4(0x5DB80000u + i), static_cast<std::uint16_t>(40000 + (i % 20000)),
                   443, 6};
}

}  // namespace

TEST(NetPinTable, PinLookupExpiry) {
    PinTable t(16, 1);
    t.pin(ip("140.82.112.3"), "github.com", 1000, 0);
    t.pin(ip("140.82.112.3"), "api.github.com", 2000, 0);
    EXPECT_EQ(names_of(t, ip("140.82.112.3"), 500), (std::vector<std::string>{"api.github.com", "github.com"}));
    EXPECT_EQ(names_of(t, ip("140.82.112.3"), 1500), (std::vector<std::string>{"api.github.com"}));
    EXPECT_TRUE(names_of(t, ip("140.82.112.3"), 2000).empty());
    EXPECT_TRUE(names_of(t, ip("140.82.112.4"), 0).empty());
    // Re-pinning refreshes instead of duplicating.
    t.pin(ip("140.82.112.3"), "github.com", 5000, 2500);
    EXPECT_EQ(names_of(t, ip("140.82.112.3"), 4000), (std::vector<std::string>{"github.com"}));
    EXPECT_EQ(t.size(), 2u);
    EXPECT_EQ(t.evictions(), 0u);
}

TEST(NetPinTable, CapacityEvictsOldest) {
    PinTable t(100, 2);
    for (std::uint32_t i = 0; i < 150; ++i) {
        t.pin(IpAddr::v4(0x01000000u + i), "n" + std::to_string(i) + ".example", 1'000'000, 0);
    }
    EXPECT_EQ(t.size(), 100u);
    EXPECT_EQ(t.evictions(), 50u);
    EXPECT_TRUE(names_of(t, IpAddr::v4(0x01000000u + 49), 1).empty());
    EXPECT_EQ(names_of(t, IpAddr::v4(0x01000000u + 50), 1), (std::vector<std::string>{"n50.example"}));
    EXPECT_EQ(names_of(t, IpAddr::v4(0x01000000u + 149), 1), (std::vector<std::string>{"n149.example"}));
    // An expired entry's slot is reused without counting an eviction.
    PinTable e(4, 3);
    for (std::uint32_t i = 0; i < 8; ++i) {
        e.pin(IpAddr::v4(i + 1), "x.example", 10 + i * 100, i * 100);
    }
    EXPECT_EQ(e.evictions(), 0u);
}

TEST(NetPinTable, NamesPerAddressBounded) {
    PinTable t(64, 4);
    for (int i = 0; i < 10; ++i) {
        t.pin(ip("203.0.113.9"), "name" + std::to_string(i) + ".example", 1000 + static_cast<Millis>(i), 0);
    }
    auto names = names_of(t, ip("203.0.113.9"), 0);
    EXPECT_EQ(names.size(), PinTable::k_max_names_per_address);
    // The newest (latest-expiring) names stay.
    EXPECT_TRUE(std::find(names.begin(), names.end(), "name9.example") != names.end());
    EXPECT_TRUE(std::find(names.begin(), names.end(), "name0.example") == names.end());
    EXPECT_EQ(t.size(), PinTable::k_max_names_per_address);
}

TEST(NetPinTable, LongNamesNotPinned) {
    PinTable t(8, 5);
    t.pin(ip("203.0.113.9"), std::string(254, 'a'), 1000, 0);
    EXPECT_EQ(t.size(), 0u);
    t.pin(ip("203.0.113.9"), std::string(253, 'a'), 1000, 0);
    EXPECT_EQ(names_of(t, ip("203.0.113.9"), 0).at(0).size(), 253u);
}

TEST(NetPinTable, ManyPinsStayConsistent) {
    PinTable t(1000, 6);
    for (std::uint32_t round = 0; round < 5; ++round) {
        for (std::uint32_t i = 0; i < 1000; ++i) {
            t.pin(IpAddr::v4(0x02000000u + i * 7919u), "h" + std::to_string(i), 1'000'000 + round, round);
        }
    }
    EXPECT_EQ(t.size(), 1000u);
    int found = 0;
    for (std::uint32_t i = 0; i < 1000; ++i) {
        found += names_of(t, IpAddr::v4(0x02000000u + i * 7919u), 10) == std::vector<std::string>{"h" + std::to_string(i)};
    }
    EXPECT_EQ(found, 1000);
}

TEST(NetFlowTable, InsertFindErase) {
    FlowTable t(8, 1);
    EXPECT_EQ(t.find(key(1), 0), nullptr);
    t.insert(key(1), 2, 7, 10);
    FlowEntry* e = t.find(key(1), 20);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->verdict, 2);
    EXPECT_EQ(e->reason, 7);
    EXPECT_EQ(e->last_seen, 20u);
    t.insert(key(1), 1, 0, 30);  // overwrite, not a second entry
    EXPECT_EQ(t.size(), 1u);
    EXPECT_EQ(t.find(key(1), 40)->verdict, 1);
    EXPECT_TRUE(t.erase(key(1)));
    EXPECT_FALSE(t.erase(key(1)));
    EXPECT_EQ(t.find(key(1), 50), nullptr);
    EXPECT_EQ(t.size(), 0u);
    // v4 and v6 keys, protocols and ports are all part of the key.
    FlowKey a = key(2);
    FlowKey b = a;
    b.protocol = 17;
    FlowKey c = a;
    c.dport = 80;
    t.insert(a, 1, 0, 1);
    EXPECT_EQ(t.find(b, 1), nullptr);
    EXPECT_EQ(t.find(c, 1), nullptr);
}

TEST(NetFlowTable, FullTableEvictsLeastRecentlySeen) {
    FlowTable t(64, 2);
    for (std::uint32_t i = 0; i < 64; ++i) {
        t.insert(key(i), 1, 0, i);
    }
    EXPECT_EQ(t.size(), 64u);
    EXPECT_EQ(t.evictions(), 0u);
    // Keep the first 32 fresh.
    for (std::uint32_t i = 0; i < 32; ++i) {
        ASSERT_NE(t.find(key(i), 1000 + i), nullptr);
    }
    for (std::uint32_t i = 64; i < 96; ++i) {
        t.insert(key(i), 1, 0, 2000 + i);
    }
    EXPECT_EQ(t.size(), 64u);
    EXPECT_EQ(t.evictions(), 32u);
    int fresh_kept = 0;
    for (std::uint32_t i = 0; i < 32; ++i) {
        fresh_kept += t.find(key(i), 3000) != nullptr;
    }
    for (std::uint32_t i = 64; i < 96; ++i) {
        EXPECT_NE(t.find(key(i), 3000), nullptr) << i;
    }
    // Eviction is per probe window, so "oldest" is local: most fresh flows survive.
    EXPECT_GE(fresh_kept, 24);
}

TEST(NetFlowTable, ChurnKeepsEveryLiveFlowFindable) {
    FlowTable t(4096, 3);
    for (std::uint32_t i = 0; i < 20000; ++i) {
        t.insert(key(i), 1, 0, i);
        if (i % 3 == 0) {
            t.erase(key(i / 2));
        }
    }
    EXPECT_LE(t.size(), 4096u);
    // The most recent flows are all present.
    for (std::uint32_t i = 19900; i < 20000; ++i) {
        EXPECT_NE(t.find(key(i), 30000), nullptr) << i;
    }
    EXPECT_GT(t.evictions(), 0u);
}

// Host-opened flows (forwards) are evicted last: a full table spares them, going over its
// capacity when a window holds nothing else, and a window of nothing else still takes a flow.
TEST(NetFlowTable, HostOpenedFlowsAreEvictedLast) {
    FlowTable t(64, 4);
    for (std::uint32_t i = 0; i < 8; ++i) {
        t.insert(key(i), 0, 0, i).host_opened = true;
    }
    for (std::uint32_t i = 100; i < 10000; ++i) {
        t.insert(key(i), 1, 0, 100 + i);
    }
    EXPECT_GT(t.evictions(), 9000u);
    EXPECT_LE(t.size(), 64u + 8u);
    for (std::uint32_t i = 0; i < 8; ++i) {
        auto* e = t.find(key(i), 20000);
        ASSERT_NE(e, nullptr) << i;
        EXPECT_TRUE(e->host_opened);
    }
    // Nothing but host-opened flows: 128 slots, every window fills; inserting never fails.
    FlowTable all(64, 5);
    for (std::uint32_t i = 0; i < 1000; ++i) {
        all.insert(key(i), 0, 0, i).host_opened = true;
        ASSERT_NE(all.find(key(i), i), nullptr) << i;
    }
    EXPECT_LE(all.size(), 128u);
}
