#include "sbx/vm/supervisor.hpp"

#include "sbx/host/accel.hpp"
#include "sbx/image/image.hpp"
#include "sbx/instance/layout.hpp"
#include "sbx/instance/state.hpp"
#include "sbx/image/guest.hpp"
#include "sbx/net/net_log.hpp"
#include "sbx/net/netd.hpp"
#include "sbx/share/snapshot.hpp"
#include "sbx/plan/launch_plan.hpp"
#include "sbx/profile/profile.hpp"
#include "sbx/ssh/ssh.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/process.hpp"
#include "sbx/util/strings.hpp"
#include "sbx/vm/qmp.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>

namespace sbx::vm {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

std::chrono::seconds env_seconds(const char* name, std::chrono::seconds fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) {
        return fallback;
    }
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (end == v || *end != '\0' || n <= 0 || n > 86400) {
        return fallback;
    }
    return std::chrono::seconds(n);
}

// The signals that ask the supervisor to stop (SIGUSR1: at once). Blocked from the first
// moment, so that `sbx down` arriving while the supervisor is still starting is handled as
// a stop of the start, never as a silent death that leaves "starting" behind.
sigset_t stop_signals() {
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
        sigaddset(&mask, s);
    }
    return mask;
}

std::int64_t ms_since(Clock::time_point t0) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

int pick_free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw_errno("socket", errno);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        int err = errno;
        ::close(fd);
        throw_errno("cannot find a free port on 127.0.0.1", err);
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

// A child's stdout or stderr: read without blocking, logged line by line with a tag,
// the last lines kept for error messages.
class OutputPipe {
public:
    OutputPipe(std::string tag, int fd) : m_tag(std::move(tag)), m_fd(fd) {
        ::fcntl(m_fd, F_SETFL, ::fcntl(m_fd, F_GETFL) | O_NONBLOCK);
    }
    OutputPipe(const OutputPipe&) = delete;
    OutputPipe& operator=(const OutputPipe&) = delete;
    ~OutputPipe() {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
    }
    int fd() const { return m_fd; }

    void drain() {
        if (m_fd < 0) {
            return;
        }
        char buf[4096];
        for (;;) {
            ssize_t n = ::read(m_fd, buf, sizeof buf);
            if (n > 0) {
                m_pending.append(buf, static_cast<std::size_t>(n));
                std::size_t nl;
                while ((nl = m_pending.find('\n')) != std::string::npos) {
                    line(m_pending.substr(0, nl));
                    m_pending.erase(0, nl + 1);
                }
                if (m_pending.size() > 8192) {
                    line(m_pending);
                    m_pending.clear();
                }
                continue;
            }
            if (n == 0) {
                if (!m_pending.empty()) {
                    line(m_pending);
                    m_pending.clear();
                }
                ::close(m_fd);
                m_fd = -1;
            }
            return;  // EAGAIN or error
        }
    }

    std::string tail() const {
        std::string out;
        for (const auto& l : m_last) {
            out += l + "\n";
        }
        return out;
    }

private:
    void line(const std::string& l) {
        spdlog::info("{} {}", m_tag, l);
        m_last.push_back(l);
        if (m_last.size() > 20) {
            m_last.pop_front();
        }
    }

    std::string m_tag;
    int m_fd;
    std::string m_pending;
    std::deque<std::string> m_last;
};

// A child the supervisor runs (QEMU, netd): the process, its tagged output, how it ended.
struct ManagedChild {
    explicit ManagedChild(std::string n) : name(std::move(n)) {}
    std::string name;  // "qemu", "netd": the log tag
    Child proc;
    int exit_code = -1;
    std::unique_ptr<OutputPipe> out;
    std::unique_ptr<OutputPipe> err;

