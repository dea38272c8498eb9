#pragma once
// What the daily verbs do, as library functions (the CLI files only parse options).

#include "sbx/instance/layout.hpp"
#include "sbx/instance/state.hpp"
#include "sbx/profile/profile.hpp"
#include "sbx/ssh/ssh.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace sbx::vm {

struct UpOptions {
    bool fresh = false;      // discard the VM's disk first
    bool provision = false;  // run [provision] again even if it ran before
};

// Builds the image if missing, starts the supervisor (unless one runs), follows its
// events and prints progress, returns once SSH is ready, then runs [provision] if it has
// not run yet (or options.provision). Throws on failure with the supervisor's reason and
// the guest's last console lines; a failing provision step throws naming the step.
// Refuses a profile that uses features this build cannot run (profile::unsupported_features).
void up(const profile::Profile& profile, const UpOptions& options);

// The profile NAME names (profile::load_profile), or else the file instance NAME last ran
// from (state.json): an instance started from a path keeps working by its name.
profile::Profile load_instance_profile(const std::string& name_or_path);

// Runs the profile's [provision] steps over SSH on a running instance, output streamed, and
// records that they ran. Throws naming the failing step.
void provision(const profile::Profile& profile);

struct DownOptions {
    bool force = false;
};

// Stops a running instance (graceful ladder, or at once with force). Not running is fine.
void down(const std::string& name, const DownOptions& options);

// One row of `sbx ls`.
struct InstanceInfo {
    std::string name;
    std::string status;  // running, starting, stopping, stopped, failed, stale
    instance::State state;
};

std::vector<InstanceInfo> list_instances();
InstanceInfo instance_info(const std::string& name);  // throws not_found
nlohmann::json to_json(const InstanceInfo& info);

// Prints the `sbx ls` table or JSON.
void print_list(bool json);
// Prints `sbx status NAME` (details) or JSON.
void print_status(const std::string& name, bool json);

// The SSH target of a running instance; throws not_running with a hint otherwise.
ssh::Target ssh_target(const std::string& name);

// Prints a log (supervisor or serial); with follow, keeps printing until interrupted.
void show_log(const std::string& name, bool serial, bool follow);

// Removes an instance folder; a running instance needs force (it is stopped first).
void remove_instance(const std::string& name, bool force);

}  // namespace sbx::vm
