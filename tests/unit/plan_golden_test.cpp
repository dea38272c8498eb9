// Launch plan golden files: the exact QEMU argv for a KVM host, a TCG host, and a profile
// with forwards read by the real loader.
// SBX_UPDATE_GOLDEN=1 rewrites them; review the diff before committing.

#include "sbx/plan/launch_plan.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace sbx {
namespace {

profile::Profile work_profile() {
    profile::Profile p;
    p.name = "work";
    p.file = "/home/u/profiles/work.toml";
    p.vm.cpus = 4;
    p.vm.memory = 8ULL << 30;
    p.vm.disk = 40ULL << 30;
    p.ssh.user = "dev";
    return p;
}

void check_golden(const std::string& name, const std::string& actual) {
    auto path = std::filesystem::path(SBX_GOLDEN_DIR) / name;
    if (const char* upd = std::getenv("SBX_UPDATE_GOLDEN"); upd && std::string(upd) == "1") {
        std::ofstream(path) << actual;
    }
    auto expected = test::slurp(path);
    ASSERT_FALSE(expected.empty()) << "missing golden file " << path << " (run with SBX_UPDATE_GOLDEN=1)";
    EXPECT_EQ(actual, expected) << "golden mismatch for " << path;
}

plan::LaunchPlan plan_for(profile::Accel accel) {
    static auto prof = work_profile();
    static instance::InstanceLayout layout("/state/sbx/vms", "work");
    auto image = image::image_files("/data/sbx/images", "debian-12");
    host::AccelChoice choice{accel, "test"};
    return plan::make_launch_plan({prof, choice, layout, image, 40022, 2596140});
}

TEST(PlanGolden, KvmHost) { check_golden("plan_kvm.txt", plan::render(plan_for(profile::Accel::kvm))); }

TEST(PlanGolden, TcgHost) { check_golden("plan_tcg.txt", plan::render(plan_for(profile::Accel::tcg))); }

// A profile as users write it, read by the real loader: forwards and a non-default user.
TEST(PlanGolden, WebdevProfileOnKvm) {
    auto prof = profile::load_profile_file(std::filesystem::path(SBX_SOURCE_DIR) / "tests/profiles/good/webdev.toml");
    instance::InstanceLayout layout("/state/sbx/vms", prof.name);
    auto image = image::image_files("/data/sbx/images", prof.vm.image);
    auto plan = plan::make_launch_plan({prof, {profile::Accel::kvm, "test"}, layout, image, 40023, 0});
    ASSERT_EQ(plan.forwards.size(), 2u);
    EXPECT_EQ(plan.forwards[1].describe(), "udp 127.0.0.1:5353 -> 53");
    check_golden("plan_webdev_kvm.txt", plan::render(plan));
}

// The profile's allow entries become netd's rules: names, "*." suffixes, CIDRs, ports,
// protocols and private, each keeping the text the user wrote for the logs.
TEST(Plan, CompilesTheNetworkSection) {
    test::TempDir dir;
    auto prof = profile::load_profile_file(dir.write("n.toml", R"([network]
allow = ["github.com:22,443", "*.github.com:443",
         { cidr = "140.82.112.0/20", ports = [22] },
         { host = "ntp.example.org", ports = [123], proto = "udp" },
         { host = "ollama.lan", ports = [11434], private = true }]
host_ports = [5432]
learn = true
)"));
    auto pol = plan::compile_policy(prof.network);
    EXPECT_EQ(pol.mode, net::Mode::allowlist);
    EXPECT_TRUE(pol.learn);
    EXPECT_EQ(pol.host_ports, (std::vector<std::uint16_t>{5432}));
    ASSERT_EQ(pol.rules.size(), 5u);
    EXPECT_EQ(pol.rules[0].kind, net::Rule::Kind::name);
    EXPECT_EQ(pol.rules[0].name, "github.com");
    EXPECT_EQ(pol.rules[0].ports, (std::vector<std::uint16_t>{22, 443}));
    EXPECT_EQ(pol.rules[0].protos, static_cast<std::uint8_t>(net::Proto::tcp));
    EXPECT_EQ(pol.rules[0].source, "github.com:22,443");
    EXPECT_EQ(pol.rules[1].kind, net::Rule::Kind::suffix);
    EXPECT_EQ(pol.rules[1].name, "github.com");
    EXPECT_EQ(pol.rules[2].kind, net::Rule::Kind::cidr);
    EXPECT_EQ(pol.rules[2].cidr.to_string(), "140.82.112.0/20");
    EXPECT_EQ(pol.rules[3].protos, static_cast<std::uint8_t>(net::Proto::udp));
    EXPECT_FALSE(pol.rules[3].allow_private);
    EXPECT_TRUE(pol.rules[4].allow_private);

    auto open = profile::load_profile_file(dir.write("o.toml", "[network]\npolicy = \"open\"\n"));
    EXPECT_EQ(plan::compile_policy(open.network).mode, net::Mode::open);
    auto none = profile::load_profile_file(dir.write("z.toml", "[network]\npolicy = \"none\"\n"));
    EXPECT_EQ(plan::compile_policy(none.network).mode, net::Mode::none);
}

// Shares of every kind: virtiofs rw with hidden paths, ro, review (served from the copy), 9p ro.
TEST(PlanGolden, SharesOnKvm) {
    auto prof = work_profile();
    auto share = [](std::string host, std::string guest, profile::ShareMode mode, profile::ShareType type,
                    std::vector<std::string> hide) {
        profile::Share s;
        s.host = std::move(host);
        s.guest = std::move(guest);
        s.mode = mode;
        s.type = type;
        s.hide = std::move(hide);
        return s;
    };
    prof.shares = {share("/home/u/src/acme", "/home/dev/acme", profile::ShareMode::rw, profile::ShareType::virtiofs,
                         {".git", ".env"}),
                   share("/home/u/docs", "/home/dev/docs", profile::ShareMode::ro, profile::ShareType::virtiofs, {}),
                   share("/home/u/src/web,app", "/home/dev/web", profile::ShareMode::review,
                         profile::ShareType::virtiofs, {".git"}),
                   share("/home/u/data", "/data", profile::ShareMode::ro, profile::ShareType::ninep, {})};
    instance::InstanceLayout layout("/state/sbx/vms", "work");
    auto image = image::image_files("/data/sbx/images", "debian-12");
    auto plan = plan::make_launch_plan({prof, {profile::Accel::kvm, "test"}, layout, image, 40024, 0, "/usr/bin/sbx"});
    ASSERT_EQ(plan.shares.size(), 4u);
    EXPECT_EQ(plan.shares[2].served, "/state/sbx/vms/work/shares/2/work");
    EXPECT_TRUE(plan.shares[3].export_argv.empty());
    EXPECT_EQ(plan.shares[1].export_argv,
              (std::vector<std::string>{"/usr/bin/sbx", "_share", "--source", "/home/u/docs", "--socket",
                                        "/state/sbx/vms/work/vfs1.sock", "--guest-uid", "1000", "--ro"}));
    check_golden("plan_shares_kvm.txt", plan::render(plan));
}

TEST(Plan, IsAPureFunctionOfItsInputs) {
    auto a = plan_for(profile::Accel::tcg);
    auto b = plan_for(profile::Accel::tcg);
    EXPECT_EQ(a.qemu_argv, b.qemu_argv);
}

TEST(Plan, KeyPropertiesHold) {
    auto p = plan_for(profile::Accel::tcg);
    auto has = [&](const std::string& flag, const std::string& value) {
        for (std::size_t i = 0; i + 1 < p.qemu_argv.size(); ++i) {
            if (p.qemu_argv[i] == flag && p.qemu_argv[i + 1].find(value) != std::string::npos) {
                return true;
            }
        }
        return false;
    };
    EXPECT_TRUE(has("-sandbox", "on"));
    // QEMU's only network is netd's socket; QEMU's own user networking is never used.
    EXPECT_TRUE(has("-netdev", "stream,id=net0,server=off,addr.type=unix,addr.path=/state/sbx/vms/work/net.sock"));
    EXPECT_FALSE(has("-netdev", "user"));
    EXPECT_TRUE(has("-device", "host_mtu=65520"));
    ASSERT_EQ(p.netd.forwards.size(), 1u);
    EXPECT_EQ(p.netd.forwards[0].host_port, 40022);
    EXPECT_EQ(p.netd.forwards[0].guest_port, 22);
    EXPECT_EQ(p.netd.socket, "/state/sbx/vms/work/net.sock");
    EXPECT_EQ(p.netd_argv, (std::vector<std::string>{"sbx", "_netd", "--config", "/state/sbx/vms/work/netd.json"}));
    // The default profile: an allowlist with nothing in it.
    EXPECT_EQ(p.netd.policy.mode, net::Mode::allowlist);
    EXPECT_TRUE(p.netd.policy.rules.empty());
    EXPECT_TRUE(has("-qmp", "/state/sbx/vms/work/qmp.sock"));
    EXPECT_TRUE(has("-m", "8192M"));
    EXPECT_TRUE(has("-smp", "4"));
    EXPECT_TRUE(has("-accel", "tcg"));
    EXPECT_NE(std::find(p.qemu_argv.begin(), p.qemu_argv.end(), "-nodefaults"), p.qemu_argv.end());
    auto kvm = plan_for(profile::Accel::kvm);
    EXPECT_EQ(kvm.accel, "kvm");
    EXPECT_NE(std::find(kvm.qemu_argv.begin(), kvm.qemu_argv.end(), "host"), kvm.qemu_argv.end());
}

}  // namespace
}  // namespace sbx
