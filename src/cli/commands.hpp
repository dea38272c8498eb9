#pragma once
// Each verb lives in its own file and registers itself on the app. A verb's callback
// stores the process exit code in `exit_code` (sbx ssh passes the remote status through).

#include <CLI/CLI.hpp>

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
void add_internal(CLI::App& app, int& exit_code);

// Parses argv, runs the verb, prints errors as "sbx: error: ..." plus "hint: ..." lines.
int run(int argc, char** argv);

}  // namespace sbx::cli
