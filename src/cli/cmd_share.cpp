#include "commands.hpp"

#include "sbx/share/export.hpp"

namespace sbx::cli {

// Hidden verb: serves one share to the guest (see include/sbx/share/export.hpp).
void add_share_export(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("_share", "");
    cmd->group("");  // hidden from --help
    auto spec = std::make_shared<share::ExportSpec>();
    auto source = std::make_shared<std::string>();
    auto socket = std::make_shared<std::string>();
    cmd->add_option("--source", *source, "the folder to serve")->required();
    cmd->add_option("--socket", *socket, "the vhost-user socket")->required();
    cmd->add_flag("--ro", spec->read_only, "read-only");
    cmd->add_option("--hide", spec->hide, "a hide entry");
    cmd->add_option("--guest-uid", spec->guest_uid, "the guest user's uid");
    cmd->callback([spec, source, socket, &exit_code] {
        spec->source = *source;
        spec->socket = *socket;
        share::run_export(*spec);
        exit_code = 1;  // not reached: run_export execs virtiofsd or throws
    });
}

}  // namespace sbx::cli
