#include "commands.hpp"

#include "sbx/profile/authoring.hpp"

namespace sbx::cli {

void add_new(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("new", "Create a profile from a template (in ~/.config/sbx/profiles)");
    auto name = std::make_shared<std::string>();
    auto from = std::make_shared<std::string>("work");
    auto dir = std::make_shared<std::string>();
    cmd->add_option("NAME", *name, "the new profile's name")->required();
    cmd->add_option("--from", *from, "template: a profile name or path (work, agent, example, ...)")
        ->capture_default_str();
    cmd->add_option("--dir", *dir, "create it in this folder instead (e.g. ./profiles)");
    cmd->callback([name, from, dir, &exit_code] {
        profile::new_profile(*name, *from,
                             dir->empty() ? std::nullopt : std::optional<std::filesystem::path>(*dir));
        exit_code = 0;
    });
}

}  // namespace sbx::cli
