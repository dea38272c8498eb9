#pragma once
// Writing profiles: `sbx check`, `sbx new`, `sbx edit`. An edit never leaves an invalid
// profile in place: the draft is validated before it replaces the file, and kept beside it
// (never lost) when the user gives up.

#include "sbx/profile/profile.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace sbx::profile {

// Validates one profile (NAME or FILE) or, with nothing, every profile on the search path.
// Prints a line per profile (and what `sbx up` would refuse). Returns the exit code:
// 0 when all are valid, 3 (config) when any is not; the problems are printed.
int check_profiles(const std::optional<std::string>& name_or_path);

// Creates NAME.toml in `dir` (default: the user's profile folder) from a template profile
// (a name or a path; default "work"). Refuses to overwrite. Returns the new file.
std::filesystem::path new_profile(const std::string& name, const std::string& from,
                                  const std::optional<std::filesystem::path>& dir);

struct EditHooks {
    // Opens `file` in the user's editor and waits; returns the editor's exit code.
    std::function<int(const std::filesystem::path& file)> run_editor;
    // Asks a yes/no question; nothing when there is no one to ask (stdin not a terminal).
    std::function<std::optional<bool>(const std::string& question)> ask;
};
// The real editor ($VISUAL, $EDITOR, editor, vi) and a terminal prompt.
EditHooks default_edit_hooks();

// Edits profile NAME in a draft beside it; saves it only when it validates. A shipped
// (read-only) profile is copied to the user's profile folder first. Returns the exit code:
// 0 saved or unchanged, 3 when the user left an invalid draft (kept as NAME.toml.draft).
int edit_profile(const std::string& name, const EditHooks& hooks);

}  // namespace sbx::profile
