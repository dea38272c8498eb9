#pragma once
// An instance's state file, its event stream, and its locks.

#include "sbx/instance/layout.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sbx::instance {

// What state.json records. The supervisor writes it; everyone else reads it.
struct State {
    std::string status = "stopped";   // starting | running | stopping | stopped | failed
    int supervisor_pid = 0;
    int qemu_pid = 0;
    int netd_pid = 0;                 // the egress filter (sbx _netd)
    int ssh_port = 0;
    std::string ssh_user;
    std::string accel;
    int cpus = 0;
    std::uint64_t memory = 0;
    std::string image;
    std::string image_id;             // fingerprint@built_at of the base the disk was made on
    std::string profile_file;
    std::string run_id;               // the supervisor run that wrote this (events carry it)
    std::int64_t started_at_ms = 0;   // supervisor start, epoch ms
    std::int64_t ready_at_ms = 0;     // SSH ready
    std::int64_t stopped_at_ms = 0;
    std::string last_error;           // why it stopped or failed, for `sbx status`
    std::vector<std::string> forwards;  // "tcp 127.0.0.1:8080 -> 3000", for `sbx status`
    std::string network;              // "allowlist (12 rules)", "open", "none", for `sbx status`
    std::vector<std::string> shares;  // "/home/u/src -> /home/dev/src (virtiofs, review)", for `sbx status`
};

nlohmann::json to_json(const State& s);
State state_from_json(const nlohmann::json& j);

// Missing file: a fresh "stopped" state. Unreadable or corrupt: throws naming the file.
State read_state(const InstanceLayout& layout);
void write_state(const InstanceLayout& layout, const State& s);

std::int64_t now_ms();

// Appends one event line: {"t": ms, "run": run_id, "kind": kind, ...fields}.
// kinds: start, step (step, msg, ms), ready, error (msg, detail), stopping, stopped.
void append_event(const InstanceLayout& layout, const std::string& run_id, const std::string& kind,
                  nlohmann::json fields = nlohmann::json::object());

// An exclusive flock on a file, released by the destructor (or when the process dies).
class FileLock {
public:
    FileLock() = default;
    FileLock(FileLock&& o) noexcept : m_fd(o.m_fd) { o.m_fd = -1; }
    FileLock& operator=(FileLock&& o) noexcept;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    ~FileLock();

    // Takes the lock if free; nothing when another process holds it.
    static std::optional<FileLock> try_acquire(const std::filesystem::path& path);
    bool held() const { return m_fd >= 0; }

private:
    int m_fd = -1;
};

// Does some process hold the FileLock at `path`? (A missing file is a free lock.)
bool lock_held(const std::filesystem::path& path);

// Is some process holding the supervisor lock (i.e. is a supervisor alive)?
bool supervisor_alive(const InstanceLayout& layout);

// What people see: the recorded status, corrected by whether a supervisor is alive.
// A recorded starting/running/stopping with no supervisor is "stale".
std::string effective_status(const InstanceLayout& layout, const State& s);

}  // namespace sbx::instance
