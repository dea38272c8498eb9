#pragma once
// netd: the process every VM's network goes through (`sbx _netd --config FILE`).
//
//   QEMU -netdev stream,server=off,addr.type=unix,addr.path=<socket>
//     -> netd: deframe -> Filter -> a flow engine (allowed: one host socket per flow) /
//              reply (RST, ICMP, DNS, ARP) / c-ares lookup
//     <- netd: the engines' frames, read from the host sockets -> framed, bounded queue -> QEMU
//
// Lifecycle, as the supervisor sees it:
//   1. The supervisor writes the config (write_netd_config) and spawns netd_argv(...).
//   2. netd opens its files, builds the filter, the flow engines (binding every host forward on
//      127.0.0.1: a port in use is a startup error naming it), the resolver, and listens on a
//      temporary name beside the socket path. Then it renames that listening socket to the
//      configured path, forbids itself what the loop does not need (sandbox.hpp) and prints
//      k_netd_ready_line on stdout. READY means: the configured socket path exists
//      (netd_socket_ready()); QEMU may be started from then on. The supervisor removes a
//      stale socket file before it spawns netd (netd removes one too, but a waiter that looks
//      before netd got that far would see the old file), then waits, bounded and watching
//      netd's exit, for the path to appear.
//   3. netd accepts exactly one connection (QEMU). Further connections are refused (the
//      listening socket is closed after the first accept).
//   4. Exit status: 0 when QEMU disconnects or on SIGTERM/SIGINT/SIGHUP; 1 with a message on
//      stderr on a setup failure or a corrupt stream (a length prefix that no frame can have).
//      Any exit of netd while the VM runs means the VM has no network: the supervisor stops
//      the VM (fail closed).

#include "sbx/net/netd_config.hpp"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::net {

inline constexpr std::string_view k_netd_ready_line = "netd: ready";

// Runs netd until QEMU disconnects or a signal stops it; returns the exit status. Throws
// sbx::Error when setup fails (files, a forward's port, the resolver, the sandbox).
int run_netd(NetdConfig config);

// {sbx_exe, "_netd", "--config", config}: how the supervisor starts netd.
std::vector<std::string> netd_argv(const std::filesystem::path& sbx_exe, const std::filesystem::path& config);

// True once netd has finished its setup (the socket path exists and is a socket).
bool netd_socket_ready(const std::filesystem::path& socket);

}  // namespace sbx::net