    bool running() const { return proc.pid > 0; }
    void drain() {
        if (out) {
            out->drain();
        }
        if (err) {
            err->drain();
        }
    }
    // True once it has exited (and was reaped); never blocks.
    bool exited() {
        if (proc.pid <= 0) {
            return true;
        }
        if (auto code = try_wait_child(proc)) {
            exit_code = *code;
            proc.pid = -1;
            drain();
            return true;
        }
        return false;
    }
    std::string tail() const { return err ? err->tail() : std::string(); }
    void add_pollfds(std::vector<pollfd>& fds) const {
        if (proc.pid > 0) {
            fds.push_back({proc.pidfd, POLLIN, 0});
        }
        for (const auto* p : {out.get(), err.get()}) {
            if (p && p->fd() >= 0) {
                fds.push_back({p->fd(), POLLIN, 0});
            }
        }
    }
    // SIGTERM, a bounded wait, then SIGKILL and reap.
    void stop(std::chrono::milliseconds grace) {
        if (exited()) {
            return;
        }
        ::kill(proc.pid, SIGTERM);
        auto until = Clock::now() + grace;
        while (Clock::now() < until) {
            if (exited()) {
                return;
            }
            drain();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ::kill(proc.pid, SIGKILL);
        exit_code = wait_child(proc);
        proc.pid = -1;
        drain();
    }
};

// Starts argv with a clean environment, its stdout and stderr logged as "<name>[stdout]".
void spawn_managed(ManagedChild& c, const std::vector<std::string>& argv, const std::filesystem::path& cwd) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        throw_errno("pipe", errno);
    }
    if (::pipe2(err, O_CLOEXEC) != 0) {
        int e = errno;
        ::close(out[0]);
        ::close(out[1]);
        throw_errno("pipe", e);
    }
    SpawnSpec spec;
    spec.argv = argv;
    spec.env = default_child_env();
    spec.stdout_fd = out[1];
    spec.stderr_fd = err[1];
    spec.cwd = cwd;
    spdlog::info("starting {}: {}", c.name, fmt::join(argv, " "));
    try {
        c.proc = spawn(spec);
    } catch (...) {
        ::close(out[0]); ::close(out[1]); ::close(err[0]); ::close(err[1]);
        throw;
    }
    ::close(out[1]);
    ::close(err[1]);
    c.exit_code = -1;
    c.out = std::make_unique<OutputPipe>(c.name + "[stdout]", out[0]);
    c.err = std::make_unique<OutputPipe>(c.name + "[stderr]", err[0]);
}

// "exited with status 1", "was killed by signal 9 (Killed)": wait_child reports 128+N for a signal.
std::string describe_exit(int code) {
    if (code > 128 && code < 128 + 65) {
        return fmt::format("was killed by signal {} ({})", code - 128, ::strsignal(code - 128));
    }
    return fmt::format("exited with status {}", code);
}

std::string describe_policy(const net::Policy& p) {
    std::string mode = p.mode == net::Mode::open ? "open" : p.mode == net::Mode::none ? "none" : "allowlist";
    std::string out = mode;
    if (p.mode == net::Mode::allowlist) {
        out += fmt::format(" ({} rule{}", p.rules.size(), p.rules.size() == 1 ? "" : "s");
        if (!p.host_ports.empty()) {
            out += fmt::format(", host ports {}", fmt::join(p.host_ports, ","));
        }
        out += ")";
    }
    if (p.learn) {
        out += ", learn mode";
    }
    return out;
}

class Supervisor {
public:
    Supervisor(const SuperviseOptions& opts, instance::InstanceLayout layout)
        : m_opts(opts), m_layout(std::move(layout)) {}

    int run();

private:
    void event(const std::string& kind, json fields = json::object()) {
        try {
            instance::append_event(m_layout, m_opts.run_id, kind, std::move(fields));
        } catch (const std::exception& e) {
            spdlog::error("cannot write event: {}", e.what());
        }
    }
    void step(const std::string& name, const std::string& msg, Clock::time_point t0) {
        spdlog::info("{}: {}", name, msg);
        event("step", {{"step", name}, {"msg", msg}, {"ms", ms_since(t0)}});
    }
    void save_state() { instance::write_state(m_layout, m_state); }

