// netd end to end without a VM: the policy cases. The world and the fixture are
// netd_fixture.hpp; the data path's cases are netd_flows_netns.cpp. Root only.

#include "netd_fixture.hpp"

#include <sys/stat.h>

#include <map>
#include <sstream>

using namespace sbx::netd_test;

namespace {

constexpr const char* k_body = "sbx-netd-test-body\n";

// A framed Ethernet frame from the guest's MAC to libslirp's, for injection.
std::vector<std::uint8_t> framed(std::uint16_t ethertype, const std::vector<std::uint8_t>& payload,
                                 std::optional<std::uint32_t> length_override = std::nullopt) {
    std::vector<std::uint8_t> f = {0x52,
                                   0x55,
                                   0x0a,
                                   0x00,
                                   0x02,
                                   0x02,  // dst: libslirp
                                   0x02,
                                   0x00,
                                   0x00,
                                   0x00,
                                   0x00,
                                   0x15,  // src
                                   static_cast<std::uint8_t>(ethertype >> 8),
                                   static_cast<std::uint8_t>(ethertype)};
    f.insert(f.end(), payload.begin(), payload.end());
    std::uint32_t len = length_override.value_or(static_cast<std::uint32_t>(f.size()));
    // Reserved first: GCC 12 at -O2 warns (falsely) on growing a 4-byte initializer list.
    std::vector<std::uint8_t> out;
    out.reserve(4 + f.size());
    for (int shift : {24, 16, 8, 0}) {
        out.push_back(static_cast<std::uint8_t>(len >> shift));
    }
    out.insert(out.end(), f.begin(), f.end());
    return out;
}

// /proc/<pid>/status as key -> value ("Uid" -> "65534\t65534\t65534\t65534").
std::map<std::string, std::string> proc_status(int pid) {
    std::map<std::string, std::string> out;
    std::istringstream in(slurp(fmt::format("/proc/{}/status", pid)));
    for (std::string line; std::getline(in, line);) {
        auto colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        auto start = line.find_first_not_of(" \t", colon + 1);
        out[line.substr(0, colon)] = start == std::string::npos ? "" : line.substr(start);
    }
    return out;
}

}  // namespace

TEST_F(NetdNamespace, AllowedNameWorksOverHttpHttpsAndIpv6) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80, 443})};
    start(c);
    auto http = curl("http://www.allowed.test/");
    EXPECT_EQ(http.exit_code, 0) << http.output;
    EXPECT_EQ(http.output, k_body);
    auto https = curl("https://www.allowed.test/");
    EXPECT_EQ(https.exit_code, 0) << https.output;
    EXPECT_EQ(https.output, k_body);
    auto v6 = curl("http://www.allowed.test/", {"-6"});
    EXPECT_EQ(v6.exit_code, 0) << v6.output;
    EXPECT_EQ(v6.output, k_body);
    EXPECT_TRUE(wait_decision("allow", "allowed", "www.allowed.test", 443));
    EXPECT_TRUE(wait_decision(
        [](const LogRecord& r) { return r.verdict == "allow" && r.addr == "2001:db8::80" && r.port == 80; }));
    EXPECT_NE(dnsmasq_since_start().find("www.allowed.test"), std::string::npos)
        << "netd resolves allowed names upstream";
    auto stats = sbx::net::read_stats(c.stats);
    ASSERT_TRUE(stats);
    EXPECT_GE(stats->counters.flows_allowed, 3u);
}

