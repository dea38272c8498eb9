#include "commands.hpp"

#include "sbx/util/error.hpp"
#include "sbx/vm/ssh_config.hpp"

#include <fmt/format.h>

namespace sbx::cli {

void add_ssh_config(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("ssh-config",
                                   "Print an OpenSSH `Host sbx-NAME` block for a running VM (ssh, scp, rsync, VS Code)");
    auto name = std::make_shared<std::string>();
    auto all = std::make_shared<bool>(false);
    cmd->add_option("NAME", *name, "instance name");
    cmd->add_flag("--all,-a", *all, "every instance (a comment line for those not running)");
    cmd->footer("The port changes at each `sbx up`, so generate a file and Include it from ~/.ssh/config:\n"
                "  sbx ssh-config --all > ~/.ssh/sbx.conf     (again after each sbx up)\n"
                "  Include ~/.ssh/sbx.conf                    (at the top of ~/.ssh/config)\n"
                "  ssh sbx-work");
    cmd->callback([name, all, &exit_code] {
        if (*all == !name->empty()) {
            throw Error("sbx ssh-config takes an instance NAME or --all", {"e.g. sbx ssh-config work"},
                        ExitCode::usage);
        }
        fmt::print("{}", *all ? vm::ssh_config_all() : vm::ssh_config(*name));
        exit_code = 0;
    });
}

}  // namespace sbx::cli
