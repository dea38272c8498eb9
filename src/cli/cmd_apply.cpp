#include "commands.hpp"

#include "sbx/vm/control.hpp"
#include "sbx/profile/profile.hpp"
#include "sbx/share/verbs.hpp"
#include "sbx/util/console.hpp"
#include "sbx/util/paths.hpp"

namespace sbx::cli {

void add_apply(CLI::App& app, int& exit_code) {
    auto* cmd =
        app.add_subcommand("apply", "Copy the guest's changes in review-mode shares back to the host");
    auto name = std::make_shared<std::string>();
    auto opts = std::make_shared<share::ApplyCommand>();
    auto conflict = std::make_shared<std::string>();
    cmd->add_option("NAME", *name, "instance name")->required();
    cmd->add_option("PATH", opts->paths,
                    "only these paths (relative to the share, or absolute host/guest paths)");
    cmd->add_flag("--allow-delete", opts->options.allow_delete,
                  "apply deletions (and folders replaced by files)");
    cmd->add_option(
           "--conflict", *conflict,
           "where the host changed a path since the snapshot: guest (overwrite it) or host (keep it)")
        ->check(CLI::IsMember({"guest", "host"}));
    cmd->add_flag("--allow-outside-symlinks", opts->options.allow_outside_symlinks,
                  "also create symlinks whose target is outside the share");
    cmd->add_flag("--dry-run,-n", opts->options.dry_run, "check and report, write nothing");
    cmd->callback([name, opts, conflict, &exit_code] {
        if (*conflict == "guest") {
            opts->options.conflict = share::ConflictChoice::guest;
        } else if (*conflict == "host") {
            opts->options.conflict = share::ConflictChoice::host;
        }
        auto prof = vm::load_instance_profile(*name);
        opts->color = console::color(stdout);
        share::run_apply(prof, paths::vms_root(), *opts, stdout);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
