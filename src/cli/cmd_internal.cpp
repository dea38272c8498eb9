#include "commands.hpp"

#include "sbx/vm/supervisor.hpp"

namespace sbx::cli {

// Hidden verbs: the background processes of the same binary.
void add_internal(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("_supervise", "");
    cmd->group("");  // hidden from --help
    auto opts = std::make_shared<vm::SuperviseOptions>();
    auto profile = std::make_shared<std::string>();
    cmd->add_option("NAME", opts->name)->required();
    cmd->add_option("--profile", *profile)->required();
    cmd->add_option("--run", opts->run_id)->required();
    cmd->callback([opts, profile, &exit_code] {
        opts->profile_file = *profile;
        exit_code = vm::supervise(*opts);
    });
}

}  // namespace sbx::cli
