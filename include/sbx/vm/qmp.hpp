#pragma once
// A small QMP client: connect to QEMU's unix socket, negotiate capabilities, run
// commands and collect asynchronous events (SHUTDOWN, POWERDOWN, ...). Every call takes
// a deadline; nothing waits forever.

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace sbx::vm {

class QmpClient {
public:
    using Clock = std::chrono::steady_clock;

    QmpClient() = default;
    QmpClient(const QmpClient&) = delete;
    QmpClient& operator=(const QmpClient&) = delete;
    ~QmpClient();

    // One connection attempt plus the greeting and qmp_capabilities. Throws sbx::Error.
    void connect(const std::filesystem::path& socket, Clock::time_point deadline);
    bool connected() const { return m_fd >= 0; }
    int fd() const { return m_fd; }

    // Sends a command and waits for its return; events seen meanwhile are queued.
    // Throws on error replies, a closed socket or the deadline.
    nlohmann::json execute(const std::string& command, const nlohmann::json& args,
                           Clock::time_point deadline);

    // Reads what is available (call when fd() is readable) and returns queued events.
    // Returns false when QEMU closed the socket.
    bool pump();
    std::optional<nlohmann::json> next_event();

    void close();

private:
    std::optional<nlohmann::json> read_message(Clock::time_point deadline);
    bool fill(int timeout_ms);

    int m_fd = -1;
    std::string m_buffer;
    std::deque<nlohmann::json> m_events;
};

// What HMP's `info registers -a` says about each vCPU, in one short line for a hint:
// "vCPU 0 at ffffffff81e3a2b1 (halted), vCPU 1 at ffffffffc029f970". Empty when the
// text has no CPU#N block with a RIP.
std::string summarize_vcpus(std::string_view info_registers);

}  // namespace sbx::vm
