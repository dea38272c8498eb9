// The decision log and stats file (writers in netd, readers in the CLI), and the
// human-facing views: `sbx net log` and `sbx net suggest`. The file formats are described in
// include/sbx/net/net_log.hpp.

#include "sbx/net/net_log.hpp"

#include "sbx/instance/layout.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/public_suffix.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <thread>

namespace sbx::net {

using nlohmann::json;

namespace {

std::string iso_time(std::int64_t wall_ms) {
    std::time_t secs = static_cast<std::time_t>(wall_ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03}Z", buf, static_cast<int>(wall_ms % 1000));
}

std::string local_time(std::int64_t wall_ms) {
    std::time_t secs = static_cast<std::time_t>(wall_ms / 1000);
    std::tm tm{};
    ::localtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

bool write_all_at(int fd, const char* p, std::size_t n, std::uint64_t offset) {
    while (n > 0) {
        ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
        offset += static_cast<std::uint64_t>(w);
    }
    return true;
}

int open_output(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        throw_errno(fmt::format("cannot open {}", path.string()), errno);
    }
    return fd;
}

// A file that tells of this netd's life only: opened and emptied.
int open_truncated(const std::filesystem::path& path) {
    int fd = open_output(path);
    if (::ftruncate(fd, 0) != 0) {
        int err = errno;
        ::close(fd);
        throw_errno(fmt::format("cannot truncate {}", path.string()), err);
    }
    return fd;
}

}  // namespace

// ---- decision log writer ----

DecisionLog::DecisionLog(const std::filesystem::path& path) {
    m_fd = open_output(path);
    struct stat st {};
    if (::fstat(m_fd, &st) == 0) {
        m_size = static_cast<std::uint64_t>(st.st_size);
    }
    m_buf.reserve(64 * 1024);
}

DecisionLog::~DecisionLog() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

std::string decision_to_json_line(const Decision& d, std::int64_t wall_ms) {
    json j;
    j["time"] = iso_time(wall_ms);
    j["ms"] = wall_ms;
    j["verdict"] = std::string(to_string(d.verdict));
    j["reason"] = std::string(to_string(d.reason));
    j["proto"] = std::string(to_string(d.proto));
    // The name came from the guest: bounded (254 bytes), escaped by the JSON writer,
    // invalid UTF-8 replaced.
    j["name"] = std::string(d.name, ::strnlen(d.name, sizeof d.name));
    if (!d.dns) {
        j["addr"] = d.addr.to_string();
        j["port"] = d.port;
    }
    j["dns"] = d.dns;
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

void DecisionLog::make_room(std::uint64_t need) noexcept {
    if (m_size + need <= k_log_cap) {
        return;
    }
    // Keep the first whole lines within k_log_head bytes (what was tried first), a gap line,
    // and the newest k_log_keep bytes from a line start.
    std::vector<char> head, tail;
    try {
        head.resize(static_cast<std::size_t>(std::min<std::uint64_t>(m_size, k_log_head)));
        tail.resize(static_cast<std::size_t>(std::min<std::uint64_t>(m_size, k_log_keep)));
    } catch (...) {
        head.clear();
        tail.clear();
    }
    auto read_at = [this](std::vector<char>& buf, std::uint64_t at) {
        std::size_t got = 0;
        while (got < buf.size()) {
            ssize_t r = ::pread(m_fd, buf.data() + got, buf.size() - got, static_cast<off_t>(at + got));
            if (r <= 0) {
                break;
            }
            got += static_cast<std::size_t>(r);
        }
        return got;
    };
    std::size_t head_got = read_at(head, 0);
    auto last_nl = std::find(std::make_reverse_iterator(head.begin() + static_cast<std::ptrdiff_t>(head_got)),
                             head.rend(), '\n');
    std::size_t head_len = last_nl == head.rend() ? 0 : static_cast<std::size_t>(head.rend() - last_nl);
    std::uint64_t tail_at = m_size - tail.size();
    std::size_t tail_got = tail_at >= head_len ? read_at(tail, tail_at) : 0;
    std::size_t start = 0;
    if (tail_got > 0) {
        auto nl = std::find(tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(tail_got), '\n');
        start = nl == tail.begin() + static_cast<std::ptrdiff_t>(tail_got)
                    ? tail_got
                    : static_cast<std::size_t>(nl - tail.begin()) + 1;
    }
    std::size_t kept = tail_got - start;
    std::string gap = fmt::format("{{\"gap_bytes\":{}}}\n", m_size - head_len - kept);
    std::uint64_t size = head_len;
    if (write_all_at(m_fd, gap.data(), gap.size(), size)) {
        size += gap.size();
        if (kept > 0 && write_all_at(m_fd, tail.data() + start, kept, size)) {
            size += kept;
        }
    }
    if (::ftruncate(m_fd, static_cast<off_t>(size)) == 0) {
        m_size = size;
    } else {
        ++m_write_errors;
    }
}

void DecisionLog::append(std::span<const Decision> decisions, Millis mono_now,
                         std::int64_t wall_now_ms) noexcept {
    if (m_fd < 0 || decisions.empty()) {
        return;
    }
    try {
        m_buf.clear();
        for (const auto& d : decisions) {
            auto age = mono_now >= d.at ? static_cast<std::int64_t>(mono_now - d.at) : 0;
            m_buf += decision_to_json_line(d, wall_now_ms - age);
        }
    } catch (...) {
        ++m_write_errors;
        return;
    }
    make_room(m_buf.size());
    if (write_all_at(m_fd, m_buf.data(), m_buf.size(), m_size)) {
        m_size += m_buf.size();
    } else {
        ++m_write_errors;
    }
}

// ---- denied destinations ----

// The file tells of this netd's life: a previous run's destinations go.
DeniedFile::DeniedFile(const std::filesystem::path& path) {
    m_fd = open_truncated(path);
    m_buf.reserve(64 * 1024);
}

DeniedFile::~DeniedFile() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

void DeniedFile::write(std::span<const DeniedDestination> destinations, std::uint64_t unlisted, Millis mono_now,
                       std::int64_t wall_now_ms) noexcept {
    if (m_fd < 0) {
        return;
    }
    auto wall = [&](Millis at) {
        return wall_now_ms - (mono_now >= at ? static_cast<std::int64_t>(mono_now - at) : 0);
    };
    try {
        m_buf.clear();
        for (const auto& d : destinations) {
            std::string line = decision_to_json_line(d.first, wall(d.first.at));
            // "...}\n" -> "...,"count":N,"last_ms":T}\n"
            line.resize(line.size() - 2);
            m_buf += line;
            m_buf += fmt::format(R"(,"count":{},"last_ms":{}}})", d.count, wall(d.last));
            m_buf += '\n';
        }
        m_buf += fmt::format("{{\"unlisted\":{}}}\n", unlisted);
    } catch (...) {
        return;
    }
    if (write_all_at(m_fd, m_buf.data(), m_buf.size(), 0)) {
        (void)::ftruncate(m_fd, static_cast<off_t>(m_buf.size()));
    }
}

// ---- stats ----

StatsFile::StatsFile(const std::filesystem::path& path) {
    m_fd = open_truncated(path);
}

StatsFile::~StatsFile() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

void StatsFile::write(const Counters& c, const RuntimeCounters& r, std::int64_t wall_now_ms) noexcept {
    if (m_fd < 0) {
        return;
    }
    char buf[k_stats_size];
    auto res = fmt::format_to_n(
        buf, sizeof buf - 1,
        R"({{"updated_ms":{},"pid":{},"frames_in":{},"frames_out":{},"bytes_in":{},"bytes_out":{},)"
        R"("flows_allowed":{},"flows_denied":{},"dns_allowed":{},"dns_denied":{},"malformed":{},)"
        R"("fragments":{},"dropped":{},"flow_evictions":{},"pin_evictions":{},"out_dropped":{},)"
        R"("stream_errors":{},"dns_in_flight":{},"tcp_open":{},"tcp_failed":{},)"
        R"("tcp_resets":{},"tcp_retransmits":{},"datagram_open":{},"datagram_dropped":{},)"
        R"("denied_unlisted":{}}})",
        wall_now_ms, ::getpid(), c.frames_in, c.frames_out, c.bytes_in, c.bytes_out, c.flows_allowed,
        c.flows_denied, c.dns_allowed, c.dns_denied, c.malformed, c.fragments, c.dropped, c.flow_evictions,
        c.pin_evictions, r.out_dropped, r.stream_errors, r.dns_in_flight, r.tcp_open, r.tcp_failed,
        r.tcp_resets, r.tcp_retransmits, r.datagram_open, r.datagram_dropped, c.denied_unlisted);
    std::size_t n = std::min(res.size, sizeof buf - 1);
    // "...,"denied_by_reason":{"not_in_allowlist":3,...}}": the reasons that happened.
    if (n > 0 && buf[n - 1] == '}') {
        --n;
        auto more = fmt::format_to_n(buf + n, sizeof buf - 1 - n, R"(,"denied_by_reason":{{)");
        n = std::min(n + more.size, sizeof buf - 1);
        bool first = true;
        for (std::size_t i = 0; i < k_reasons; ++i) {
            if (c.denied_by_reason[i] == 0) {
                continue;
            }
            auto item = fmt::format_to_n(buf + n, sizeof buf - 1 - n, R"({}"{}":{})", first ? "" : ",",
                                         to_string(static_cast<Reason>(i)), c.denied_by_reason[i]);
            n = std::min(n + item.size, sizeof buf - 1);
            first = false;
        }
        auto end = fmt::format_to_n(buf + n, sizeof buf - 1 - n, "}}}}");
        n = std::min(n + end.size, sizeof buf - 1);
    }
    std::fill(buf + n, buf + sizeof buf - 1, ' ');
    buf[sizeof buf - 1] = '\n';
    write_all_at(m_fd, buf, sizeof buf, 0);
}

std::optional<NetStats> read_stats(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return std::nullopt;
    }
    auto u = [&](const char* k) { return j.value(k, std::uint64_t{0}); };
    NetStats s;
    s.updated_ms = j.value("updated_ms", std::int64_t{0});
    s.pid = j.value("pid", 0);
    auto& c = s.counters;
    c.frames_in = u("frames_in");
    c.frames_out = u("frames_out");
    c.bytes_in = u("bytes_in");
    c.bytes_out = u("bytes_out");
    c.flows_allowed = u("flows_allowed");
    c.flows_denied = u("flows_denied");
    c.dns_allowed = u("dns_allowed");
    c.dns_denied = u("dns_denied");
    c.malformed = u("malformed");
    c.fragments = u("fragments");
    c.dropped = u("dropped");
    c.flow_evictions = u("flow_evictions");
    c.pin_evictions = u("pin_evictions");
    c.denied_unlisted = u("denied_unlisted");
    if (auto it = j.find("denied_by_reason"); it != j.end() && it->is_object()) {
        for (std::size_t i = 0; i < k_reasons; ++i) {
            c.denied_by_reason[i] = it->value(std::string(to_string(static_cast<Reason>(i))), std::uint64_t{0});
        }
    }
    s.runtime.out_dropped = u("out_dropped");
    s.runtime.stream_errors = u("stream_errors");
    s.runtime.dns_in_flight = u("dns_in_flight");
    s.runtime.tcp_open = u("tcp_open");
    s.runtime.tcp_failed = u("tcp_failed");
    s.runtime.tcp_resets = u("tcp_resets");
    s.runtime.tcp_retransmits = u("tcp_retransmits");
    s.runtime.datagram_open = u("datagram_open");
    s.runtime.datagram_dropped = u("datagram_dropped");
    return s;
}

// ---- readers ----

std::optional<DeniedSummary> read_denied(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    DeniedSummary s;
    std::string line;
    while (std::getline(in, line)) {
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            continue;
        }
        try {
            if (j.contains("unlisted")) {
                s.unlisted = j.value("unlisted", std::uint64_t{0});
                continue;
            }
            auto first = parse_log_line(line);
            if (!first) {
                continue;
            }
            DeniedRecord r;
            r.first = std::move(*first);
            r.count = j.value("count", std::uint64_t{0});
            r.last_ms = j.value("last_ms", std::int64_t{0});
            s.destinations.push_back(std::move(r));
        } catch (const json::exception&) {
            continue;  // a line caught mid-write
        }
    }
    return s;
}

