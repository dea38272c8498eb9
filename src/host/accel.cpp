#include "sbx/host/accel.hpp"

#include "sbx/util/error.hpp"

#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sbx::host {

namespace {

// The TSC rate, measured against CLOCK_MONOTONIC_RAW over 20 ms. /proc/cpuinfo's "cpu MHz"
// is the current core clock on hosts with frequency scaling, not the TSC's rate.
std::uint64_t measure_tsc_khz() {
#if defined(__x86_64__)
    auto raw_ns = [] {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
        return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
    };
    std::uint64_t t0 = raw_ns();
    std::uint64_t c0 = __rdtsc();
    timespec pause{0, 20'000'000};
    ::nanosleep(&pause, nullptr);
    std::uint64_t t1 = raw_ns();
    std::uint64_t c1 = __rdtsc();
    if (t1 <= t0 || c1 <= c0) {
        return 0;
    }
    double khz = static_cast<double>(c1 - c0) * 1.0e6 / static_cast<double>(t1 - t0);
    if (khz < 100'000 || khz > 100'000'000) {
        return 0;
    }
    return static_cast<std::uint64_t>(khz + 0.5);
#else
    return 0;
#endif
}

}  // namespace

HostFacts probe_host_facts() {
    HostFacts f;
    f.kvm_device = ::access("/dev/kvm", F_OK) == 0;
    f.kvm_accessible = f.kvm_device && ::access("/dev/kvm", R_OK | W_OK) == 0;
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    bool constant_tsc = false;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("flags", 0) != 0) {
            continue;
        }
        std::istringstream words(line.substr(line.find(':') + 1));
        std::string w;
        while (words >> w) {
            if (w == "vmx" || w == "svm") {
                f.cpu_virt = true;
            }
            if (w == "constant_tsc") {
                constant_tsc = true;
            }
        }
        break;  // the first CPU speaks for all
    }
    if (constant_tsc) {
        f.tsc_khz = measure_tsc_khz();
    }
    return f;
}

AccelChoice choose_accel(const HostFacts& facts, profile::Accel requested,
                         const std::optional<std::string>& env_override) {
    std::string source = "profile vm.accel";
    if (env_override && !env_override->empty()) {
        source = "SBX_ACCEL";
        if (*env_override == "auto") {
            requested = profile::Accel::automatic;
        } else if (*env_override == "kvm") {
            requested = profile::Accel::kvm;
        } else if (*env_override == "tcg") {
            requested = profile::Accel::tcg;
        } else {
            throw Error(fmt::format("SBX_ACCEL=\"{}\" is not one of auto, kvm, tcg", *env_override),
                        {"unset SBX_ACCEL or set it to auto, kvm or tcg"}, ExitCode::usage);
        }
    }
    std::string missing;
    if (!facts.kvm_device) {
        missing = "/dev/kvm does not exist";
    } else if (!facts.kvm_accessible) {
        missing = "/dev/kvm is not readable and writable by this user";
    } else if (!facts.cpu_virt) {
        missing = "the CPU offers no hardware virtualization (no vmx/svm flag)";
    }
    switch (requested) {
    case profile::Accel::tcg:
        return {profile::Accel::tcg, fmt::format("tcg: asked for by {}", source)};
    case profile::Accel::kvm:
        if (!missing.empty()) {
            throw Error(fmt::format("{} asks for kvm, but {}", source, missing),
                        {"use accel = \"auto\" (or SBX_ACCEL=tcg) to run under software emulation",
                         "to use KVM: enable virtualization in the firmware and add yourself to the kvm group"},
                        ExitCode::config);
        }
        return {profile::Accel::kvm, fmt::format("kvm: asked for by {}", source)};
    case profile::Accel::automatic:
        break;
    }
    if (missing.empty()) {
        return {profile::Accel::kvm, "kvm: /dev/kvm is usable and the CPU has vmx/svm"};
    }
    return {profile::Accel::tcg, fmt::format("tcg (software emulation, slower): {}", missing)};
}

}  // namespace sbx::host
