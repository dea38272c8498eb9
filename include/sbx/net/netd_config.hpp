#pragma once
// netd's whole configuration: one JSON file (the instance's netd.json) that the supervisor
// writes from the launch plan and `sbx _netd --config FILE` reads. netd takes every path it
// uses from here; it never looks at a profile or an instance layout itself.
//
//   {
//     "socket": ".../net.sock",            QEMU's -netdev stream connects here
//     "decision_log": ".../net.jsonl",     JSONL, appended about once a second (sbx net log)
//     "stats": ".../net-stats.json",       counters, rewritten atomically about once a second
//     "denied": ".../net-denied.jsonl",    every denied destination with its count (sbx net log)
//     "resolv_conf": "/etc/resolv.conf",   the host resolver configuration c-ares reads
//     "policy": { "mode": "allowlist", "learn": false, "host_ports": [5432],
//                 "rules": [ { "kind": "name", "name": "github.com", "ports": [22, 443],
//                              "protos": ["tcp"], "private": false, "source": "github.com:22,443" },
//                            { "kind": "cidr", "cidr": "140.82.112.0/20", ... } ] },
//     "guest": { "guest": "10.0.2.15", "host": "10.0.2.2", "dns": "10.0.2.3",
//                "network": "10.0.2.0/24", "guest6_prefix": "fec0::", "host6": "fec0::2",
//                "dns6": "fec0::3", "mtu": 65520 },
//     "forwards": [ { "host_port": 2222, "guest_port": 22, "proto": "tcp" } ],
//     "limits": { "flows": 16384, ... }
//   }
//
// Every key but "socket" may be left out and takes the default below. Unknown keys are errors
// (a typo in a security policy must not be ignored).

#include "sbx/net/filter.hpp"
#include "sbx/net/policy.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sbx::net {

// A host->guest forward: netd listens on 127.0.0.1:host_port and connects the guest's
// guest_port. SSH is one of these.
struct HostForward {
    std::uint16_t host_port = 0;
    std::uint16_t guest_port = 0;
    Proto proto = Proto::tcp;  // tcp or udp
};

struct NetdConfig {
    std::filesystem::path socket;        // required
    std::filesystem::path decision_log;  // empty: decisions are counted, not logged
    std::filesystem::path stats;         // empty: no stats file
    std::filesystem::path denied;        // empty: no denied-destinations file
    std::filesystem::path resolv_conf = "/etc/resolv.conf";
    Policy policy;
    GuestNet guest;
    std::vector<HostForward> forwards;
    Limits limits;
};

nlohmann::json to_json(const NetdConfig& config);
// Throws sbx::Error (ExitCode::config) naming the key: "netd config: policy.rules[2].cidr: ...".
NetdConfig netd_config_from_json(const nlohmann::json& j);

// Reads and validates a config file; errors name the file and the key.
NetdConfig read_netd_config(const std::filesystem::path& path);
// Writes the file atomically, mode 0600.
void write_netd_config(const std::filesystem::path& path, const NetdConfig& config);

}  // namespace sbx::net
