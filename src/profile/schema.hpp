#pragma once
// Internal to src/profile: the schema reader over a merged TOML tree (extends already applied).

#include "sbx/profile/profile.hpp"
#include "sbx/util/toml_problems.hpp"

#include <toml++/toml.h>

namespace sbx::profile::detail {

// Reads every section of `root` into `prof` (which holds the defaults), adding one problem per
// wrong key. Relative paths resolve against the folder of the file each value came from.
void read_profile_tree(const toml::table& root, Profile& prof, TomlProblems& problems);

// The top-level names the reader knows, for "did you mean" on unknown tables.
const std::vector<std::string>& top_level_keys();

}  // namespace sbx::profile::detail
