// netd's data path end to end without a VM: the TCP and datagram engines (docs/network.md,
// "The TCP engine", "The datagram engine") carrying real traffic between the guest namespace
// and real peers in the internet namespace, or from the host namespace into the guest through
// forwards. Each case is measured by what the far end gets (bytes, SHA-256, resets) and by
// netd's own stats (tcp_open back to 0) and memory (VmRSS). The world and the fixture are
// netd_fixture.hpp; the policy's cases are netd_netns.cpp. Root only.
//
// The policy is "open" in these cases: the filter is not what they test, and an open policy
// needs no DNS step before a raw-address peer. Servers are net_probe modes (helpers/
// net_probe.cpp: a fixed-seed byte pattern, sources, sinks, an echo), iperf3 (the harness
// runs one on 198.51.100.80:5201) and nginx.

#include <cstdio>
#include <nlohmann/json.hpp>

#include "netd_fixture.hpp"

using namespace sbx::netd_test;

namespace {

constexpr const char* k_web = "198.51.100.80";  // nginx :80, iperf3 :5201, and this file's servers
constexpr std::uint64_t k_mib = 1ull << 20;
// The bulk transfer, each way. 1 GiB takes about 10-20 s a direction through the dev build's
// ASan netd on a busy 2-core machine (the test prints its time).
constexpr std::uint64_t k_bulk = 1024 * k_mib;

std::string q(const std::string& s) {
    return "'" + s + "'";
}  // paths here have no quote

class NetdFlows : public NetdNamespace {
protected:
    sbx::net::NetdConfig open_config() const {
        auto c = config();
        c.policy.mode = sbx::net::Mode::open;
        return c;
    }

    sbx::RunResult bash_in(const std::string& ns, const std::string& script, std::chrono::seconds timeout) {
        return in_ns(ns, {"bash", "-c", "set -o pipefail; " + script}, timeout);
    }

    // SHA-256 (hex) of `bytes` of the pattern with `seed`, computed here, off the network.
    std::string pattern_sha(std::uint64_t bytes, std::uint64_t seed) {
        auto r = run({"bash", "-c",
                      std::string("set -o pipefail; ") + SBX_NET_PROBE + " gen " + std::to_string(bytes) +
                          " " + std::to_string(seed) + " | sha256sum"},
                     120s);
        EXPECT_EQ(r.exit_code, 0) << r.output;
        return r.output.substr(0, 64);
    }
    static std::string sha_file(const fs::path& p) { return slurp(p).substr(0, 64); }

    // Waits (bounded: netd rewrites its stats about once a second) until netd counted at least
    // `allowed` allowed flows and has no TCP connection open; the last stats read.
    std::optional<sbx::net::NetStats> wait_tcp_closed(const sbx::net::NetdConfig& c, std::uint64_t allowed,
                                                      std::chrono::milliseconds limit = 8000ms) {
        auto deadline = Clock::now() + limit;
        std::optional<sbx::net::NetStats> last;
        for (;;) {
            if (auto s = sbx::net::read_stats(c.stats)) {
                last = s;
                if (s->counters.flows_allowed >= allowed && s->runtime.tcp_open == 0) {
                    return last;
                }
            }
            if (Clock::now() > deadline) {
                return last;
            }
            std::this_thread::sleep_for(100ms);
        }
    }
    static std::string describe(const std::optional<sbx::net::NetStats>& s) {
        if (!s) {
            return "no stats file";
        }
        return "tcp_open " + std::to_string(s->runtime.tcp_open) + ", flows_allowed " +
               std::to_string(s->counters.flows_allowed) + ", tcp_resets " +
               std::to_string(s->runtime.tcp_resets) + ", tcp_failed " +
               std::to_string(s->runtime.tcp_failed) + ", tcp_retransmits " +
               std::to_string(s->runtime.tcp_retransmits);
    }
};

// iperf3 -J: the receiver's bits per second, or nothing when the report has none.
std::optional<double> iperf_bps(const std::string& output) {
    auto begin = output.find('{');
    auto end = output.rfind('}');
    if (begin == std::string::npos || end == std::string::npos || end < begin) {
        return std::nullopt;
    }
    auto j = nlohmann::json::parse(output.substr(begin, end - begin + 1), nullptr, false);
    if (j.is_discarded() || !j.contains("end") || !j["end"].contains("sum_received")) {
        return std::nullopt;
    }
    return j["end"]["sum_received"].value("bits_per_second", 0.0);
}

}  // namespace

