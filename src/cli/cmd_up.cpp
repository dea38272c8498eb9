#include "commands.hpp"

#include "sbx/profile/profile.hpp"
#include "sbx/vm/control.hpp"

namespace sbx::cli {

void add_up(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("up", "Start the VM of a profile (build its image first if needed)");
    auto name = std::make_shared<std::string>();
    auto opts = std::make_shared<vm::UpOptions>();
    cmd->add_option("NAME", *name, "profile name (or path to a .toml profile)")->required();
    cmd->add_flag("--fresh", opts->fresh, "discard the VM's disk and start from the image");
    cmd->add_flag("--provision", opts->provision, "run the profile's [provision] again");
    cmd->callback([name, opts, &exit_code] {
        auto profile = vm::load_instance_profile(*name);
        vm::up(profile, *opts);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
