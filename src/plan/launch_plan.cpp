#include "sbx/plan/launch_plan.hpp"

#include "sbx/image/guest.hpp"
#include "sbx/util/strings.hpp"

#include <fmt/format.h>

namespace sbx::plan {

std::string PortForward::describe() const {
    return fmt::format("{} 127.0.0.1:{} -> {}", proto, host, guest);
}

LaunchPlan make_launch_plan(const LaunchInputs& in) {
    const auto& vm = in.profile.vm;
    const auto& layout = in.layout;
    LaunchPlan plan;
    bool kvm = in.accel.accel == profile::Accel::kvm;
    plan.accel = kvm ? "kvm" : "tcg";
    plan.ssh_port = in.ssh_port;
    plan.kernel_cmdline = std::string(image::guest::k_kernel_cmdline);
    std::string hostfwd = fmt::format("hostfwd=tcp:127.0.0.1:{}-:22", in.ssh_port);
    for (const auto& f : in.profile.forwards) {
        PortForward pf{f.proto == profile::Proto::udp ? "udp" : "tcp", f.host, f.guest};
        hostfwd += fmt::format(",hostfwd={}:127.0.0.1:{}-:{}", pf.proto, pf.host, pf.guest);
        plan.forwards.push_back(pf);
    }
    if (!kvm && in.host_tsc_khz > 0) {
        // TCG: the guest TSC ticks at the host's rate. Calibrating it against the emulated
        // PIT fails when the host is busy, and the kernel then hangs without a clocksource.
        plan.kernel_cmdline += fmt::format(" tsc_early_khz={} tsc=reliable", in.host_tsc_khz);
    }

    std::uint64_t mem_mib = vm.memory >> 20;
    auto& a = plan.qemu_argv;
    a = {"qemu-system-x86_64",
         "-name", fmt::format("sbx-{},process=sbx-{}", layout.name(), layout.name()),
         "-nodefaults", "-no-user-config", "-display", "none",
         // microvm: no PCI, no firmware, no legacy devices to probe; the fastest boot.
         // microvm: no PCI, no firmware, no legacy devices to probe. KVM brings its own
         // in-kernel PIT and PIC; TCG needs them emulated for the kernel's timer setup.
         "-machine", kvm ? "microvm,rtc=on" : "microvm,rtc=on,pit=on,pic=on",
         "-accel", kvm ? "kvm" : "tcg,thread=multi",
         "-cpu", kvm ? "host" : "max",
         "-smp", std::to_string(vm.cpus),
         "-m", fmt::format("{}M", mem_mib),
         "-kernel", in.image.kernel.string(),
         "-initrd", in.image.initrd.string(),
         "-append", plan.kernel_cmdline,
         "-drive", fmt::format("id=root,file={},format=qcow2,if=none,discard=unmap,cache=writeback",
                               layout.disk().string()),
         "-device", "virtio-blk-device,drive=root",
         "-drive", fmt::format("id=seed,file={},format=raw,if=none,readonly=on", layout.seed().string()),
         "-device", fmt::format("virtio-blk-device,drive=seed,serial={}", image::guest::k_seed_serial),
         // No egress at all: restrict=on isolates the guest; only the forwards get in.
         "-netdev", fmt::format("user,id=net0,restrict=on,ipv6=off,{}", hostfwd),
         "-device", "virtio-net-device,netdev=net0",
         "-device", "virtio-rng-device",
         "-chardev", fmt::format("file,id=serial0,path={}", layout.serial_log().string()),
         "-serial", "chardev:serial0",
         "-qmp", fmt::format("unix:{},server=on,wait=off", layout.qmp_socket().string()),
         // QEMU's own seccomp filter: no spawning, no privilege changes, no obsolete calls.
         "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"};

    plan.create_disk_argv = {"qemu-img", "create", "-q", "-f", "qcow2",
                             "-b", in.image.disk.string(), "-F", "qcow2",
                             layout.disk().string(), std::to_string(vm.disk)};
    return plan;
}

std::string render(const LaunchPlan& plan) {
    auto quote = [](const std::vector<std::string>& argv) {
        std::string out;
        for (std::size_t i = 0; i < argv.size(); ++i) {
            const auto& word = argv[i];
            std::string q = shell_quote(word);
            if (i == 0) {
                out += q;
            } else if (word.size() > 1 && word[0] == '-') {
                out += " \\\n    " + q;
            } else {
                out += " " + q;
            }
        }
        return out + "\n";
    };
    std::string out;
    out += fmt::format("# accel: {}\n# ssh: 127.0.0.1:{} -> guest :22\n", plan.accel, plan.ssh_port);
    for (const auto& f : plan.forwards) {
        out += fmt::format("# forward: {}\n", f.describe());
    }
    out += "# disk (first start only):\n" + quote(plan.create_disk_argv);
    out += "# vm:\n" + quote(plan.qemu_argv);
    return out;
}

}  // namespace sbx::plan
