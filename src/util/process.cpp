#include "sbx/util/process.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/strings.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <deque>

extern char** environ;

namespace sbx {

void throw_errno(const std::string& what, int err) {
    throw Error(fmt::format("{}: {}", what, std::strerror(err)));
}

std::vector<std::string> default_child_env() {
    std::vector<std::string> env;
    static const char* const k_pass[] = {"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TERM",
                                        "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME",
                                        "XDG_RUNTIME_DIR", "NO_COLOR"};
    for (const char* name : k_pass) {
        if (const char* v = std::getenv(name)) {
            env.push_back(fmt::format("{}={}", name, v));
        }
    }
    if (!std::getenv("PATH")) {
        env.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
    env.emplace_back("LC_ALL=C.UTF-8");
    for (char** e = environ; *e; ++e) {
        if (std::strncmp(*e, "SBX_", 4) == 0) {
            env.emplace_back(*e);
        }
    }
    return env;
}

void set_env_entry(std::vector<std::string>& env, const std::string& entry) {
    auto eq = entry.find('=');
    std::string_view name(entry.data(), eq == std::string::npos ? entry.size() : eq + 1);
    for (auto& e : env) {
        if (std::string_view(e).substr(0, name.size()) == name) {
            e = entry;
            return;
        }
    }
    env.push_back(entry);
}

namespace {

int open_devnull(int flags) {
    int fd = ::open("/dev/null", flags | O_CLOEXEC);
    if (fd < 0) {
        throw_errno("open /dev/null", errno);
    }
    return fd;
}

[[noreturn]] void child_fail(int report_fd, int err) {
    (void)!::write(report_fd, &err, sizeof err);
    _exit(127);
}

int pidfd_open(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

}  // namespace

Child spawn(const SpawnSpec& spec) {
    if (spec.argv.empty()) {
        throw Error("internal: spawn with an empty argv");
    }
    std::vector<char*> argv;
    for (const auto& a : spec.argv) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : spec.env) {
        envp.push_back(const_cast<char*>(e.c_str()));
    }
    envp.push_back(nullptr);

    int null_in = spec.stdin_fd < 0 ? open_devnull(O_RDONLY) : -1;
    int null_out = (spec.stdout_fd < 0 || spec.stderr_fd < 0) ? open_devnull(O_WRONLY) : -1;
    int fds[3] = {spec.stdin_fd < 0 ? null_in : spec.stdin_fd,
                  spec.stdout_fd < 0 ? null_out : spec.stdout_fd,
                  spec.stderr_fd < 0 ? null_out : spec.stderr_fd};

    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) {
        throw_errno("pipe", errno);
    }
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        throw_errno("fork", err);
    }
    if (pid == 0) {
        // Child: only async-signal-safe calls from here on.
        ::close(report[0]);
        if (spec.new_session) {
            if (::setsid() < 0) {
                child_fail(report[1], errno);
            }
        } else if (::setpgid(0, 0) != 0) {
            child_fail(report[1], errno);
        }
        if (spec.die_with_parent) {
            if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
                child_fail(report[1], errno);
            }
            if (::getppid() != parent) {
                _exit(127);  // the parent is already gone
            }
        }
        sigset_t all;
        sigemptyset(&all);
        ::sigprocmask(SIG_SETMASK, &all, nullptr);
        for (int s = 1; s < NSIG; ++s) {
            ::signal(s, SIG_DFL);
        }
        // Move the three fds out of the way first so dup2 cannot clobber one with another.
        int tmp[3];
        for (int i = 0; i < 3; ++i) {
            tmp[i] = ::fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
            if (tmp[i] < 0) {
                child_fail(report[1], errno);
            }
        }
        for (int i = 0; i < 3; ++i) {
            if (::dup2(tmp[i], i) < 0) {
                child_fail(report[1], errno);
            }
        }
        // Close everything else except the report pipe (which is close-on-exec).
        int rfd = ::fcntl(report[1], F_DUPFD_CLOEXEC, 3);
        if (rfd < 0) {
            child_fail(report[1], errno);
        }
        if (rfd != 3) {
            if (::dup3(rfd, 3, O_CLOEXEC) < 0) {
                child_fail(report[1], errno);
            }
        }
        ::syscall(SYS_close_range, 4U, ~0U, 0U);
        if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) {
            child_fail(3, errno);
        }
        ::execvpe(argv[0], argv.data(), envp.data());
        child_fail(3, errno);
    }
    ::close(report[1]);
    if (null_in >= 0) {
        ::close(null_in);
    }
    if (null_out >= 0) {
        ::close(null_out);
    }
    int child_errno = 0;
    ssize_t n;
    do {
        n = ::read(report[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    ::close(report[0]);
    Child child;
    child.pid = pid;
    if (n == static_cast<ssize_t>(sizeof child_errno)) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        throw Error(fmt::format("cannot run {}: {}", spec.argv[0], std::strerror(child_errno)),
                    {fmt::format("is {} installed? ./scripts/install-deps.sh installs what sbx needs",
                                 spec.argv[0])});
    }
    child.pidfd = pidfd_open(pid);
    return child;
}

int status_to_code(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

int wait_child(Child& child) {
    int status = 0;
    while (::waitpid(child.pid, &status, 0) < 0) {
        if (errno != EINTR) {
            throw_errno("waitpid", errno);
        }
    }
    if (child.pidfd >= 0) {
        ::close(child.pidfd);
        child.pidfd = -1;
    }
    return status_to_code(status);
}

std::optional<int> try_wait_child(Child& child) {
    int status = 0;
    pid_t r = ::waitpid(child.pid, &status, WNOHANG);
    if (r == child.pid) {
        if (child.pidfd >= 0) {
            ::close(child.pidfd);
            child.pidfd = -1;
        }
        return status_to_code(status);
    }
    return std::nullopt;
}

RunResult run_command(const std::vector<std::string>& argv,
                      const std::function<void(const std::string&)>& on_line,
                      std::optional<std::chrono::seconds> timeout,
                      const std::vector<std::string>& extra_env) {
    RunOptions options;
    options.on_line = on_line;
    options.timeout = timeout;
    options.extra_env = extra_env;
    return run_command(argv, options);
}

RunResult run_command(const std::vector<std::string>& argv, const RunOptions& options) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        throw_errno("pipe", errno);
    }
    SpawnSpec spec;
    spec.argv = argv;
    spec.env = default_child_env();
    for (const auto& kv : options.extra_env) {
        set_env_entry(spec.env, kv);
    }
    if (!options.extra_path.empty()) {
        for (auto& e : spec.env) {
            if (e.rfind("PATH=", 0) == 0) {
                e += options.extra_path;
            }
        }
    }
    spec.cwd = options.cwd;
    spec.stdin_fd = options.stdin_fd;
    spec.stdout_fd = out[1];
    spec.stderr_fd = out[1];
    Child child;
    try {
        child = spawn(spec);
    } catch (...) {
        ::close(out[0]);
        ::close(out[1]);
        throw;
    }
    ::close(out[1]);

    constexpr std::size_t k_keep = 64 * 1024;
    RunResult result;
    std::string pending;
    auto line = [&](std::string text) {
        if (!text.empty() && text.back() == '\r') {
            text.pop_back();
        }
        options.on_line(text);
    };
    auto deadline = options.timeout ? std::chrono::steady_clock::now() + *options.timeout
                                    : std::chrono::steady_clock::time_point::max();
    bool timed_out = false;
    char buf[8192];
    for (;;) {
        int wait_ms = -1;
        if (options.timeout) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                timed_out = true;
                break;
            }
            wait_ms = static_cast<int>(left.count());
        }
        pollfd p{out[0], POLLIN, 0};
        int pr = ::poll(&p, 1, wait_ms);
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr == 0) {
            continue;
        }
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        result.output.append(buf, static_cast<std::size_t>(n));
        if (result.output.size() > 2 * k_keep) {
            result.output.erase(0, result.output.size() - k_keep);
        }
        if (options.on_line) {
            pending.append(buf, static_cast<std::size_t>(n));
            std::size_t pos;
            while ((pos = pending.find('\n')) != std::string::npos) {
                line(pending.substr(0, pos));
                pending.erase(0, pos + 1);
            }
        }
    }
    if (options.on_line && !pending.empty()) {
        line(pending);
    }
    ::close(out[0]);
    if (timed_out) {
        // TERM first: tools like mmdebstrap clean up (unmount) on it.
        ::kill(-child.pid, SIGTERM);
        for (int i = 0; i < 100 && !try_wait_child(child); ++i) {
            ::usleep(100 * 1000);
        }
        ::kill(-child.pid, SIGKILL);
        if (child.pidfd >= 0) {
            wait_child(child);
        }
        throw Error(fmt::format("{} did not finish within {}", argv[0],
                                format_duration_ms(options.timeout->count() * 1000)),
                    {}, ExitCode::timeout);
    }
    result.exit_code = wait_child(child);
    if (result.output.size() > k_keep) {
        result.output.erase(0, result.output.size() - k_keep);
    }
    return result;
}

