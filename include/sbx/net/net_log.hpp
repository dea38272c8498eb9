#pragma once
// netd's two output files and their readers:
//
//   decision log (net.jsonl): one JSON object per decision, appended about once a second:
//     {"time":"2025-05-01T12:00:00.123Z","ms":1746100800123,"verdict":"deny",
//      "reason":"not_in_allowlist","proto":"tcp","name":"evil.example","addr":"203.0.113.9",
//      "port":443,"dns":false}
//     DNS decisions have "dns":true, the queried name, and no "addr". The file is capped at
//     k_log_cap bytes: when a write would pass it, the first k_log_head bytes (whole lines:
//     what was tried first) stay, a line {"gap_bytes":N} follows, then the newest k_log_keep
//     bytes (whole lines), and the rest is dropped. Every denial is also counted by reason
//     in the stats file (denied_by_reason), which never rolls over. netd keeps the file open for its whole
//     life (once sandboxed it may not open files), so there is no rename-rotation.
//   denied destinations (net-denied.jsonl): Filter::denied_destinations(), one decision line
//     per destination in the order first seen (the first denial, with "count" and
//     "last_ms" added), then {"unlisted":N}: denials of destinations past the table's size.
//     Rewritten whole, at most about once a second, when a count changed; never rolls over.
//   stats (net-stats.json): Filter's counters plus netd's own, one JSON object padded with
//     spaces to k_stats_size bytes and rewritten in place with one pwrite. A reader may, very
//     rarely, catch a write in progress: read_stats() then returns nothing; read again.
//
// `sbx net log` and `sbx net suggest` read the decision log.

#include "sbx/net/filter.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::net {

inline constexpr std::uint64_t k_log_cap = 8u << 20;
inline constexpr std::uint64_t k_log_keep = 2u << 20;
inline constexpr std::uint64_t k_log_head = 1u << 20;
inline constexpr std::size_t k_stats_size = 2048;

// The decision log as netd writes it. Opened at setup; append() never throws.
class DecisionLog {
public:
    DecisionLog() = default;
    // Opens (creating, mode 0600) the log. Throws sbx::Error naming the path.
    explicit DecisionLog(const std::filesystem::path& path);
    ~DecisionLog();
    DecisionLog(const DecisionLog&) = delete;
    DecisionLog& operator=(const DecisionLog&) = delete;

    // Appends one line per decision. `mono_now`/`wall_now_ms`: the current monotonic and
    // wall clocks, to turn Decision::at into a wall time.
    void append(std::span<const Decision> decisions, Millis mono_now, std::int64_t wall_now_ms) noexcept;
    bool is_open() const noexcept { return m_fd >= 0; }
    std::uint64_t write_errors() const noexcept { return m_write_errors; }

private:
    void make_room(std::uint64_t need) noexcept;
    int m_fd = -1;
    std::uint64_t m_size = 0;
    std::uint64_t m_write_errors = 0;
    std::string m_buf;  // reused: lines of one append
};

// The denied-destinations file as netd writes it. Opened at setup; write() never throws.
class DeniedFile {
public:
    DeniedFile() = default;
    explicit DeniedFile(const std::filesystem::path& path);  // throws sbx::Error naming the path
    ~DeniedFile();
    DeniedFile(const DeniedFile&) = delete;
    DeniedFile& operator=(const DeniedFile&) = delete;

    void write(std::span<const DeniedDestination> destinations, std::uint64_t unlisted, Millis mono_now,
               std::int64_t wall_now_ms) noexcept;
    bool is_open() const noexcept { return m_fd >= 0; }

private:
    int m_fd = -1;
    std::string m_buf;  // reused
};

// netd's counters beyond the filter's.
struct RuntimeCounters {
    std::uint64_t out_dropped = 0;    // frames for the guest dropped: QEMU did not drain its socket
    std::uint64_t stream_errors = 0;  // length prefixes beyond any frame (skipped)
    std::uint64_t dns_in_flight = 0;
    // The flow engines (tcp_engine.hpp, datagram_engine.hpp):
    std::uint64_t tcp_open = 0;          // TCP connections open now
    std::uint64_t tcp_failed = 0;        // allowed connections that did not open: refused, unreachable,
                                         // timed out, table full (the guest or the client got a RST)
    std::uint64_t tcp_resets = 0;        // open connections reset: by the guest, the host, or a timeout
    std::uint64_t tcp_retransmits = 0;   // rewinds toward the guest
    std::uint64_t datagram_open = 0;     // UDP and ICMP echo flows open now
    std::uint64_t datagram_dropped = 0;  // allowed datagrams not carried: table full, no socket,
                                         // too big, send errors
};

// The stats file as netd writes it.
class StatsFile {
public:
    StatsFile() = default;
    explicit StatsFile(const std::filesystem::path& path);  // throws sbx::Error naming the path
    ~StatsFile();
    StatsFile(const StatsFile&) = delete;
    StatsFile& operator=(const StatsFile&) = delete;

    void write(const Counters& c, const RuntimeCounters& r, std::int64_t wall_now_ms) noexcept;
    bool is_open() const noexcept { return m_fd >= 0; }

private:
    int m_fd = -1;
};

// What a reader gets from the stats file.
struct NetStats {
    Counters counters;
    RuntimeCounters runtime;
    std::int64_t updated_ms = 0;  // wall clock of the last write
    int pid = 0;                  // netd's pid
};
// Nothing when the file is missing, empty or caught mid-write.
std::optional<NetStats> read_stats(const std::filesystem::path& path);

// One line of the decision log, as a reader sees it.
struct LogRecord {
    std::string time;  // ISO 8601 UTC
    std::int64_t ms = 0;
    std::string verdict;  // allow, deny, learn
    std::string reason;
    std::string proto;  // tcp, udp, icmp
    std::string name;   // may be empty
    std::string addr;   // empty for DNS decisions
    std::uint16_t port = 0;
    bool dns = false;
};

std::string decision_to_json_line(const Decision& d, std::int64_t wall_ms);
std::optional<LogRecord> parse_log_line(std::string_view line);
// "2025-05-01 12:00:00  DENY   tcp   evil.example  203.0.113.9:443  not in allowlist"
std::string format_log_record(const LogRecord& r);

// The denied-destinations file, as a reader sees it.
struct DeniedRecord {
    LogRecord first;  // the first denial
    std::uint64_t count = 0;
    std::int64_t last_ms = 0;
};
struct DeniedSummary {
    std::vector<DeniedRecord> destinations;  // in the order first seen
    std::uint64_t unlisted = 0;
};
// Nothing when the file is missing; unparseable lines (a write in progress) are skipped.
std::optional<DeniedSummary> read_denied(const std::filesystem::path& path);

// One suggested allow entry, ready for the profile's [network] allow list.
struct Suggestion {
    std::string entry;    // TOML: "api.example.com:443" or { host = ..., ports = [...], proto = "udp" }
    std::string comment;  // why, e.g. "3 names: a.x.com, b.x.com, c.x.com"; may be empty
};
// Groups learn records by name (or address) and protocol, merges ports, and folds 3+ names
// under one parent into a "*.parent" entry.
std::vector<Suggestion> suggest_allow_entries(std::span<const LogRecord> records);

// Reads every parseable line of a decision log (missing file: empty).
std::vector<LogRecord> read_log(const std::filesystem::path& path);

// `sbx net log NAME [-f]`: prints the decisions of an instance; with follow, keeps printing.
void show_net_log(const std::string& instance, bool follow);
// `sbx net suggest NAME`: prints allow entries from the instance's learn records.
void print_suggestions(const std::string& instance);

}  // namespace sbx::net
