#include "commands.hpp"

#include "sbx/vm/control.hpp"

namespace sbx::cli {

void add_status(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("status", "Show one instance in detail");
    auto name = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("NAME", *name, "instance name")->required();
    cmd->add_flag("--json", *json, "machine-readable output");
    cmd->callback([name, json, &exit_code] {
        vm::print_status(*name, *json);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
