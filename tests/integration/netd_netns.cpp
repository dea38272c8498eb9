// netd end to end without a VM: the real `sbx _netd` in a "host" network namespace, a tap
// device in a "guest" namespace bridged to netd's stream socket by tap_relay (where QEMU
// would be), and an "internet" namespace with a real dnsmasq, nginx (HTTP and HTTPS with a
// test CA), a UDP echo server and a kernel that answers ping. The world is built once per
// suite by tests/integration/netns_harness.sh; each test starts its own netd with its own
// policy. Root only.

#include "sbx/net/net_log.hpp"
#include "sbx/net/netd.hpp"
#include "sbx/net/netd_config.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/process.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sbx::net::LogRecord;

namespace {

using Clock = std::chrono::steady_clock;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The namespaces, servers and files of the whole suite.
struct World {
    std::string id;           // sbxt-<pid>
    fs::path dir;             // harness files (certs, logs, configs)
    std::string skip_reason;  // set when the machine cannot run these tests
    std::string setup_error;  // set when the harness failed to come up
    bool up = false;

    std::string inet() const { return id + "-inet"; }
    std::string host() const { return id + "-host"; }
    std::string guest() const { return id + "-guest"; }
};

World g_world;

sbx::RunResult run(const std::vector<std::string>& argv, std::chrono::seconds timeout = 30s,
                   const std::vector<std::string>& env = {}) {
    sbx::RunOptions o;
    o.timeout = timeout;
    o.extra_env = env;
    o.extra_path = ":/usr/sbin:/sbin";
    return sbx::run_command(argv, o);
}

std::string why_skip() {
    if (::geteuid() != 0) {
        return "not root";
    }
    if (!fs::exists("/dev/net/tun")) {
        return "no /dev/net/tun";
    }
    for (const char* p : {"ip", "dnsmasq", "nginx", "openssl", "curl", "getent"}) {
        if (!sbx::find_program(p) && !fs::exists(std::string("/usr/sbin/") + p)) {
            return std::string("no ") + p;
        }
    }
    auto probe = run({"ip", "netns", "add", g_world.id + "-probe"}, 10s);
    run({"ip", "netns", "del", g_world.id + "-probe"}, 10s);
    if (probe.exit_code != 0) {
        return "cannot create network namespaces: " + probe.output;
    }
    return {};
}

class NetdNamespace : public ::testing::Test {
public:
    static void SetUpTestSuite() {
        g_world.id = "sbxt-" + std::to_string(::getpid());
        g_world.skip_reason = why_skip();
        if (!g_world.skip_reason.empty()) {
            return;
        }
        run({"bash", SBX_NETNS_HARNESS, "sweep"}, 60s);  // namespaces of crashed earlier runs
        g_world.dir = fs::temp_directory_path() / g_world.id;
        auto r =
            run({"bash", SBX_NETNS_HARNESS, "up", g_world.id, g_world.dir.string(), SBX_NET_PROBE}, 120s);
        if (r.exit_code != 0) {
            g_world.setup_error = r.output;
            run({"bash", SBX_NETNS_HARNESS, "down", g_world.id, g_world.dir.string()}, 60s);
            return;
        }
        g_world.up = true;
    }

    static void TearDownTestSuite() {
        if (!g_world.id.empty() && g_world.skip_reason.empty()) {
            run({"bash", SBX_NETNS_HARNESS, "down", g_world.id, g_world.dir.string()}, 60s);
            std::error_code ec;
            fs::remove_all(g_world.dir, ec);
        }
    }

protected:
    void SetUp() override {
        if (!g_world.skip_reason.empty()) {
            GTEST_SKIP() << "skipped: needs root and network namespaces (" << g_world.skip_reason << ")";
        }
        ASSERT_TRUE(g_world.up) << "the namespace harness did not come up:\n" << g_world.setup_error;
        auto name = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name());
        m_case = g_world.dir / "cases" / name;
        fs::remove_all(m_case);
        fs::create_directories(m_case);
        m_dnsmasq_offset = fs::exists(dnsmasq_log()) ? fs::file_size(dnsmasq_log()) : 0;
    }