std::optional<LogRecord> parse_log_line(std::string_view line) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return std::nullopt;
    }
    try {
        LogRecord r;
        r.time = j.value("time", "");
        r.ms = j.value("ms", std::int64_t{0});
        r.verdict = j.value("verdict", "");
        r.reason = j.value("reason", "");
        r.proto = j.value("proto", "");
        r.name = j.value("name", "");
        r.addr = j.value("addr", "");
        r.port = j.value("port", std::uint16_t{0});
        r.dns = j.value("dns", false);
        if (r.verdict.empty()) {
            return std::nullopt;
        }
        return r;
    } catch (const json::exception&) {
        return std::nullopt;
    }
}

std::string format_log_record(const LogRecord& r) {
    std::string verdict = r.verdict;
    std::transform(verdict.begin(), verdict.end(), verdict.begin(),
                   [](char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; });
    std::string reason = r.reason;
    std::replace(reason.begin(), reason.end(), '_', ' ');
    std::string dest;
    if (r.dns) {
        dest = "(query)";
    } else if (r.addr.find(':') != std::string::npos) {
        dest = fmt::format("[{}]:{}", r.addr, r.port);
    } else {
        dest = r.port ? fmt::format("{}:{}", r.addr, r.port) : r.addr;
    }
    return fmt::format("{}  {:<5}  {:<4}  {:<30}  {:<24}  {}", r.ms ? local_time(r.ms) : r.time, verdict,
                       r.dns ? "dns" : r.proto, r.name.empty() ? "-" : r.name, dest, reason);
}

