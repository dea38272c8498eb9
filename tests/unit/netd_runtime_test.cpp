// netd's config file and decision log formats, and `sbx net suggest`'s grouping, on
// synthetic inputs.

#include "sbx/net/net_log.hpp"
#include "sbx/net/netd_config.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>

using namespace sbx::net;
using nlohmann::json;

namespace {

NetdConfig sample() {
    NetdConfig c;
    c.socket = "/tmp/x/net.sock";
    c.decision_log = "/tmp/x/net.jsonl";
    c.stats = "/tmp/x/net-stats.json";
    Rule a;
    a.kind = Rule::Kind::name;
    a.name = "github.com";
    a.ports = {22, 443};
    a.source = "github.com:22,443";
    Rule b;
    b.kind = Rule::Kind::suffix;
    b.name = "example.com";
    b.ports = {5353};
    b.protos = static_cast<std::uint8_t>(Proto::udp) | static_cast<std::uint8_t>(Proto::icmp);
    b.allow_private = true;
    Rule c6;
    c6.kind = Rule::Kind::cidr;
    c6.cidr = *Cidr::parse("2001:db8::/32");
    c6.ports = {80};
    c.policy.rules = {a, b, c6};
    c.policy.host_ports = {5432};
    c.policy.learn = true;
    c.forwards = {{2222, 22, Proto::tcp}, {5353, 53, Proto::udp}};
    c.limits.flows = 100;
    return c;
}

std::string error_of(const json& j) {
    try {
        netd_config_from_json(j);
    } catch (const sbx::Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(NetdConfig, RoundTripsThroughJson) {
    auto c = sample();
    auto back = netd_config_from_json(json::parse(to_json(c).dump()));
    EXPECT_EQ(back.socket, c.socket);
    EXPECT_EQ(back.decision_log, c.decision_log);
    EXPECT_EQ(back.resolv_conf, "/etc/resolv.conf");
    ASSERT_EQ(back.policy.rules.size(), 3u);
    EXPECT_EQ(back.policy.rules[0].name, "github.com");
    EXPECT_EQ(back.policy.rules[0].ports, (std::vector<std::uint16_t>{22, 443}));
    EXPECT_EQ(back.policy.rules[1].kind, Rule::Kind::suffix);
    EXPECT_EQ(back.policy.rules[1].protos, c.policy.rules[1].protos);
    EXPECT_TRUE(back.policy.rules[1].allow_private);
    EXPECT_EQ(back.policy.rules[2].cidr.to_string(), "2001:db8::/32");
    EXPECT_TRUE(back.policy.learn);
    EXPECT_EQ(back.policy.host_ports, (std::vector<std::uint16_t>{5432}));
    ASSERT_EQ(back.forwards.size(), 2u);
    EXPECT_EQ(back.forwards[1].proto, Proto::udp);
    EXPECT_EQ(back.limits.flows, 100u);
    EXPECT_EQ(back.guest.mtu, 65520u);
    EXPECT_EQ(back.guest.host.to_string(), "10.0.2.2");
}

TEST(NetdConfig, ErrorsNameTheKey) {
    auto j = to_json(sample());
    auto bad = j;
    bad["policy"]["rules"][2]["cidr"] = "10.0.0.0/33";
    EXPECT_NE(error_of(bad).find("policy.rules[2].cidr"), std::string::npos) << error_of(bad);
    bad = j;
    bad["policy"]["rules"][0]["prots"] = json::array();
    EXPECT_NE(error_of(bad).find("policy.rules[0].prots: unknown key"), std::string::npos) << error_of(bad);
    bad = j;
    bad["forwards"][0]["host_port"] = 70000;
    EXPECT_NE(error_of(bad).find("forwards[0].host_port"), std::string::npos) << error_of(bad);
    bad = j;
    bad["forwards"][1]["host_port"] = 2222;
    bad["forwards"][1]["proto"] = "tcp";
    EXPECT_NE(error_of(bad).find("forwarded twice"), std::string::npos) << error_of(bad);
    bad = j;
    bad.erase("socket");
    EXPECT_NE(error_of(bad).find("socket"), std::string::npos);
    bad = j;
    bad["policy"]["mode"] = "everything";
    EXPECT_NE(error_of(bad).find("policy.mode"), std::string::npos);
    bad = j;
    bad["limits"]["flows"] = 1ull << 40;
    EXPECT_NE(error_of(bad).find("limits.flows"), std::string::npos);
    bad = j;
    bad["policy"]["rules"][0]["ports"] = json::array();
    EXPECT_NE(error_of(bad).find("needs at least one port"), std::string::npos);
}

TEST(NetdConfig, FileErrorsNameTheFile) {
    sbx::test::TempDir dir;
    auto p = dir.write("netd.json", "{ not json");
    try {
        read_netd_config(p);
        FAIL() << "expected an error";
    } catch (const sbx::Error& e) {
        EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos);
        EXPECT_EQ(e.code(), sbx::ExitCode::config);
    }
    write_netd_config(dir.path() / "ok.json", sample());
    EXPECT_EQ(read_netd_config(dir.path() / "ok.json").policy.rules.size(), 3u);
}

TEST(NetLog, DecisionLinesParseBackAndEscapeHostileNames) {
    Decision d;
    d.verdict = Verdict::deny;
    d.reason = Reason::not_in_allowlist;
    d.proto = Proto::tcp;
    d.addr = *IpAddr::parse("203.0.113.9");
    d.port = 443;
    std::strcpy(d.name, "evil\"\n\x01.example");
    auto line = decision_to_json_line(d, 1746100800123);
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per decision";
    auto r = parse_log_line(line);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->verdict, "deny");
    EXPECT_EQ(r->reason, "not_in_allowlist");
    EXPECT_EQ(r->name, "evil\"\n\x01.example");
    EXPECT_EQ(r->addr, "203.0.113.9");
    EXPECT_EQ(r->port, 443);
    EXPECT_EQ(r->time, "2025-05-01T12:00:00.123Z");
    auto human = format_log_record(*r);
    EXPECT_NE(human.find("DENY"), std::string::npos);
    EXPECT_NE(human.find("203.0.113.9:443"), std::string::npos);
    EXPECT_NE(human.find("not in allowlist"), std::string::npos);
    EXPECT_FALSE(parse_log_line("{broken"));
}

TEST(NetLog, WriterCapsTheFileAndKeepsWholeLines) {
    sbx::test::TempDir dir;
    auto path = dir.path() / "net.jsonl";
    DecisionLog log(path);
    std::vector<Decision> batch(1000);
    for (auto& d : batch) {
        d.verdict = Verdict::allow;
        d.reason = Reason::allowed;
        std::memset(d.name, 'a', 250);  // long lines fill the log with fewer records
        d.name[250] = '\0';
        d.addr = *IpAddr::parse("198.51.100.80");
        d.port = 443;
    }
    for (int i = 0; i < 25; ++i) {  // ~10 MiB written in total
        log.append(batch, 0, 1746100800000);
    }
    auto size = std::filesystem::file_size(path);
    EXPECT_LE(size, k_log_cap);
    EXPECT_GE(size, k_log_keep);
    auto text = sbx::test::slurp(path);
    EXPECT_EQ(text.front(), '{');
    EXPECT_EQ(text.back(), '\n');
    auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    EXPECT_NE(text.find("{\"gap_bytes\":"), std::string::npos) << "no gap line where decisions were dropped";
    EXPECT_EQ(read_log(path).size(), lines - 1) << "every line but the one gap line is a decision";
}

// A guest that floods the log with denials cannot push out what it tried first.
TEST(NetLog, TheFirstDecisionsOutliveAFlood) {
    sbx::test::TempDir dir;
    auto path = dir.path() / "net.jsonl";
    DecisionLog log(path);
    std::vector<Decision> first(100);
    for (std::size_t i = 0; i < first.size(); ++i) {
        auto name = fmt::format("first{}.example", i);
        std::memcpy(first[i].name, name.c_str(), name.size() + 1);
        first[i].addr = *IpAddr::parse("203.0.113.9");
        first[i].port = 443;
    }
    log.append(first, 0, 1746100800000);
    std::vector<Decision> flood(1000);
    for (int round = 0; round < 60; ++round) {  // ~12 MiB of distinct denials
        for (std::size_t i = 0; i < flood.size(); ++i) {
            auto name = fmt::format("flood{}-{}.{}.example", round, i, std::string(150, 'x'));
            std::memcpy(flood[i].name, name.c_str(), name.size() + 1);
        }
        log.append(flood, 0, 1746100800000);
    }
    EXPECT_LE(std::filesystem::file_size(path), k_log_cap);
    auto records = read_log(path);
    ASSERT_GT(records.size(), first.size());
    for (std::size_t i = 0; i < first.size(); ++i) {
        EXPECT_EQ(records[i].name, fmt::format("first{}.example", i)) << "the first decisions were dropped";
    }
    EXPECT_EQ(records.back().name.rfind("flood59-999.", 0), 0u) << "the newest decisions were dropped";
}

TEST(NetLog, DeniedDestinationsFileRoundTripsAndStartsEmpty) {
    sbx::test::TempDir dir;
    auto path = dir.path() / "net-denied.jsonl";
    {
        DeniedFile old(path);
        std::vector<DeniedDestination> d(1);
        std::memcpy(d[0].first.name, "old.example", 12);
        old.write(d, 0, 0, 1746100800000);
    }
    DeniedFile f(path);  // a new netd: the last run's destinations are gone
    auto empty = read_denied(path);
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->destinations.empty());
    std::vector<DeniedDestination> d(2);
    std::memcpy(d[0].first.name, "evil.example", 13);
    d[0].first.addr = *IpAddr::parse("203.0.113.9");
    d[0].first.port = 443;
    d[0].first.at = 1000;
    d[0].last = 9000;
    d[0].count = 12034;
    d[1].first.dns = true;
    d[1].first.reason = Reason::rate_limited;
    std::memcpy(d[1].first.name, "q.example", 10);
    d[1].first.at = 2000;
    d[1].last = 2000;
    d[1].count = 1;
    f.write(std::span<const DeniedDestination>(d.data(), 1), 0, 10'000, 1746100800000);
    f.write(d, 77, 10'000, 1746100800000);  // rewritten whole, shorter lines never linger
    auto s = read_denied(path);
    ASSERT_TRUE(s);
    ASSERT_EQ(s->destinations.size(), 2u);
    EXPECT_EQ(s->destinations[0].first.name, "evil.example");
    EXPECT_EQ(s->destinations[0].first.addr, "203.0.113.9");
    EXPECT_EQ(s->destinations[0].first.port, 443);
    EXPECT_EQ(s->destinations[0].first.ms, 1746100800000 - 9000);
    EXPECT_EQ(s->destinations[0].last_ms, 1746100800000 - 1000);
    EXPECT_EQ(s->destinations[0].count, 12034u);
    EXPECT_TRUE(s->destinations[1].first.dns);
    EXPECT_EQ(s->destinations[1].first.reason, "rate_limited");
    EXPECT_EQ(s->unlisted, 77u);
    f.write({}, 0, 10'000, 1746100800000);
    auto none = read_denied(path);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->destinations.empty());
    EXPECT_FALSE(read_denied(dir.path() / "missing.jsonl"));
}

TEST(NetLog, StatsFileRoundTrips) {
    sbx::test::TempDir dir;
    auto path = dir.path() / "net-stats.json";
    StatsFile f(path);
    Counters c;
    c.flows_allowed = 7;
    c.flows_denied = 3;
    c.malformed = 2;
    c.denied_by_reason[static_cast<std::size_t>(Reason::metadata)] = 11;
    c.denied_by_reason[static_cast<std::size_t>(Reason::not_in_allowlist)] = 18446744073709551615u;
    RuntimeCounters r;
    r.out_dropped = 5;
    r.tcp_open = 9;
    r.tcp_failed = 4;
    r.datagram_dropped = 6;
    f.write(c, r, 1000);
    c.flows_allowed = 8;  // a rewrite in place replaces the whole object
    f.write(c, r, 2000);
    auto s = read_stats(path);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->counters.flows_allowed, 8u);
    EXPECT_EQ(s->counters.flows_denied, 3u);
    EXPECT_EQ(s->counters.malformed, 2u);
    EXPECT_EQ(s->counters.denied_by_reason[static_cast<std::size_t>(Reason::metadata)], 11u);
    EXPECT_EQ(s->counters.denied_by_reason[static_cast<std::size_t>(Reason::not_in_allowlist)],
              18446744073709551615u);
    EXPECT_EQ(s->counters.denied_by_reason[static_cast<std::size_t>(Reason::fragment)], 0u);
    EXPECT_EQ(s->runtime.out_dropped, 5u);
    EXPECT_EQ(s->runtime.tcp_open, 9u);
    EXPECT_EQ(s->runtime.tcp_failed, 4u);
    EXPECT_EQ(s->runtime.datagram_dropped, 6u);
    EXPECT_EQ(s->updated_ms, 2000);
    EXPECT_EQ(std::filesystem::file_size(path), k_stats_size);
    EXPECT_FALSE(read_stats(dir.path() / "missing.json"));
}

TEST(NetSuggest, GroupsMergesAndFoldsSubdomains) {
    auto rec = [](std::string name, std::string proto, std::uint16_t port, std::string addr = "198.51.100.1",
                  std::string verdict = "learn") {
        LogRecord r;
        r.verdict = verdict;
        r.reason = "not_in_allowlist";
        r.name = std::move(name);
        r.proto = std::move(proto);
        r.port = port;
        r.addr = std::move(addr);
        return r;
    };
    std::vector<LogRecord> records = {
        rec("api.example.com", "tcp", 443),   rec("api.example.com", "tcp", 8443),
        rec("api.example.com", "tcp", 443),   rec("a.cdn.example.net", "tcp", 443),
        rec("b.cdn.example.net", "tcp", 443), rec("c.cdn.example.net", "tcp", 80),
        rec("x.example", "udp", 5353),        rec("x.example", "icmp", 0),
        rec("", "tcp", 22, "203.0.113.5"),    rec("denied.example", "tcp", 443, "198.51.100.2", "deny"),
        rec("one.com", "tcp", 443),           rec("two.com", "tcp", 443),
        rec("three.com", "tcp", 443),         rec("a.github.io", "tcp", 443),
        rec("b.github.io", "tcp", 443),       rec("c.github.io", "tcp", 443),
        rec("a.s3.amazonaws.com", "tcp", 443), rec("b.s3.amazonaws.com", "tcp", 443),
        rec("c.s3.amazonaws.com", "tcp", 443),
    };
    LogRecord dns = rec("queried.example", "udp", 0);
    dns.dns = true;
    records.push_back(dns);
    auto s = suggest_allow_entries(records);
    std::vector<std::string> entries;
    for (const auto& x : s) {
        entries.push_back(x.entry);
    }
    auto has = [&](const std::string& e) {
        return std::find(entries.begin(), entries.end(), e) != entries.end();
    };
    EXPECT_TRUE(has("\"api.example.com:443,8443\"")) << testing::PrintToString(entries);
    EXPECT_TRUE(has("\"*.cdn.example.net:80,443\"")) << testing::PrintToString(entries);
    EXPECT_FALSE(has("\"a.cdn.example.net:443\""));
    EXPECT_TRUE(has("{ host = \"x.example\", ports = [5353], proto = \"udp\" }"));
    EXPECT_TRUE(has("{ host = \"x.example\", proto = \"icmp\" }"));
    EXPECT_TRUE(has("{ cidr = \"203.0.113.5/32\", ports = [22] }"));
    EXPECT_TRUE(has("\"one.com:443\"")) << "never *.com";
    // Never what the profile refuses: a wildcard over a public suffix.
    EXPECT_TRUE(has("\"a.github.io:443\"")) << testing::PrintToString(entries);
    EXPECT_TRUE(has("\"c.s3.amazonaws.com:443\"")) << testing::PrintToString(entries);
    EXPECT_FALSE(has("\"*.github.io:443\""));
    EXPECT_FALSE(has("\"*.s3.amazonaws.com:443\""));
    for (const auto& e : entries) {
        EXPECT_EQ(e.find("denied.example"), std::string::npos) << "only learn records count";
        EXPECT_EQ(e.find("queried.example"), std::string::npos) << "a lookup alone is not a destination";
    }
}