TEST_F(NetdFlows, Iperf3UploadAndDownloadComplete) {
    if (!sbx::find_program("iperf3")) {
        GTEST_SKIP() << "skipped: iperf3 is not installed";
    }
    auto c = open_config();
    start(c);
    // The harness starts iperf3 last of its servers; it answers from the host namespace first.
    sbx::RunResult ready;
    for (int i = 0; i < 50; ++i) {
        ready = in_ns(g_world.host(), {SBX_NET_PROBE, "tcp", k_web, "5201", "200"});
        if (ready.exit_code == 0) {
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(ready.exit_code, 0) << "no iperf3 server in the internet namespace: " << ready.output;
    for (bool reverse : {false, true}) {
        std::vector<std::string> argv = {"iperf3", "-c", k_web, "-p", "5201", "-t", "3", "-J"};
        if (reverse) {
            argv.push_back("-R");
        }
        auto t0 = Clock::now();
        auto r = guest(argv, 40s);
        const char* way = reverse ? "download (inet -> guest, -R)" : "upload (guest -> inet)";
        ASSERT_EQ(r.exit_code, 0) << way << ":\n" << r.output;
        auto bps = iperf_bps(r.output);
        ASSERT_TRUE(bps) << way << ": no end.sum_received in the report:\n" << r.output;
        EXPECT_GT(*bps, 0.0) << way;
        char line[128];
        std::snprintf(line, sizeof line, "iperf3 %s: %.2f Gbit/s (%.1f s)", way, *bps / 1e9,
                      seconds_since(t0));
        note(line);
    }
    auto s = wait_tcp_closed(c, 4);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->runtime.tcp_open, 0u) << describe(s);
}

TEST_F(NetdFlows, ThousandShortConnectionsInARowAllSucceed) {
    auto c = open_config();
    start(c);
    auto t0 = Clock::now();
    // One connection after another: connect, HTTP/1.0 GET to nginx, read to its close.
    auto r = guest({SBX_CONN_RATE, k_web, "80", "90", "www.allowed.test", "1000"}, 120s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("conns 1000 errors 0 "), std::string::npos) << r.output;
    note("conn_rate: " + r.output.substr(0, r.output.find('\n')) + " (" + std::to_string(seconds_since(t0)) +
         " s)");
    auto s = wait_tcp_closed(c, 1000);
    ASSERT_TRUE(s);
    EXPECT_GE(s->counters.flows_allowed, 1000u) << describe(s);
    EXPECT_EQ(s->runtime.tcp_open, 0u) << "every connection's flow is freed: " << describe(s);
    EXPECT_EQ(s->runtime.tcp_failed, 0u) << describe(s);
}

TEST_F(NetdFlows, HundredParallelConnectionsAllArriveAndTheTableEmpties) {
    auto c = open_config();
    start(c);
    constexpr std::uint64_t k_each = 4 * k_mib;
    ASSERT_NO_FATAL_FAILURE(
        serve_probe(g_world.inet(), {"tcp-source", k_web, "9001", std::to_string(k_each), "3"}, "source"));
    // The client runs beside us, so netd's open count can be watched while it moves the data.
    auto t0 = Clock::now();
    auto client = spawn_logged({"ip", "netns", "exec", g_world.guest(), SBX_NET_PROBE, "tcp-parallel", k_web,
                                "9001", "100", std::to_string(k_each), "3"},
                               m_case / "parallel.out", m_case / "parallel.err");
    std::uint64_t most_open = 0;
    std::optional<int> code;
    while (!(code = wait_exit(client, 100ms)) && Clock::now() < t0 + 60s) {
        if (auto s = sbx::net::read_stats(c.stats)) {
            most_open = std::max(most_open, s->runtime.tcp_open);
        }
    }
    if (!code) {
        stop(client);
    }
    auto out = slurp(m_case / "parallel.out") + slurp(m_case / "parallel.err");
    ASSERT_TRUE(code) << "the 100 connections did not finish in 60 s:\n" << out;
    EXPECT_EQ(*code, 0) << out;
    EXPECT_NE(out.find("ok 100 failed 0 stuck 0"), std::string::npos) << out;
    note("100 x 4 MiB in parallel: " + std::to_string(seconds_since(t0)) + " s; most tcp_open seen " +
         std::to_string(most_open));
    auto s = wait_tcp_closed(c, 100);
    ASSERT_TRUE(s);
    EXPECT_GE(s->counters.flows_allowed, 100u) << describe(s);
    EXPECT_EQ(s->runtime.tcp_open, 0u) << "the table empties once the connections end: " << describe(s);
}

TEST_F(NetdFlows, OneGibibyteEachWayKeepsItsSha256) {
    auto c = open_config();
    start(c);
    auto bytes = std::to_string(k_bulk);
    const std::string probe = SBX_NET_PROBE;

    // Each sender hashes what it sends (tee), each receiver what it gets: SHA-256 on both ends.
    // Download: a sender in the internet namespace, the guest receives.
    auto sent_down = m_case / "sent_down.sha", got_down = m_case / "got_down.sha";
    ASSERT_NO_FATAL_FAILURE(
        serve(g_world.inet(),
              {"bash", "-c",
               "set -o pipefail; " + probe + " gen " + bytes + " 11 | tee >(sha256sum >" +
                   q(sent_down.string()) + ") | " + probe + " tcp-send " + k_web + " 9002"},
              "source"));
    auto t0 = Clock::now();
    auto down =
        bash_in(g_world.guest(),
                probe + " tcp-cat " + k_web + " 9002 </dev/null | sha256sum >" + q(got_down.string()), 120s);
    double down_s = seconds_since(t0);
    EXPECT_EQ(down.exit_code, 0) << down.output;
    EXPECT_NE(down.output.find("received " + bytes + " bytes"), std::string::npos) << down.output;
    auto source = wait_exit(m_servers.back(), 30000ms);
    ASSERT_TRUE(source) << slurp(m_case / "source.err");
    EXPECT_EQ(*source, 0) << slurp(m_case / "source.err");

    // Upload: the guest sends, a receiver in the internet namespace hashes it.
    auto sent_up = m_case / "sent_up.sha", got_up = m_case / "got_up.sha";
    ASSERT_NO_FATAL_FAILURE(serve(
        g_world.inet(),
        {"bash", "-c",
         "set -o pipefail; " + probe + " tcp-recv " + k_web + " 9003 | sha256sum >" + q(got_up.string())},
        "sink"));
    t0 = Clock::now();
    auto up = bash_in(g_world.guest(),
                      probe + " gen " + bytes + " 12 | tee >(sha256sum >" + q(sent_up.string()) + ") | " +
                          probe + " tcp-cat " + k_web + " 9003 >/dev/null",
                      120s);
    EXPECT_EQ(up.exit_code, 0) << up.output;
    auto sink = wait_exit(m_servers.back(), 30000ms);
    double up_s = seconds_since(t0);
    ASSERT_TRUE(sink) << "the receiver did not see the upload end:\n" << slurp(m_case / "sink.err");
    EXPECT_EQ(*sink, 0) << slurp(m_case / "sink.err");
    EXPECT_NE(slurp(m_case / "sink.err").find("received " + bytes + " bytes"), std::string::npos)
        << slurp(m_case / "sink.err");

    // The hashes (tee's process substitution may finish a moment after its pipeline).
    auto sha_of = [](const fs::path& p) {
        for (int i = 0; i < 50 && slurp(p).size() < 64; ++i) {
            std::this_thread::sleep_for(100ms);
        }
        return sha_file(p);
    };
    ASSERT_EQ(sha_of(sent_down).size(), 64u) << "no hash of what was sent";
    EXPECT_EQ(sha_of(got_down), sha_of(sent_down)) << "download";
    ASSERT_EQ(sha_of(sent_up).size(), 64u) << "no hash of what was sent";
    EXPECT_EQ(sha_of(got_up), sha_of(sent_up)) << "upload";
    char line[160];
    std::snprintf(line, sizeof line, "%llu MiB down %.1f s (%.2f Gbit/s), up %.1f s (%.2f Gbit/s)",
                  static_cast<unsigned long long>(k_bulk / k_mib), down_s,
                  static_cast<double>(k_bulk) * 8 / down_s / 1e9, up_s,
                  static_cast<double>(k_bulk) * 8 / up_s / 1e9);
    note(line);
    auto s = wait_tcp_closed(c, 2);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->runtime.tcp_open, 0u) << describe(s);
}