std::vector<LogRecord> read_log(const std::filesystem::path& path) {
    std::vector<LogRecord> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (auto r = parse_log_line(line)) {
            out.push_back(std::move(*r));
        }
    }
    return out;
}

namespace {

std::string parent_of(const std::string& name) {
    auto dot = name.find('.');
    if (dot == std::string::npos) {
        return {};
    }
    std::string parent = name.substr(dot + 1);
    // Never suggest what the profile refuses: "*.com", "*.github.io", "*.s3.amazonaws.com".
    return broad_wildcard(parent) ? std::string{} : parent;
}

std::string ports_list(const std::set<std::uint16_t>& ports, const char* sep) {
    std::string out;
    for (auto p : ports) {
        if (!out.empty()) {
            out += sep;
        }
        out += std::to_string(p);
    }
    return out;
}

std::string render_entry(const std::string& key, bool is_cidr, const std::string& proto,
                         const std::set<std::uint16_t>& ports) {
    if (!is_cidr && proto == "tcp" && !ports.empty()) {
        return fmt::format("\"{}:{}\"", key, ports_list(ports, ","));
    }
    std::string out = fmt::format("{{ {} = \"{}\"", is_cidr ? "cidr" : "host", key);
    if (proto != "icmp" && !ports.empty()) {
        out += fmt::format(", ports = [{}]", ports_list(ports, ", "));
    }
    if (proto != "tcp") {
        out += fmt::format(", proto = \"{}\"", proto);
    }
    return out + " }";
}

}  // namespace

