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
    EXPECT_TRUE(has("-netdev", "restrict=on"));
    EXPECT_TRUE(has("-netdev", "hostfwd=tcp:127.0.0.1:40022-:22"));
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