TEST_F(NetdFlows, HostPeerResetMidTransferResetsTheGuest) {
    auto c = open_config();
    start(c);
    const std::string probe = SBX_NET_PROBE;
    // 64 KiB, a pause (the guest has it all), then a RST (SO_LINGER 0).
    ASSERT_NO_FATAL_FAILURE(
        serve_probe(g_world.inet(), {"tcp-reset", k_web, "9004", "65536", "300"}, "reset"));
    auto t0 = Clock::now();
    auto r = bash_in(g_world.guest(),
                     "exec " + probe + " tcp-cat " + k_web + " 9004 5000 </dev/null >/dev/null", 20s);
    EXPECT_EQ(r.exit_code, 2) << "ECONNRESET expected: " << r.output;
    EXPECT_NE(r.output.find("reset after 65536 bytes"), std::string::npos) << r.output;
    EXPECT_LT(Clock::now() - t0, 3s) << "a reset, not a hang";

    // 64 MiB and a RST at once: bytes still in flight between the peer, netd and the guest.
    ASSERT_NO_FATAL_FAILURE(
        serve_probe(g_world.inet(), {"tcp-reset", k_web, "9005", std::to_string(64 * k_mib), "0"}, "reset2"));
    t0 = Clock::now();
    auto r2 = bash_in(g_world.guest(),
                      "exec " + probe + " tcp-cat " + k_web + " 9005 5000 </dev/null >/dev/null", 20s);
    EXPECT_EQ(r2.exit_code, 2) << "ECONNRESET expected: " << r2.output;
    EXPECT_LT(Clock::now() - t0, 10s) << r2.output;
    note("reset in flight: " + r2.output.substr(0, r2.output.find('\n')));

    auto s = wait_tcp_closed(c, 2);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->runtime.tcp_open, 0u) << describe(s);
    EXPECT_GE(s->runtime.tcp_resets, 2u) << describe(s);
}

