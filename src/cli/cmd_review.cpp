#include "commands.hpp"

#include "sbx/vm/control.hpp"
#include "sbx/profile/profile.hpp"
#include "sbx/share/verbs.hpp"
#include "sbx/util/console.hpp"
#include "sbx/util/paths.hpp"

namespace sbx::cli {

void add_review(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand(
        "review", "Walk the guest's changes in review-mode shares one by one, then apply the accepted ones");
    auto name = std::make_shared<std::string>();
    cmd->add_option("NAME", *name, "instance name")->required();
    cmd->callback([name, &exit_code] {
        auto prof = vm::load_instance_profile(*name);
        share::ReviewCommand opts;
        opts.color = console::color(stdout);
        share::run_review(prof, paths::vms_root(), opts, stdin, stdout);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
