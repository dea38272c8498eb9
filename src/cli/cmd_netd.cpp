#include "commands.hpp"

#include "sbx/net/netd.hpp"
#include "sbx/net/netd_config.hpp"

namespace sbx::cli {

// Hidden verb: the network process of one VM (see include/sbx/net/netd.hpp).
void add_netd(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("_netd", "");
    cmd->group("");  // hidden from --help
    auto config = std::make_shared<std::string>();
    cmd->add_option("--config", *config, "netd.json written by the supervisor")->required();
    cmd->callback([config, &exit_code] { exit_code = net::run_netd(net::read_netd_config(*config)); });
}

}  // namespace sbx::cli