std::vector<Suggestion> suggest_allow_entries(std::span<const LogRecord> records) {
    // (proto, name) -> ports; (proto, addr) -> ports for destinations never resolved.
    std::map<std::pair<std::string, std::string>, std::set<std::uint16_t>> by_name, by_addr;
    for (const auto& r : records) {
        if (r.verdict != "learn" || r.dns || r.proto.empty()) {
            continue;
        }
        auto& ports = r.name.empty() ? by_addr[{r.proto, r.addr}] : by_name[{r.proto, r.name}];
        if (r.proto != "icmp" && r.port != 0) {
            ports.insert(r.port);
        }
    }
    // Fold 3+ names under one parent into "*.parent".
    std::map<std::pair<std::string, std::string>, std::vector<std::string>> children;
    for (const auto& [key, ports] : by_name) {
        auto parent = parent_of(key.second);
        if (!parent.empty()) {
            children[{key.first, parent}].push_back(key.second);
        }
    }
    std::vector<std::pair<std::string, Suggestion>> sorted;  // sort key, suggestion
    std::set<std::pair<std::string, std::string>> folded;
    for (const auto& [key, names] : children) {
        if (names.size() < 3) {
            continue;
        }
        std::set<std::uint16_t> ports;
        for (const auto& n : names) {
            ports.insert(by_name[{key.first, n}].begin(), by_name[{key.first, n}].end());
            folded.insert({key.first, n});
        }
        std::string list;
        for (std::size_t i = 0; i < names.size() && i < 4; ++i) {
            list += (i ? ", " : "") + names[i];
        }
        if (names.size() > 4) {
            list += ", ...";
        }
        sorted.push_back({key.second + "/" + key.first,
                          {render_entry("*." + key.second, false, key.first, ports),
                           fmt::format("{} names: {}", names.size(), list)}});
    }
    for (const auto& [key, ports] : by_name) {
        if (!folded.count(key)) {
            sorted.push_back(
                {key.second + "/" + key.first, {render_entry(key.second, false, key.first, ports), ""}});
        }
    }
    for (const auto& [key, ports] : by_addr) {
        std::string cidr = key.second + (key.second.find(':') != std::string::npos ? "/128" : "/32");
        sorted.push_back(
            {"~" + key.second + "/" + key.first,
             {render_entry(cidr, true, key.first, ports), "never resolved through netd: a raw address"}});
    }
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Suggestion> out;
    for (auto& s : sorted) {
        out.push_back(std::move(s.second));
    }
    return out;
}

