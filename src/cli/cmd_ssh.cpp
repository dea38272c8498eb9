#include "commands.hpp"

#include "sbx/ssh/ssh.hpp"
#include "sbx/vm/control.hpp"

namespace sbx::cli {

void add_ssh(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("ssh", "Open a shell in a running VM, or run one command (after --)");
    auto name = std::make_shared<std::string>();
    auto command = std::make_shared<std::vector<std::string>>();
    cmd->add_option("NAME", *name, "instance name")->required();
    cmd->add_option("CMD", *command, "command to run instead of a shell (put it after --)");
    cmd->footer("The command's exit status becomes sbx's. Its words are quoted for the guest's shell,\n"
                "so `sbx ssh work -- sh -c 'exit 3'` exits 3.");
    cmd->callback([name, command, &exit_code] {
        auto target = vm::ssh_target(*name);
        if (command->empty()) {
            exit_code = ssh::interactive_shell(target);
        } else {
            exit_code = ssh::run_command(target, *command);
        }
    });
}

}  // namespace sbx::cli
