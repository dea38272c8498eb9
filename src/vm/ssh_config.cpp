#include "sbx/vm/ssh_config.hpp"

#include "sbx/instance/layout.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/vm/control.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace sbx::vm {

namespace {

// A path as an ssh_config argument: '%' escaped (IdentityFile and UserKnownHostsFile
// expand %-tokens), double-quoted when it holds a space.
std::string config_path(const std::filesystem::path& p) {
    std::string s = p.string();
    std::string out;
    bool quote = false;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\' || u < 0x20 || u == 0x7f) {
            throw Error(fmt::format("the path {} cannot be written in an OpenSSH config file", s),
                        {"set SBX_HOME (or XDG_STATE_HOME) to a folder without quotes, backslashes or "
                         "control characters in its path"});
        }
        if (c == ' ' || c == '\t') {
            quote = true;
        }
        if (c == '%') {
            out += '%';
        }
        out += c;
    }
    return quote ? "\"" + out + "\"" : out;
}

}  // namespace

std::string ssh_config_block(const SshConfigEntry& e) {
    std::string b;
    b += fmt::format("# sbx instance {}: the port changes at each `sbx up`; regenerate with sbx ssh-config\n",
                     e.name);
    b += fmt::format("Host sbx-{}\n", e.name);
    b += "  HostName 127.0.0.1\n";
    b += fmt::format("  Port {}\n", e.port);
    b += fmt::format("  User {}\n", e.user);
    b += fmt::format("  IdentityFile {}\n", config_path(e.identity));
    b += "  IdentitiesOnly yes\n";
    // Only the host key sbx generated: its own known_hosts, no global file, never updated
    // from what the guest offers.
    b += fmt::format("  UserKnownHostsFile {}\n", config_path(e.known_hosts));
    b += "  GlobalKnownHostsFile /dev/null\n";
    b += "  StrictHostKeyChecking yes\n";
    b += "  UpdateHostKeys no\n";
    b += "  CheckHostIP no\n";
    b += "  ForwardAgent no\n";
    b += "  ForwardX11 no\n";
    b += "  PasswordAuthentication no\n";
    b += "  KbdInteractiveAuthentication no\n";
    b += "  LogLevel ERROR\n";
    return b;
}

std::string ssh_config(const std::string& name) {
    auto target = ssh_target(name);  // throws not_found / not_running (hint: sbx up NAME)
    instance::InstanceLayout layout(paths::vms_root(), name);
    // OpenSSH looks the key up as "[127.0.0.1]:PORT"; the supervisor writes it that way.
    std::string want = fmt::format("[127.0.0.1]:{} ", target.port);
    std::string known;
    try {
        known = read_file(layout.known_hosts());
    } catch (const Error&) {
    }
    if (known.rfind(want, 0) != 0) {
        throw Error(fmt::format("{} does not hold the host key of {} for port {}", layout.known_hosts().string(),
                                name, target.port),
                    {fmt::format("sbx down {} && sbx up {} writes it again", name, name)});
    }
    SshConfigEntry e;
    e.name = name;
    e.port = target.port;
    e.user = target.user;
    e.identity = target.identity;
    e.known_hosts = layout.known_hosts();
    return ssh_config_block(e);
}

std::string ssh_config_all() {
    std::string out;
    for (const auto& name : instance::list_instance_names(paths::vms_root())) {
        if (!out.empty()) {
            out += "\n";
        }
        try {
            out += ssh_config(name);
        } catch (const Error& e) {
            if (e.code() == ExitCode::not_running) {
                out += fmt::format("# sbx-{}: not running; `sbx up {}` starts it, then run sbx ssh-config again\n",
                                   name, name);
            } else {
                std::string why = e.what();
                std::replace(why.begin(), why.end(), '\n', ' ');
                out += fmt::format("# sbx-{}: skipped: {}\n", name, why);
            }
        }
    }
    if (out.empty()) {
        out = "# no sbx instances yet; `sbx up NAME` creates one\n";
    }
    return out;
}

}  // namespace sbx::vm
