#pragma once
// VM profiles: one TOML file per VM. The schema is defined once (src/profile/schema.cpp) and
// drives parsing, defaults, validation and the key list docs/profile.md is checked against.
// Unknown keys are errors with "did you mean"; every problem is reported at once as
// "<file>:<line>:<col>: <key path>: <what is wrong>".

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sbx::profile {

enum class Accel { automatic, kvm, tcg };
std::string to_string(Accel a);

struct VmSection {
    std::string image = "debian-12";      // recipe name from images/
    int cpus = 2;
    std::uint64_t memory = 2ULL << 30;    // bytes
    std::uint64_t disk = 8ULL << 30;      // bytes: virtual size of the VM's own disk
    Accel accel = Accel::automatic;
};

struct SshSection {
    std::string user = "dev";
};

enum class ShareMode { rw, ro, review };
enum class ShareType { virtiofs, ninep };
std::string to_string(ShareMode m);
std::string to_string(ShareType t);

struct Share {
    std::filesystem::path host;        // absolute, exists (checked at load)
    std::string guest;                 // absolute guest path, distinct across shares
    ShareMode mode = ShareMode::rw;
    ShareType type = ShareType::virtiofs;
    std::vector<std::string> hide;     // relative paths under `host`, never visible in the guest
};

enum class NetPolicy { allowlist, none, open };
std::string to_string(NetPolicy p);

enum class Proto : std::uint8_t { tcp = 1, udp = 2, icmp = 4 };

// One `network.allow` entry. Exactly one of `host` and `cidr` is set.
struct AllowRule {
    std::string host;                  // "github.com" or "*.example.com" (subdomains only), lowercase
    std::string cidr;                  // "140.82.112.0/20" or "2001:db8::/32", normalised
    std::vector<std::uint16_t> ports;  // empty only when protos is icmp alone
    std::uint8_t protos = static_cast<std::uint8_t>(Proto::tcp);  // bit set of Proto
    bool allow_private = false;        // `private = true`: private answers are not rebinding
    std::string source;                // the entry as written, for messages ("github.com:22,443")
};

struct NetworkSection {
    NetPolicy policy = NetPolicy::allowlist;   // allowlist with no entries: nothing reachable
    bool learn = false;
    std::vector<AllowRule> allow;
    std::vector<std::uint16_t> host_ports;     // host loopback ports the guest may reach
    std::string upstream;                      // "socks5h://host:port", empty for direct
};

struct Forward {
    std::uint16_t host = 0;            // 127.0.0.1:<host> on the host
    std::uint16_t guest = 0;           // the guest port it reaches
    Proto proto = Proto::tcp;          // tcp or udp
};

struct Secret {
    std::string name;                  // the env var name inside the guest
    std::string from_env;              // exactly one of from_env, from_file, from_command
    std::filesystem::path from_file;
    std::string from_command;
    std::vector<std::string> hosts;    // where the real value may be sent
};

struct Provision {
    std::vector<std::string> run;      // shell command lines, run in order as the guest user
    std::filesystem::path script;      // a script file on the host (absolute), run after `run`
    bool empty() const { return run.empty() && script.empty(); }
};

// A validated profile. Every field has a value (defaults filled in). Paths are absolute.
struct Profile {
    std::string name;                   // instance name: the file stem
    std::filesystem::path file;         // absolute path of the TOML file
    std::vector<std::filesystem::path> parents;  // files merged in through `extends`, nearest first
    VmSection vm;
    SshSection ssh;
    std::vector<Share> shares;
    NetworkSection network;
    std::vector<Forward> forwards;
    std::vector<Secret> secrets;        // sorted by name
    Provision provision;
};

// Parses and validates a profile file (following `extends`). Throws sbx::Error
// (ExitCode::config) listing every problem, one per line, each with file:line:col.
Profile load_profile_file(const std::filesystem::path& file);
// The same, with the instance name given instead of taken from the file name (sbx edit
// validates a draft file under the profile's own name).
Profile load_profile_as(const std::filesystem::path& file, const std::string& name);

// Resolves NAME (./profiles, $XDG_CONFIG_HOME/sbx/profiles, share/sbx/profiles) or a path
// to a .toml file. Throws ExitCode::not_found with the folders searched.
std::filesystem::path find_profile(const std::string& name_or_path);

Profile load_profile(const std::string& name_or_path);

// Profile names found along the search path (for ls and completion), sorted, unique.
std::vector<std::string> list_profile_names();

// One documented key of the schema, for docs/profile.md (a test compares the two).
struct KeyDoc {
    std::string section;        // "vm", "share", "network.allow", "secrets.NAME", "" (top level)
    std::string key;
    std::string type;
    std::string default_value;  // "" when required; "(...)" for a rule rather than a value
    std::string meaning;
};
// Every key the loader accepts, section by section, in the order docs/profile.md lists them.
std::vector<KeyDoc> schema_reference();

// Features a profile uses that this build of sbx cannot run yet ("[[share]]: shared folders"),
// empty when the profile can boot. `sbx up` refuses a profile that lists any.
std::vector<std::string> unsupported_features(const Profile& prof);

}  // namespace sbx::profile