    void prepare();
    void prepare_review_copies();
    void start_shares();
    void stop_shares() {
        for (auto& c : m_shares) {
            c->stop(std::chrono::seconds(2));
        }
    }
    // The first share server that has exited, if any.
    ManagedChild* dead_share() {
        for (auto& c : m_shares) {
            if (c->exited()) {
                return c.get();
            }
        }
        return nullptr;
    }
    void start_netd();
    // Waits a bounded time for ready() while draining `c`'s output; died() reports its exit
    // (it throws). `what` names the child in the timeout error.
    template <class Ready, class Died>
    void wait_ready(ManagedChild& c, const std::string& what, Ready&& ready, Died&& died);
    // A helper the VM cannot run without has exited: stop the VM at once and mark it failed.
    void fail_closed(const std::string& why, const ManagedChild& c);
    void start_qemu();
    bool wait_for_ssh();  // false: stopped by a signal while starting
    // Hints for a boot that never reached SSH: what QEMU says its vCPUs are doing and
    // whether the guest ever sent netd a frame. The whole register dump goes to the log.
    std::vector<std::string> stall_hints();
    void watch();
    // Stops QEMU, netd and the share servers, then records `final_status` ("stopped", or
    // "failed" from fail_closed) with `why` in one save: the state never says "stopped" for a
    // VM that failed.
    void shutdown(bool force, const std::string& why, const char* final_status = "stopped");
    void drain_outputs() {
        m_qemu.drain();
        m_netd.drain();
        for (auto& c : m_shares) {
            c->drain();
        }
    }
    bool qemu_exited() { return m_qemu.exited(); }
    // netd gone means the guest has no network and no forwards: the VM must not go on.
    [[noreturn]] void netd_died(const std::string& when) {
        throw Error(fmt::format("netd (the egress filter) {} {}", describe_exit(m_netd.exit_code), when),
                    {fmt::format("netd said:\n{}", m_netd.tail()),
                     fmt::format("the whole log: sbx logs {}", m_layout.name())});
    }
    // Handles pending signals; returns 0 (none), 1 (graceful stop) or 2 (force stop).
    int take_signals();
    std::string qemu_tail() const { return m_qemu.tail(); }

    SuperviseOptions m_opts;
    instance::InstanceLayout m_layout;
    instance::State m_state;
    profile::Profile m_profile;
    host::AccelChoice m_accel;
    std::uint64_t m_tsc_khz = 0;
    image::ImageFiles m_image;
    plan::LaunchPlan m_plan;
    ManagedChild m_qemu{"qemu"};
    ManagedChild m_netd{"netd"};
    std::vector<std::unique_ptr<ManagedChild>> m_shares;
    QmpClient m_qmp;
    int m_sigfd = -1;
    Clock::time_point m_t0 = Clock::now();
};

int Supervisor::take_signals() {
    int result = 0;
    signalfd_siginfo si;
    while (::read(m_sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGUSR1) {
            result = 2;
        } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP) {
            result = std::max(result, 1);
        }
    }
    return result;
}