TEST_F(NetdNamespace, DeniedNameGetsNxdomainAndNeverLeavesTheSandbox) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    start(c);
    auto v4 = guest({"getent", "ahostsv4", "denied.test"});
    EXPECT_EQ(v4.exit_code, 2) << "getent: name not found expected: " << v4.output;
    auto v6 = guest({"getent", "ahostsv6", "denied.test"});
    EXPECT_EQ(v6.exit_code, 2) << v6.output;
    auto r = curl("http://denied.test/");
    EXPECT_EQ(r.exit_code, 6) << "curl: could not resolve host expected: " << r.output;
    EXPECT_TRUE(wait_decision([](const LogRecord& d) {
        return d.dns && d.verdict == "deny" && d.name == "denied.test" && d.reason == "not_in_allowlist";
    }));
    // The allowed name does reach dnsmasq (so its log works), the denied one never does.
    EXPECT_EQ(curl("http://www.allowed.test/").exit_code, 0);
    auto queries = dnsmasq_since_start();
    EXPECT_NE(queries.find("www.allowed.test"), std::string::npos) << queries;
    EXPECT_EQ(queries.find("denied.test"), std::string::npos) << queries;
}

TEST_F(NetdNamespace, RawAddressIsRefusedAtOnce) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    start(c);
    // 198.51.100.81 serves HTTP (the host namespace can reach it) but no name resolves to it.
    auto direct = in_ns(g_world.host(), {SBX_NET_PROBE, "tcp", "198.51.100.81", "80", "3000"});
    ASSERT_EQ(direct.exit_code, 0) << direct.output;
    auto t0 = Clock::now();
    auto r = probe({"tcp", "198.51.100.81", "80", "5000"});
    auto elapsed = Clock::now() - t0;
    EXPECT_EQ(r.exit_code, 2) << "refused (RST) expected: " << r.output;
    EXPECT_LT(elapsed, 2s) << "a denial must be fast, not a timeout";
    auto cr = curl("http://198.51.100.81/");
    EXPECT_EQ(cr.exit_code, 7) << cr.output;
    auto d = wait_decision("deny", "not_resolved", "", 80);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->addr, "198.51.100.81");
}

TEST_F(NetdNamespace, AllowedNameOnAnotherPortIsDenied) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    start(c);
    EXPECT_EQ(curl("http://www.allowed.test/").output, k_body);
    auto r = curl("http://www.allowed.test:8080/");
    EXPECT_EQ(r.exit_code, 7) << r.output;
    EXPECT_TRUE(wait_decision("deny", "port_not_allowed", "www.allowed.test", 8080));
}

TEST_F(NetdNamespace, UdpAndIcmpAreDeniedUnlessARuleNamesThem) {
    {
        auto c = config();
        c.policy.rules = {name_rule("udp.test", {7007})};  // tcp only
        start(c);
        ASSERT_EQ(guest({"getent", "ahostsv4", "udp.test"}).exit_code, 0);
        auto u = probe({"udp", "198.51.100.7", "7007", "2000"});
        EXPECT_NE(u.exit_code, 0) << u.output;
        auto i = probe({"icmp", "198.51.100.7", "2000"});
        EXPECT_NE(i.exit_code, 0) << i.output;
        EXPECT_TRUE(wait_decision("deny", "proto_not_allowed", "udp.test", 7007));
        EXPECT_TRUE(wait_decision([](const LogRecord& r) {
            return r.verdict == "deny" && r.proto == "icmp" && r.name == "udp.test";
        }));
        stop(m_relay);
        stop(m_netd);
    }
    m_log_path = m_case / "net2.jsonl";
    auto c = config();
    c.policy.rules = {name_rule("udp.test", {7007}, k_udp | k_icmp)};
    start(c);
    ASSERT_EQ(guest({"getent", "ahostsv4", "udp.test"}).exit_code, 0);
    auto u = probe({"udp", "198.51.100.7", "7007", "3000"});
    EXPECT_EQ(u.exit_code, 0) << u.output;
    auto i = probe({"icmp", "198.51.100.7", "3000"});
    EXPECT_EQ(i.exit_code, 0) << i.output;
    // Another UDP port of the same name stays closed.
    EXPECT_NE(probe({"udp", "198.51.100.7", "7008", "2000"}).exit_code, 0);
}

