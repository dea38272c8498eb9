#pragma once
// Small file helpers with sbx's error conventions.

#include <filesystem>
#include <string>
#include <string_view>

namespace sbx {

// Reads a whole file; throws sbx::Error naming the path.
std::string read_file(const std::filesystem::path& path);

// Writes to path.tmp, fsyncs, renames over path: readers see the old or the new file.
void write_file_atomic(const std::filesystem::path& path, std::string_view data,
                       std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                                      std::filesystem::perms::owner_write);

// Creates the folder (and parents) with mode 0700 where it creates one.
void make_private_dirs(const std::filesystem::path& path);

// "~" and "~/x" expanded against $HOME.
std::filesystem::path expand_home(const std::string& path);

}  // namespace sbx