TEST_F(NetdFlows, GuestThatStopsReadingDoesNotGrowNetdAndThenGetsItsBytesInOrder) {
    auto c = open_config();
    start(c);
    const std::string probe = SBX_NET_PROBE;
    ASSERT_NO_FATAL_FAILURE(
        serve_probe(g_world.inet(), {"tcp-source", k_web, "9006", std::to_string(64 * k_mib), "21"}, "warm"));
    ASSERT_NO_FATAL_FAILURE(serve_probe(g_world.inet(), {"tcp-source", k_web, "9007", "0", "21"}, "endless"));
    // A first transfer touches netd's buffers (its 4 MiB output queue among them), so what
    // follows measures growth, not first use.
    auto warm =
        bash_in(g_world.guest(), "exec " + probe + " tcp-cat " + k_web + " 9006 </dev/null >/dev/null", 60s);
    ASSERT_EQ(warm.exit_code, 0) << warm.output;
    auto before = netd_rss_kib();
    ASSERT_GT(before, 0u) << "cannot read netd's VmRSS";

    auto client = spawn_logged({"ip", "netns", "exec", g_world.guest(), probe, "tcp-stall", k_web, "9007",
                                "3000", std::to_string(256 * k_mib), "21"},
                               m_case / "stall.out", m_case / "stall.err");
    m_servers.push_back(client);  // stopped by TearDown on any early return
    ASSERT_NO_FATAL_FAILURE(wait_for_text(m_servers.back(), m_case / "stall.out", "connected"));
    std::uint64_t most = before;
    std::uint64_t open_during = 0;
    while (slurp(m_case / "stall.out").find("reading") == std::string::npos) {
        most = std::max(most, netd_rss_kib());
        if (auto s = sbx::net::read_stats(c.stats)) {
            open_during = std::max(open_during, s->runtime.tcp_open);
        }
        ASSERT_FALSE(sbx::try_wait_child(m_servers.back())) << slurp(m_case / "stall.out");
        std::this_thread::sleep_for(100ms);
    }
    auto code = wait_exit(m_servers.back(), 60000ms);
    auto out = slurp(m_case / "stall.out") + slurp(m_case / "stall.err");
    ASSERT_TRUE(code) << "the guest's reads did not finish:\n" << out;
    EXPECT_EQ(*code, 0) << out;
    EXPECT_NE(out.find("ok "), std::string::npos) << "256 MiB of the pattern in order expected:\n" << out;
    note("netd VmRSS " + std::to_string(before) + " KiB before the stall, at most " + std::to_string(most) +
         " KiB during it; tcp_open seen " + std::to_string(open_during));
    EXPECT_LT(most - before, 8u * 1024)
        << "netd grew by " << (most - before) << " KiB while the guest did not read";
    EXPECT_GE(open_during, 1u) << "the stalled connection is open in netd";
}