TEST_F(NetdNamespace, DnsToAnotherServerIsDropped) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    start(c);
    auto r = probe({"udp", "198.51.100.53", "53", "2000"});
    EXPECT_NE(r.exit_code, 0) << "no answer may come back: " << r.output;
    auto d = wait_decision(
        [](const LogRecord& x) { return x.reason == "dns_elsewhere" && x.addr == "198.51.100.53"; });
    ASSERT_TRUE(d);
    EXPECT_EQ(d->verdict, "deny");
    auto t = probe({"tcp", "198.51.100.53", "53", "2000"});
    EXPECT_NE(t.exit_code, 0) << t.output;
}

TEST_F(NetdNamespace, PrivateAnswerIsRefusedUnlessTheRuleSaysPrivate) {
    {
        auto c = config();
        c.policy.rules = {name_rule("intranet.test", {80})};
        start(c);
        auto g = guest({"getent", "ahostsv4", "intranet.test"});
        EXPECT_NE(g.exit_code, 0) << "the 10.99.0.80 answer must be withheld: " << g.output;
        EXPECT_NE(curl("http://intranet.test/").exit_code, 0);
        EXPECT_NE(probe({"tcp", "10.99.0.80", "80", "2000"}).exit_code, 0);
        EXPECT_TRUE(wait_decision(
            [](const LogRecord& r) { return r.reason == "private_answer" && r.name == "intranet.test"; }));
        stop(m_relay);
        stop(m_netd);
    }
    m_log_path = m_case / "net2.jsonl";
    auto c = config();
    c.policy.rules = {name_rule("intranet.test", {80}, k_tcp, true)};
    start(c);
    auto r = curl("http://intranet.test/");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, k_body);
}

TEST_F(NetdNamespace, HostLoopbackIsClosedExceptHostPorts) {
    auto c = config();
    c.policy.host_ports = {18080};
    start(c);
    // Both ports have a listener on the host namespace's 127.0.0.1.
    auto open = probe({"tcp-read", "10.0.2.2", "18080", "3000"});
    EXPECT_EQ(open.exit_code, 0) << open.output;
    auto closed = probe({"tcp", "10.0.2.2", "18081", "3000"});
    EXPECT_EQ(closed.exit_code, 2) << closed.output;
    auto closed6 = probe({"tcp", "fec0::2", "18081", "3000"});
    EXPECT_EQ(closed6.exit_code, 2) << closed6.output;
    EXPECT_TRUE(
        wait_decision([](const LogRecord& r) { return r.reason == "host_loopback" && r.port == 18081; }));
    EXPECT_NE(probe({"udp", "10.0.2.2", "18080", "1000"}).exit_code, 0) << "host_ports are TCP only";
}

// A service on the host's own (non-loopback) address is the host too: closed even with
// policy "open", which otherwise reaches the internet.
TEST_F(NetdNamespace, HostInterfaceAddressesAreClosedEvenWhenOpen) {
    auto c = config();
    c.policy.mode = sbx::net::Mode::open;
    start(c);
    auto host = probe({"tcp", "192.0.2.2", "18082", "3000"});
    EXPECT_EQ(host.exit_code, 2) << host.output;
    auto internet = probe({"tcp", "198.51.100.80", "80", "3000"});
    EXPECT_EQ(internet.exit_code, 0) << internet.output;
    EXPECT_TRUE(wait_decision(
        [](const LogRecord& r) { return r.reason == "host_address" && r.addr == "192.0.2.2" && r.port == 18082; }));
}

