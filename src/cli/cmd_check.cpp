#include "commands.hpp"

#include "sbx/profile/authoring.hpp"

namespace sbx::cli {

void add_check(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("check", "Validate a profile (or every profile) and report all problems");
    auto name = std::make_shared<std::string>();
    cmd->add_option("NAME", *name, "profile name or path to a .toml file (default: every profile found)");
    cmd->callback([name, &exit_code] {
        exit_code = profile::check_profiles(name->empty() ? std::nullopt : std::optional<std::string>(*name));
    });
}

}  // namespace sbx::cli