// ---- the CLI views ----

namespace {

instance::InstanceLayout existing_instance(const std::string& name) {
    instance::InstanceLayout layout(paths::vms_root(), name);
    std::error_code ec;
    if (!std::filesystem::is_directory(layout.dir(), ec)) {
        throw Error(fmt::format("there is no instance named {}", name),
                    {fmt::format("sbx up {} creates and starts it; sbx ls lists instances", name)},
                    ExitCode::not_found);
    }
    return layout;
}

}  // namespace

namespace {

// "denied since netd started: 12034 not_in_allowlist, 3 metadata": the counts that never roll
// over, after the (bounded) log.
void print_denial_counts(const std::filesystem::path& stats_path) {
    auto st = read_stats(stats_path);
    if (!st) {
        return;
    }
    std::string parts;
    for (std::size_t i = 0; i < k_reasons; ++i) {
        if (auto n = st->counters.denied_by_reason[i]; n > 0) {
            parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", n, to_string(static_cast<Reason>(i)));
        }
    }
    if (!parts.empty()) {
        fmt::print("denied since netd started: {}\n", parts);
    }
}

// Every destination denied since netd started, with its count: the decision log may have
// dropped their lines, this list does not.
void print_denied_destinations(const std::filesystem::path& path) {
    auto s = read_denied(path);
    if (!s || (s->destinations.empty() && s->unlisted == 0)) {
        return;
    }
    fmt::print("denied destinations since netd started ({}, in the order first tried; count, first denial, last):\n",
               s->destinations.size());
    for (const auto& d : s->destinations) {
        std::string last = d.last_ms > 0 ? local_time(d.last_ms) : std::string("?");
        fmt::print("  {:>7}x  {}  (last {})\n", d.count, format_log_record(d.first), last);
    }
    if (s->unlisted > 0) {
        fmt::print("  and {} denials of destinations past the first {} (counted, not listed)\n", s->unlisted,
                   k_denied_destinations);
    }
}

}  // namespace

