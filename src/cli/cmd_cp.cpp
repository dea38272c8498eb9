#include "commands.hpp"

#include "sbx/vm/copy.hpp"

namespace sbx::cli {

void add_cp(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("cp", "Copy files between the host and a running VM over SFTP (NAME:PATH is in the VM)");
    auto paths = std::make_shared<std::vector<std::string>>();
    auto opts = std::make_shared<vm::CopyCommandOptions>();
    cmd->add_option("PATHS", *paths, "SRC... DST; guest paths are written NAME:PATH")->required();
    cmd->add_flag("--recursive,-r", opts->recursive, "copy folders and what they hold");
    cmd->footer("Exactly one side is in the VM: sbx cp notes.txt work:/tmp/ or sbx cp -r work:src ./src-copy.\n"
                "Relative guest paths start at the guest user's home. Modes are kept (not setuid/setgid);\n"
                "symlinks inside folders are copied as symlinks. Each file is written under a temporary\n"
                "name and renamed into place.");
    cmd->callback([paths, opts, &exit_code] {
        vm::copy(*paths, *opts);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
