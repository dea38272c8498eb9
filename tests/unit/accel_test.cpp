#include "sbx/host/accel.hpp"
#include "sbx/util/error.hpp"

#include <gtest/gtest.h>

namespace sbx {
namespace {

using host::HostFacts;
using profile::Accel;

const HostFacts k_kvm_host{true, true, true};
// This CI machine: /dev/kvm exists but the CPU shows no vmx/svm.
const HostFacts k_nested_without_flags{true, true, false};
const HostFacts k_no_device{false, false, true};
const HostFacts k_no_permission{true, false, true};

TEST(Accel, AutoPicksKvmWhenUsable) {
    auto c = host::choose_accel(k_kvm_host, Accel::automatic, std::nullopt);
    EXPECT_EQ(c.accel, Accel::kvm);
}

TEST(Accel, AutoPicksTcgWithoutCpuFlags) {
    auto c = host::choose_accel(k_nested_without_flags, Accel::automatic, std::nullopt);
    EXPECT_EQ(c.accel, Accel::tcg);
    EXPECT_NE(c.reason.find("no vmx/svm"), std::string::npos) << c.reason;
}

TEST(Accel, AutoPicksTcgWithoutDeviceOrPermission) {
    EXPECT_EQ(host::choose_accel(k_no_device, Accel::automatic, std::nullopt).accel, Accel::tcg);
    auto c = host::choose_accel(k_no_permission, Accel::automatic, std::nullopt);
    EXPECT_EQ(c.accel, Accel::tcg);
    EXPECT_NE(c.reason.find("not readable and writable"), std::string::npos);
}

TEST(Accel, ProfileTcgWinsOnKvmHost) {
    EXPECT_EQ(host::choose_accel(k_kvm_host, Accel::tcg, std::nullopt).accel, Accel::tcg);
}

TEST(Accel, KvmRequestedButUnusableIsAnError) {
    try {
        host::choose_accel(k_nested_without_flags, Accel::kvm, std::nullopt);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "profile vm.accel asks for kvm, but the CPU offers no hardware virtualization (no vmx/svm flag)");
        EXPECT_EQ(e.code(), ExitCode::config);
    }
}

TEST(Accel, EnvironmentOverridesProfile) {
    EXPECT_EQ(host::choose_accel(k_kvm_host, Accel::kvm, std::string("tcg")).accel, Accel::tcg);
    EXPECT_EQ(host::choose_accel(k_kvm_host, Accel::tcg, std::string("kvm")).accel, Accel::kvm);
    EXPECT_EQ(host::choose_accel(k_kvm_host, Accel::tcg, std::string("auto")).accel, Accel::kvm);
    EXPECT_EQ(host::choose_accel(k_kvm_host, Accel::tcg, std::string("")).accel, Accel::tcg);
    EXPECT_THROW(host::choose_accel(k_kvm_host, Accel::tcg, std::string("xen")), Error);
    try {
        host::choose_accel(k_no_device, Accel::automatic, std::string("kvm"));
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()), "SBX_ACCEL asks for kvm, but /dev/kvm does not exist");
    }
}

TEST(Accel, ProbeOfThisHostNeverHangs) {
    // Reads files only; the answer depends on the machine, but it must come back.
    auto facts = host::probe_host_facts();
    auto c = host::choose_accel(facts, Accel::automatic, std::nullopt);
    EXPECT_TRUE(c.accel == Accel::kvm || c.accel == Accel::tcg);
    if (!facts.cpu_virt) {
        EXPECT_EQ(c.accel, Accel::tcg);
    }
}

}  // namespace
}  // namespace sbx