void Supervisor::prepare() {
    auto t = Clock::now();
    m_profile = profile::load_profile_file(m_opts.profile_file);
    const char* env_accel = std::getenv("SBX_ACCEL");
    auto facts = host::probe_host_facts();
    m_tsc_khz = facts.tsc_khz;
    m_accel = host::choose_accel(facts, m_profile.vm.accel,
                                 env_accel ? std::optional<std::string>(env_accel) : std::nullopt);
    spdlog::info("accel: {}", m_accel.reason);
    m_image = image::image_files(paths::images_root(), m_profile.vm.image);
    auto info = image::read_image_info(m_image);
    if (!info) {
        throw Error(fmt::format("image {} is not built", m_profile.vm.image),
                    {fmt::format("sbx image build {}", m_profile.vm.image)});
    }
    std::string image_id = fmt::format("{}@{}", info->fingerprint, info->built_at);
    for (std::size_t i = 0; i < m_profile.shares.size(); ++i) {
        // Debian's cloud kernel is built without 9p (CONFIG_NET_9P is not set).
        if (m_profile.shares[i].type == profile::ShareType::ninep &&
            info->kernel_package.find("-cloud-") != std::string::npos) {
            throw Error(fmt::format("share[{}] is a 9p share, but the kernel of image {} ({}) has no 9p support",
                                    i, m_profile.vm.image, info->kernel_package),
                        {"use type = \"virtiofs\" (the default) for this share",
                         "or an image with Debian's generic kernel: image = \"debian-12-generic\" in [vm]"},
                        ExitCode::config);
        }
    }

    std::error_code ec;
    if (!std::filesystem::exists(m_layout.client_key(), ec)) {
        ssh::generate_keypair(m_layout.client_key(), fmt::format("sbx@{}", m_layout.name()));
    }
    if (!std::filesystem::exists(m_layout.host_key(), ec)) {
        ssh::generate_keypair(m_layout.host_key(), fmt::format("sbx-guest-{}", m_layout.name()));
    }
    step("keys", "ssh keys ready", t);

    t = Clock::now();
    m_state.ssh_port = pick_free_port();
    std::error_code exe_ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", exe_ec);
    if (exe_ec) {
        throw Error("cannot find the sbx binary (/proc/self/exe) to start netd");
    }
    m_plan = plan::make_launch_plan(
        {m_profile, m_accel, m_layout, m_image, m_state.ssh_port, m_tsc_khz, exe});
    m_state.network = describe_policy(m_plan.netd.policy);
    m_state.shares.clear();
    for (const auto& e : m_plan.shares) {
        const auto& sh = m_profile.shares[e.index];
        m_state.shares.push_back(fmt::format("{} -> {} ({}, {}{})", sh.host.string(), e.guest, e.type,
                                             profile::to_string(sh.mode),
                                             sh.hide.empty() ? "" : fmt::format(", {} hidden", fmt::join(sh.hide, " "))));
    }
    t = Clock::now();
    image::Seed seed;
    seed.hostname = m_layout.name();
    seed.user = m_profile.ssh.user;
    seed.authorized_key = ssh::read_public_key(m_layout.client_key_pub());
    seed.host_key = read_file(m_layout.host_key());
    seed.host_key_pub = ssh::read_public_key(m_layout.host_key_pub());
    seed.uid = image::guest::k_user_uid;
    for (const auto& e : m_plan.shares) {
        seed.mounts.push_back({e.type, e.tag, e.guest, e.read_only});
    }
    seed.id = image::seed_id(seed);
    image::write_seed(m_layout.seed(), seed);
    step("seed", m_plan.shares.empty() ? std::string("seed ready")
                                       : fmt::format("seed ready ({} share{})", m_plan.shares.size(),
                                                     m_plan.shares.size() == 1 ? "" : "s"),
         t);
    prepare_review_copies();

    t = Clock::now();

    m_state.forwards.clear();
    for (const auto& f : m_plan.forwards) {
        m_state.forwards.push_back(f.describe());
    }
    bool have_disk = std::filesystem::exists(m_layout.disk(), ec);
    if (have_disk && !m_state.image_id.empty() && m_state.image_id != image_id) {
        // The overlay's blocks only make sense over the exact base it was created on.
        throw Error(fmt::format("the disk of {} was made from an earlier build of image {}, which has "
                                "been rebuilt or replaced since",
                                m_layout.name(), m_profile.vm.image),
                    {fmt::format("sbx up {} --fresh starts over from the new image (the VM's disk is discarded)",
                                 m_layout.name())},
                    ExitCode::config);
    }
    if (!have_disk) {
        m_state.image_id = image_id;
        auto r = run_command(m_plan.create_disk_argv, {}, std::chrono::seconds(60));
        if (r.exit_code != 0) {
            throw Error(fmt::format("qemu-img could not create {}:\n{}", m_layout.disk().string(), r.output));
        }
        step("disk", fmt::format("created {} ({} over {})", m_layout.disk().filename().string(),
                                 format_size(m_profile.vm.disk), m_profile.vm.image), t);
    } else {
        step("disk", "reusing the VM's disk", t);
    }
    std::string known = fmt::format("[127.0.0.1]:{} {}\n", m_state.ssh_port, seed.host_key_pub);
    write_file_atomic(m_layout.known_hosts(), known);
}

// Review shares: the guest works on a copy in the instance folder. A copy with changes
// nobody applied yet is kept as it is (they are not lost); otherwise the copy is made anew
// from the host folder, so the guest starts from what the host has now.
void Supervisor::prepare_review_copies() {
    for (const auto& e : m_plan.shares) {
        if (!e.review) {
            continue;
        }
        auto t = Clock::now();
        const auto& sh = m_profile.shares[e.index];
        instance::ShareLayout sl{m_layout.share_dir(e.index)};
        if (share::is_prepared(sl) && share::has_pending_changes(sl)) {
            step("share", fmt::format("share {} ({}): kept the copy with changes not applied yet (sbx diff {})",
                                      e.index, sh.guest, m_layout.name()),
                 t);
            continue;
        }
        share::PrepareOptions o;
        o.discard_pending = false;
        auto r = share::prepare(sh.host, sh.hide, sh.guest, sl, o);
        step("share", fmt::format("share {} ({}): copied {} files, {} ({} hidden paths left out) for review",
                                  e.index, sh.guest, r.files, format_size(r.bytes), r.hidden),
             t);
    }
}

