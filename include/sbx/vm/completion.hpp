#pragma once
// Shell completion for sbx (`sbx completion bash|zsh|fish`). The CLI describes its own
// verbs and options as a CompletionCommand tree (walked from the CLI11 app, so it cannot
// drift from the real command line); this file turns that tree into a script. Profile and
// instance names are not baked in: the scripts ask `sbx _complete profiles|instances`
// each time the user presses TAB.

#include <string>
#include <vector>

namespace sbx::vm {

// What a positional argument (or an option's value) holds, for completion.
enum class ArgKind {
    none,       // nothing to offer
    file,       // host paths (the shell's own file completion)
    profile,    // profile names
    instance,   // instance names
    copy_path,  // sbx cp: host paths or NAME: for a guest
    choice,     // one of a fixed list
    command,    // a command line for the guest (after --): nothing from the host
};

struct CompletionArg {
    ArgKind kind = ArgKind::file;
    std::vector<std::string> choices;  // for ArgKind::choice
    bool repeats = false;              // takes any number of words (only the last one)
};

struct CompletionOption {
    std::vector<std::string> names;    // "--force", "-f"
    std::string help;
    bool takes_value = false;
    CompletionArg value;               // when takes_value
};

struct CompletionCommand {
    std::string name;                  // "" for the root (sbx itself)
    std::string help;
    std::vector<CompletionOption> options;
    std::vector<CompletionArg> positionals;
    std::vector<CompletionCommand> subcommands;
};

enum class Shell { bash, zsh, fish };

// Parses "bash", "zsh" or "fish"; throws sbx::Error (ExitCode::usage) otherwise.
Shell parse_shell(const std::string& name);

// The completion script for `shell`, for a program called `program` ("sbx").
std::string completion_script(const CompletionCommand& root, Shell shell, const std::string& program = "sbx");

// Names completed at TAB time: what = "profiles" (profile::list_profile_names) or
// "instances" (the instance folders). Never throws: a broken setup completes nothing.
std::vector<std::string> completion_words(const std::string& what);

}  // namespace sbx::vm