// The host's addresses are followed (netlink): one the host gains after netd started is
// closed too, even with policy "open", and one it loses is the policy's again, since whoever
// holds it then is another machine (here the "internet" takes 192.0.2.77 over).
TEST_F(NetdNamespace, HostAddressesAreFollowedAfterStart) {
    const std::string late = "192.0.2.77", late6 = "2001:db8:1::77";
    struct Cleanup {  // the world is the suite's: leave it as it was, pass or fail
        std::function<void()> f;
        ~Cleanup() { f(); }
    } cleanup{[&] {
        in_ns(g_world.host(), {"ip", "addr", "del", late + "/32", "dev", "wan"});
        in_ns(g_world.host(), {"ip", "addr", "del", late6 + "/128", "dev", "wan"});
        in_ns(g_world.inet(), {"ip", "addr", "del", late + "/32", "dev", "wan"});
    }};
    auto c = config();
    c.policy.mode = sbx::net::Mode::open;
    start(c);
    auto netd_says = [&](const std::string& line) {
        auto deadline = Clock::now() + 5s;
        while (slurp(m_case / "netd.err").find(line) == std::string::npos) {
            if (Clock::now() > deadline) {
                return false;
            }
            std::this_thread::sleep_for(20ms);
        }
        return true;
    };

    // Gained after start: closed.
    ASSERT_EQ(in_ns(g_world.host(), {"ip", "addr", "add", late + "/32", "dev", "wan"}).exit_code, 0);
    ASSERT_EQ(in_ns(g_world.host(), {"ip", "addr", "add", late6 + "/128", "dev", "wan", "nodad"}).exit_code,
              0);
    ASSERT_TRUE(netd_says("netd: host address " + late + " added")) << slurp(m_case / "netd.err");
    ASSERT_TRUE(netd_says("netd: host address " + late6 + " added")) << slurp(m_case / "netd.err");
    m_servers.push_back(
        spawn_logged({"ip", "netns", "exec", g_world.host(), SBX_NET_PROBE, "tcp-serve", late, "18083"},
                     m_case / "host-server.out", m_case / "host-server.err"));
    auto until_up = [](const std::function<sbx::RunResult()>& attempt) {  // a server coming up
        sbx::RunResult r;
        for (int i = 0; i < 20; ++i) {
            if ((r = attempt()).exit_code == 0) {
                break;
            }
            std::this_thread::sleep_for(100ms);
        }
        return r;
    };
    auto on_host = until_up([&] {
        return in_ns(g_world.host(), {SBX_NET_PROBE, "tcp-read", late, "18083", "1000"});
    });
    ASSERT_EQ(on_host.exit_code, 0) << "the host's service on " << late << ": " << on_host.output;
    auto closed = probe({"tcp-read", late, "18083", "3000"});
    EXPECT_EQ(closed.exit_code, 2) << closed.output;
    EXPECT_TRUE(wait_decision(
        [&](const LogRecord& r) { return r.reason == "host_address" && r.addr == late && r.port == 18083; }));
    auto closed6 = probe({"tcp", late6, "18083", "3000"});
    EXPECT_EQ(closed6.exit_code, 2) << closed6.output;
    EXPECT_TRUE(wait_decision([&](const LogRecord& r) {
        return r.reason == "host_address" && r.addr == late6 && r.port == 18083;
    }));

    // Lost by the host, and now another machine's: the policy decides, and "open" reaches it.
    ASSERT_EQ(in_ns(g_world.host(), {"ip", "addr", "del", late + "/32", "dev", "wan"}).exit_code, 0);
    ASSERT_TRUE(netd_says("netd: host address " + late + " removed")) << slurp(m_case / "netd.err");
    ASSERT_EQ(in_ns(g_world.inet(), {"ip", "addr", "add", late + "/32", "dev", "wan"}).exit_code, 0);
    m_servers.push_back(
        spawn_logged({"ip", "netns", "exec", g_world.inet(), SBX_NET_PROBE, "tcp-serve", late, "18084"},
                     m_case / "inet-server.out", m_case / "inet-server.err"));
    auto reached = until_up([&] { return probe({"tcp-read", late, "18084", "2000"}); });
    EXPECT_EQ(reached.exit_code, 0) << reached.output;
    EXPECT_TRUE(wait_decision([&](const LogRecord& r) {
        return r.verdict == "allow" && r.reason == "open_policy" && r.addr == late && r.port == 18084;
    }));
    // The addresses it still has stay closed: the one from start, and the IPv6 one.
    EXPECT_EQ(probe({"tcp", "192.0.2.2", "18082", "3000"}).exit_code, 2);
    EXPECT_TRUE(wait_decision([](const LogRecord& r) {
        return r.reason == "host_address" && r.addr == "192.0.2.2" && r.port == 18082;
    }));
    EXPECT_EQ(probe({"tcp", late6, "18085", "3000"}).exit_code, 2);
    EXPECT_TRUE(wait_decision([&](const LogRecord& r) {
        return r.reason == "host_address" && r.addr == late6 && r.port == 18085;
    }));
}

