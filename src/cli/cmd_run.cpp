#include "commands.hpp"

#include "sbx/profile/profile.hpp"
#include "sbx/vm/run.hpp"

namespace sbx::cli {

void add_run(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("run", "Boot a profile's VM, run one command in it (after --), then stop it");
    auto name = std::make_shared<std::string>();
    auto opts = std::make_shared<vm::RunOptions>();
    cmd->add_option("PROFILE", *name, "profile name (or path to a .toml profile)")->required();
    cmd->add_option("CMD", opts->command, "the command to run in the VM (put it after --)")->required();
    cmd->add_flag("--rm", opts->rm, "use a fresh instance and delete it afterwards (nothing is kept)");
    cmd->footer("The command's exit status becomes sbx's; stdin, stdout and stderr pass through, and\n"
                "the boot's progress goes to stderr. Without --rm the profile's own instance is used\n"
                "and stopped afterwards if this run started it. With --rm the instance is removed on\n"
                "every path, Ctrl-C included.");
    cmd->callback([name, opts, &exit_code] {
        auto profile = profile::load_profile(*name);
        exit_code = vm::run(profile, *opts);
    });
}

}  // namespace sbx::cli
