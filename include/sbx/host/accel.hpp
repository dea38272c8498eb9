#pragma once
// Choosing the accelerator. Detection only reads files and never opens a VM: some hosts
// expose a /dev/kvm that hangs ordinary guests, and a CPU without vmx/svm is one of them.

#include "sbx/profile/profile.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace sbx::host {

// What the host offers, read once; fed in by tests.
struct HostFacts {
    bool kvm_device = false;      // /dev/kvm exists
    bool kvm_accessible = false;  // and we may open it read-write
    bool cpu_virt = false;        // /proc/cpuinfo flags include vmx or svm
    // The host's TSC rate in kHz (0: unknown). Under TCG the guest's TSC runs at the host's
    // rate, and telling the guest kernel skips a PIT calibration that fails on a busy host.
    std::uint64_t tsc_khz = 0;
};

HostFacts probe_host_facts();

struct AccelChoice {
    profile::Accel accel = profile::Accel::tcg;  // kvm or tcg, never automatic
    std::string reason;                          // for people: "kvm: /dev/kvm usable, CPU has vmx/svm"
};

// `requested` is the profile's accel; `env_override` is SBX_ACCEL ("auto", "kvm", "tcg"),
// which wins. Asking for kvm where it is unusable is an error naming the missing piece.
AccelChoice choose_accel(const HostFacts& facts, profile::Accel requested,
                         const std::optional<std::string>& env_override);

}  // namespace sbx::host