    void TearDown() override {
        stop(m_relay);
        stop(m_netd);
        for (auto& c : m_servers) {
            stop(c);
        }
        // netd runs sandboxed and, in dev builds, under ASan/UBSan: any report is a bug.
        auto err = slurp(m_case / "netd.err");
        EXPECT_EQ(err.find("seccomp refused"), std::string::npos)
            << "the sandbox refused a call netd needs:\n"
            << err;
        EXPECT_EQ(err.find("AddressSanitizer"), std::string::npos) << err;
        EXPECT_EQ(err.find("runtime error:"), std::string::npos) << "UBSan report:\n" << err;
        if (HasFailure() && !m_case.empty()) {
            std::cerr << "--- netd stderr:\n"
                      << slurp(m_case / "netd.err") << "--- relay stderr:\n"
                      << slurp(m_case / "relay.err") << "--- decision log:\n"
                      << slurp(log_path()) << "---\n";
        }
    }

    // ---- policy helpers ----
    static sbx::net::Rule name_rule(const std::string& name, std::vector<std::uint16_t> ports,
                                    std::uint8_t protos = 1, bool allow_private = false) {
        sbx::net::Rule r;
        r.kind = sbx::net::Rule::Kind::name;
        r.name = name;
        r.ports = std::move(ports);
        r.protos = protos;
        r.allow_private = allow_private;
        r.source = name;
        return r;
    }

    sbx::net::NetdConfig config() const {
        sbx::net::NetdConfig c;
        c.socket = m_case / "net.sock";
        c.decision_log = log_path();
        c.stats = m_case / "net-stats.json";
        c.resolv_conf = "/etc/resolv.conf";  // ip netns exec binds /etc/netns/<host>/resolv.conf here
        return c;
    }

    fs::path log_path() const { return m_log_path.empty() ? m_case / "net.jsonl" : m_log_path; }
    fs::path dnsmasq_log() const { return g_world.dir / "dnsmasq.log"; }

    // ---- processes ----
    sbx::Child spawn_logged(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err) {
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        sbx::SpawnSpec spec;
        spec.argv = argv;
        spec.env = sbx::default_child_env();
        spec.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        spec.stdout_fd = o;
        spec.stderr_fd = e;
        auto child = sbx::spawn(spec);
        ::close(o);
        ::close(e);
        return child;
    }

    static std::optional<int> wait_exit(sbx::Child& c, std::chrono::milliseconds limit) {
        auto deadline = Clock::now() + limit;
        while (Clock::now() < deadline) {
            if (auto code = sbx::try_wait_child(c)) {
                c.pid = -1;
                return code;
            }
            std::this_thread::sleep_for(20ms);
        }
        return std::nullopt;
    }

    static void stop(sbx::Child& c) {
        if (c.pid <= 0) {
            return;
        }
        ::kill(c.pid, SIGTERM);
        if (!wait_exit(c, 3000ms)) {
            ::kill(c.pid, SIGKILL);
            sbx::wait_child(c);
        }
        if (c.pidfd >= 0) {
            ::close(c.pidfd);
            c.pidfd = -1;
        }
        c.pid = -1;
    }

    // Starts netd with `cfg` (in the host namespace) and the relay (in the guest namespace),
    // and waits until netd saw the relay connect.
    void start(const sbx::net::NetdConfig& cfg) {
        auto path = m_case / "netd.json";
        sbx::net::write_netd_config(path, cfg);
        fs::remove(cfg.socket);
        m_netd = spawn_logged(
            {"ip", "netns", "exec", g_world.host(), SBX_BINARY, "_netd", "--config", path.string()},
            m_case / "netd.out", m_case / "netd.err");
        auto deadline = Clock::now() + 20s;
        while (!sbx::net::netd_socket_ready(cfg.socket)) {
            if (auto code = sbx::try_wait_child(m_netd)) {
                m_netd.pid = -1;
                FAIL() << "netd exited with " << *code << " before it was ready:\n"
                       << slurp(m_case / "netd.err");
            }
            ASSERT_LT(Clock::now(), deadline) << "netd did not become ready:\n" << slurp(m_case / "netd.err");
            std::this_thread::sleep_for(20ms);
        }
        m_relay =
            spawn_logged({"ip", "netns", "exec", g_world.guest(), SBX_TAP_RELAY, "--tap", "tap0", "--socket",
                          cfg.socket.string(), "--inject", (m_case / "inject.sock").string()},
                         m_case / "relay.out", m_case / "relay.err");
        while (slurp(m_case / "netd.err").find("guest connected") == std::string::npos) {
            ASSERT_LT(Clock::now(), deadline) << "the relay did not connect:\n"
                                              << slurp(m_case / "relay.err");
            std::this_thread::sleep_for(20ms);
        }
        EXPECT_NE(slurp(m_case / "netd.out").find(std::string(sbx::net::k_netd_ready_line)),
                  std::string::npos);
    }

