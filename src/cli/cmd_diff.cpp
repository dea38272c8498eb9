#include "commands.hpp"

#include "sbx/vm/control.hpp"
#include "sbx/profile/profile.hpp"
#include "sbx/share/verbs.hpp"
#include "sbx/util/console.hpp"
#include "sbx/util/paths.hpp"

namespace sbx::cli {

void add_diff(CLI::App& app, int& exit_code) {
    auto* cmd =
        app.add_subcommand("diff", "Show what the guest changed in its review-mode shares, like git diff");
    auto name = std::make_shared<std::string>();
    auto opts = std::make_shared<share::DiffCommand>();
    cmd->add_option("NAME", *name, "instance name")->required();
    cmd->add_option("PATH", opts->paths,
                    "only these paths (relative to the share, or absolute host/guest paths)");
    cmd->add_flag("--stat", opts->stat,
                  "one line per changed path with +/- counts and flags, then a summary");
    cmd->callback([name, opts, &exit_code] {
        auto prof = vm::load_instance_profile(*name);
        opts->color = console::color(stdout);
        share::run_diff(prof, paths::vms_root(), *opts, stdout);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
