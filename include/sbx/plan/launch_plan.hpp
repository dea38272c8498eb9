#pragma once
// The launch plan: everything sbx will run for an instance, as a value. It is a pure
// function of the validated profile, the accelerator choice, the instance layout, the
// image files and the ports picked at start. No I/O: golden files test it and
// `sbx plan` prints it.

#include "sbx/host/accel.hpp"
#include "sbx/image/image.hpp"
#include "sbx/instance/layout.hpp"
#include "sbx/net/netd_config.hpp"
#include "sbx/profile/profile.hpp"

#include <string>
#include <vector>

namespace sbx::plan {

struct LaunchInputs {
    const profile::Profile& profile;
    host::AccelChoice accel;
    const instance::InstanceLayout& layout;
    image::ImageFiles image;
    int ssh_port = 0;  // host 127.0.0.1 port forwarded to the guest's 22
    std::uint64_t host_tsc_khz = 0;  // host::HostFacts::tsc_khz (used under TCG)
    std::filesystem::path sbx_exe = "sbx";  // the binary netd runs from (/proc/self/exe)
};

// A host 127.0.0.1 port that reaches a guest port ([[forward]]).
struct PortForward {
    std::string proto;  // "tcp" or "udp"
    int host = 0;
    int guest = 0;
    std::string describe() const;  // "tcp 127.0.0.1:8080 -> 3000"
};

// One [[share]] as it runs: what the guest mounts, the folder it sees, and (virtiofs) the
// `sbx _share` process that serves it. Review shares serve the instance's copy (work/).
struct ShareExport {
    std::size_t index = 0;
    std::string type;                        // "virtiofs" or "9p"
    std::string tag;                         // "sbx<index>"
    std::string guest;                       // the guest path
    std::filesystem::path served;            // the host folder QEMU or virtiofsd serves
    bool review = false;                     // served is a copy made at start (share::prepare)
    bool read_only = false;
    std::vector<std::string> export_argv;    // virtiofs only: the `sbx _share` command
};

struct LaunchPlan {
    std::string accel;                       // "kvm" or "tcg"
    std::string kernel_cmdline;
    std::vector<std::string> qemu_argv;      // argv[0] is the binary name, found in PATH
    // qemu-img argv that creates the overlay disk when it does not exist yet.
    std::vector<std::string> create_disk_argv;
    int ssh_port = 0;
    std::vector<PortForward> forwards;       // the profile's [[forward]]s, SSH not included
    // The egress filter, started before QEMU: QEMU's only network is netd's stream socket,
    // and every host->guest forward (SSH included) is bound by netd.
    net::NetdConfig netd;                    // written to the instance's netd.json
    std::vector<std::string> netd_argv;
    std::vector<ShareExport> shares;         // one per [[share]], in profile order
};

// The profile's [network] section as the policy netd enforces.
net::Policy compile_policy(const profile::NetworkSection& network);

LaunchPlan make_launch_plan(const LaunchInputs& in);

// Shell-like rendering, one option per line, for people (`sbx plan`) and golden files.
std::string render(const LaunchPlan& plan);

}  // namespace sbx::plan
