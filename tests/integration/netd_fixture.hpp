#pragma once
// The world of netd's namespace tests (netd_netns.cpp, netd_flows_netns.cpp): the real
// `sbx _netd` in a "host" network namespace, a tap device in a "guest" namespace bridged to
// netd's stream socket by tap_relay (where QEMU would be), and an "internet" namespace with a
// real dnsmasq, nginx (HTTP and HTTPS with a test CA), a UDP echo server and a kernel that
// answers ping. The world is built once per suite by tests/integration/netns_harness.sh; each
// test starts its own netd with its own policy. Root only.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sbx/net/net_log.hpp"
#include "sbx/net/netd.hpp"
#include "sbx/net/netd_config.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/process.hpp"

namespace sbx::netd_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sbx::net::LogRecord;
using Clock = std::chrono::steady_clock;

inline std::string slurp(const fs::path& p) {
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

inline World g_world;

inline sbx::RunResult run(const std::vector<std::string>& argv, std::chrono::seconds timeout = 30s,
                          const std::vector<std::string>& env = {}) {
    sbx::RunOptions o;
    o.timeout = timeout;
    o.extra_env = env;
    o.extra_path = ":/usr/sbin:/sbin";
    return sbx::run_command(argv, o);
}

inline std::string why_skip() {
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
        // These tests run as root, so every netd here runs as nobody once set up.
        EXPECT_NE(slurp(m_case / "netd.err").find("netd: dropped root: uid "), std::string::npos)
            << slurp(m_case / "netd.err");
    }

    // Serves TCP on the guest's `guest_port` and reads from it on the host through the forward
    // at 127.0.0.1:`host_port` (retried while the guest's server comes up).
    sbx::RunResult read_through_forward(std::uint16_t host_port, std::uint16_t guest_port) {
        m_servers.push_back(spawn_logged({"ip", "netns", "exec", g_world.guest(), SBX_NET_PROBE, "tcp-serve",
                                          "10.0.2.15", std::to_string(guest_port)},
                                         m_case / "server.out", m_case / "server.err"));
        sbx::RunResult r;
        for (int i = 0; i < 20; ++i) {
            r = in_ns(g_world.host(), {SBX_NET_PROBE, "tcp-read", "127.0.0.1", std::to_string(host_port), "2000"});
            if (r.exit_code == 0) {
                break;
            }
            std::this_thread::sleep_for(100ms);
        }
        return r;
    }

    // Waits (bounded, watching `c`'s exit) until `file` contains `text`.
    void wait_for_text(sbx::Child& c, const fs::path& file, const std::string& text,
                       std::chrono::milliseconds limit = 10000ms) {
        auto deadline = Clock::now() + limit;
        while (slurp(file).find(text) == std::string::npos) {
            if (auto code = sbx::try_wait_child(c)) {
                c.pid = -1;
                FAIL() << file.filename() << ": exited with " << *code << " before \"" << text << "\":\n"
                       << slurp(file);
            }
            ASSERT_LT(Clock::now(), deadline) << file.filename() << ": no \"" << text << "\":\n"
                                              << slurp(file);
            std::this_thread::sleep_for(20ms);
        }
    }

    // Starts `argv` in namespace `ns` as one of the case's servers (stdout <name>.out, stderr
    // <name>.err) and waits until it prints "listening" on stderr.
    void serve(const std::string& ns, std::vector<std::string> argv, const std::string& name) {
        argv.insert(argv.begin(), {"ip", "netns", "exec", ns});
        m_servers.push_back(spawn_logged(argv, m_case / (name + ".out"), m_case / (name + ".err")));
        wait_for_text(m_servers.back(), m_case / (name + ".err"), "listening");
    }
    void serve_probe(const std::string& ns, std::vector<std::string> args, const std::string& name) {
        args.insert(args.begin(), SBX_NET_PROBE);
        serve(ns, std::move(args), name);
    }

    // netd's resident memory in KiB (VmRSS), 0 when it cannot be read.
    std::uint64_t netd_rss_kib() const {
        std::ifstream in("/proc/" + std::to_string(m_netd.pid) + "/status");
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("VmRSS:", 0) == 0) {
                return std::strtoull(line.c_str() + 6, nullptr, 10);
            }
        }
        return 0;
    }

    static void note(const std::string& what) { std::printf("[   info   ] %s\n", what.c_str()); }
    static double seconds_since(Clock::time_point t0) {
        return std::chrono::duration<double>(Clock::now() - t0).count();
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

constexpr std::uint8_t k_tcp = 1, k_udp = 2, k_icmp = 4;

}  // namespace sbx::netd_test
