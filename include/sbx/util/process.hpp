#pragma once
// Child processes, spawned the way a supervisor should: a clean environment list,
// no inherited file descriptors beyond stdin/stdout/stderr, its own process group,
// a reset signal mask and, unless told otherwise, death with the parent.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sbx {

struct SpawnSpec {
    std::vector<std::string> argv;
    // The whole environment of the child. Use default_child_env() for the usual few.
    std::vector<std::string> env;
    std::filesystem::path cwd;  // empty: inherit
    // File descriptors for the child's 0, 1, 2; -1 means /dev/null.
    int stdin_fd = -1;
    int stdout_fd = -1;
    int stderr_fd = -1;
    bool die_with_parent = true;  // PR_SET_PDEATHSIG(SIGKILL)
    bool new_session = false;     // setsid() instead of setpgid(0, 0): for detached daemons
};

struct Child {
    pid_t pid = -1;
    int pidfd = -1;  // pollable; readable when the child has exited
};

// PATH, HOME, USER, LANG/LC_ALL=C.UTF-8-ish, TMPDIR, plus SBX_* from our environment.
std::vector<std::string> default_child_env();

// Sets one NAME=VALUE in an environment list: replaces an entry of the same name, else
// appends. (execve's lookup takes the first entry, so appending never overrides.)
void set_env_entry(std::vector<std::string>& env, const std::string& entry);

// Starts the child. Throws sbx::Error (naming argv[0]) when it cannot be executed.
Child spawn(const SpawnSpec& spec);

// Blocks until the child exits; returns its exit code, or 128+signal.
int wait_child(Child& child);

// Non-blocking: the exit code if the child has exited, else nothing.
std::optional<int> try_wait_child(Child& child);

// Convert a waitpid status into an exit code (128+signal for a signalled child).
int status_to_code(int status);

struct RunResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr interleaved (bounded: the last 64 KiB)
};

struct RunOptions {
    // Sees each output line as it arrives (for progress), without its trailing "\r".
    std::function<void(const std::string&)> on_line;
    // When it runs out, the child's process group gets SIGTERM, ten seconds to clean up,
    // then SIGKILL, and run_command throws (ExitCode::timeout).
    std::optional<std::chrono::seconds> timeout;
    std::vector<std::string> extra_env;  // NAME=VALUE, replacing NAME in default_child_env()
    std::string extra_path;              // appended to PATH (":/usr/sbin:/sbin")
    int stdin_fd = -1;                   // -1: /dev/null
    std::filesystem::path cwd;           // empty: inherit
};

// Runs a command to completion, capturing its output.
RunResult run_command(const std::vector<std::string>& argv, const RunOptions& options);

RunResult run_command(const std::vector<std::string>& argv,
                      const std::function<void(const std::string&)>& on_line = {},
                      std::optional<std::chrono::seconds> timeout = std::nullopt,
                      const std::vector<std::string>& extra_env = {});

// Is `name` an executable in PATH (or an executable path)?
std::optional<std::filesystem::path> find_program(const std::string& name);

// Last `max_lines` lines of a text file, for error messages ("the child's last words").
std::string tail_file(const std::filesystem::path& path, std::size_t max_lines);

}  // namespace sbx
