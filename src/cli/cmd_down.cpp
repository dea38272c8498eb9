#include "commands.hpp"

#include "sbx/vm/control.hpp"

namespace sbx::cli {

void add_down(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("down", "Stop a VM: ACPI power-off, bounded wait, then a hard stop");
    auto name = std::make_shared<std::string>();
    auto opts = std::make_shared<vm::DownOptions>();
    cmd->add_option("NAME", *name, "instance name")->required();
    cmd->add_flag("--force,-f", opts->force, "stop now, without waiting for the guest to power off");
    cmd->callback([name, opts, &exit_code] {
        vm::down(*name, *opts);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