TEST_F(NetdNamespace, Ipv6ObeysThePolicy) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    start(c);
    // Never resolved: denied even though it is the allowed name's address.
    auto raw = probe({"tcp", "2001:db8::80", "80", "3000"});
    EXPECT_EQ(raw.exit_code, 2) << raw.output;
    EXPECT_TRUE(wait_decision(
        [](const LogRecord& r) { return r.reason == "not_resolved" && r.addr == "2001:db8::80"; }));
    auto v6 = guest({"getent", "ahostsv6", "www.allowed.test"});
    EXPECT_EQ(v6.exit_code, 0) << v6.output;
    EXPECT_NE(v6.output.find("2001:db8::80"), std::string::npos) << v6.output;
    auto r = curl("http://www.allowed.test/", {"-6"});
    EXPECT_EQ(r.output, k_body) << r.output;
    EXPECT_EQ(curl("http://www.allowed.test:8080/", {"-6"}).exit_code, 7);
    EXPECT_EQ(guest({"getent", "ahostsv6", "denied.test"}).exit_code, 2);
}

TEST_F(NetdNamespace, LearnModeRecordsAndSuggests) {
    // The decision log sits where `sbx net suggest` looks for it: $SBX_HOME/vms/NAME/net.jsonl.
    auto home = m_case / "home";
    fs::create_directories(home / "vms" / "learnvm");
    m_log_path = home / "vms" / "learnvm" / "net.jsonl";
    auto c = config();
    c.policy.learn = true;
    start(c);
    EXPECT_EQ(curl("http://www.allowed.test/").output, k_body);
    for (const char* n : {"a.sub.test", "b.sub.test", "c.sub.test"}) {
        EXPECT_EQ(curl(std::string("http://") + n + "/").exit_code, 0) << n;
    }
    ASSERT_EQ(guest({"getent", "ahostsv4", "udp.test"}).exit_code, 0);
    EXPECT_EQ(probe({"udp", "198.51.100.7", "7007", "3000"}).exit_code, 0);
    ASSERT_TRUE(wait_decision(
        [](const LogRecord& r) { return r.verdict == "learn" && r.name == "udp.test" && !r.dns; }));
    ASSERT_TRUE(wait_decision(
        [](const LogRecord& r) { return r.verdict == "learn" && r.name == "c.sub.test" && !r.dns; }));

    auto s = run({SBX_BINARY, "net", "suggest", "learnvm"}, 30s, {"SBX_HOME=" + home.string()});
    ASSERT_EQ(s.exit_code, 0) << s.output;
    EXPECT_NE(s.output.find("\"www.allowed.test:80\""), std::string::npos) << s.output;
    EXPECT_NE(s.output.find("\"*.sub.test:80\""), std::string::npos) << s.output;
    EXPECT_NE(s.output.find("{ host = \"udp.test\", ports = [7007], proto = \"udp\" }"), std::string::npos)
        << s.output;
    EXPECT_EQ(s.output.find("\"a.sub.test:80\""), std::string::npos)
        << "folded into *.sub.test: " << s.output;

    auto l = run({SBX_BINARY, "net", "log", "learnvm"}, 30s, {"SBX_HOME=" + home.string()});
    ASSERT_EQ(l.exit_code, 0) << l.output;
    EXPECT_NE(l.output.find("LEARN"), std::string::npos) << l.output;
    EXPECT_NE(l.output.find("198.51.100.7:7007"), std::string::npos) << l.output;
}

