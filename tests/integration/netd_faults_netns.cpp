// netd under faults, end to end without a VM (issue 17, "Faults"): a SYN flood past the flow
// table, a DNS flood and names no resolver may accept, and the host's resolver hung, gone and
// back. Each case holds netd to what docs/network.md promises for it: what is refused is
// refused at once and counted, what was open keeps working, memory stays bounded, and netd
// keeps answering. The world and the fixture are netd_fixture.hpp; the floods and DNS queries
// are net_probe modes (helpers/net_probe.cpp). Root only.

#include <sys/wait.h>

#include <cstdio>
#include <sstream>

#include "netd_fixture.hpp"
#include "sbx/net/resolver.hpp"

using namespace sbx::netd_test;

namespace {

constexpr const char* k_web = "198.51.100.80";  // nginx :80, and this file's TCP sources
constexpr const char* k_dns = "10.0.2.3";       // netd's resolver, as the guest sees it
constexpr const char* k_body = "sbx-netd-test-body\n";
constexpr std::uint64_t k_mib = 1ull << 20;

// The number after `key` in `text` ("sent 10 resets 3": key "resets " -> 3); -1 when absent.
long long number_after(const std::string& text, const std::string& key) {
    auto at = text.find(key);
    if (at == std::string::npos) {
        return -1;
    }
    return std::strtoll(text.c_str() + at + key.size(), nullptr, 10);
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (auto b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

// A DNS query's bytes: header (ID 0x5bx1, RD, QDCOUNT 1 unless told) and a question of the
// given raw labels, type and class.
std::vector<std::uint8_t> query(const std::vector<std::string>& labels, std::uint16_t qtype = 1,
                                std::uint16_t qclass = 1, std::uint8_t flags_hi = 0x01,
                                std::uint16_t qd = 1) {
    std::vector<std::uint8_t> q = {
        0x5b, 0x01, flags_hi, 0, static_cast<std::uint8_t>(qd >> 8), static_cast<std::uint8_t>(qd), 0, 0,
        0,    0,    0,        0};
    for (const auto& l : labels) {
        q.push_back(static_cast<std::uint8_t>(l.size()));
        q.insert(q.end(), l.begin(), l.end());
    }
    q.push_back(0);
    for (std::uint16_t v : {qtype, qclass}) {
        q.push_back(static_cast<std::uint8_t>(v >> 8));
        q.push_back(static_cast<std::uint8_t>(v));
    }
    return q;
}

class NetdFaults : public NetdNamespace {
protected:
    void SetUp() override {
        ::signal(SIGPIPE, SIG_IGN);  // a chunker that died: its pipe's write fails, and says so
        NetdNamespace::SetUp();
    }
    void TearDown() override {
        for (auto& c : m_chunkers) {
            if (c.in >= 0) {
                ::close(c.in);
            }
        }
        NetdNamespace::TearDown();
    }

    // A tcp-chunks client (net_probe) whose stdin the test holds: each next_chunk() asks it for
    // one more chunk of the pattern over the same connection.
    struct Chunker {
        std::size_t server = 0;  // index in m_servers
        int in = -1;
        fs::path out;
        int asked = 0;
    };

    std::size_t start_chunks(const std::string& ns, std::vector<std::string> args, const std::string& name) {
        int p[2];
        EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
        args.insert(args.begin(), {"ip", "netns", "exec", ns, SBX_NET_PROBE, "tcp-chunks"});
        Chunker c;
        c.out = m_case / (name + ".out");
        int o = ::open(c.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int e = ::open((m_case / (name + ".err")).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        sbx::SpawnSpec spec;
        spec.argv = args;
        spec.env = sbx::default_child_env();
        spec.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        spec.stdin_fd = p[0];
        spec.stdout_fd = o;
        spec.stderr_fd = e;
        m_servers.push_back(sbx::spawn(spec));
        ::close(p[0]);
        ::close(o);
        ::close(e);
        c.server = m_servers.size() - 1;
        c.in = p[1];
        m_chunkers.push_back(c);
        return m_chunkers.size() - 1;
    }

    // Asks chunker `i` for its next chunk and waits (bounded) for it: the milliseconds it took,
    // or nothing (with a failure recorded) when it failed or did not finish in `limit`.
    std::optional<long long> next_chunk(std::size_t i, std::chrono::milliseconds limit = 60000ms) {
        Chunker& c = m_chunkers[i];
        if (c.asked == 0) {
            wait_for_text(m_servers[c.server], c.out, "connected");
            if (HasFatalFailure()) {
                return std::nullopt;
            }
        }
        ++c.asked;
        if (::write(c.in, "\n", 1) != 1) {
            ADD_FAILURE() << c.out.filename() << ": gone before chunk " << c.asked << ":\n" << slurp(c.out);
            return std::nullopt;
        }
        auto done = "chunk " + std::to_string(c.asked) + " ok ";
        auto deadline = Clock::now() + limit;
        for (;;) {
            auto text = slurp(c.out);
            if (auto at = text.find(done); at != std::string::npos) {
                return std::strtoll(text.c_str() + at + done.size(), nullptr, 10);
            }
            if (auto code = sbx::try_wait_child(m_servers[c.server])) {
                m_servers[c.server].pid = -1;
                ADD_FAILURE() << c.out.filename() << ": exited with " << *code << " in chunk " << c.asked
                              << ":\n"
                              << text;
                return std::nullopt;
            }
            if (Clock::now() > deadline) {
                ADD_FAILURE() << c.out.filename() << ": chunk " << c.asked << " not done in " << limit.count()
                              << " ms:\n"
                              << text;
                return std::nullopt;
            }
            std::this_thread::sleep_for(20ms);
        }
    }

    // The stats once `pred` holds (bounded: netd rewrites them about once a second); the last
    // ones read otherwise.
    std::optional<sbx::net::NetStats> wait_stats(const sbx::net::NetdConfig& c,
                                                 const std::function<bool(const sbx::net::NetStats&)>& pred,
                                                 std::chrono::milliseconds limit = 8000ms) {
        auto deadline = Clock::now() + limit;
        std::optional<sbx::net::NetStats> last;
        for (;;) {
            if (auto s = sbx::net::read_stats(c.stats)) {
                last = s;
                if (pred(*s)) {
                    return last;
                }
            }
            if (Clock::now() > deadline) {
                return last;
            }
            std::this_thread::sleep_for(100ms);
        }
    }

    // One query from the guest through netd: net_probe's "rcode R id I qd Q an A [addr]" line.
    sbx::RunResult dns(const std::string& name, int timeout_ms = 3000, int qtype = 1) {
        return probe({"dns", k_dns, name, std::to_string(timeout_ms), std::to_string(qtype)});
    }
    sbx::RunResult dns_raw(const std::vector<std::uint8_t>& bytes, int timeout_ms = 3000) {
        return probe({"dns-raw", k_dns, hex(bytes), std::to_string(timeout_ms)});
    }

    std::vector<Chunker> m_chunkers;
};

// The world is the suite's: what a case changes in it is undone, pass or fail.
struct Undo {
    std::function<void()> f;
    ~Undo() { f(); }
};

}  // namespace

// ---- 1. A SYN flood past the flow table ------------------------------------------------------
//
// The guest floods SYNs (a raw socket, thousands a second, never completing a handshake) at an
// address the internet drops silently, so every SYN netd takes holds a table entry in
// `connecting`. With `limits.flows` at 64, the table fills with the flood and every further
// SYN must get a RST at once, counted, while what was open before keeps working: a download
// from the internet that keeps moving, and a forward from the host (the way `sbx ssh` reaches
// the guest) that sits idle through the flood and is used again after it.
TEST_F(NetdFaults, SynFloodPastTheFlowTableIsRefusedAndOpenConnectionsKeepWorking) {
    constexpr std::size_t k_flows = 64;
    const std::string sink = "198.51.100.200";  // blackholed in the internet for this case
    Undo undo{[&] { in_ns(g_world.inet(), {"ip", "route", "del", "blackhole", sink + "/32"}); }};
    ASSERT_EQ(in_ns(g_world.inet(), {"ip", "route", "add", "blackhole", sink + "/32"}).exit_code, 0);

    auto c = config();
    c.policy.mode = sbx::net::Mode::open;  // the filter is not under test: the flood's SYNs pass it
    c.limits.flows = k_flows;
    c.forwards = {{12311, 8080, sbx::net::Proto::tcp}};
    start(c);
    auto rss_start = netd_rss_kib();
    ASSERT_NO_FATAL_FAILURE(serve_probe(g_world.guest(), {"tcp-echo", "10.0.2.15", "8080"}, "echo"));
    ASSERT_NO_FATAL_FAILURE(serve_probe(g_world.inet(), {"tcp-source", k_web, "9011", "0", "41"}, "source"));

    // Open before the flood: a download (256 MiB a chunk) and a forward (4 MiB echoed a chunk).
    constexpr std::uint64_t k_chunk = 256 * k_mib;
    auto down = start_chunks(g_world.guest(), {k_web, "9011", std::to_string(k_chunk), "41"}, "download");
    auto fwd = start_chunks(g_world.host(), {"127.0.0.1", "12311", std::to_string(4 * k_mib), "43", "echo"},
                            "forward");
    auto base = next_chunk(down);
    ASSERT_TRUE(base) << "the download before the flood";
    ASSERT_TRUE(next_chunk(fwd)) << "the forward before the flood";
    auto rss_before = netd_rss_kib();
    ASSERT_GT(rss_before, 0u) << "cannot read netd's VmRSS";
    std::uint64_t rss_most = rss_before;

    // 5 000 SYNs a second from 4 000 source ports in turn, until stopped.
    m_servers.push_back(spawn_logged({"ip", "netns", "exec", g_world.guest(), SBX_NET_PROBE, "syn-flood",
                                      sink, "443", "20000", "4000", "5000"},
                                     m_case / "flood.out", m_case / "flood.err"));
    std::size_t flood = m_servers.size() - 1;
    ASSERT_NO_FATAL_FAILURE(wait_for_text(m_servers[flood], m_case / "flood.err", "flooding"));
    auto full = wait_stats(c, [&](const sbx::net::NetStats& s) {
        rss_most = std::max(rss_most, netd_rss_kib());
        return s.runtime.tcp_open >= k_flows && s.runtime.tcp_failed > 0;
    });
    ASSERT_TRUE(full);
    ASSERT_EQ(full->runtime.tcp_open, k_flows) << "the flood fills the table, and no more";
    ASSERT_GT(full->runtime.tcp_failed, 0u) << "SYNs past the table are refused and counted";

    // A new connection while the table is full is refused at once, not left to time out.
    auto t0 = Clock::now();
    auto refused = probe({"tcp", k_web, "80", "5000"});
    EXPECT_EQ(refused.exit_code, 2) << "a RST expected: " << refused.output;
    EXPECT_LT(Clock::now() - t0, 3s) << refused.output;

    // The download goes on, and the forward, idle since before the flood, still answers.
    auto during = next_chunk(down);
    rss_most = std::max(rss_most, netd_rss_kib());
    EXPECT_TRUE(during) << "the download during the flood";
    EXPECT_TRUE(next_chunk(fwd)) << "the forward during the flood";
    rss_most = std::max(rss_most, netd_rss_kib());
    ASSERT_FALSE(sbx::try_wait_child(m_servers[flood])) << "the flood ran throughout:\n"
                                                        << slurp(m_case / "flood.out");
    auto held = sbx::net::read_stats(c.stats);
    ASSERT_TRUE(held);
    EXPECT_LE(held->runtime.tcp_open, k_flows);

    // The flood gives up (a RST from each of its ports): the table empties of it.
    ::kill(m_servers[flood].pid, SIGTERM);
    auto code = wait_exit(m_servers[flood], 10000ms);
    auto flood_out = slurp(m_case / "flood.out") + slurp(m_case / "flood.err");
    ASSERT_TRUE(code) << flood_out;
    EXPECT_EQ(*code, 0) << flood_out;
    auto sent = number_after(flood_out, "sent "), resets = number_after(flood_out, "resets ");
    auto after_flood = wait_stats(c, [](const sbx::net::NetStats& s) { return s.runtime.tcp_open <= 2; });
    ASSERT_TRUE(after_flood);
    EXPECT_EQ(after_flood->runtime.tcp_open, 2u) << "the download and the forward are what is left";

    // Afterwards: both still carry their bytes, and new connections open again.
    auto after = next_chunk(down);
    EXPECT_TRUE(after) << "the download after the flood";
    EXPECT_TRUE(next_chunk(fwd)) << "the forward after the flood";
    auto fresh = probe({"tcp", k_web, "80", "5000"});
    EXPECT_EQ(fresh.exit_code, 0) << "a new connection once the flood is over: " << fresh.output;

    auto s = wait_stats(c, [&](const sbx::net::NetStats& x) {
        return x.runtime.tcp_failed >= static_cast<std::uint64_t>(std::max(resets, 0ll));
    });
    ASSERT_TRUE(s);
    EXPECT_GT(resets, 0) << flood_out;
    EXPECT_EQ(number_after(flood_out, "synacks "), 0) << "nothing answers the blackholed address";
    EXPECT_EQ(static_cast<long long>(s->runtime.tcp_failed), resets + 1)
        << "each refusal counted, and each answered with a RST (the one more: the connection "
           "refused during the flood)";
    // A useful rate through the flood: against the same connection's chunk before it, with a
    // wide margin (both are slow together on a busy machine).
    if (base && during) {
        EXPECT_LT(*during, 10 * *base + 2000) << "the download crawled during the flood";
    }
    char line[256];
    std::snprintf(
        line, sizeof line,
        "flood: %lld SYNs, %lld RSTs seen, netd tcp_failed %llu; download chunk of %llu MiB: %lld ms "
        "before, %lld ms during, %lld ms after; netd VmRSS %llu KiB at start, %llu KiB before, at most %llu "
        "KiB",
        sent, resets, static_cast<unsigned long long>(s->runtime.tcp_failed),
        static_cast<unsigned long long>(k_chunk / k_mib), *base, during.value_or(-1), after.value_or(-1),
        static_cast<unsigned long long>(rss_start), static_cast<unsigned long long>(rss_before),
        static_cast<unsigned long long>(rss_most));
    note(line);

    // Memory. docs/performance.md ("netd's memory with 10 000 rules and 10 000 connections")
    // measured a release netd at 23.6 MiB with 10 000 connections open, against a target of
    // 64 MiB; this netd has a table of 64, so 64 MiB is a wide bound. The dev build's netd runs
    // under ASan, whose shadow memory and instrumented binary make its start alone about
    // 185 MiB here: there the bound is its own start plus those 64 MiB. Growth through the
    // flood is held to 8 MiB: refusing costs netd nothing beyond its fixed tables.
#if defined(__SANITIZE_ADDRESS__)
    const std::uint64_t k_rss_bound_kib = rss_start + 64 * 1024;
#else
    const std::uint64_t k_rss_bound_kib = 64 * 1024;
#endif
    EXPECT_LT(rss_most, k_rss_bound_kib);
    EXPECT_LT(rss_most - rss_before, 8u * 1024) << "netd grew during the flood";
}

// ---- 2. A DNS flood, and names no resolver may accept --------------------------------------
//
// The filter answers every query (filter.cpp, dns_query): past the rate cap
// (limits.dns_per_second, a bucket of twice that which refills at that rate) a well-formed
// query is REFUSED with its question, counted as `rate_limited`, and never reaches the host's
// resolver. The guest floods 500 queries a second for an allowed name, ten times a cap of 50,
// while a forward from the host and a new connection to an address already resolved are used.
TEST_F(NetdFaults, DnsFloodIsHeldToTheRateCapAndNetdStaysResponsive) {
    constexpr std::uint32_t k_rate = 50;
    constexpr int k_queries = 2000, k_per_second = 500;  // 4 s of flood
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    c.limits.dns_per_second = k_rate;
    c.forwards = {{12312, 7778, sbx::net::Proto::tcp}};
    start(c);
    auto warm = dns("www.allowed.test");
    ASSERT_NE(warm.output.find("rcode 0 id "), std::string::npos) << warm.output;
    ASSERT_NE(warm.output.find(k_web), std::string::npos) << warm.output;
    std::this_thread::sleep_for(100ms);  // the bucket is full again (one token, 20 ms at 50/s)
    auto before = wait_stats(c, [](const sbx::net::NetStats& s) { return s.counters.dns_allowed >= 1; });
    ASSERT_TRUE(before);
    auto upstream_from = fs::file_size(dnsmasq_log());

    m_servers.push_back(
        spawn_logged({"ip", "netns", "exec", g_world.guest(), SBX_NET_PROBE, "dns-flood", k_dns,
                      "www.allowed.test", std::to_string(k_queries), std::to_string(k_per_second)},
                     m_case / "flood.out", m_case / "flood.err"));
    std::size_t flood = m_servers.size() - 1;
    ASSERT_NO_FATAL_FAILURE(wait_for_text(m_servers[flood], m_case / "flood.err", "flooding"));
    std::this_thread::sleep_for(500ms);

    // While it floods: the forward (the way `sbx ssh` reaches the guest), and a new
    // connection to the allowed name's address (pinned by the answers before the flood).
    auto t0 = Clock::now();
    auto forward = read_through_forward(12312, 7778);
    EXPECT_EQ(forward.exit_code, 0) << "the forward during the flood: " << forward.output;
    auto page = curl("http://www.allowed.test/", {"--resolve", std::string("www.allowed.test:80:") + k_web});
    EXPECT_EQ(page.exit_code, 0) << page.output;
    EXPECT_EQ(page.output, k_body);
    double busy = seconds_since(t0);
    ASSERT_FALSE(sbx::try_wait_child(m_servers[flood])) << "both ran while the flood did";

    auto code = wait_exit(m_servers[flood], 20000ms);
    auto out = slurp(m_case / "flood.out");
    ASSERT_TRUE(code) << "the flood did not end:\n" << out;
    EXPECT_EQ(*code, 0) << "every query gets one answer:\n" << out;
    auto sent = number_after(out, "sent "), answered = number_after(out, "answered ");
    auto passed = number_after(out, "noerror "), refused = number_after(out, "refused ");
    double span_s = static_cast<double>(number_after(out, "span_ms ")) / 1000;
    EXPECT_EQ(sent, k_queries) << out;
    EXPECT_EQ(answered, sent) << out;
    EXPECT_EQ(passed + refused, answered) << "only answers and REFUSED:\n" << out;
    // The bucket: full (2 x rate) at the start, `rate` a second more; a second of slack for
    // the time between the probe's clock and netd's.
    EXPECT_GE(passed, 2 * k_rate) << out;
    EXPECT_LE(static_cast<double>(passed), 2 * k_rate + k_rate * (span_s + 1)) << out;

    // netd counted every refusal by its reason, and the host's resolver saw only what passed.
    auto after = wait_stats(c, [&](const sbx::net::NetStats& s) {
        return s.counters.dns_allowed + s.counters.dns_denied >=
               before->counters.dns_allowed + before->counters.dns_denied + static_cast<std::uint64_t>(sent);
    });
    ASSERT_TRUE(after);
    auto limited = [](const sbx::net::NetStats& s) {
        return s.counters.denied_by_reason[static_cast<std::size_t>(sbx::net::Reason::rate_limited)];
    };
    EXPECT_EQ(static_cast<long long>(limited(*after) - limited(*before)), refused);
    EXPECT_EQ(static_cast<long long>(after->counters.dns_allowed - before->counters.dns_allowed), passed);
    auto log = slurp(dnsmasq_log()).substr(upstream_from);
    long long upstream = 0;
    for (auto at = log.find("query[A] www.allowed.test "); at != std::string::npos;
         at = log.find("query[A] www.allowed.test ", at + 1)) {
        ++upstream;
    }
    EXPECT_GT(upstream, 0) << "the queries that passed were resolved";
    EXPECT_LE(upstream, passed) << "the host's resolver sees no more than the cap let through";
    EXPECT_TRUE(wait_decision("deny", "rate_limited", "www.allowed.test"));

    // Once the flood stops, the bucket refills and names resolve again.
    std::this_thread::sleep_for(2200ms);  // an empty bucket is full again after 2 x rate / rate = 2 s
    auto again = guest({"getent", "ahostsv4", "www.allowed.test"});
    EXPECT_EQ(again.exit_code, 0) << again.output;
    char line[200];
    std::snprintf(line, sizeof line,
                  "%lld queries in %.1f s: %lld answered, %lld refused; upstream saw %lld; forward and "
                  "curl during it took %.2f s",
                  sent, span_s, passed, refused, upstream, busy);
    note(line);
}

// What dns_codec.hpp defines for queries outside its strict shape: FORMERR (the ID echoed, no
// question) for a label over 63 bytes, a name over 253 characters, bytes outside
// [A-Za-z0-9_-], a compression pointer, more than one question or a question cut short;
// NOTIMP for another opcode; no answer at all for a response or a message shorter than a
// header (counted as malformed). A well-formed but unusual query: REFUSED for a class other
// than IN, NODATA for a type other than A/AAAA. Nothing of these reaches the host's resolver,
// and netd answers the next normal query at once.
TEST_F(NetdFaults, OversizeAndMalformedNamesGetTheDefinedAnswers) {
    auto c = config();
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    start(c);
    const std::string l63(63, 'a'), l61(61, 'b'), l62(62, 'c'), l64(64, 'd');
    struct Case {
        const char* what;
        std::vector<std::uint8_t> bytes;
        std::string expect;  // the start of net_probe's line
    };
    auto pointer = query({});
    pointer.insert(pointer.begin() + 12, {0xc0, 0x0c});  // the name: a pointer to itself
    pointer.erase(pointer.begin() + 14);                 // (no root label after it)
    auto cut = query({"www", "allowed", "test"});
    cut.resize(12 + 5);
    std::vector<Case> cases = {
        {"a 64-byte label", query({l64, "test"}), "rcode 1 id 23297 qd 0 an 0"},
        {"a 254-character name", query({l63, l63, l63, l62}), "rcode 1 id 23297 qd 0 an 0"},
        {"a 253-character name (the longest there is: the policy's answer)", query({l63, l63, l63, l61}),
         "rcode 3 id 23297 qd 1 an 0"},
        {"a space in a label", query({"www allowed", "test"}), "rcode 1 id 23297 qd 0 an 0"},
        {"a byte above 127", query({"www\xff", "test"}), "rcode 1 id 23297 qd 0 an 0"},
        {"a compression pointer", pointer, "rcode 1 id 23297 qd 0 an 0"},
        {"two questions", query({"www", "allowed", "test"}, 1, 1, 0x01, 2), "rcode 1 id 23297 qd 0 an 0"},
        {"a question cut short", cut, "rcode 1 id 23297 qd 0 an 0"},
        {"opcode STATUS", query({"www", "allowed", "test"}, 1, 1, 0x11), "rcode 4 id 23297 qd 0 an 0"},
        {"class CH", query({"www", "allowed", "test"}, 1, 3), "rcode 5 id 23297 qd 1 an 0"},
        {"type TXT (NODATA)", query({"www", "allowed", "test"}, 16), "rcode 0 id 23297 qd 1 an 0"},
        {"upper case (the same name)", query({"WWW", "Allowed", "TEST"}),
         "rcode 0 id 23297 qd 1 an 1 198.51.100.80"},
        {"a response (QR set)", query({"www", "allowed", "test"}, 1, 1, 0x81), "timeout"},
        {"five bytes", {0x5b, 0x01, 0x01, 0x00, 0x00}, "timeout"},
    };
    auto before = wait_stats(c, [](const sbx::net::NetStats&) { return true; });
    ASSERT_TRUE(before);
    for (const auto& k : cases) {
        auto t0 = Clock::now();
        auto r = dns_raw(k.bytes, k.expect == "timeout" ? 1500 : 3000);
        EXPECT_EQ(r.output.rfind(k.expect, 0), 0u) << k.what << ": " << r.output;
        if (k.expect != "timeout") {
            EXPECT_LT(Clock::now() - t0, 2s) << k.what << ": answered at once";
        }
    }
    // Still answering, and at once.
    auto t0 = Clock::now();
    auto normal = dns("www.allowed.test");
    EXPECT_NE(normal.output.find("rcode 0 id "), std::string::npos) << normal.output;
    EXPECT_NE(normal.output.find(k_web), std::string::npos) << normal.output;
    EXPECT_LT(Clock::now() - t0, 2s);
    auto after = wait_stats(c, [&](const sbx::net::NetStats& s) {
        return s.counters.malformed >= before->counters.malformed + 2;
    });
    ASSERT_TRUE(after);
    EXPECT_GE(after->counters.malformed - before->counters.malformed, 2u) << "the two left unanswered";
    auto upstream = dnsmasq_since_start();
    for (const std::string& never :
         {l64, l63, std::string("allowed.test type=16"), std::string("www allowed")}) {
        EXPECT_EQ(upstream.find(never), std::string::npos) << "reached the host's resolver: " << never;
    }
    EXPECT_EQ(sbx::try_wait_child(m_netd), std::nullopt) << "netd keeps running";
}

// ---- 3. The host's resolver hung, gone, and back -------------------------------------------
//
// netd's resolver is its own dnsmasq here, on the host namespace's 127.0.0.53 (where
// systemd-resolved sits on a desktop), so the case can stop and kill it. c-ares (resolver.cpp)
// tries Resolver::k_tries times and doubles its wait on each round over the servers, so with
// one server an unanswered lookup fails after k_timeout_ms * (2^k_tries - 1) (2 s + 4 s):
// SERVFAIL to the guest then, and at once when nothing listens (a port unreachable).
TEST_F(NetdFaults, HostResolverDownIsServfailInBoundedTimeAndLookupsWorkWhenItIsBack) {
    using sbx::net::Resolver;
    const auto k_gives_up =
        std::chrono::milliseconds(Resolver::k_timeout_ms * ((1 << Resolver::k_tries) - 1));
    const auto k_bound = k_gives_up + 4s;  // margin for a busy machine
    auto resolver_log = m_case / "resolver.log";
    auto start_resolver = [&]() -> std::size_t {
        m_servers.push_back(spawn_logged(
            {"ip", "netns", "exec", g_world.host(), "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
             "--log-queries", "--log-facility=" + resolver_log.string(), "--pid-file=", "--user=root",
             "--group=root", "--listen-address=127.0.0.53", "--bind-interfaces", "--port=53",
             "--host-record=www.allowed.test,198.51.100.80,2001:db8::80"},
            m_case / "resolver.out", m_case / "resolver.err"));
        return m_servers.size() - 1;
    };
    auto resolver_answers = [&] {
        for (int i = 0; i < 50; ++i) {
            auto r = in_ns(g_world.host(), {SBX_NET_PROBE, "dns", "127.0.0.53", "www.allowed.test", "500"});
            if (r.output.rfind("rcode 0 ", 0) == 0) {
                return true;
            }
            std::this_thread::sleep_for(100ms);
        }
        return false;
    };
    std::size_t resolver = start_resolver();
    ASSERT_TRUE(resolver_answers()) << slurp(m_case / "resolver.err");
    {
        std::ofstream conf(m_case / "resolv.conf");
        conf << "nameserver 127.0.0.53\n";
    }
    auto c = config();
    c.resolv_conf = m_case / "resolv.conf";
    c.policy.rules = {name_rule("www.allowed.test", {80})};
    start(c);
    auto up = dns("www.allowed.test");
    ASSERT_EQ(up.output.rfind("rcode 0 ", 0), 0u) << up.output;
    ASSERT_NE(up.output.find(k_web), std::string::npos) << up.output;

    // Hung: the resolver takes the queries and never answers.
    ASSERT_EQ(::kill(m_servers[resolver].pid, SIGSTOP), 0);
    auto t0 = Clock::now();
    auto hung = dns("www.allowed.test", 20000);
    auto hung_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    EXPECT_EQ(hung.output.rfind("rcode 2 id ", 0), 0u) << "SERVFAIL expected: " << hung.output;
    EXPECT_LT(hung_ms, k_bound) << hung.output;
    // Many at once (more lookups in flight than the flood above, fewer than the cap) all fail
    // the same way, and meanwhile netd answers what needs no resolver and carries connections.
    m_servers.push_back(
        spawn_logged({"ip", "netns", "exec", g_world.guest(), SBX_NET_PROBE, "dns-flood", k_dns,
                      "www.allowed.test", "40", "40", std::to_string((k_bound + 2s) / 1ms)},
                     m_case / "burst.out", m_case / "burst.err"));
    std::size_t burst = m_servers.size() - 1;
    ASSERT_NO_FATAL_FAILURE(wait_for_text(m_servers[burst], m_case / "burst.err", "flooding"));
    t0 = Clock::now();
    auto denied = dns("denied.test");
    EXPECT_EQ(denied.output.rfind("rcode 3 ", 0), 0u) << "NXDOMAIN, resolver or not: " << denied.output;
    EXPECT_LT(Clock::now() - t0, 2s);
    auto page = curl("http://www.allowed.test/", {"--resolve", std::string("www.allowed.test:80:") + k_web});
    EXPECT_EQ(page.output, k_body) << "a connection to the pinned address while the resolver hangs";
    auto burst_code = wait_exit(m_servers[burst], k_bound + 10s);
    auto burst_out = slurp(m_case / "burst.out");
    ASSERT_TRUE(burst_code) << burst_out;
    EXPECT_EQ(*burst_code, 0) << "every query answered:\n" << burst_out;
    EXPECT_EQ(number_after(burst_out, "servfail "), 40) << burst_out;

    // Gone: nothing listens on the address any more.
    ASSERT_EQ(::kill(m_servers[resolver].pid, SIGKILL), 0);
    ASSERT_TRUE(wait_exit(m_servers[resolver], 5000ms));
    t0 = Clock::now();
    auto gone = dns("www.allowed.test", 20000);
    auto gone_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    EXPECT_EQ(gone.output.rfind("rcode 2 id ", 0), 0u) << "SERVFAIL expected: " << gone.output;
    EXPECT_LT(gone_ms, k_bound) << gone.output;
    auto idle = wait_stats(c, [](const sbx::net::NetStats& s) { return s.runtime.dns_in_flight == 0; });
    ASSERT_TRUE(idle);
    EXPECT_EQ(idle->runtime.dns_in_flight, 0u) << "no lookup is left hanging";

    // Back: the same address answers again, and so does netd, without a restart.
    resolver = start_resolver();
    ASSERT_TRUE(resolver_answers()) << slurp(m_case / "resolver.err");
    sbx::RunResult back;
    t0 = Clock::now();
    for (int i = 0; i < 20; ++i) {
        back = dns("www.allowed.test", 10000);
        if (back.output.rfind("rcode 0 ", 0) == 0) {
            break;
        }
        std::this_thread::sleep_for(250ms);
    }
    EXPECT_EQ(back.output.rfind("rcode 0 ", 0), 0u) << back.output;
    EXPECT_NE(back.output.find(k_web), std::string::npos) << back.output;
    auto back_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    auto getent = guest({"getent", "ahostsv4", "www.allowed.test"});
    EXPECT_EQ(getent.exit_code, 0) << getent.output;
    EXPECT_EQ(curl("http://www.allowed.test/").output, k_body);
    note("resolver hung: SERVFAIL after " + std::to_string(hung_ms.count()) + " ms; gone: after " +
         std::to_string(gone_ms.count()) + " ms; back: answered after " + std::to_string(back_ms.count()) +
         " ms (bound " + std::to_string(k_bound.count()) + " ms)");
}