TEST_F(NetdFlows, TcpForwardFromTheHostReachesTheGuestBothWays) {
    auto c = open_config();
    c.forwards = {{12301, 8080, sbx::net::Proto::tcp}};
    start(c);
    const std::string probe = SBX_NET_PROBE;
    ASSERT_NO_FATAL_FAILURE(serve_probe(g_world.guest(), {"tcp-echo", "10.0.2.15", "8080"}, "echo"));

    // TCP: 8 MiB from the host's 127.0.0.1:12301 to the guest's echo and back.
    constexpr std::uint64_t k_size = 8 * k_mib;
    auto sha = m_case / "forward.sha";
    auto r = bash_in(g_world.host(),
                     probe + " gen " + std::to_string(k_size) + " 31 | " + probe +
                         " tcp-cat 127.0.0.1 12301 | sha256sum >" + q(sha.string()),
                     60s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("sent " + std::to_string(k_size) + " received " + std::to_string(k_size)),
              std::string::npos)
        << r.output;
    EXPECT_EQ(sha_file(sha), pattern_sha(k_size, 31));

    auto s = wait_tcp_closed(c, 0);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->runtime.tcp_open, 0u) << describe(s);
}

// The guest has sent nothing yet when the host's first datagram arrives: netd must address
// it to the guest's MAC all the same (this world's tap has a random one, not QEMU's default).
TEST_F(NetdFlows, UdpForwardFromTheHostReachesTheGuestBothWays) {
    auto c = open_config();
    c.forwards = {{12302, 7100, sbx::net::Proto::udp}};
    start(c);
    ASSERT_NO_FATAL_FAILURE(serve_probe(g_world.guest(), {"udp-echo", "10.0.2.15", "7100"}, "udp-echo"));
    for (int i = 0; i < 3; ++i) {
        auto u = in_ns(g_world.host(), {SBX_NET_PROBE, "udp", "127.0.0.1", "12302", "1000"});
        EXPECT_EQ(u.exit_code, 0) << "datagram " << i << " (each from a new host port): " << u.output;
    }
}

TEST_F(NetdFlows, PingFromTheGuestGetsReplies) {
    auto range = in_ns(g_world.host(), {"sysctl", "-n", "net.ipv4.ping_group_range"}, 10s);
    if (range.exit_code != 0 || range.output.rfind("1\t0", 0) == 0 || range.output.rfind("1 0", 0) == 0) {
        GTEST_SKIP() << "skipped: no ping sockets in the host namespace (ping_group_range " << range.output
                     << ")";
    }
    auto c = open_config();
    start(c);
    ASSERT_EQ(slurp(m_case / "netd.err").find("ICMP echo (ping) is off"), std::string::npos)
        << slurp(m_case / "netd.err");
    for (const char* to : {"198.51.100.7", "2001:db8::80"}) {
        for (int i = 0; i < 3; ++i) {
            auto r = probe({"icmp", to, "2000"});
            EXPECT_EQ(r.exit_code, 0) << to << " echo " << i << ": " << r.output;
        }
    }
}