// virtiofs shares: one `sbx _share` (virtiofsd) each, ready when its socket exists.
void Supervisor::start_shares() {
    for (const auto& e : m_plan.shares) {
        if (e.export_argv.empty()) {
            continue;
        }
        auto t = Clock::now();
        auto sock = m_layout.share_socket(e.index);
        std::error_code ec;
        std::filesystem::remove(sock, ec);
        auto& c = *m_shares.emplace_back(std::make_unique<ManagedChild>(fmt::format("share{}", e.index)));
        spawn_managed(c, e.export_argv, m_layout.dir());
        wait_ready(
            c, fmt::format("the server of share {}", e.index),
            // The socket appears before virtiofsd runs; the helper's first line says the
            // namespace and mounts are in place.
            [&] { return net::netd_socket_ready(sock) && c.tail().find("share: ") != std::string::npos; },
            [&] {
                throw Error(fmt::format("the server of share {} ({}) {} while starting", e.index, e.served.string(),
                                        describe_exit(c.exit_code)),
                            {fmt::format("it said:\n{}", c.tail())});
            });
        step("share", fmt::format("share {}: {} -> {} (virtiofs{})", e.index, e.served.string(), e.guest,
                                  e.read_only ? ", read-only" : ""),
             t);
    }
}

void Supervisor::start_netd() {
    auto t = Clock::now();
    std::error_code ec;
    // A socket left by an earlier run must not look like this netd being ready.
    std::filesystem::remove(m_layout.net_socket(), ec);
    net::write_netd_config(m_layout.netd_config(), m_plan.netd);
    spawn_managed(m_netd, m_plan.netd_argv, m_layout.dir());
    m_state.netd_pid = m_netd.proc.pid;
    save_state();
    wait_ready(
        m_netd, "netd (the egress filter)", [&] { return net::netd_socket_ready(m_layout.net_socket()); },
        [&] { netd_died("while starting"); });
    step("network", fmt::format("egress filter ready: {}", m_state.network), t);
}

