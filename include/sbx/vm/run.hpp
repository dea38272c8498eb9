#pragma once
// `sbx run [--rm] PROFILE -- CMD...`: a one-shot sandbox. Boot, run one command over SSH
// (stdin, stdout, stderr and the exit status passed through, as `sbx ssh NAME -- CMD`),
// tear down.

#include "sbx/profile/profile.hpp"

#include <string>
#include <vector>

namespace sbx::vm {

struct RunOptions {
    // A fresh instance "<profile>-run-<4 hex>", removed afterwards (stopped, folder deleted)
    // on every path: success, failure, SIGINT/SIGTERM/SIGHUP. Without it the profile's own
    // instance is used; it is stopped afterwards only if this run started it.
    bool rm = false;
    std::vector<std::string> command;  // as for ssh::run_command
};

// "<profile>-run-<suffix>" cut to a valid instance name (at most 32 characters: the
// profile part is shortened, never the suffix).
std::string ephemeral_name(const std::string& profile_name, const std::string& suffix);

// Runs the command; returns its exit status (255 if the guest gave none), or 128+N when
// signal N interrupted the run (after tearing down). Progress of the boot and the
// teardown goes to stderr, so stdout carries only the command's output. Throws
// sbx::Error for failures of sbx itself (after tearing down).
int run(const profile::Profile& profile, const RunOptions& options);

}  // namespace sbx::vm
