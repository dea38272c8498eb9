#pragma once
// Where sbx keeps things on the host. SBX_HOME, when set, roots all of them (tests use it).
//
//   state:   $SBX_HOME/vms      or $XDG_STATE_HOME/sbx/vms   (~/.local/state/sbx/vms)
//   images:  $SBX_HOME/images   or $XDG_DATA_HOME/sbx/images (~/.local/share/sbx/images)
//   config:  $XDG_CONFIG_HOME/sbx (~/.config/sbx): user profiles/ and images/ recipes
//   shipped: <prefix>/share/sbx next to the installed binary

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sbx::paths {

std::filesystem::path vms_root();
std::filesystem::path images_root();
std::filesystem::path user_config_dir();
// <prefix>/share/sbx for the running binary, if that folder exists.
std::optional<std::filesystem::path> shipped_data_dir();

// Search order for a named file in `kind` ("profiles" or "images"):
// ./KIND/NAME.toml, $XDG_CONFIG_HOME/sbx/KIND/NAME.toml, <prefix>/share/sbx/KIND/NAME.toml.
std::vector<std::filesystem::path> search_dirs(const std::string& kind);

// The first KIND/NAME.toml along search_dirs(kind), if any. NAME must be a plain name.
std::optional<std::filesystem::path> find_named(const std::string& kind, const std::string& name);

// search_dirs(kind) as "a, b, c", for "looked in: ..." hints.
std::string search_dirs_text(const std::string& kind);

}  // namespace sbx::paths