template <class Ready, class Died>
void Supervisor::wait_ready(ManagedChild& c, const std::string& what, Ready&& ready, Died&& died) {
    auto deadline = Clock::now() + std::chrono::seconds(15);
    for (;;) {
        c.drain();
        if (c.exited()) {
            died();
        }
        if (ready()) {
            return;
        }
        if (Clock::now() > deadline) {
            throw Error(fmt::format("{} did not become ready within 15s", what),
                        {fmt::format("{} said:\n{}", c.name, c.tail())}, ExitCode::timeout);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

void Supervisor::fail_closed(const std::string& why, const ManagedChild& c) {
    spdlog::error("{}; {} said:\n{}", why, c.name, c.tail());
    shutdown(true, why, "failed");
    event("error", {{"msg", why}, {"hints", json::array({fmt::format("{} said:\n{}", c.name, c.tail())})}});
}

void Supervisor::start_qemu() {
    auto t = Clock::now();
    std::error_code ec;
    std::filesystem::remove(m_layout.qmp_socket(), ec);
    // Each start gets a fresh serial log, so its tail is about this boot.
    std::filesystem::remove(m_layout.serial_log(), ec);
    spawn_managed(m_qemu, m_plan.qemu_argv, m_layout.dir());
    m_state.qemu_pid = m_qemu.proc.pid;
    m_state.accel = m_plan.accel;
    save_state();

    // QMP: the socket appears once QEMU has parsed its options.
    auto deadline = Clock::now() + std::chrono::seconds(30);
    for (;;) {
        if (qemu_exited()) {
            throw Error(fmt::format("QEMU exited with status {} while starting", m_qemu.exit_code),
                        {fmt::format("QEMU said:\n{}", qemu_tail())});
        }
        try {
            m_qmp.connect(m_layout.qmp_socket(), Clock::now() + std::chrono::seconds(5));
            break;
        } catch (const Error& e) {
            if (Clock::now() > deadline) {
                throw Error(fmt::format("QEMU's QMP socket did not answer within 30s: {}", e.what()),
                            {fmt::format("QEMU said:\n{}", qemu_tail())}, ExitCode::timeout);
            }
        }
        drain_outputs();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    step("qemu", fmt::format("QEMU running (pid {}, {})", m_qemu.proc.pid, m_plan.accel), t);
}

bool Supervisor::wait_for_ssh() {
    auto t = Clock::now();
    auto limit = boot_timeout(m_plan.accel == "kvm");
    auto deadline = t + limit;
    ssh::Target target;
    target.port = m_state.ssh_port;
    target.user = m_profile.ssh.user;
    target.identity = m_layout.client_key();
    target.host_key_pub = m_layout.host_key_pub();
    // Under TCG the first banner and key exchange take seconds; a short timeout never succeeds.
    target.connect_timeout = std::chrono::milliseconds(10000);
    std::string last;
    for (;;) {
        if (int sig = take_signals()) {
            shutdown(sig == 2, "stopped while booting");
            return false;
        }
        drain_outputs();
        m_qmp.pump();
        if (qemu_exited()) {
            throw Error(fmt::format("QEMU exited with status {} before the guest was ready", m_qemu.exit_code),
                        {fmt::format("the guest's last console lines:\n{}", tail_file(m_layout.serial_log(), 15)),
                         fmt::format("QEMU said:\n{}", qemu_tail())});
        }
        if (m_netd.exited()) {
            netd_died("before the guest was ready");
        }
        if (ManagedChild* dead = dead_share()) {
            throw Error(fmt::format("the server of {} (virtiofsd) {} before the guest was ready", dead->name,
                                    describe_exit(dead->exit_code)),
                        {fmt::format("it said:\n{}", dead->tail())});
        }
        last = ssh::probe(target);
        if (int sig = take_signals()) {
            // A stop asked for while the probe ran (it can take seconds) still ends the
            // start: never report ready to an `sbx up` whose VM an `sbx down` is stopping.
            shutdown(sig == 2, "stopped while booting");
            return false;
        }
        if (last.empty()) {
            break;
        }
        if (Clock::now() > deadline) {
            std::vector<std::string> hints{
                fmt::format("the guest's last console lines:\n{}", tail_file(m_layout.serial_log(), 20))};
            for (auto& h : stall_hints()) {
                hints.push_back(std::move(h));
            }
            hints.emplace_back("a slow host may need more time: set SBX_BOOT_TIMEOUT=<seconds>");
            throw Error(fmt::format("the guest did not answer SSH within {}s (last attempt: {})",
                                    limit.count(), last),
                        std::move(hints), ExitCode::timeout);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    step("ssh", fmt::format("ssh ready on 127.0.0.1:{}", m_state.ssh_port), t);
    return true;
}

std::vector<std::string> Supervisor::stall_hints() {
    std::vector<std::string> hints;
    if (m_qmp.connected()) {
        try {
            auto deadline = Clock::now() + std::chrono::seconds(3);
            auto status = m_qmp.execute("query-status", json::object(), deadline);
            auto regs = m_qmp.execute("human-monitor-command", {{"command-line", "info registers -a"}}, deadline);
            std::string text = regs.is_string() ? regs.get<std::string>() : std::string();
            spdlog::warn("the guest did not answer SSH; QEMU's view of its vCPUs:\n{}", text);
            std::string status_name = status.is_object() && status.contains("status") && status["status"].is_string()
                                          ? status["status"].get<std::string>()
                                          : "in an unknown state";
            std::string vcpus = summarize_vcpus(text);
            hints.push_back(fmt::format("QEMU reports the guest {}{}{} (the registers are in sbx logs {})",
                                        status_name, vcpus.empty() ? "" : ": ", vcpus, m_layout.name()));
        } catch (const Error& e) {
            spdlog::warn("could not ask QEMU about the guest's vCPUs: {}", e.what());
        }
    }
    if (auto st = net::read_stats(m_layout.net_stats())) {
        hints.push_back(st->counters.frames_in == 0
                            ? std::string("the guest has sent netd no network frame: it has not brought its network up")
                            : fmt::format("netd has had {} frames from the guest and sent it {}",
                                          st->counters.frames_in, st->counters.frames_out));
    }
    return hints;
}

void Supervisor::watch() {
    for (;;) {
        std::vector<pollfd> fds;
        fds.push_back({m_sigfd, POLLIN, 0});
        m_qemu.add_pollfds(fds);
        m_netd.add_pollfds(fds);
        for (const auto& c : m_shares) {
            c->add_pollfds(fds);
        }
        if (m_qmp.connected()) {
            fds.push_back({m_qmp.fd(), POLLIN, 0});
        }
        int r = ::poll(fds.data(), fds.size(), 5000);
        if (r < 0 && errno != EINTR) {
            throw_errno("poll", errno);
        }
        drain_outputs();
        if (m_qmp.connected() && !m_qmp.pump()) {
            m_qmp.close();
        }
        while (auto ev = m_qmp.next_event()) {
            spdlog::info("qmp event: {}", ev->dump());
        }
        if (int sig = take_signals()) {
            shutdown(sig == 2, sig == 2 ? "stopped (forced)" : "stopped");
            return;
        }
        if (ManagedChild* dead = dead_share(); dead && !qemu_exited()) {
            // A share without its server hangs the guest's file operations; stop the VM.
            fail_closed(fmt::format("the server of {} (virtiofsd) {}; the VM was stopped", dead->name,
                                    describe_exit(dead->exit_code)),
                        *dead);
            return;
        }
        if (m_netd.exited() && !qemu_exited()) {
            // Fail closed: without netd the guest has no filter; stop it now rather than
            // leave a VM whose network state nobody enforces.
            fail_closed(fmt::format("netd (the egress filter) {}; the VM was stopped (fail closed)",
                                    describe_exit(m_netd.exit_code)),
                        m_netd);
            return;
        }
        if (qemu_exited()) {
            m_netd.stop(std::chrono::seconds(2));
            stop_shares();
            // Exit 0 is a power-off from inside the guest; anything else (a crash, a kill -9)
            // is a failure, and says how QEMU ended.
            bool clean = m_qemu.exit_code == 0;
            m_state.status = clean ? "stopped" : "failed";
            m_state.stopped_at_ms = instance::now_ms();
            std::string said = qemu_tail();
            m_state.last_error = clean ? "the guest powered off"
                                       : fmt::format("QEMU {}; the VM was stopped{}", describe_exit(m_qemu.exit_code),
                                                     said.empty() ? "" : ": " + said);
            save_state();
            spdlog::info("QEMU exited ({}): {}", m_qemu.exit_code, m_state.last_error);
            event("stopped", {{"msg", m_state.last_error}});
            return;
        }
    }
}

void Supervisor::shutdown(bool force, const std::string& why, const char* final_status) {
    auto t = Clock::now();
    m_state.status = "stopping";
    save_state();
    event("stopping", {{"force", force}});
    // A second `sbx down --force` while the guest is still powering off cuts the wait short.
    bool forced_later = false;
    auto wait_exit = [&](std::chrono::milliseconds limit) {
        auto until = Clock::now() + limit;
        while (Clock::now() < until) {
            if (qemu_exited()) {
                return true;
            }
            if (!force && !forced_later && take_signals() == 2) {
                spdlog::info("a forced stop arrived during the power-off; quitting QEMU now");
                forced_later = true;
                return false;
            }
            drain_outputs();
            m_qmp.pump();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return qemu_exited();
    };
    std::string how;
    if (!qemu_exited()) {
        if (!force && m_qmp.connected()) {
            try {
                // The guest may not listen for the power button yet (acpid starts after sshd):
                // press it again every few seconds until it powers off or time runs out.
                auto until = Clock::now() + powerdown_timeout();
                spdlog::info("sending system_powerdown, waiting up to {}s", powerdown_timeout().count());
                while (how.empty() && !forced_later && Clock::now() < until) {
                    m_qmp.execute("system_powerdown", json::object(), Clock::now() + std::chrono::seconds(5));
                    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
                    if (wait_exit(std::min(left, std::chrono::milliseconds(3000)))) {
                        how = "the guest powered off";
                    }
                }
            } catch (const Error& e) {
                spdlog::warn("system_powerdown: {}", e.what());
            }
        }
        if (how.empty() && m_qmp.connected()) {
            try {
                m_qmp.execute("quit", json::object(), Clock::now() + std::chrono::seconds(3));
            } catch (const Error& e) {
                spdlog::warn("quit: {}", e.what());  // QEMU may close the socket before answering
            }
            if (wait_exit(std::chrono::seconds(5))) {
                how = force || forced_later ? "QEMU quit at once"
                                            : "the guest did not power off in time; QEMU quit";
            }
        }
        if (how.empty()) {
            ::kill(m_qemu.proc.pid, SIGTERM);
            if (wait_exit(std::chrono::seconds(5))) {
                how = "QEMU terminated (SIGTERM)";
            } else {
                ::kill(m_qemu.proc.pid, SIGKILL);
                wait_exit(std::chrono::seconds(10));
                how = "QEMU killed (SIGKILL)";
            }
        }
    } else {
        how = "QEMU had already exited";
    }
    // QEMU closing the stream ends netd by itself; a bounded wait, then signals.
    m_netd.stop(std::chrono::seconds(2));
    stop_shares();
    m_state.status = final_status;
    m_state.stopped_at_ms = instance::now_ms();
    m_state.last_error = why;
    save_state();
    spdlog::info("stopped: {} in {}ms", how, ms_since(t));
    event("stopped", {{"msg", how}, {"ms", ms_since(t)}});
}

int Supervisor::run() {
    m_state = instance::read_state(m_layout);
    m_state.status = "starting";
    m_state.supervisor_pid = ::getpid();
    m_state.qemu_pid = 0;
    m_state.netd_pid = 0;
    m_state.ssh_port = 0;
    m_state.started_at_ms = instance::now_ms();
    m_state.ready_at_ms = 0;
    m_state.stopped_at_ms = 0;
    m_state.last_error.clear();
    m_state.profile_file = m_opts.profile_file.string();
    m_state.run_id = m_opts.run_id;
    save_state();
    event("start", {{"pid", ::getpid()}});
    spdlog::info("supervisor {} starting {} (run {})", ::getpid(), m_layout.name(), m_opts.run_id);

    // supervise() blocked these before taking the lock; here they become readable events.
    sigset_t mask = stop_signals();
    ::signal(SIGPIPE, SIG_IGN);
    m_sigfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m_sigfd < 0) {
        throw_errno("signalfd", errno);
    }

    try {
        prepare();
        m_state.ssh_user = m_profile.ssh.user;
        m_state.cpus = m_profile.vm.cpus;
        m_state.memory = m_profile.vm.memory;
        m_state.image = m_profile.vm.image;
        save_state();
        start_netd();
        start_shares();
        start_qemu();
        if (!wait_for_ssh()) {
            return 0;
        }
        m_state.status = "running";
        m_state.ready_at_ms = instance::now_ms();
        save_state();
        event("ready", {{"ms", ms_since(m_t0)}, {"port", m_state.ssh_port}, {"accel", m_plan.accel}});
        spdlog::info("ready in {}ms", ms_since(m_t0));
        watch();
    } catch (const Error& e) {
        std::string detail;
        for (const auto& h : e.hints()) {
            detail += h + "\n";
        }
        spdlog::error("{}\n{}", e.what(), detail);
        event("error", {{"msg", e.what()}, {"hints", e.hints()}});
        if (m_qemu.proc.pid > 0) {
            shutdown(true, e.what(), "failed");  // stops netd and the share servers too
        } else {
            m_netd.stop(std::chrono::seconds(2));
            stop_shares();
            m_state.status = "failed";
            m_state.stopped_at_ms = instance::now_ms();
            m_state.last_error = e.what();
            save_state();
        }
        return 1;
    }
    std::error_code ec;
    std::filesystem::remove(m_layout.qmp_socket(), ec);
    return 0;
}

}  // namespace

std::chrono::seconds boot_timeout(bool kvm) {
    return env_seconds("SBX_BOOT_TIMEOUT", std::chrono::seconds(kvm ? 120 : 300));
}

std::chrono::seconds powerdown_timeout() {
    return env_seconds("SBX_POWERDOWN_TIMEOUT", std::chrono::seconds(30));
}

int supervise(const SuperviseOptions& options) {
    instance::InstanceLayout layout(paths::vms_root(), options.name);
    sigset_t mask = stop_signals();
    ::sigprocmask(SIG_BLOCK, &mask, nullptr);
    make_private_dirs(layout.dir());
    auto lock = instance::FileLock::try_acquire(layout.supervisor_lock());
    if (!lock) {
        instance::append_event(layout, options.run_id, "error",
                               {{"msg", fmt::format("{} already has a running supervisor", options.name)},
                                {"hints", json::array()}});
        return 1;
    }
    auto logger = spdlog::basic_logger_mt("supervisor", layout.supervisor_log().string());
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [%l] %v");
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
    Supervisor sup(options, std::move(layout));
    try {
        return sup.run();
    } catch (const std::exception& e) {
        spdlog::critical("supervisor failed: {}", e.what());
        return 1;
    }
}

}  // namespace sbx::vm
