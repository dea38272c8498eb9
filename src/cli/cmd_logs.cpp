#include "commands.hpp"

#include "sbx/vm/control.hpp"

namespace sbx::cli {

void add_logs(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("logs", "Show the supervisor log, or the guest's serial console");
    auto name = std::make_shared<std::string>();
    auto serial = std::make_shared<bool>(false);
    auto follow = std::make_shared<bool>(false);
    cmd->add_option("NAME", *name, "instance name")->required();
    cmd->add_flag("--serial", *serial, "the guest's serial console instead of the supervisor log");
    cmd->add_flag("--follow,-f", *follow, "keep printing as the log grows (Ctrl-C to stop)");
    cmd->callback([name, serial, follow, &exit_code] {
        vm::show_log(*name, *serial, *follow);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
