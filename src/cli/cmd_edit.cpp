#include "commands.hpp"

#include "sbx/profile/authoring.hpp"

namespace sbx::cli {

void add_edit(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("edit", "Open a profile in $VISUAL/$EDITOR; it is saved only if it validates");
    auto name = std::make_shared<std::string>();
    cmd->add_option("NAME", *name, "profile name or path to a .toml file")->required();
    cmd->callback([name, &exit_code] { exit_code = profile::edit_profile(*name, profile::default_edit_hooks()); });
}

}  // namespace sbx::cli