TEST_F(NetdNamespace, MalformedFramesAreCountedAndDoNotStallTraffic) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    start(c);
    ASSERT_EQ(curl("http://www.allowed.test/").output, k_body);
    std::vector<std::uint8_t> bad;
    auto add = [&](const std::vector<std::uint8_t>& f) { bad.insert(bad.end(), f.begin(), f.end()); };
    // IPv4: a truncated header (10 of 20 bytes).
    add(framed(0x0800, {0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06}));
    // IPv4: IHL 15 (60 bytes of header) in a 24-byte packet.
    add(framed(0x0800,
               {0x4f, 0, 0, 24, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 2, 15, 198, 51, 100, 80, 0, 0, 0, 0}));
    // IPv4: IHL 3 (below the minimum).
    add(framed(0x0800, {0x43, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 2, 15, 198, 51, 100, 80}));
    // IPv4: total length beyond the frame.
    add(framed(0x0800, {0x45, 0, 0xff, 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 2, 15, 198, 51, 100, 80}));
    // IPv6: payload length beyond the frame.
    std::vector<std::uint8_t> v6(40, 0);
    v6[0] = 0x60;
    v6[4] = 0xff;
    v6[5] = 0xff;
    v6[6] = 6;
    add(framed(0x86dd, v6));
    // A 1-byte frame, and an Ethernet header alone.
    add({0, 0, 0, 1, 0x52});
    add(framed(0x0800, {}));
    inject(bad);
    auto after = curl("http://www.allowed.test/");
    EXPECT_EQ(after.exit_code, 0) << after.output;
    EXPECT_EQ(after.output, k_body);
    auto deadline = Clock::now() + 4s;
    std::uint64_t malformed = 0;
    while (Clock::now() < deadline) {
        if (auto s = sbx::net::read_stats(c.stats)) {
            malformed = s->counters.malformed;
            if (malformed >= 6) {
                break;
            }
        }
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_GE(malformed, 6u) << "each bad frame is counted";
    EXPECT_TRUE(sbx::try_wait_child(m_netd) == std::nullopt) << "netd keeps running";
}

TEST_F(NetdNamespace, CorruptLengthPrefixClosesTheStreamAndNetdFailsClosed) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    start(c);
    ASSERT_EQ(curl("http://www.allowed.test/").output, k_body);
    inject(framed(0x0800, std::vector<std::uint8_t>(64, 0), 0x00100000));  // a 1 MiB "frame"
    auto code = wait_exit(m_netd, 5000ms);
    ASSERT_TRUE(code) << "netd must stop on a stream it cannot resynchronise";
    EXPECT_EQ(*code, 1);
    EXPECT_NE(slurp(m_case / "netd.err").find("corrupt"), std::string::npos) << slurp(m_case / "netd.err");
    auto relay = wait_exit(m_relay, 5000ms);
    ASSERT_TRUE(relay);
    EXPECT_EQ(*relay, 3) << slurp(m_case / "relay.err");
}

TEST_F(NetdNamespace, RelaySeesTheSocketCloseWhenNetdIsKilled) {
    auto c = config();
    start(c);
    ::kill(m_netd.pid, SIGKILL);
    auto relay = wait_exit(m_relay, 5000ms);
    ASSERT_TRUE(relay) << "the relay (QEMU's position) must notice at once";
    EXPECT_EQ(*relay, 3);
    EXPECT_NE(slurp(m_case / "relay.err").find("netd closed the connection"), std::string::npos);
}

TEST_F(NetdNamespace, OnlyOneClientAndCleanExitWhenItLeaves) {
    auto c = config();
    start(c);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    auto p = c.socket.string();
    std::memcpy(a.sun_path, p.c_str(), p.size() + 1);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    int err = errno;
    ::close(fd);
    EXPECT_EQ(rc, -1);
    EXPECT_EQ(err, ECONNREFUSED);
    stop(m_relay);  // QEMU goes away: netd exits 0
    auto code = wait_exit(m_netd, 5000ms);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 0) << slurp(m_case / "netd.err");
}