void show_net_log(const std::string& name, bool follow) {
    auto layout = existing_instance(name);
    auto path = layout.net_log();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !follow) {
        fmt::print(stderr, "{} has no network decisions yet ({} does not exist)\n", name, path.string());
        return;
    }
    std::uint64_t offset = 0;
    std::string pending;
    char buf[65536];
    for (;;) {
        auto size = std::filesystem::file_size(path, ec);
        if (!ec && size < offset) {
            offset = size;  // netd dropped the oldest part to stay under its cap
            pending.clear();
        }
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            for (;;) {
                ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(offset));
                if (n <= 0) {
                    break;
                }
                offset += static_cast<std::uint64_t>(n);
                pending.append(buf, static_cast<std::size_t>(n));
                std::size_t start = 0, nl;
                while ((nl = pending.find('\n', start)) != std::string::npos) {
                    std::string_view line = std::string_view(pending).substr(start, nl - start);
                    if (auto r = parse_log_line(line)) {
                        fmt::print("{}\n", format_log_record(*r));
                    } else if (line.rfind(R"({"gap_bytes":)", 0) == 0) {
                        fmt::print("... older decisions dropped here: the log keeps its first {} MiB and its "
                                   "newest {} MiB (every denial is counted in `sbx status --json`) ...\n",
                                   k_log_head >> 20, k_log_keep >> 20);
                    }
                    start = nl + 1;
                }
                pending.erase(0, start);
            }
            ::close(fd);
            std::fflush(stdout);
        }
        if (!follow) {
            print_denial_counts(layout.net_stats());
            print_denied_destinations(layout.net_denied());
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
}

void print_suggestions(const std::string& name) {
    auto layout = existing_instance(name);
    auto records = read_log(layout.net_log());
    auto learned = std::count_if(records.begin(), records.end(),
                                 [](const LogRecord& r) { return r.verdict == "learn"; });
    if (learned == 0) {
        throw Error(fmt::format("{} has no learn-mode records", name),
                    {"set `learn = true` under [network] in the profile, restart the VM (sbx down, sbx up),",
                     fmt::format("use it as usual, then run sbx net suggest {} again", name)},
                    ExitCode::not_found);
    }
    auto suggestions = suggest_allow_entries(records);
    // Names the guest looked up but never connected to: not suggested, but worth knowing.
    std::set<std::string> queried, connected;
    for (const auto& r : records) {
        if (r.verdict != "learn" || r.name.empty()) {
            continue;
        }
        (r.dns ? queried : connected).insert(r.name);
    }
    fmt::print("# sbx net suggest {}: {} learn record(s) in {}\n", name, learned, layout.net_log().string());
    fmt::print("# review, then put these under [network] in the profile:\n");
    fmt::print("allow = [\n");
    for (const auto& s : suggestions) {
        std::string line = "  " + s.entry + ",";
        if (!s.comment.empty()) {
            line = fmt::format("{:<60} # {}", line, s.comment);
        }
        fmt::print("{}\n", line);
    }
    fmt::print("]\n");
    std::string only_queried;
    for (const auto& q : queried) {
        if (!connected.count(q)) {
            only_queried += (only_queried.empty() ? "" : ", ") + q;
        }
    }
    if (!only_queried.empty()) {
        fmt::print("# looked up but never connected to (not suggested): {}\n", only_queried);
    }
}

}  // namespace sbx::net
