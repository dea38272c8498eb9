#include "sbx/vm/qmp.hpp"

#include "sbx/util/error.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sbx::vm {

namespace {
// QMP replies are small; a runaway peer must not grow our buffer without bound.
constexpr std::size_t k_max_buffer = 4 * 1024 * 1024;
}  // namespace

QmpClient::~QmpClient() { close(); }

void QmpClient::close() {
    if (m_fd >= 0) {
        ::close(m_fd);
        m_fd = -1;
    }
    m_buffer.clear();
}

void QmpClient::connect(const std::filesystem::path& socket, Clock::time_point deadline) {
    close();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket.string().size() >= sizeof addr.sun_path) {
        throw Error(fmt::format("QMP socket path {} is too long", socket.string()));
    }
    std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw_errno("socket", errno);
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        ::close(fd);
        throw_errno(fmt::format("connect {}", socket.string()), err);
    }
    m_fd = fd;
    auto greeting = read_message(deadline);
    if (!greeting || !greeting->contains("QMP")) {
        close();
        throw Error(fmt::format("no QMP greeting on {}", socket.string()));
    }
    execute("qmp_capabilities", nlohmann::json::object(), deadline);
}

bool QmpClient::fill(int timeout_ms) {
    pollfd p{m_fd, POLLIN, 0};
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0) {
        if (errno == EINTR) {
            return true;
        }
        throw_errno("poll QMP", errno);
    }
    if (r == 0) {
        return true;
    }
    char buf[4096];
    ssize_t n = ::read(m_fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return true;
    }
    if (n <= 0) {
        return false;
    }
    if (m_buffer.size() + static_cast<std::size_t>(n) > k_max_buffer) {
        throw Error("QMP peer sent an oversized message");
    }
    m_buffer.append(buf, static_cast<std::size_t>(n));
    return true;
}

std::optional<nlohmann::json> QmpClient::read_message(Clock::time_point deadline) {
    for (;;) {
        auto nl = m_buffer.find('\n');
        if (nl != std::string::npos) {
            std::string line = m_buffer.substr(0, nl);
            m_buffer.erase(0, nl + 1);
            if (line.find_first_not_of(" \r\t") == std::string::npos) {
                continue;
            }
            try {
                return nlohmann::json::parse(line);
            } catch (const nlohmann::json::exception&) {
                throw Error("QMP sent a line that is not JSON");
            }
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            throw Error("QMP did not answer in time", {}, ExitCode::timeout);
        }
        if (!fill(static_cast<int>(left.count()))) {
            throw Error("QEMU closed the QMP connection");
        }
    }
}

nlohmann::json QmpClient::execute(const std::string& command, const nlohmann::json& args,
                                  Clock::time_point deadline) {
    if (m_fd < 0) {
        throw Error("QMP is not connected");
    }
    nlohmann::json req = {{"execute", command}};
    if (!args.empty()) {
        req["arguments"] = args;
    }
    std::string data = req.dump() + "\n";
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::send(m_fd, p, left, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno(fmt::format("QMP {}", command), errno);
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    for (;;) {
        auto msg = read_message(deadline);
        if (!msg) {
            continue;
        }
        if (msg->contains("event")) {
            m_events.push_back(std::move(*msg));
            continue;
        }
        if (msg->contains("error")) {
            throw Error(fmt::format("QMP {} failed: {}", command,
                                    (*msg)["error"].value("desc", std::string("unknown error"))));
        }
        if (msg->contains("return")) {
            return (*msg)["return"];
        }
    }
}

bool QmpClient::pump() {
    if (m_fd < 0) {
        return false;
    }
    if (!fill(0)) {
        return false;
    }
    for (;;) {
        auto nl = m_buffer.find('\n');
        if (nl == std::string::npos) {
            return true;
        }
        std::string line = m_buffer.substr(0, nl);
        m_buffer.erase(0, nl + 1);
        try {
            auto msg = nlohmann::json::parse(line);
            if (msg.contains("event")) {
                m_events.push_back(std::move(msg));
            }
        } catch (const nlohmann::json::exception&) {
            // A line we cannot parse is not an event we act on.
        }
    }
}

std::optional<nlohmann::json> QmpClient::next_event() {
    if (m_events.empty()) {
        return std::nullopt;
    }
    auto e = std::move(m_events.front());
    m_events.pop_front();
    return e;
}

std::string summarize_vcpus(std::string_view text) {
    std::string out;
    std::string cpu;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        std::string_view line = text.substr(pos, end == std::string_view::npos ? text.size() - pos : end - pos);
        pos = end == std::string_view::npos ? text.size() : end + 1;
        if (line.starts_with("CPU#")) {
            cpu = std::string(line.substr(4, line.find_first_not_of("0123456789", 4) - 4));
            continue;
        }
        if (cpu.empty() || !line.starts_with("RIP=")) {
            continue;
        }
        std::string_view rip = line.substr(4, line.find(' ') == std::string_view::npos ? line.size() - 4
                                                                                       : line.find(' ') - 4);
        out += fmt::format("{}vCPU {} at {}{}", out.empty() ? "" : ", ", cpu, rip,
                           line.find("HLT=1") != std::string_view::npos ? " (halted)" : "");
        cpu.clear();
    }
    return out;
}

}  // namespace sbx::vm
