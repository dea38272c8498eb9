#include "sbx/vm/control.hpp"

#include "sbx/image/image.hpp"
#include "sbx/net/net_log.hpp"
#include "sbx/share/snapshot.hpp"
#include "sbx/util/console.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/hash.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/process.hpp"
#include "sbx/util/strings.hpp"
#include "sbx/vm/supervisor.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace sbx::vm {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using instance::InstanceLayout;

namespace {

std::int64_t ms_since(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

std::string new_run_id() {
    std::random_device rd;
    return fmt::format("{:08x}{:08x}", rd(), rd());
}

std::uint64_t size_of(const std::filesystem::path& p) {
    std::error_code ec;
    auto s = std::filesystem::file_size(p, ec);
    return ec ? 0 : s;
}

// Waits for a lock another sbx process holds, telling the user once why we wait.
instance::FileLock wait_for_lock(const std::filesystem::path& path, std::chrono::seconds limit,
                                 const std::string& waiting_message) {
    auto deadline = Clock::now() + limit;
    bool told = false;
    for (;;) {
        if (auto lock = instance::FileLock::try_acquire(path)) {
            return std::move(*lock);
        }
        if (!told) {
            fmt::print("{}\n", waiting_message);
            std::fflush(stdout);
            told = true;
        }
        if (Clock::now() > deadline) {
            throw Error(fmt::format("gave up waiting for {} after {}s", path.string(), limit.count()),
                        {"another sbx process holds it; check `sbx ls` and `ps`"}, ExitCode::timeout);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

// The room `sbx up` needs in the instance's folder before it writes anything: the disk
// overlay's first growth, keys, the seed, logs and state. Below it, the supervisor could not
// even write its log to say why it stopped.
constexpr std::uint64_t k_min_free_bytes = 8ull << 20;

void check_free_space(const std::filesystem::path& dir) {
    struct statvfs st{};
    if (::statvfs(dir.c_str(), &st) != 0) {
        throw_errno(fmt::format("cannot read the free space of {}", dir.string()), errno);
    }
    std::uint64_t free_bytes = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
    if (free_bytes < k_min_free_bytes || st.f_favail == 0) {
        throw Error(fmt::format("no space left on the filesystem of {}: {} free, sbx up needs at least {}",
                                dir.string(), format_size(free_bytes), format_size(k_min_free_bytes)),
                    {"free some space there (df -h shows it), then run sbx up again; nothing was started",
                     "or keep sbx's state elsewhere: SBX_HOME=/some/dir"});
    }
}

// Builds the profile's image when it is missing; one builder per image at a time.
void ensure_image(const std::string& name) {
    auto root = paths::images_root();
    make_private_dirs(root);
    auto files = image::image_files(root, name);
    auto t = Clock::now();
    auto recipe_path = image::find_recipe(name);
    if (auto info = image::read_image_info(files)) {
        if (recipe_path) {
            try {
                if (image::load_recipe(*recipe_path).fingerprint() != info->fingerprint) {
                    fmt::print("  note: image {} is older than its recipe {}; `sbx image build {}` "
                               "rebuilds it (new VMs use it, existing disks stay as they are)\n",
                               name, recipe_path->string(), name);
                }
            } catch (const Error&) {
                // A broken recipe does not stop a VM whose image is already built.
            }
        }
        console::step("image", fmt::format("{} (built {})", name, info->built_at), ms_since(t));
        return;
    }
    // Not build_image's own lock (which refuses rather than waits): this one queues `sbx up`s.
    auto lock = wait_for_lock(root / fmt::format(".{}.queue.lock", name), std::chrono::seconds(1800),
                              fmt::format("  waiting for another build of image {} ...", name));
    if (image::read_image_info(files)) {  // built by the process we waited for
        console::step("image", fmt::format("{} (just built by another sbx)", name), ms_since(t));
        return;
    }
    if (!recipe_path) {
        throw Error(fmt::format("image {} is not built and there is no recipe {}.toml", name, name),
                    {fmt::format("looked in: {}", paths::search_dirs_text("images")),
                     "set vm.image to a recipe that exists (sbx image ls lists built images)"},
                    ExitCode::not_found);
    }
    auto recipe = image::load_recipe(*recipe_path);
    console::step("image", fmt::format("building {} from {} (first time only; a few minutes)", name,
                                       recipe_path->string()));
    std::string last_step;
    image::build_image(recipe, root, [&](std::string_view s, std::string_view detail) {
        if (s != last_step) {
            last_step = std::string(s);
            console::step("", detail.empty() ? std::string(s) : fmt::format("{}: {}", s, detail), ms_since(t));
        }
    });
    console::step("image", fmt::format("{} built", name), ms_since(t));
}

// What was appended to `path` since byte `offset`; advances `offset` past it.
std::string read_appended(const std::filesystem::path& path, std::uint64_t& offset) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return {};
    }
    in.seekg(static_cast<std::streamoff>(offset));
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    offset += data.size();
    return data;
}

struct FollowResult {
    json ready;
};

// Follows the supervisor's events of `run_id` from byte `offset` until ready, error or
// stopped. `child` (when we spawned it) lets us notice a supervisor that died silently.
FollowResult follow_start(const InstanceLayout& layout, const std::string& run_id,
                          std::uint64_t offset, Child* child, std::chrono::seconds limit) {
    auto deadline = Clock::now() + limit;
    std::string pending;
    for (;;) {
        pending += read_appended(layout.events(), offset);
        std::size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            json ev;
            try {
                ev = json::parse(line);
            } catch (const json::exception&) {
                continue;
            }
            if (ev.value("run", "") != run_id) {
                continue;
            }
            auto kind = ev.value("kind", "");
            if (kind == "step") {
                console::step(ev.value("step", ""), ev.value("msg", ""), ev.value("ms", -1LL));
            } else if (kind == "ready") {
                return {ev};
            } else if (kind == "error") {
                Error err(ev.value("msg", std::string("the supervisor failed")));
                for (const auto& h : ev.value("hints", std::vector<std::string>{})) {
                    err.hint(h);
                }
                err.hint(fmt::format("sbx logs {} shows the supervisor log; sbx logs {} --serial the guest console",
                                     layout.name(), layout.name()));
                throw err;
            } else if (kind == "stopped") {
                throw Error(fmt::format("{} stopped while starting: {}", layout.name(), ev.value("msg", "")));
            }
        }
        bool gone = false;
        if (child && child->pid > 0) {
            if (try_wait_child(*child)) {
                child->pid = -1;
                gone = true;
            }
        } else if (!instance::supervisor_alive(layout)) {
            gone = true;
        }
        if (gone) {
            // One more read for events written just before the exit.
            std::string rest = read_appended(layout.events(), offset);
            if (!rest.empty()) {
                pending += rest;
                continue;
            }
            throw Error(fmt::format("the supervisor of {} exited before the VM was ready", layout.name()),
                        {fmt::format("its log ends with:\n{}", tail_file(layout.supervisor_log(), 15))});
        }
        if (Clock::now() > deadline) {
            throw Error(fmt::format("{} did not become ready within {}s", layout.name(), limit.count()),
                        {fmt::format("sbx logs {} --serial shows the guest console", layout.name())},
                        ExitCode::timeout);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

void print_summary(const InstanceLayout& layout, const instance::State& s, std::int64_t ms) {
    std::string when = ms >= 0 ? fmt::format(", ssh ready in {}", format_duration_ms(ms)) : "";
    fmt::print("{} {} is running ({}, {} cpus, {} memory{})\n", console::green("✓"),
               console::bold(layout.name()), s.accel, s.cpus, format_size(s.memory), when);
    fmt::print("  sbx ssh {:<14} open a shell\n", layout.name());
    fmt::print("  sbx ssh {} -- CMD  run one command\n", layout.name());
    fmt::print("  sbx down {:<13} stop it\n", layout.name());
    std::fflush(stdout);
}

bool is_our_supervisor(int pid, const std::string& name) {
    if (pid <= 0) {
        return false;
    }
    std::ifstream in(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::string> words;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= cmdline.size(); ++i) {
        if (i == cmdline.size() || cmdline[i] == '\0') {
            if (i > start) {
                words.push_back(cmdline.substr(start, i - start));
            }
            start = i + 1;
        }
    }
    return words.size() >= 3 && words[1] == "_supervise" && words[2] == name;
}

// A profile this build cannot run is refused before anything starts.
void refuse_unsupported(const profile::Profile& profile) {
    auto missing = profile::unsupported_features(profile);
    if (missing.empty()) {
        return;
    }
    Error err(fmt::format("{} uses what this build of sbx cannot run yet:\n  {}", profile.file.string(),
                          fmt::join(missing, "\n  ")),
              {}, ExitCode::config);
    err.hint("sbx refuses rather than start a VM that ignores part of its profile");
    err.hint(fmt::format("remove those keys from {} to start it now (docs/profile.md, \"What sbx up runs today\")",
                         profile.file.filename().string()));
    throw err;
}

// Each [[forward]] host port must be free on 127.0.0.1 before QEMU tries to bind it.
void check_forward_ports(const profile::Profile& profile) {
    for (std::size_t i = 0; i < profile.forwards.size(); ++i) {
        const auto& f = profile.forwards[i];
        bool udp = f.proto == profile::Proto::udp;
        int fd = ::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw_errno("socket", errno);
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(f.host);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as QEMU binds it
        int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        int err = errno;
        ::close(fd);
        if (rc != 0) {
            const char* proto = udp ? "udp" : "tcp";
            throw Error(fmt::format("forward[{}]: 127.0.0.1:{} ({}) is {}", i, f.host, proto,
                                    err == EADDRINUSE ? "already in use" : std::strerror(err)),
                        {fmt::format("see what holds it: ss -{}lpn 'sport = :{}'", udp ? 'u' : 't', f.host),
                         fmt::format("or pick another host port in {} ([[forward]] host = {})",
                                     profile.file.string(), f.host)},
                        ExitCode::failure);
        }
    }
}

// What [provision] would run, as one text: the marker file holds it, so a changed
// provision is noticed.
std::string provision_text(const profile::Profile& profile) {
    std::string text;
    for (const auto& r : profile.provision.run) {
        text += "run: " + r + "\n";
    }
    if (!profile.provision.script.empty()) {
        text += "script: " + profile.provision.script.string() + "\n";
        std::error_code ec;
        if (std::filesystem::is_regular_file(profile.provision.script, ec)) {
            Fnv1a64 h;
            h.add(read_file(profile.provision.script));
            text += fmt::format("script-hash: {:016x}\n", h.value());
        }
    }
    return text;
}

InstanceLayout existing_layout(const std::string& name) {
    InstanceLayout layout(paths::vms_root(), name);
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

// Runs [provision] after the first boot (and on request); notes a provision changed since.
void maybe_provision(const profile::Profile& profile, const InstanceLayout& layout, bool again) {
    if (profile.provision.empty()) {
        return;
    }
    std::error_code ec;
    bool done = std::filesystem::exists(layout.provisioned(), ec);
    if (done && !again) {
        if (read_file(layout.provisioned()) != provision_text(profile)) {
            fmt::print("  note: [provision] changed since it ran; sbx up {} --provision runs it again\n",
                       profile.name);
        }
        return;
    }
    provision(profile);
}

}  // namespace

profile::Profile load_instance_profile(const std::string& name_or_path) {
    try {
        return profile::load_profile(name_or_path);
    } catch (const Error& e) {
        if (e.code() != ExitCode::not_found || name_or_path.find('/') != std::string::npos) {
            throw;
        }
        InstanceLayout layout(paths::vms_root(), name_or_path);
        std::error_code ec;
        if (!std::filesystem::exists(layout.state(), ec)) {
            throw;
        }
        auto st = instance::read_state(layout);
        if (st.profile_file.empty() || !std::filesystem::exists(st.profile_file, ec)) {
            throw;
        }
        return profile::load_profile_as(st.profile_file, name_or_path);
    }
}

void up(const profile::Profile& profile, const UpOptions& options) {
    refuse_unsupported(profile);
    auto t0 = Clock::now();
    InstanceLayout layout(paths::vms_root(), profile.name);
    make_private_dirs(layout.dir());
    layout.check_socket_paths();
    fmt::print("Starting {} ({})\n", console::bold(profile.name), profile.file.string());
    std::fflush(stdout);
    ensure_image(profile.vm.image);

    auto up_lock = wait_for_lock(layout.up_lock(), std::chrono::seconds(1800),
                                 fmt::format("  waiting for another `sbx up {}` ...", profile.name));
    auto limit = boot_timeout(false) + std::chrono::seconds(120);
    if (instance::supervisor_alive(layout)) {
        auto s = instance::read_state(layout);
        if (s.status == "running") {
            fmt::print("{} is already running\n", profile.name);
            maybe_provision(profile, layout, options.provision);
            print_summary(layout, s, -1);
            return;
        }
        if (s.status == "starting" && !options.fresh) {
            // Its `sbx up` was interrupted: follow the start in progress instead.
            fmt::print("  a start of {} is in progress; following it\n", profile.name);
            follow_start(layout, s.run_id, 0, nullptr, limit);
            maybe_provision(profile, layout, options.provision);
            print_summary(layout, instance::read_state(layout), ms_since(t0));
            return;
        }
        throw Error(fmt::format("{} is {}", profile.name, s.status),
                    {fmt::format("wait for it, or stop it with sbx down {}", profile.name)});
    }
    auto prior = instance::read_state(layout);
    if (instance::effective_status(layout, prior) == "stale") {
        console::step("recover", fmt::format("the last supervisor of {} died (pid {}); starting afresh",
                                             profile.name, prior.supervisor_pid));
    }
    check_forward_ports(profile);
    if (options.fresh) {
        std::error_code ec;
        std::filesystem::remove(layout.disk(), ec);
        std::filesystem::remove(layout.provisioned(), ec);  // a new disk was never provisioned
        console::step("fresh", "discarded the VM's disk");
    }

    // Only a new start needs room; `sbx up` of a running VM still answers on a full disk.
    check_free_space(layout.dir());
    auto run_id = new_run_id();
    auto offset = size_of(layout.events());
    int log_fd = ::open(layout.supervisor_log().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        throw_errno(fmt::format("cannot open {}", layout.supervisor_log().string()), errno);
    }
    SpawnSpec spec;
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) {
        ::close(log_fd);
        throw Error("cannot find the sbx binary (/proc/self/exe)");
    }
    spec.argv = {exe.string(), "_supervise", profile.name, "--profile", profile.file.string(), "--run", run_id};
    spec.env = default_child_env();
    spec.cwd = layout.dir();
    spec.stdout_fd = log_fd;
    spec.stderr_fd = log_fd;
    spec.new_session = true;
    spec.die_with_parent = false;  // the VM outlives `sbx up`
    Child child;
    try {
        child = spawn(spec);
    } catch (...) {
        ::close(log_fd);
        throw;
    }
    ::close(log_fd);
    auto result = follow_start(layout, run_id, offset, &child, limit);
    maybe_provision(profile, layout, options.provision);
    print_summary(layout, instance::read_state(layout), result.ready.value("ms", ms_since(t0)));
}

void provision(const profile::Profile& profile) {
    InstanceLayout layout(paths::vms_root(), profile.name);
    auto target = ssh_target(profile.name);
    const auto& prov = profile.provision;
    std::size_t total = prov.run.size() + (prov.script.empty() ? 0 : 1);
    auto t0 = Clock::now();
    std::error_code ec;
    std::filesystem::remove(layout.provisioned(), ec);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
        throw_errno("open /dev/null", errno);
    }
    std::size_t step = 0;
    auto fail = [&](const std::string& what, int status) {
        ::close(null_fd);
        throw Error(fmt::format("provisioning {} failed at step {} of {} (exit status {}): {}", profile.name,
                                step, total, status, what),
                    {fmt::format("the step's output is above; fix [provision] in {}", profile.file.string()),
                     fmt::format("sbx up {} runs the provisioning again (the VM stays up meanwhile)", profile.name)});
    };
    for (const auto& cmd : prov.run) {
        ++step;
        auto t = Clock::now();
        console::step("provision", fmt::format("[{}/{}] {}", step, total, cmd));
        std::fflush(stdout);
        // As root, with no stdin: a prompt must fail rather than wait forever.
        int status = ssh::run_command(target, {"sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive", "sh",
                                               "-c", cmd},
                                      null_fd);
        if (status != 0) {
            fail(cmd, status);
        }
        console::step("", fmt::format("[{}/{}] done", step, total), ms_since(t));
    }
    if (!prov.script.empty()) {
        ++step;
        auto t = Clock::now();
        console::step("provision", fmt::format("[{}/{}] script {}", step, total, prov.script.string()));
        std::fflush(stdout);
        int script_fd = ::open(prov.script.c_str(), O_RDONLY | O_CLOEXEC);
        if (script_fd < 0) {
            ::close(null_fd);
            throw_errno(fmt::format("cannot read {}", prov.script.string()), errno);
        }
        // The script arrives on stdin; it cannot read a terminal either.
        int status = ssh::run_command(target, {"sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive", "sh",
                                               "-s"},
                                      script_fd);
        ::close(script_fd);
        if (status != 0) {
            fail("script " + prov.script.string(), status);
        }
        console::step("", fmt::format("[{}/{}] done", step, total), ms_since(t));
    }
    ::close(null_fd);
    write_file_atomic(layout.provisioned(), provision_text(profile));
    console::step("provision", fmt::format("{} step{} done", total, total == 1 ? "" : "s"), ms_since(t0));
}

void down(const std::string& name, const DownOptions& options) {
    auto layout = existing_layout(name);
    auto t0 = Clock::now();
    // An `sbx up` holds its lock from before it spawns the supervisor, which takes its own
    // lock a moment later. A down in between is a down of that start: wait for the supervisor
    // (or for the up to give up) instead of answering "not running" while the VM boots.
    for (auto until = Clock::now() + std::chrono::seconds(10);
         !instance::supervisor_alive(layout) && instance::lock_held(layout.up_lock()) && Clock::now() < until;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Liveness first, then the state: a supervisor seen gone has written its last state, so
    // a stop that ends between the two reads is not mistaken for a dead supervisor.
    bool alive = instance::supervisor_alive(layout);
    auto s = instance::read_state(layout);
    // A supervisor that has just taken its lock writes its pid to state.json next.
    for (auto until = Clock::now() + std::chrono::seconds(5);
         alive && !is_our_supervisor(s.supervisor_pid, name) && Clock::now() < until;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        alive = instance::supervisor_alive(layout);
        s = instance::read_state(layout);
    }
    if (!alive) {
        if (s.status == "starting" || s.status == "running" || s.status == "stopping") {
            s.status = "stopped";
            s.stopped_at_ms = instance::now_ms();
            s.last_error = "its supervisor had died; state cleaned up by sbx down";
            instance::write_state(layout, s);
            fmt::print("{} was not running (its supervisor had died; state cleaned up)\n", name);
        } else {
            fmt::print("{} is not running\n", name);
        }
        return;
    }
    if (!is_our_supervisor(s.supervisor_pid, name)) {
        throw Error(fmt::format("{} is locked by a supervisor, but state.json names pid {} which is not it",
                                name, s.supervisor_pid),
                    {fmt::format("find it with: pgrep -af '_supervise {}'", name)});
    }
    auto offset = size_of(layout.events());
    fmt::print("Stopping {}{}\n", console::bold(name), options.force ? " (now)" : "");
    std::fflush(stdout);
    ::kill(s.supervisor_pid, options.force ? SIGUSR1 : SIGTERM);
    auto limit = options.force ? std::chrono::seconds(20) : powerdown_timeout() + std::chrono::seconds(30);
    auto deadline = Clock::now() + limit;
    while (instance::supervisor_alive(layout)) {
        if (Clock::now() > deadline) {
            fmt::print("  the supervisor did not finish in {}s; killing it (QEMU dies with it)\n", limit.count());
            ::kill(s.supervisor_pid, SIGKILL);
            auto until = Clock::now() + std::chrono::seconds(10);
            while (instance::supervisor_alive(layout) && Clock::now() < until) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            if (instance::supervisor_alive(layout)) {
                throw Error(fmt::format("could not stop {}", name),
                            {fmt::format("pgrep -af 'sbx-{}' shows what still runs", name)});
            }
            auto st = instance::read_state(layout);
            st.status = "stopped";
            st.stopped_at_ms = instance::now_ms();
            st.last_error = "killed by sbx down after the shutdown ladder stalled";
            instance::write_state(layout, st);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::string how;
    std::istringstream events(read_appended(layout.events(), offset));
    std::string line;
    while (std::getline(events, line)) {
        try {
            auto ev = json::parse(line);
            if (ev.value("kind", "") == "stopped") {
                how = ev.value("msg", "");
            }
        } catch (const json::exception&) {
        }
    }
    fmt::print("{} {} stopped{} in {}\n", console::green("✓"), name, how.empty() ? "" : " (" + how + ")",
               format_duration_ms(ms_since(t0)));
}

std::vector<InstanceInfo> list_instances() {
    std::vector<InstanceInfo> out;
    for (const auto& name : instance::list_instance_names(paths::vms_root())) {
        out.push_back(instance_info(name));
    }
    return out;
}

InstanceInfo instance_info(const std::string& name) {
    auto layout = existing_layout(name);
    InstanceInfo info;
    info.name = name;
    try {
        info.state = instance::read_state(layout);
        info.status = instance::effective_status(layout, info.state);
    } catch (const Error&) {
        info.status = "broken";
    }
    return info;
}

// netd's counters of the instance's current (or last) run. The file is rewritten in place,
// so a read can catch a write half done: read again.
std::optional<net::NetStats> egress_stats(const InstanceLayout& layout) {
    for (int i = 0; i < 3; ++i) {
        if (auto st = net::read_stats(layout.net_stats())) {
            return st;
        }
        std::error_code ec;
        if (!std::filesystem::exists(layout.net_stats(), ec)) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::nullopt;
}

std::uint64_t egress_allowed(const net::NetStats& st) {
    return st.counters.flows_allowed + st.counters.dns_allowed;
}
std::uint64_t egress_denied(const net::NetStats& st) {
    return st.counters.flows_denied + st.counters.dns_denied;
}

json to_json(const InstanceInfo& info) {
    json j = instance::to_json(info.state);
    if (auto st = egress_stats(InstanceLayout(paths::vms_root(), info.name))) {
        const auto& c = st->counters;
        j["egress"] = {{"allowed", egress_allowed(*st)}, {"denied", egress_denied(*st)},
                       {"flows_allowed", c.flows_allowed}, {"flows_denied", c.flows_denied},
                       {"dns_allowed", c.dns_allowed},     {"dns_denied", c.dns_denied},
                       {"malformed", c.malformed},         {"bytes_in", c.bytes_in},
                       {"bytes_out", c.bytes_out},         {"updated_ms", st->updated_ms},
                       {"tcp_open", st->runtime.tcp_open}, {"tcp_failed", st->runtime.tcp_failed},
                       {"udp_icmp_open", st->runtime.datagram_open},
                       {"datagram_dropped", st->runtime.datagram_dropped}};
        json by_reason = json::object();
        for (std::size_t i = 0; i < net::k_reasons; ++i) {
            if (c.denied_by_reason[i] > 0) {
                by_reason[std::string(net::to_string(static_cast<net::Reason>(i)))] = c.denied_by_reason[i];
            }
        }
        j["egress"]["denied_by_reason"] = by_reason;
    }
    j["name"] = info.name;
    j["status"] = info.status;
    j["recorded_status"] = info.state.status;
    if (info.status == "running" && info.state.ready_at_ms > 0) {
        j["uptime_ms"] = instance::now_ms() - info.state.ready_at_ms;
    }
    j["dir"] = InstanceLayout(paths::vms_root(), info.name).dir().string();
    return j;
}

void print_list(bool as_json) {
    auto all = list_instances();
    if (as_json) {
        json arr = json::array();
        for (const auto& i : all) {
            arr.push_back(to_json(i));
        }
        fmt::print("{}\n", arr.dump(2));
        return;
    }
    if (all.empty()) {
        fmt::print("no instances yet; `sbx up work` creates one\n");
        return;
    }
    fmt::print("{:<16} {:<9} {:<5} {:>4} {:>7} {:<16} {:<8} {}\n", "NAME", "STATUS", "ACCEL", "CPUS", "MEMORY",
               "SSH", "UPTIME", "EGRESS(allowed/denied)");
    for (const auto& i : all) {
        const auto& s = i.state;
        bool up = i.status == "running";
        std::string ssh = up ? fmt::format("127.0.0.1:{}", s.ssh_port) : "-";
        std::string uptime = up && s.ready_at_ms ? format_duration_ms(instance::now_ms() - s.ready_at_ms) : "-";
        std::string status = i.status;
        std::string egress = "-";
        if (up) {
            if (auto st = egress_stats(InstanceLayout(paths::vms_root(), i.name))) {
                egress = fmt::format("{}/{}", egress_allowed(*st), egress_denied(*st));
            }
        }
        fmt::print("{:<16} {:<9} {:<5} {:>4} {:>7} {:<16} {:<8} {}\n", i.name, status,
                   s.accel.empty() ? "-" : s.accel, s.cpus ? std::to_string(s.cpus) : "-",
                   s.memory ? format_size(s.memory) : "-", ssh, uptime, egress);
    }
    for (const auto& i : all) {
        if (i.status == "stale") {
            fmt::print("\n{}: its supervisor (pid {}) is gone; `sbx up {}` restarts it, `sbx down {}` clears it\n",
                       i.name, i.state.supervisor_pid, i.name, i.name);
        }
    }
}

void print_status(const std::string& name, bool as_json) {
    auto info = instance_info(name);
    if (as_json) {
        fmt::print("{}\n", to_json(info).dump(2));
        return;
    }
    const auto& s = info.state;
    auto layout = InstanceLayout(paths::vms_root(), name);
    fmt::print("{:<12} {}\n", "name:", name);
    fmt::print("{:<12} {}\n", "status:", info.status);
    if (!s.profile_file.empty()) {
        fmt::print("{:<12} {}\n", "profile:", s.profile_file);
    }
    if (!s.image.empty()) {
        fmt::print("{:<12} {}\n", "image:", s.image);
    }
    if (s.cpus) {
        fmt::print("{:<12} {} ({} cpus, {} memory)\n", "vm:", s.accel, s.cpus, format_size(s.memory));
    }
    if (info.status == "running") {
        fmt::print("{:<12} {}@127.0.0.1:{}\n", "ssh:", s.ssh_user, s.ssh_port);
        for (const auto& f : s.forwards) {
            fmt::print("{:<12} {}\n", "forward:", f);
        }
        for (const auto& sh : s.shares) {
            fmt::print("{:<12} {}\n", "share:", sh);
        }
        fmt::print("{:<12} supervisor {}, netd {}, qemu {}\n", "pids:", s.supervisor_pid, s.netd_pid,
                   s.qemu_pid);
        if (s.ready_at_ms) {
            fmt::print("{:<12} {}\n", "uptime:", format_duration_ms(instance::now_ms() - s.ready_at_ms));
        }
    }
    if (!s.network.empty()) {
        fmt::print("{:<12} {}\n", "network:", s.network);
    }
    if (auto st = egress_stats(layout)) {
        const auto& c = st->counters;
        fmt::print("{:<12} {} allowed, {} denied (connections {}/{}, DNS {}/{}){}\n", "egress:", egress_allowed(*st),
                   egress_denied(*st), c.flows_allowed, c.flows_denied, c.dns_allowed, c.dns_denied,
                   info.status == "running" ? "" : ", last run");
        if (egress_denied(*st) > 0) {
            fmt::print("{:<12} sbx net log {}\n", "denials:", name);
        }
    }
    if (!s.last_error.empty() && info.status != "running") {
        fmt::print("{:<12} {}\n", "last stop:", s.last_error);
    }
    fmt::print("{:<12} {}\n", "folder:", layout.dir().string());
}

ssh::Target ssh_target(const std::string& name) {
    auto layout = existing_layout(name);
    auto s = instance::read_state(layout);
    auto status = instance::effective_status(layout, s);
    if (status != "running") {
        throw Error(fmt::format("{} is not running ({})", name, status),
                    {fmt::format("sbx up {} starts it", name)}, ExitCode::not_running);
    }
    ssh::Target t;
    t.port = s.ssh_port;
    t.user = s.ssh_user;
    t.identity = layout.client_key();
    t.host_key_pub = layout.host_key_pub();
    return t;
}

void show_log(const std::string& name, bool serial, bool follow) {
    auto layout = existing_layout(name);
    auto path = serial ? layout.serial_log() : layout.supervisor_log();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !follow) {
        fmt::print(stderr, "{} has no {} yet\n", name, serial ? "serial log" : "log");
        return;
    }
    std::uint64_t offset = 0;
    char buf[65536];
    for (;;) {
        auto size = size_of(path);
        if (size < offset) {
            offset = 0;  // rewritten (a new boot's serial log)
        }
        std::ifstream in(path, std::ios::binary);
        if (in) {
            in.seekg(static_cast<std::streamoff>(offset));
            while (in) {
                in.read(buf, sizeof buf);
                auto n = in.gcount();
                if (n <= 0) {
                    break;
                }
                std::fwrite(buf, 1, static_cast<std::size_t>(n), stdout);
                offset += static_cast<std::uint64_t>(n);
            }
            std::fflush(stdout);
        }
        if (!follow) {
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

void remove_instance(const std::string& name, bool force) {
    auto layout = existing_layout(name);
    if (instance::supervisor_alive(layout)) {
        if (!force) {
            auto status = instance::effective_status(layout, instance::read_state(layout));
            throw Error(fmt::format("{} is {}", name, status),
                        {fmt::format("stop it first with sbx down {}, or use sbx rm --force {}", name, name)},
                        ExitCode::failure);
        }
        down(name, DownOptions{true});
    } else if (force && instance::lock_held(layout.up_lock())) {
        down(name, DownOptions{true});  // an `sbx up` is about to start its supervisor
    }
    auto lock = instance::FileLock::try_acquire(layout.up_lock());
    if (!lock && force) {
        // `rm --force` of a VM that was starting: its `sbx up` lets go of the lock as soon as
        // it sees the supervisor gone.
        lock = wait_for_lock(layout.up_lock(), std::chrono::seconds(15),
                             fmt::format("  waiting for the `sbx up {}` in progress to end ...", name));
    }
    if (!lock) {
        throw Error(fmt::format("an sbx up of {} is in progress", name),
                    {"wait for it, then retry", fmt::format("sbx rm --force {} stops it and removes {}", name, name)});
    }
    // The guest's work in review shares exists nowhere else until it is applied.
    std::vector<std::string> pending;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(layout.dir() / "shares", ec)) {
        instance::ShareLayout sl{entry.path()};
        if (share::is_prepared(sl) && share::has_pending_changes(sl)) {
            pending.push_back(entry.path().filename().string());
        }
    }
    if (!pending.empty() && !force) {
        std::sort(pending.begin(), pending.end());
        throw Error(fmt::format("{} has review changes nobody applied yet (share {}); sbx rm would lose them",
                                name, fmt::join(pending, ", ")),
                    {fmt::format("see them with sbx diff {}, bring them back with sbx apply {}", name, name),
                     fmt::format("sbx rm --force {} deletes them with the instance", name)},
                    ExitCode::failure);
    }
    std::filesystem::remove_all(layout.dir());
    fmt::print("removed {} ({})\n", name, layout.dir().string());
}

}  // namespace sbx::vm
