#include "commands.hpp"

#include "sbx/vm/control.hpp"

namespace sbx::cli {

void add_ls(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("ls", "List instances: status, accel, cpus, memory, ssh port, uptime");
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "machine-readable output");
    cmd->callback([json, &exit_code] {
        vm::print_list(*json);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
