#include "sbx/host/accel.hpp"

#include "sbx/util/error.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sbx::host {

HostFacts probe_host_facts() {
    HostFacts f;
    f.kvm_device = ::access("/dev/kvm", F_OK) == 0;
    f.kvm_accessible = f.kvm_device && ::access("/dev/kvm", R_OK | W_OK) == 0;
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    bool constant_tsc = false;
    double mhz = 0;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("cpu MHz", 0) == 0 && mhz == 0) {
            mhz = std::atof(line.substr(line.find(':') + 1).c_str());
            continue;
        }
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
    if (constant_tsc && mhz > 100 && mhz < 100000) {
        f.tsc_khz = static_cast<std::uint64_t>(mhz * 1000.0 + 0.5);
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
