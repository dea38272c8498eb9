#pragma once
// The per-instance supervisor (`sbx _supervise NAME`): a detached process that owns the
// instance lock, prepares the disk, keys and seed, starts QEMU, waits for SSH, then
// watches QEMU until it exits or is told to stop (SIGTERM: graceful ladder; SIGUSR1: now).
//
// Theory of operation: one poll loop over a signalfd, QEMU's pidfd, its output pipes and
// the QMP socket. Every wait is bounded and also watches QEMU's exit. Progress and outcome
// go to events.jsonl (which `sbx up` and `sbx down` follow) and state.json. QEMU is spawned
// with PR_SET_PDEATHSIG, so a `kill -9` of the supervisor takes QEMU with it.

#include <chrono>
#include <filesystem>
#include <string>

namespace sbx::vm {

struct SuperviseOptions {
    std::string name;
    std::filesystem::path profile_file;
    std::string run_id;
};

// Runs the supervisor in this process until the VM is gone. Returns the exit code.
int supervise(const SuperviseOptions& options);

// Bounded waits, overridable for slow hosts: SBX_BOOT_TIMEOUT and SBX_POWERDOWN_TIMEOUT
// (seconds).
std::chrono::seconds boot_timeout(bool kvm);
std::chrono::seconds powerdown_timeout();

}  // namespace sbx::vm
