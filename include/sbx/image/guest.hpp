#pragma once
// The contract between sbx on the host and the guest side baked into sbx-built images
// (images/guest/). Both sides must agree on these; changing one means rebuilding images.

#include <string_view>

namespace sbx::image::guest {

// ext4 label of the root filesystem; the kernel command line says root=LABEL=<this>.
inline constexpr std::string_view k_root_label = "sbxroot";
// virtio-blk serial of the per-instance seed disk (a raw ustar archive).
inline constexpr std::string_view k_seed_serial = "sbx-seed";
// The guest's static network configuration (QEMU user networking's usual addresses), set by
// sbx-seed before sshd starts, IPv4 and IPv6 alike, and adopted by systemd-networkd.
inline constexpr std::string_view k_guest_ip = "10.0.2.15";
inline constexpr std::string_view k_gateway_ip = "10.0.2.2";
inline constexpr std::string_view k_dns_ip = "10.0.2.3";
inline constexpr int k_prefix_len = 24;
// IPv6; DNS stays on 10.0.2.3, which answers AAAA as well.
inline constexpr std::string_view k_guest_ip6 = "fec0::15/64";
inline constexpr std::string_view k_gateway_ip6 = "fec0::2";
// The guest user's uid and gid. virtiofs shares map it to the host user (share/export.hpp).
inline constexpr unsigned k_user_uid = 1000;
// Kernel command line shared by every sbx-built image (the plan appends to it).
// cryptomgr.notests: Debian's kernels run the crypto API's known-answer self-tests for every
// algorithm they register (upstream's default is not to). Under TCG that is ~0.5 s before
// /init and ~1.7 s more when udev loads aesni_intel, right while the first SSH key exchange
// runs; it checks the kernel's own implementations, not anything sbx's isolation rests on.
inline constexpr std::string_view k_kernel_cmdline =
    "console=ttyS0 root=LABEL=sbxroot rw quiet net.ifnames=0 "
    "systemd.show_status=error cryptomgr.notests";

}  // namespace sbx::image::guest
