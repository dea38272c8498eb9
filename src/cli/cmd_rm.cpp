#include "commands.hpp"

#include "sbx/vm/control.hpp"

namespace sbx::cli {

void add_rm(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("rm", "Delete an instance: its disk, keys and logs");
    auto name = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    cmd->add_option("NAME", *name, "instance name")->required();
    cmd->add_flag("--force,-f", *force, "stop it first if it is running");
    cmd->callback([name, force, &exit_code] {
        vm::remove_instance(*name, *force);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
