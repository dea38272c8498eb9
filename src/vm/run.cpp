// Theory of operation
//
// `sbx run` must tear down what it started on every path, including a Ctrl-C in the
// middle of a boot or of the command. Library calls like vm::up and ssh::run_command block
// and cannot be cancelled from a signal handler, so the work runs in a forked child and
// this process only waits:
//
//   sbx run (parent) ── fork ──> child: vm::up (stdout sent to stderr), then
//      catches SIGINT/TERM/HUP      ssh::run_command; writes one JSON line to a pipe:
//      as a flag, forwards them     {"status": N} or {"error": ..., "hints": [...], "code": C}
//      to the child, waits
//   then: stop (or, with --rm, stop and delete) the instance, and return the command's
//   status, rethrow the child's error, or return 128+signal.
//
// The supervisor is detached (its own session), so a child killed by Ctrl-C while booting
// leaves the VM to the parent's teardown, which retries while a just-spawned supervisor
// has not yet recorded itself in state.json.

#include "sbx/vm/run.hpp"

#include "sbx/instance/layout.hpp"
#include "sbx/instance/state.hpp"
#include "sbx/ssh/ssh.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/strings.hpp"
#include "sbx/vm/control.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <random>
#include <thread>

namespace sbx::vm {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Longest result the child sends (hints can carry log tails).
constexpr std::size_t k_max_result = 60 * 1024;
// How long a teardown keeps retrying (a supervisor that just started, a slow powerdown).
constexpr auto k_teardown_limit = std::chrono::seconds(120);

std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "used from a signal handler");

void on_signal(int sig) { g_signal.store(sig); }

constexpr std::array<int, 3> k_signals = {SIGINT, SIGTERM, SIGHUP};

// SIGINT, SIGTERM and SIGHUP become a flag (no SA_RESTART: a blocking read returns EINTR).
// A signal we were started with ignored stays ignored (nohup, a shell's background job).
class SignalCatcher {
public:
    SignalCatcher() {
        g_signal.store(0);
        for (int sig : k_signals) {
            struct sigaction old {};
            if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler == SIG_IGN) {
                continue;
            }
            struct sigaction sa {};
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            if (::sigaction(sig, &sa, nullptr) == 0) {
                m_saved.push_back({sig, old});
            }
        }
    }
    ~SignalCatcher() { restore(); }
    SignalCatcher(const SignalCatcher&) = delete;
    SignalCatcher& operator=(const SignalCatcher&) = delete;

    // Puts back what the process had before (the worker child does this at once).
    void restore() {
        for (auto& [sig, old] : m_saved) {
            ::sigaction(sig, &old, nullptr);
        }
        m_saved.clear();
    }

private:
    std::vector<std::pair<int, struct sigaction>> m_saved;
};

sigset_t caught_set() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : k_signals) {
        sigaddset(&set, sig);
    }
    return set;
}

// Our stdout points at stderr for the life of the object, so progress of the boot and
// the teardown never mixes with the command's output.
class StdoutToStderr {
public:
    StdoutToStderr() {
        std::fflush(stdout);
        m_saved = ::dup(STDOUT_FILENO);
        if (m_saved >= 0) {
            ::dup2(STDERR_FILENO, STDOUT_FILENO);
        }
    }
    ~StdoutToStderr() {
        std::fflush(stdout);
        if (m_saved >= 0) {
            ::dup2(m_saved, STDOUT_FILENO);
            ::close(m_saved);
        }
    }
    StdoutToStderr(const StdoutToStderr&) = delete;
    StdoutToStderr& operator=(const StdoutToStderr&) = delete;

private:
    int m_saved = -1;
};

std::string claim_ephemeral_name(const std::string& profile_name) {
    auto root = paths::vms_root();
    make_private_dirs(root);
    std::random_device rd;
    for (int attempt = 0; attempt < 64; ++attempt) {
        std::string name = ephemeral_name(profile_name, fmt::format("{:04x}", rd() & 0xffffU));
        if (::mkdir((root / name).c_str(), 0700) == 0) {
            return name;
        }
        if (errno != EEXIST) {
            throw_errno(fmt::format("cannot create {}", (root / name).string()), errno);
        }
    }
    throw Error(fmt::format("cannot find a free instance name for a run of {}", profile_name),
                {"sbx ls lists instances; remove old ones with sbx rm"});
}

bool is_running(const std::string& name) {
    instance::InstanceLayout layout(paths::vms_root(), name);
    std::error_code ec;
    if (!std::filesystem::is_directory(layout.dir(), ec)) {
        return false;
    }
    try {
        return instance::supervisor_alive(layout) && instance::read_state(layout).status == "running";
    } catch (const Error&) {
        return false;
    }
}

void write_all(int fd, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        off += static_cast<std::size_t>(n);
    }
}

// The child: boot if asked, run the command, report on `fd`, exit.
[[noreturn]] void child_main(SignalCatcher& catcher, int fd, const profile::Profile& prof, bool boot,
                             const std::vector<std::string>& command) {
    // The worker reacts to signals as sbx ssh does (a Ctrl-C ends it).
    catcher.restore();
    sigset_t set = caught_set();
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);

    json result;
    try {
        if (boot) {
            StdoutToStderr quiet;
            up(prof, UpOptions{});
        }
        result["status"] = ssh::run_command(ssh_target(prof.name), command);
    } catch (const Error& e) {
        result["error"] = e.what();
        result["hints"] = e.hints();
        result["code"] = static_cast<int>(e.code());
    } catch (const std::exception& e) {
        result["error"] = e.what();
        result["code"] = static_cast<int>(ExitCode::failure);
    }
    std::string text = result.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > k_max_result) {
        result.erase("hints");
        text = result.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, k_max_result);
    }
    write_all(fd, text);
    ::close(fd);
    std::fflush(nullptr);
    ::_exit(0);
}

