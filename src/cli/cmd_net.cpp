#include "commands.hpp"

#include "sbx/net/net_log.hpp"

namespace sbx::cli {

void add_net(CLI::App& app, int& exit_code) {
    auto* net = app.add_subcommand("net", "Show egress decisions; suggest allow rules from learn mode");
    net->require_subcommand(1);

    auto* log = net->add_subcommand("log", "Show the VM's egress decisions (allowed, denied, learned)");
    auto log_name = std::make_shared<std::string>();
    auto follow = std::make_shared<bool>(false);
    log->add_option("NAME", *log_name, "instance name")->required();
    log->add_flag("--follow,-f", *follow, "keep printing new decisions (Ctrl-C to stop)");
    log->callback([log_name, follow, &exit_code] {
        net::show_net_log(*log_name, *follow);
        exit_code = 0;
    });

    auto* suggest =
        net->add_subcommand("suggest", "Print [network] allow entries from what learn mode recorded");
    auto suggest_name = std::make_shared<std::string>();
    suggest->add_option("NAME", *suggest_name, "instance name")->required();
    suggest->callback([suggest_name, &exit_code] {
        net::print_suggestions(*suggest_name);
        exit_code = 0;
    });
}

}  // namespace sbx::cli
