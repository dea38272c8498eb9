#include "sbx/instance/state.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace sbx::instance {

using nlohmann::json;

json to_json(const State& s) {
    return json{{"status", s.status},         {"supervisor_pid", s.supervisor_pid},
                {"qemu_pid", s.qemu_pid},     {"netd_pid", s.netd_pid},
                {"ssh_port", s.ssh_port},
                {"ssh_user", s.ssh_user},     {"accel", s.accel},
                {"cpus", s.cpus},             {"memory", s.memory},
                {"image", s.image}, {"image_id", s.image_id},           {"profile_file", s.profile_file},
                {"run_id", s.run_id},
                {"started_at_ms", s.started_at_ms}, {"ready_at_ms", s.ready_at_ms},
                {"stopped_at_ms", s.stopped_at_ms}, {"last_error", s.last_error},
                {"forwards", s.forwards},     {"network", s.network},
                {"shares", s.shares}};
}

State state_from_json(const json& j) {
    State s;
    s.status = j.value("status", s.status);
    s.supervisor_pid = j.value("supervisor_pid", 0);
    s.qemu_pid = j.value("qemu_pid", 0);
    s.netd_pid = j.value("netd_pid", 0);
    s.ssh_port = j.value("ssh_port", 0);
    s.ssh_user = j.value("ssh_user", "");
    s.accel = j.value("accel", "");
    s.cpus = j.value("cpus", 0);
    s.memory = j.value("memory", std::uint64_t{0});
    s.image = j.value("image", "");
    s.image_id = j.value("image_id", "");
    s.profile_file = j.value("profile_file", "");
    s.run_id = j.value("run_id", "");
    s.started_at_ms = j.value("started_at_ms", std::int64_t{0});
    s.ready_at_ms = j.value("ready_at_ms", std::int64_t{0});
    s.stopped_at_ms = j.value("stopped_at_ms", std::int64_t{0});
    s.last_error = j.value("last_error", "");
    s.forwards = j.value("forwards", std::vector<std::string>{});
    s.network = j.value("network", "");
    s.shares = j.value("shares", std::vector<std::string>{});
    return s;
}

State read_state(const InstanceLayout& layout) {
    std::error_code ec;
    if (!std::filesystem::exists(layout.state(), ec)) {
        return State{};
    }
    try {
        return state_from_json(json::parse(read_file(layout.state())));
    } catch (const json::exception& e) {
        throw Error(fmt::format("{} is not valid: {}", layout.state().string(), e.what()),
                    {fmt::format("remove it (sbx rm {} --force) if the instance is not running",
                                 layout.name())});
    }
}

void write_state(const InstanceLayout& layout, const State& s) {
    write_file_atomic(layout.state(), to_json(s).dump(2) + "\n");
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void append_event(const InstanceLayout& layout, const std::string& run_id, const std::string& kind,
                  json fields) {
    json ev = json::object();
    ev["t"] = now_ms();
    ev["run"] = run_id;
    ev["kind"] = kind;
    for (auto& [k, v] : fields.items()) {
        ev[k] = v;
    }
    std::string line = ev.dump() + "\n";
    int fd = ::open(layout.events().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        throw_errno(fmt::format("cannot write {}", layout.events().string()), errno);
    }
    // One write of a short line with O_APPEND: readers never see half a line from us.
    ssize_t n = ::write(fd, line.data(), line.size());
    int err = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(line.size())) {
        throw_errno(fmt::format("cannot write {}", layout.events().string()), err);
    }
}

FileLock& FileLock::operator=(FileLock&& o) noexcept {
    if (this != &o) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = o.m_fd;
        o.m_fd = -1;
    }
    return *this;
}

FileLock::~FileLock() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

std::optional<FileLock> FileLock::try_acquire(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        throw_errno(fmt::format("cannot open lock {}", path.string()), errno);
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        ::close(fd);
        if (err == EWOULDBLOCK) {
            return std::nullopt;
        }
        throw_errno(fmt::format("cannot lock {}", path.string()), err);
    }
    FileLock lock;
    lock.m_fd = fd;
    return lock;
}

bool supervisor_alive(const InstanceLayout& layout) {
    return lock_held(layout.supervisor_lock());
}

bool lock_held(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        return false;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return held;
}

std::string effective_status(const InstanceLayout& layout, const State& s) {
    bool alive = supervisor_alive(layout);
    if (alive) {
        return s.status == "stopped" || s.status == "failed" ? "starting" : s.status;
    }
    if (s.status == "starting" || s.status == "running" || s.status == "stopping") {
        return "stale";
    }
    return s.status;
}

}  // namespace sbx::instance
