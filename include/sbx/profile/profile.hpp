#pragma once
// VM profiles: one TOML file per VM. The schema is defined once (schema.cpp) and drives
// parsing, defaults and validation. Unknown keys are errors with "did you mean"; every
// problem is reported at once as "<file>:<line>:<col>: <key>: <what is wrong>".

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sbx::profile {

enum class Accel { automatic, kvm, tcg };

std::string to_string(Accel a);

struct VmSection {
    std::string image = "debian-12";      // recipe name from images/, for now
    int cpus = 2;
    std::uint64_t memory = 2ULL << 30;    // bytes
    std::uint64_t disk = 8ULL << 30;      // bytes: virtual size of the VM's own disk
    Accel accel = Accel::automatic;
};

struct SshSection {
    std::string user = "dev";
};

// A validated profile. Every field has a value (defaults filled in).
struct Profile {
    std::string name;                   // instance name: the file stem
    std::filesystem::path file;         // absolute path of the TOML file
    VmSection vm;
    SshSection ssh;
};

// Parses and validates a profile file. Throws sbx::Error (ExitCode::config) listing every
// problem, one per line, each with file:line:col.
Profile load_profile_file(const std::filesystem::path& file);

// Resolves NAME (./profiles, $XDG_CONFIG_HOME/sbx/profiles, share/sbx/profiles) or a path
// to a .toml file. Throws ExitCode::not_found with the folders searched.
std::filesystem::path find_profile(const std::string& name_or_path);

Profile load_profile(const std::string& name_or_path);

// Profile names found along the search path (for ls and completion), sorted, unique.
std::vector<std::string> list_profile_names();

}  // namespace sbx::profile
