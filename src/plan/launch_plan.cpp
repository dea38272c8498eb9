#include "sbx/plan/launch_plan.hpp"

#include "sbx/image/guest.hpp"
#include "sbx/net/netd.hpp"
#include "sbx/share/export.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/strings.hpp"

#include <fmt/format.h>

namespace sbx::plan {

std::string PortForward::describe() const {
    return fmt::format("{} 127.0.0.1:{} -> {}", proto, host, guest);
}

net::Policy compile_policy(const profile::NetworkSection& network) {
    net::Policy policy;
    switch (network.policy) {
    case profile::NetPolicy::allowlist: policy.mode = net::Mode::allowlist; break;
    case profile::NetPolicy::none: policy.mode = net::Mode::none; break;
    case profile::NetPolicy::open: policy.mode = net::Mode::open; break;
    }
    policy.learn = network.learn;
    policy.host_ports = network.host_ports;
    for (const auto& a : network.allow) {
        net::Rule r;
        if (!a.cidr.empty()) {
            auto cidr = net::Cidr::parse(a.cidr);
            if (!cidr) {
                // The profile loader normalises CIDRs; one it let through and net rejects is a bug.
                throw Error(fmt::format("network.allow: {}: not a CIDR netd accepts", a.source));
            }
            r.kind = net::Rule::Kind::cidr;
            r.cidr = *cidr;
        } else if (a.host.rfind("*.", 0) == 0) {
            r.kind = net::Rule::Kind::suffix;
            r.name = a.host.substr(2);
        } else {
            r.kind = net::Rule::Kind::name;
            r.name = a.host;
        }
        r.ports = a.ports;
        r.protos = a.protos;  // the same bits: tcp 1, udp 2, icmp 4
        r.allow_private = a.allow_private;
        r.source = a.source;
        policy.rules.push_back(std::move(r));
    }
    return policy;
}

LaunchPlan make_launch_plan(const LaunchInputs& in) {
    const auto& vm = in.profile.vm;
    const auto& layout = in.layout;
    LaunchPlan plan;
    bool kvm = in.accel.accel == profile::Accel::kvm;
    plan.accel = kvm ? "kvm" : "tcg";
    plan.ssh_port = in.ssh_port;
    plan.kernel_cmdline = std::string(image::guest::k_kernel_cmdline);
    auto& netd = plan.netd;
    netd.socket = layout.net_socket();
    netd.decision_log = layout.net_log();
    netd.stats = layout.net_stats();
    netd.denied = layout.net_denied();
    netd.policy = compile_policy(in.profile.network);
    netd.forwards.push_back({static_cast<std::uint16_t>(in.ssh_port), 22, net::Proto::tcp});
    for (const auto& f : in.profile.forwards) {
        bool udp = f.proto == profile::Proto::udp;
        plan.forwards.push_back({udp ? "udp" : "tcp", f.host, f.guest});
        netd.forwards.push_back({f.host, f.guest, udp ? net::Proto::udp : net::Proto::tcp});
    }
    plan.netd_argv = net::netd_argv(in.sbx_exe, layout.netd_config());

    bool virtiofs = false;
    for (std::size_t i = 0; i < in.profile.shares.size(); ++i) {
        const auto& sh = in.profile.shares[i];
        ShareExport e;
        e.index = i;
        e.type = sh.type == profile::ShareType::ninep ? "9p" : "virtiofs";
        e.tag = fmt::format("sbx{}", i);
        e.guest = sh.guest;
        e.review = sh.mode == profile::ShareMode::review;
        e.read_only = sh.mode == profile::ShareMode::ro;
        e.served = e.review ? instance::ShareLayout{layout.share_dir(i)}.work() : sh.host;
        if (e.type == "virtiofs") {
            virtiofs = true;
            share::ExportSpec spec;
            spec.source = e.served;
            spec.socket = layout.share_socket(i);
            spec.read_only = e.read_only;
            spec.hide = sh.hide;
            spec.guest_uid = image::guest::k_user_uid;
            e.export_argv = share::export_argv(in.sbx_exe, spec);
        }
        plan.shares.push_back(std::move(e));
    }
    // QEMU's option syntax doubles a comma inside a value.
    auto qemu_value = [](const std::filesystem::path& p) {
        std::string out;
        for (char c : p.string()) {
            out += c;
            if (c == ',') {
                out += ',';
            }
        }
        return out;
    };
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
         "-machine", std::string(kvm ? "microvm,rtc=on" : "microvm,rtc=on,pit=on,pic=on") +
                         (virtiofs ? ",memory-backend=mem" : ""),
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
         // The guest's only network is netd's socket: QEMU's own user networking is not used.
         // The MTU is offered by the device, so any guest kernel picks it up without config.
         "-netdev", fmt::format("stream,id=net0,server=off,addr.type=unix,addr.path={}",
                                layout.net_socket().string()),
         "-device", fmt::format("virtio-net-device,netdev=net0,host_mtu={}", netd.guest.mtu),
         "-device", "virtio-rng-device",
         "-chardev", fmt::format("file,id=serial0,path={}", layout.serial_log().string()),
         "-serial", "chardev:serial0",
         "-qmp", fmt::format("unix:{},server=on,wait=off", layout.qmp_socket().string()),
         // QEMU's own seccomp filter: no spawning, no privilege changes, no obsolete calls.
         "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"};
    if (virtiofs) {
        // vhost-user needs guest RAM virtiofsd can map, and modern virtio-mmio on microvm
        // (virtiofsd refuses legacy devices).
        a.insert(a.end(), {"-object", fmt::format("memory-backend-memfd,id=mem,size={}M,share=on", mem_mib),
                           "-global", "virtio-mmio.force-legacy=false"});
    }
    for (const auto& e : plan.shares) {
        if (e.type == "virtiofs") {
            a.insert(a.end(), {"-chardev", fmt::format("socket,id=vfs{},path={}", e.index,
                                                       qemu_value(layout.share_socket(e.index))),
                               "-device", fmt::format("vhost-user-fs-device,chardev=vfs{},tag={}", e.index, e.tag)});
        } else {
            // 9p: QEMU serves the folder itself; the host kernel enforces readonly=on.
            a.insert(a.end(), {"-fsdev", fmt::format("local,id=fs{},path={},security_model=none{}", e.index,
                                                     qemu_value(e.served), e.read_only ? ",readonly=on" : ""),
                               "-device", fmt::format("virtio-9p-device,fsdev=fs{},mount_tag={}", e.index, e.tag)});
        }
    }

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
    for (const auto& e : plan.shares) {
        out += fmt::format("# share {}: {} {} -> guest {} ({}{}{})\n", e.index, e.type, e.served.string(), e.guest,
                           e.read_only ? "read-only" : "read-write", e.review ? ", a reviewed copy" : "",
                           e.export_argv.empty() ? "" : ", served by:");
        if (!e.export_argv.empty()) {
            out += quote(e.export_argv);
        }
    }
    out += "# netd (the egress filter, started first):\n" + quote(plan.netd_argv);
    out += "# netd.json:\n" + net::to_json(plan.netd).dump(2) + "\n";
    out += "# disk (first start only):\n" + quote(plan.create_disk_argv);
    out += "# vm:\n" + quote(plan.qemu_argv);
    return out;
}

}  // namespace sbx::plan
