#include "sbx/vm/control.hpp"

#include "sbx/image/image.hpp"
#include "sbx/util/console.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/process.hpp"
#include "sbx/util/strings.hpp"
#include "sbx/vm/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

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

void up(const profile::Profile& profile, const UpOptions& options) {
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
            print_summary(layout, s, -1);
            return;
        }
        if (s.status == "starting" && !options.fresh) {
            // Its `sbx up` was interrupted: follow the start in progress instead.
            fmt::print("  a start of {} is in progress; following it\n", profile.name);
            follow_start(layout, s.run_id, 0, nullptr, limit);
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
    if (options.fresh) {
        std::error_code ec;
        std::filesystem::remove(layout.disk(), ec);
        console::step("fresh", "discarded the VM's disk");
    }

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
    print_summary(layout, instance::read_state(layout), result.ready.value("ms", ms_since(t0)));
}

void down(const std::string& name, const DownOptions& options) {
    auto layout = existing_layout(name);
    auto t0 = Clock::now();
    auto s = instance::read_state(layout);
    if (!instance::supervisor_alive(layout)) {
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

json to_json(const InstanceInfo& info) {
    json j = instance::to_json(info.state);
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
    fmt::print("{:<16} {:<9} {:<5} {:>4} {:>7} {:<16} {}\n", "NAME", "STATUS", "ACCEL", "CPUS", "MEMORY",
               "SSH", "UPTIME");
    for (const auto& i : all) {
        const auto& s = i.state;
        bool up = i.status == "running";
        std::string ssh = up ? fmt::format("127.0.0.1:{}", s.ssh_port) : "-";
        std::string uptime = up && s.ready_at_ms ? format_duration_ms(instance::now_ms() - s.ready_at_ms) : "-";
        std::string status = i.status;
        fmt::print("{:<16} {:<9} {:<5} {:>4} {:>7} {:<16} {}\n", i.name, status, s.accel.empty() ? "-" : s.accel,
                   s.cpus ? std::to_string(s.cpus) : "-", s.memory ? format_size(s.memory) : "-", ssh, uptime);
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
        fmt::print("{:<12} supervisor {}, qemu {}\n", "pids:", s.supervisor_pid, s.qemu_pid);
        if (s.ready_at_ms) {
            fmt::print("{:<12} {}\n", "uptime:", format_duration_ms(instance::now_ms() - s.ready_at_ms));
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
            throw Error(fmt::format("{} is running", name),
                        {fmt::format("stop it first with sbx down {}, or use sbx rm --force {}", name, name)},
                        ExitCode::failure);
        }
        down(name, DownOptions{true});
    }
    auto lock = instance::FileLock::try_acquire(layout.up_lock());
    if (!lock) {
        throw Error(fmt::format("an sbx up of {} is in progress", name), {"wait for it, then retry"});
    }
    std::filesystem::remove_all(layout.dir());
    fmt::print("removed {} ({})\n", name, layout.dir().string());
}

}  // namespace sbx::vm