// Retries `step` until it succeeds or the teardown time is up (then rethrows).
template <typename F>
void with_retries(F&& step) {
    auto deadline = Clock::now() + k_teardown_limit;
    for (;;) {
        try {
            step();
            return;
        } catch (const Error&) {
            if (Clock::now() > deadline) {
                throw;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
}

// Stops (and with remove, deletes) the instance. Returns "" or why it failed.
std::string teardown(const std::string& name, bool remove) {
    StdoutToStderr quiet;
    try {
        if (remove) {
            with_retries([&] {
                std::error_code ec;
                if (std::filesystem::exists(instance::InstanceLayout(paths::vms_root(), name).dir(), ec)) {
                    remove_instance(name, true);
                }
            });
        } else {
            with_retries([&] { down(name, DownOptions{}); });
        }
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

std::string ephemeral_name(const std::string& profile_name, const std::string& suffix) {
    std::string tail = "-run-" + suffix;
    std::size_t room = tail.size() < 32 ? 32 - tail.size() : 0;
    std::string head = profile_name.substr(0, room);
    std::string name = head + tail;
    if (head.empty() || !valid_instance_name(name)) {
        name = ("run-" + suffix).substr(0, 32);
    }
    return name;
}

int run(const profile::Profile& profile, const RunOptions& options) {
    if (options.command.empty()) {
        throw Error("sbx run needs a command after --", {"e.g. sbx run --rm work -- make test"}, ExitCode::usage);
    }
    profile::Profile prof = profile;
    bool boot = true;
    if (options.rm) {
        prof.name = claim_ephemeral_name(profile.name);
    } else {
        boot = !is_running(prof.name);
    }
    // The instance this run must take down afterwards (if any).
    bool ours = boot;

    SignalCatcher catcher;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        int err = errno;
        if (options.rm) {
            teardown(prof.name, true);
        }
        throw_errno("pipe", err);
    }
    sigset_t set = caught_set();
    sigset_t old;
    ::sigprocmask(SIG_BLOCK, &set, &old);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        child_main(catcher, fds[1], prof, boot, options.command);
    }
    int fork_err = errno;
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    ::close(fds[1]);
    if (pid < 0) {
        ::close(fds[0]);
        if (options.rm) {
            teardown(prof.name, true);
        }
        throw_errno("fork", fork_err);
    }

    // Wait for the child's report, forwarding a signal we get (a Ctrl-C reached the
    // child already through the terminal; sending it again is harmless).
    std::string text;
    int forwarded = 0;
    char buf[4096];
    for (;;) {
        int sig = g_signal.load();
        if (sig != 0 && forwarded == 0) {
            ::kill(pid, sig);
            forwarded = sig;
        }
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) {
            if (text.size() < k_max_result) {
                text.append(buf, static_cast<std::size_t>(n));
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        break;
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    std::string teardown_error;
    if (ours) {
        teardown_error = teardown(prof.name, options.rm);
    }
    std::string cleanup_hint = options.rm ? fmt::format("remove it with: sbx rm --force {}", prof.name)
                                          : fmt::format("stop it with: sbx down {}", prof.name);

    if (int sig = g_signal.load(); sig != 0) {
        std::string what = !ours ? "" : (options.rm ? fmt::format("; {} removed", prof.name)
                                                    : fmt::format("; {} stopped", prof.name));
        if (!teardown_error.empty()) {
            what = fmt::format("; cleaning up {} failed: {} ({})", prof.name, teardown_error, cleanup_hint);
        }
        fmt::print(stderr, "sbx: run interrupted by {}{}\n", ::strsignal(sig), what);
        return 128 + sig;
    }

    json result;
    try {
        result = json::parse(text);
    } catch (const json::exception&) {
        result = json::object();
    }
    if (result.contains("status") && result["status"].is_number_integer()) {
        int code = result["status"].get<int>();
        if (!teardown_error.empty()) {
            throw Error(fmt::format("the command exited with status {}, but cleaning up {} failed: {}", code,
                                    prof.name, teardown_error),
                        {cleanup_hint});
        }
        return code;
    }
    if (result.contains("error") && result["error"].is_string()) {
        Error err(result["error"].get<std::string>(), {},
                  static_cast<ExitCode>(result.value("code", static_cast<int>(ExitCode::failure))));
        if (result.contains("hints") && result["hints"].is_array()) {
            for (const auto& h : result["hints"]) {
                if (h.is_string()) {
                    err.hint(h.get<std::string>());
                }
            }
        }
        if (!teardown_error.empty()) {
            err.hint(fmt::format("also, cleaning up {} failed: {}; {}", prof.name, teardown_error, cleanup_hint));
        }
        throw err;
    }
    std::string how = WIFSIGNALED(status) ? fmt::format("was killed by {}", ::strsignal(WTERMSIG(status)))
                                          : fmt::format("exited with status {}", WEXITSTATUS(status));
    Error err(fmt::format("the worker process of sbx run {} without reporting a result", how));
    if (!teardown_error.empty()) {
        err.hint(fmt::format("cleaning up {} failed: {}; {}", prof.name, teardown_error, cleanup_hint));
    }
    throw err;
}

}  // namespace sbx::vm