    sbx::RunResult in_ns(const std::string& ns, std::vector<std::string> argv,
                         std::chrono::seconds timeout = 30s) {
        argv.insert(argv.begin(), {"ip", "netns", "exec", ns});
        return run(argv, timeout);
    }
    sbx::RunResult guest(std::vector<std::string> argv, std::chrono::seconds timeout = 30s) {
        return in_ns(g_world.guest(), std::move(argv), timeout);
    }
    sbx::RunResult curl(const std::string& url, std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {"curl", "-sS",      "--max-time",
                                         "10",   "--cacert", (g_world.dir / "tls" / "ca.crt").string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(url);
        return guest(argv, 20s);
    }
    sbx::RunResult probe(std::vector<std::string> args) {
        args.insert(args.begin(), SBX_NET_PROBE);
        return guest(args, 20s);
    }

    // Waits (bounded: netd writes its log about once a second) for a decision matching `pred`.
    std::optional<LogRecord> wait_decision(const std::function<bool(const LogRecord&)>& pred,
                                           std::chrono::milliseconds limit = 4000ms) {
        auto deadline = Clock::now() + limit;
        for (;;) {
            for (const auto& r : sbx::net::read_log(log_path())) {
                if (pred(r)) {
                    return r;
                }
            }
            if (Clock::now() > deadline) {
                return std::nullopt;
            }
            std::this_thread::sleep_for(100ms);
        }
    }
    std::optional<LogRecord> wait_decision(const std::string& verdict, const std::string& reason,
                                           const std::string& name, std::uint16_t port = 0) {
        return wait_decision([&](const LogRecord& r) {
            return r.verdict == verdict && r.reason == reason && r.name == name &&
                   (port == 0 || r.port == port);
        });
    }

    std::string dnsmasq_since_start() const {
        auto all = slurp(dnsmasq_log());
        return m_dnsmasq_offset < all.size() ? all.substr(m_dnsmasq_offset) : std::string{};
    }

    void inject(const std::vector<std::uint8_t>& bytes) {
        int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        auto p = (m_case / "inject.sock").string();
        std::memcpy(a.sun_path, p.c_str(), p.size() + 1);
        auto n = ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::close(fd);
        ASSERT_EQ(n, static_cast<ssize_t>(bytes.size())) << std::strerror(errno);
    }

    fs::path m_case;
    fs::path m_log_path;
    std::uint64_t m_dnsmasq_offset = 0;
    sbx::Child m_netd, m_relay;
    std::vector<sbx::Child> m_servers;
};

constexpr const char* k_body = "sbx-netd-test-body\n";
constexpr std::uint8_t k_tcp = 1, k_udp = 2, k_icmp = 4;

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
    m_servers.push_back(spawn_logged(
        {"ip", "netns", "exec", g_world.guest(), SBX_NET_PROBE, "tcp-serve", "10.0.2.15", "7777"},
        m_case / "server.out", m_case / "server.err"));
    sbx::RunResult r;
    for (int i = 0; i < 20; ++i) {  // the guest's server needs a moment to listen
        r = in_ns(g_world.host(), {SBX_NET_PROBE, "tcp-read", "127.0.0.1", "12222", "2000"});
        if (r.exit_code == 0) {
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
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