std::optional<std::filesystem::path> find_program(const std::string& name) {
    if (name.find('/') != std::string::npos) {
        if (::access(name.c_str(), X_OK) == 0) {
            return std::filesystem::path(name);
        }
        return std::nullopt;
    }
    const char* path = std::getenv("PATH");
    std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    std::size_t start = 0;
    while (start <= p.size()) {
        std::size_t end = p.find(':', start);
        if (end == std::string::npos) {
            end = p.size();
        }
        std::filesystem::path dir = p.substr(start, end - start);
        if (!dir.empty()) {
            auto candidate = dir / name;
            if (::access(candidate.c_str(), X_OK) == 0) {
                return candidate;
            }
        }
        start = end + 1;
    }
    return std::nullopt;
}

std::string tail_file(const std::filesystem::path& path, std::size_t max_lines) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return {};
    }
    in.seekg(0, std::ios::end);
    auto size = static_cast<std::streamoff>(in.tellg());
    std::streamoff start = size > 65536 ? size - 65536 : 0;
    in.seekg(start);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::deque<std::string> lines;
    std::size_t pos = 0;
    while (pos < data.size()) {
        std::size_t nl = data.find('\n', pos);
        if (nl == std::string::npos) {
            nl = data.size();
        }
        std::string line = data.substr(pos, nl - pos);
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        lines.push_back(std::move(line));
        if (lines.size() > max_lines) {
            lines.pop_front();
        }
        pos = nl + 1;
    }
    std::string out;
    for (const auto& l : lines) {
        out += l;
        out += '\n';
    }
    return out;
}

}  // namespace sbx