TEST_F(NetdNamespace, HostForwardReachesTheGuest) {
    auto c = config();
    c.forwards = {{12222, 7777, sbx::net::Proto::tcp}};
    start(c);
    auto r = read_through_forward(12222, 7777);
    EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(NetdNamespace, ForwardOnAPortInUseIsAStartupErrorNamingThePort) {
    auto c = config();
    c.forwards = {{18081, 22, sbx::net::Proto::tcp}};  // the harness's host-loopback service holds it
    sbx::net::write_netd_config(m_case / "netd.json", c);
    auto r = in_ns(g_world.host(), {SBX_BINARY, "_netd", "--config", (m_case / "netd.json").string()});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("127.0.0.1:18081"), std::string::npos) << r.output;
    EXPECT_FALSE(sbx::net::netd_socket_ready(c.socket));
}

// netd started as root (docs/network.md, "netd as a process"): it binds what needs root (here a
// forward on port 81, below the unprivileged port range), then runs as nobody with no
// capabilities, no new privileges and its seccomp filter, and still serves the forward and
// writes its stats and log through the descriptors it opened as root, whose owner stays root.
TEST_F(NetdNamespace, AsRootNetdDropsToNobodyAfterBindingAPrivilegedPort) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    c.forwards = {{81, 7777, sbx::net::Proto::tcp}};
    start(c);
    ASSERT_GT(m_netd.pid, 0);
    ASSERT_NE(slurp(fmt::format("/proc/{}/cmdline", m_netd.pid)).find("_netd"), std::string::npos)
        << "the pid is not netd's (ip netns exec execs it in place)";
    auto st = proc_status(m_netd.pid);
    for (const char* key : {"Uid", "Gid"}) {
        std::istringstream ids(st[key]);
        int n = 0;
        for (unsigned id = 0; ids >> id; ++n) {
            EXPECT_NE(id, 0u) << key << ": " << st[key];
        }
        EXPECT_EQ(n, 4) << key << ": " << st[key];  // real, effective, saved, filesystem
    }
    EXPECT_EQ(st["Groups"], "");
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
        EXPECT_EQ(st[set], "0000000000000000") << set;
    }
    EXPECT_EQ(st["NoNewPrivs"], "1");
    EXPECT_EQ(st["Seccomp"], "2");
    std::cerr << "netd's /proc status: Uid " << st["Uid"] << ", Gid " << st["Gid"] << ", CapEff " << st["CapEff"]
              << ", CapPrm " << st["CapPrm"] << ", CapBnd " << st["CapBnd"] << ", NoNewPrivs " << st["NoNewPrivs"]
              << ", Seccomp " << st["Seccomp"] << "\n";

    auto r = read_through_forward(81, 7777);
    EXPECT_EQ(r.exit_code, 0) << r.output;

    // Outbound as nobody: the resolver and a new host socket; a denial to log and count.
    auto fetched = curl("http://www.allowed.test/");
    EXPECT_EQ(fetched.exit_code, 0) << fetched.output;
    EXPECT_EQ(fetched.output, k_body);
    EXPECT_EQ(curl("http://denied.test/").exit_code, 6);
    std::optional<sbx::net::NetStats> stats;
    for (auto deadline = Clock::now() + 4s; Clock::now() < deadline; std::this_thread::sleep_for(100ms)) {
        stats = sbx::net::read_stats(m_case / "net-stats.json");
        if (stats && stats->counters.dns_denied > 0 && stats->counters.flows_allowed > 0) {
            break;
        }
    }
    ASSERT_TRUE(stats);
    EXPECT_GT(stats->counters.dns_denied, 0u) << slurp(m_case / "net-stats.json");
    EXPECT_GT(stats->counters.flows_allowed, 0u) << slurp(m_case / "net-stats.json");
    EXPECT_TRUE(wait_decision("allow", "allowed", "www.allowed.test", 80));
    EXPECT_TRUE(wait_decision("deny", "not_in_allowlist", "denied.test"));
    for (const auto& f : {m_case / "net-stats.json", log_path()}) {
        struct stat sb {};
        ASSERT_EQ(::stat(f.c_str(), &sb), 0) << f;
        EXPECT_EQ(sb.st_uid, 0u) << f;
        EXPECT_EQ(sb.st_mode & 0777, 0600u) << f;
    }
}
