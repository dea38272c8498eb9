#pragma once
// Each verb lives in its own file and registers itself on the app. A verb's callback
// stores the process exit code in `exit_code` (sbx ssh passes the remote status through).

#include <CLI/CLI.hpp>

#include "sbx/vm/completion.hpp"

namespace sbx::cli {

void add_up(CLI::App& app, int& exit_code);
void add_ssh(CLI::App& app, int& exit_code);
void add_down(CLI::App& app, int& exit_code);
void add_ls(CLI::App& app, int& exit_code);
void add_status(CLI::App& app, int& exit_code);
void add_logs(CLI::App& app, int& exit_code);
void add_rm(CLI::App& app, int& exit_code);
void add_image(CLI::App& app, int& exit_code);
void add_plan(CLI::App& app, int& exit_code);
void add_check(CLI::App& app, int& exit_code);
void add_new(CLI::App& app, int& exit_code);
void add_edit(CLI::App& app, int& exit_code);
void add_internal(CLI::App& app, int& exit_code);
void add_net(CLI::App& app, int& exit_code);
void add_netd(CLI::App& app, int& exit_code);
void add_share_export(CLI::App& app, int& exit_code);
void add_ssh_config(CLI::App& app, int& exit_code);
void add_completion(CLI::App& app, int& exit_code);  // also the hidden `sbx _complete`
void add_cp(CLI::App& app, int& exit_code);
void add_run(CLI::App& app, int& exit_code);
void add_diff(CLI::App& app, int& exit_code);
void add_review(CLI::App& app, int& exit_code);
void add_apply(CLI::App& app, int& exit_code);

// The verbs and options of `app` (hidden ones left out), for the completion scripts.
vm::CompletionCommand completion_model(CLI::App& app);

// Parses argv, runs the verb, prints errors as "sbx: error: ..." plus "hint: ..." lines.
int run(int argc, char** argv);

}  // namespace sbx::cli
