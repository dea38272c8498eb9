#pragma once
// `sbx ssh-config`: OpenSSH client configuration for running instances, so ssh, scp,
// rsync, sshfs and editors (VS Code Remote-SSH) reach a guest with the same guarantees as
// `sbx ssh`: the host key pinned to the one sbx generated (no trust on first use), only
// the instance's own key offered, no agent or X11 forwarding.

#include <filesystem>
#include <string>

namespace sbx::vm {

// What one `Host sbx-NAME` block needs.
struct SshConfigEntry {
    std::string name;                      // instance name; the host alias is sbx-NAME
    int port = 0;                          // the forwarded SSH port on 127.0.0.1
    std::string user;
    std::filesystem::path identity;        // the instance's client key
    std::filesystem::path known_hosts;     // holds "[127.0.0.1]:PORT <host key>"
};

// The block for one instance (pure). Throws sbx::Error when a path cannot be written in
// an ssh_config file (a double quote, backslash or control character in it).
std::string ssh_config_block(const SshConfigEntry& entry);

// The block of running instance NAME. Throws ExitCode::not_found for no such instance,
// ExitCode::not_running (hint: sbx up NAME) when it is not running.
std::string ssh_config(const std::string& name);

// Blocks for every running instance; a comment line for each one that is not running.
std::string ssh_config_all();

}  // namespace sbx::vm
