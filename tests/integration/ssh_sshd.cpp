// sbx::ssh against a real OpenSSH sshd on 127.0.0.1, run as the current user from a
// temporary folder with its own config, host key and authorized_keys (all made by
// sbx::ssh::generate_keypair). Commands run in forked children so their stdin, stdout
// and stderr can be set up and captured; the interactive case runs on a pty.

#include "sbx/ssh/ssh.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/process.hpp"

#include "loopback_ports.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto k_child_timeout = 30s;

std::string current_user() {
    const passwd* pw = ::getpwuid(::geteuid());
    return pw ? pw->pw_name : "";
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << data;
}

using sbx::test::free_port;
using sbx::test::port_accepts;

// One sshd for the whole suite.
class Sshd {
public:
    // Empty on success, else why sshd cannot be used here.
    std::string start() {
        const fs::path sshd = "/usr/sbin/sshd";  // sshd re-execs itself: absolute path only
        if (!fs::exists(sshd)) {
            return "no /usr/sbin/sshd (Debian package openssh-server)";
        }
        if (::geteuid() == 0 && !fs::exists("/run/sshd")) {
            // sshd running as root insists on its privilege-separation folder.
            std::error_code ec;
            fs::create_directories("/run/sshd", ec);
            ::chmod("/run/sshd", 0755);
            if (ec) {
                return "cannot create /run/sshd: " + ec.message();
            }
        }
        char tmpl[] = "/tmp/sbx-ssh-test-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            return std::string("mkdtemp: ") + std::strerror(errno);
        }
        m_dir = tmpl;
        m_user = current_user();

        sbx::ssh::generate_keypair(m_dir / "host_ed25519", "sbx-test-host");
        sbx::ssh::generate_keypair(m_dir / "client_ed25519", "sbx-test-client");
        sbx::ssh::generate_keypair(m_dir / "other_host_ed25519", "sbx-test-other-host");
        sbx::ssh::generate_keypair(m_dir / "other_client_ed25519", "sbx-test-other-client");
        spit(m_dir / "authorized_keys",
             sbx::ssh::read_public_key(m_dir / "client_ed25519.pub") + "\n");

        std::string last_log;
        for (int attempt = 0; attempt < 3; ++attempt) {
            m_port = free_port();
            if (m_port <= 0) {
                return "cannot find a free TCP port on 127.0.0.1";
            }
            std::string config = fmt::format(
                "Port {port}\n"
                "ListenAddress 127.0.0.1\n"
                "HostKey {dir}/host_ed25519\n"
                "AuthorizedKeysFile {dir}/authorized_keys\n"
                "PidFile {dir}/sshd.pid\n"
                "StrictModes no\n"
                "UsePAM no\n"
                "PubkeyAuthentication yes\n"
                "PasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\n"
                "PermitRootLogin prohibit-password\n"
                "AllowAgentForwarding no\n"
                "PrintMotd no\n"
                "PrintLastLog no\n"
                "LogLevel VERBOSE\n",
                fmt::arg("port", m_port), fmt::arg("dir", m_dir.string()));
            spit(m_dir / "sshd_config", config);
            fs::path log = m_dir / "sshd.log";
            int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            sbx::SpawnSpec spec;
            spec.argv = {sshd.string(), "-D", "-e", "-f", (m_dir / "sshd_config").string()};
            spec.env = sbx::default_child_env();
            spec.stdout_fd = log_fd;
            spec.stderr_fd = log_fd;
            try {
                m_child = sbx::spawn(spec);
            } catch (const std::exception& e) {
                ::close(log_fd);
                return std::string("cannot start sshd: ") + e.what();
            }
            ::close(log_fd);
            auto deadline = std::chrono::steady_clock::now() + 10s;
            while (std::chrono::steady_clock::now() < deadline) {
                if (port_accepts(m_port)) {
                    return "";
                }
                if (auto code = sbx::try_wait_child(m_child)) {
                    m_child = {};
                    break;
                }
                std::this_thread::sleep_for(20ms);
            }
            last_log = sbx::tail_file(log, 10);
            stop();
        }
        return "sshd did not start listening; its last words:\n" + last_log;
    }

    void stop() {
        if (m_child.pid > 0) {
            ::kill(-m_child.pid, SIGTERM);
            sbx::wait_child(m_child);
            m_child = {};
        }
    }

    ~Sshd() {
        stop();
        if (!m_dir.empty() && std::getenv("SBX_KEEP_TEST_DIRS") == nullptr) {
            std::error_code ec;
            fs::remove_all(m_dir, ec);
        }
    }

    sbx::ssh::Target target() const {
        sbx::ssh::Target t;
        t.host = "127.0.0.1";
        t.port = m_port;
        t.user = m_user;
        t.identity = m_dir / "client_ed25519";
        t.host_key_pub = m_dir / "host_ed25519.pub";
        t.connect_timeout = 5000ms;
        return t;
    }

    const fs::path& dir() const { return m_dir; }
    int port() const { return m_port; }
    std::string log() const { return sbx::tail_file(m_dir / "sshd.log", 30); }

private:
    fs::path m_dir;
    std::string m_user;
    int m_port = -1;
    sbx::Child m_child;
};

struct ChildResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

enum class StdinKind { file, dev_null, closed };

// Runs fn in a forked child with stdin from `input` (or /dev/null, or closed) and stdout,
// stderr captured to files; the child's exit code is fn's return value (250 on exception).
ChildResult run_in_child(const fs::path& dir, const std::function<int()>& fn,
                         const std::string& input = "", StdinKind kind = StdinKind::file) {
    static int counter = 0;
    std::string tag = std::to_string(++counter);
    fs::path in_path = dir / ("in" + tag);
    fs::path out_path = dir / ("out" + tag);
    fs::path err_path = dir / ("err" + tag);
    spit(in_path, input);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        int in = kind == StdinKind::dev_null ? ::open("/dev/null", O_RDONLY)
                                             : ::open(in_path.c_str(), O_RDONLY);
        int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        ::close(in);
        ::close(out);
        ::close(err);
        if (kind == StdinKind::closed) {
            ::close(0);
        }
        int rc = 250;
        try {
            rc = fn();
        } catch (const sbx::Error& e) {
            std::fprintf(stderr, "sbx::Error: %s\n", e.what());
            for (const auto& h : e.hints()) {
                std::fprintf(stderr, "hint: %s\n", h.c_str());
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "exception: %s\n", e.what());
        }
        std::fflush(nullptr);
        ::_exit(rc);
    }
    ChildResult r;
    if (pid < 0) {
        ADD_FAILURE() << "fork: " << std::strerror(errno);
        return r;
    }
    auto deadline = std::chrono::steady_clock::now() + k_child_timeout;
    int status = 0;
    for (;;) {
        pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            ADD_FAILURE() << "child did not finish within " << k_child_timeout.count() << "s";
            break;
        }
        std::this_thread::sleep_for(10ms);
    }
    r.exit_code = sbx::status_to_code(status);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    return r;
}

class SshIntegration : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        s_sshd = new Sshd();
        try {
            s_skip_reason = s_sshd->start();
        } catch (const std::exception& e) {
            s_skip_reason = std::string("setting up sshd failed: ") + e.what();
        }
        if (s_skip_reason.empty() && !sbx::ssh::probe(s_sshd->target()).empty()) {
            // sshd refuses some accounts outright (locked, or a nologin shell); that is this
            // machine's user, not our code. Any other failure is left for the tests to show.
            std::string log = s_sshd->log();
            auto at = log.find("not allowed because");
            if (at != std::string::npos) {
                auto bol = log.rfind('\n', at);
                auto eol = log.find('\n', at);
                s_skip_reason = "sshd will not log this user in: " +
                                log.substr(bol == std::string::npos ? 0 : bol + 1,
                                           eol == std::string::npos ? std::string::npos
                                                                    : eol - (bol + 1));
            }
        }
    }
    static void TearDownTestSuite() {
        delete s_sshd;
        s_sshd = nullptr;
    }
    void SetUp() override {
        if (!s_skip_reason.empty()) {
            GTEST_SKIP() << "skipped: " << s_skip_reason;
        }
    }
    void TearDown() override {
        if (HasFailure() && s_sshd != nullptr) {
            std::cerr << "sshd log (last lines):\n" << s_sshd->log() << "\n";
        }
    }

    static Sshd& sshd() { return *s_sshd; }
    static sbx::ssh::Target target() { return s_sshd->target(); }

    ChildResult run(const std::vector<std::string>& argv, const std::string& input = "",
                    StdinKind kind = StdinKind::file) {
        auto t = target();
        return run_in_child(
            sshd().dir(), [&] { return sbx::ssh::run_command(t, argv); }, input, kind);
    }

    static Sshd* s_sshd;
    static std::string s_skip_reason;
};

Sshd* SshIntegration::s_sshd = nullptr;
std::string SshIntegration::s_skip_reason;

// --- keys ----------------------------------------------------------------------------------

TEST_F(SshIntegration, GeneratedKeysAreAcceptedByOpenSsh) {
    fs::path key = sshd().dir() / "client_ed25519";
    fs::path pub = sshd().dir() / "client_ed25519.pub";

    EXPECT_EQ(fs::status(key).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    std::string line = sbx::ssh::read_public_key(pub);
    EXPECT_EQ(line.rfind("ssh-ed25519 AAAA", 0), 0U) << line;
    EXPECT_EQ(line.substr(line.size() - std::strlen(" sbx-test-client")), " sbx-test-client");
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(slurp(pub), line + "\n");

    if (!sbx::find_program("ssh-keygen")) {
        GTEST_SKIP() << "skipped: no ssh-keygen (Debian package openssh-client)";
    }
    std::string fp = sbx::ssh::public_key_fingerprint(pub);
    EXPECT_EQ(fp.rfind("SHA256:", 0), 0U) << fp;
    for (const fs::path& p : {key, pub}) {
        auto r = sbx::run_command({"ssh-keygen", "-l", "-f", p.string()});
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find(fp), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("(ED25519)"), std::string::npos) << r.output;
    }
    // OpenSSH derives the same public key from the private file.
    auto derived = sbx::run_command({"ssh-keygen", "-y", "-f", key.string()});
    EXPECT_EQ(derived.exit_code, 0) << derived.output;
    std::string derived_key = derived.output.substr(0, derived.output.find_first_of(" \n", 12));
    EXPECT_EQ(derived_key, line.substr(0, line.find(' ', 12)));
}

TEST_F(SshIntegration, OpenSshClientAcceptsHostKeyAndClientKey) {
    if (!sbx::find_program("ssh")) {
        GTEST_SKIP() << "skipped: no ssh client (Debian package openssh-client)";
    }
    // sshd serving our host key and accepting our client key, checked by OpenSSH itself.
    auto t = target();
    fs::path known = sshd().dir() / "known_hosts";
    spit(known, fmt::format("[127.0.0.1]:{} {}\n", t.port, sbx::ssh::read_public_key(t.host_key_pub)));
    auto r = sbx::run_command(
        {"ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o",
         "IdentityAgent=none", "-o", "StrictHostKeyChecking=yes", "-o",
         "UserKnownHostsFile=" + known.string(), "-o", "GlobalKnownHostsFile=/dev/null", "-i",
         t.identity.string(), "-p", std::to_string(t.port), "-l", t.user, "127.0.0.1", "echo",
         "openssh-ok"},
        {}, 30s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("openssh-ok"), std::string::npos) << r.output;
}

// --- probe ---------------------------------------------------------------------------------

TEST_F(SshIntegration, ProbeSucceeds) {
    EXPECT_EQ(sbx::ssh::probe(target()), "");
}

TEST_F(SshIntegration, ProbeRejectsWrongHostKey) {
    auto t = target();
    t.host_key_pub = sshd().dir() / "other_host_ed25519.pub";
    std::string reason = sbx::ssh::probe(t);
    EXPECT_EQ(reason.rfind("host key mismatch", 0), 0U) << reason;
    EXPECT_NE(reason.find(sbx::ssh::public_key_fingerprint(t.host_key_pub)), std::string::npos)
        << reason;
    EXPECT_NE(reason.find(sbx::ssh::public_key_fingerprint(sshd().dir() / "host_ed25519.pub")),
              std::string::npos)
        << reason;
}

TEST_F(SshIntegration, RunCommandRefusesWrongHostKeyLoudly) {
    auto t = target();
    t.host_key_pub = sshd().dir() / "other_host_ed25519.pub";
    try {
        sbx::ssh::run_command(t, {"true"});
        FAIL() << "run_command connected despite a wrong host key";
    } catch (const sbx::Error& e) {
        EXPECT_NE(std::string(e.what()).find("host key mismatch"), std::string::npos) << e.what();
        EXPECT_EQ(e.code(), sbx::ExitCode::ssh_failed);
        EXPECT_FALSE(e.hints().empty());
    }
}

TEST_F(SshIntegration, ProbeRejectsWrongClientKey) {
    auto t = target();
    t.identity = sshd().dir() / "other_client_ed25519";
    std::string reason = sbx::ssh::probe(t);
    EXPECT_EQ(reason.rfind("authentication failed", 0), 0U) << reason;
}

TEST_F(SshIntegration, ProbeReportsConnectionRefused) {
    auto t = target();
    t.port = free_port();
    std::string reason = sbx::ssh::probe(t);
    EXPECT_EQ(reason, "connection refused");
}

TEST_F(SshIntegration, ProbeGivesUpOnSilentServerWithinTimeout) {
    // A listener that accepts (the kernel does) but never sends a banner.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 4), 0);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    auto t = target();
    t.port = ntohs(a.sin_port);
    t.connect_timeout = 700ms;
    auto start = std::chrono::steady_clock::now();
    std::string reason = sbx::ssh::probe(t);
    auto took = std::chrono::steady_clock::now() - start;
    ::close(fd);
    EXPECT_NE(reason, "");
    EXPECT_NE(reason.find("timed out"), std::string::npos) << reason;
    EXPECT_LT(took, 3s) << reason;
}

// --- run_command ---------------------------------------------------------------------------

TEST_F(SshIntegration, RunCommandReturnsExitStatus) {
    EXPECT_EQ(run({"true"}).exit_code, 0);
    EXPECT_EQ(run({"false"}).exit_code, 1);
    auto r = run({"sh", "-c", "exit 3"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST_F(SshIntegration, RunCommandPassesStdoutAndStderrThrough) {
    auto r = run({"sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 4"});
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_EQ(r.out, "to-stdout\n");
    EXPECT_EQ(r.err, "to-stderr\n");
}

TEST_F(SshIntegration, RunCommandKeepsArgumentWords) {
    auto r = run({"printf", "[%s]", "two words", "it's", "$HOME", ""});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "[two words][it's][$HOME][]");
}

TEST_F(SshIntegration, RunCommandSingleWordIsAShellCommandLine) {
    auto r = run({"echo one && echo two; exit 6"});
    EXPECT_EQ(r.exit_code, 6) << r.err;
    EXPECT_EQ(r.out, "one\ntwo\n");
}

TEST_F(SshIntegration, RunCommandForwardsStdin) {
    std::string input = "line one\nline two\n";
    auto r = run({"cat"}, input);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, input);
}

TEST_F(SshIntegration, RunCommandForwardsLargeStdinAndOutput) {
    // Several times the SSH window each way: flow control must neither lose nor stall.
    std::string input(6 * 1024 * 1024 + 123, '\0');
    std::mt19937 rng(42);
    for (auto& c : input) {
        c = static_cast<char>(rng() & 0xff);
    }
    auto r = run({"cat"}, input);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.size(), input.size());
    EXPECT_TRUE(r.out == input);

    auto big = run({"head", "-c", "20000000", "/dev/zero"}, "", StdinKind::dev_null);
    EXPECT_EQ(big.exit_code, 0) << big.err;
    EXPECT_EQ(big.out.size(), 20000000U);
}

TEST_F(SshIntegration, RunCommandWorksWithDevNullOrClosedStdin) {
    auto a = run({"cat"}, "", StdinKind::dev_null);
    EXPECT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, "");
    auto b = run({"sh", "-c", "cat; echo done"}, "", StdinKind::closed);
    EXPECT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(b.out, "done\n");
}

TEST_F(SshIntegration, RunCommandKeepsFeedingStdinAfterRemoteOutputEnds) {
    // The command closes stdout and stderr first (the guest sends EOF), then still reads
    // stdin; the session must last until the command exits.
    fs::path sink = sshd().dir() / "stdin-sink";
    auto r = run({"sh", "-c", "exec >/dev/null 2>&1; sleep 0.3; cat > " + sink.string() + "; exit 5"},
                 "late input\n");
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_EQ(slurp(sink), "late input\n");
}

TEST_F(SshIntegration, RunCommandKilledBySignalGives255) {
    auto r = run({"sh", "-c", "kill -KILL $$"});
    EXPECT_EQ(r.exit_code, 255) << r.err;
}

TEST_F(SshIntegration, RunCommandFailsLoudlyWhenNothingListens) {
    auto t = target();
    t.port = free_port();
    try {
        sbx::ssh::run_command(t, {"true"});
        FAIL() << "run_command returned without a server";
    } catch (const sbx::Error& e) {
        EXPECT_EQ(e.code(), sbx::ExitCode::ssh_failed);
        EXPECT_NE(std::string(e.what()).find("connection refused"), std::string::npos) << e.what();
    }
}

// --- interactive_shell ---------------------------------------------------------------------

// Reads the pty master until `needle` shows up, the child side closes, or time runs out.
bool read_until(int master, std::string& seen, const std::string& needle,
                std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (needle.empty() || seen.find(needle) == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd p{master, POLLIN, 0};
        int pr = ::poll(&p, 1, static_cast<int>(left.count()));
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr <= 0) {
            return false;
        }
        char buf[4096];
        ssize_t n = ::read(master, buf, sizeof buf);
        if (n <= 0) {
            return needle.empty();  // EIO: every slave fd is closed
        }
        seen.append(buf, static_cast<std::size_t>(n));
    }
    return true;
}

void type(int master, const std::string& text) {
    ASSERT_EQ(::write(master, text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

// interactive_shell in a child whose stdio is a new pty. The child exits with the shell's
// status, 250 if interactive_shell threw, 99 if it left the terminal modes changed.
struct PtyShell {
    pid_t pid = -1;
    int master = -1;
    std::string seen;

    PtyShell(const sbx::ssh::Target& t, winsize ws) {
        std::fflush(nullptr);
        pid = ::forkpty(&master, nullptr, nullptr, &ws);
        if (pid == 0) {
            ::setenv("TERM", "dumb", 1);
            termios before{};
            ::tcgetattr(0, &before);
            int rc = 250;
            try {
                rc = sbx::ssh::interactive_shell(t);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "exception: %s\n", e.what());
            }
            termios after{};
            ::tcgetattr(0, &after);
            if (before.c_lflag != after.c_lflag || before.c_iflag != after.c_iflag ||
                before.c_oflag != after.c_oflag) {
                rc = 99;
            }
            std::fflush(nullptr);
            ::_exit(rc);
        }
    }
    ~PtyShell() {
        if (master >= 0) {
            ::close(master);
        }
    }

    bool expect(const std::string& needle) { return read_until(master, seen, needle, 10s); }

    int finish() {
        read_until(master, seen, "", 10s);  // to EOF
        int status = 0;
        auto deadline = std::chrono::steady_clock::now() + k_child_timeout;
        while (::waitpid(pid, &status, WNOHANG) != pid) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, &status, 0);
                ADD_FAILURE() << "interactive_shell did not return";
                break;
            }
            std::this_thread::sleep_for(10ms);
        }
        return sbx::status_to_code(status);
    }
};

TEST_F(SshIntegration, InteractiveShellOnPty) {
    winsize ws{};
    ws.ws_row = 30;
    ws.ws_col = 100;
    PtyShell shell(target(), ws);
    ASSERT_GT(shell.pid, 0) << std::strerror(errno);

    // The remote size comes from the local terminal's size at start.
    type(shell.master, "stty size\n");
    EXPECT_TRUE(shell.expect("30 100")) << shell.seen;

    // A resize of the local terminal (SIGWINCH) reaches the guest's pty.
    ws.ws_row = 40;
    ws.ws_col = 120;
    ASSERT_EQ(::ioctl(shell.master, TIOCSWINSZ, &ws), 0);
    std::this_thread::sleep_for(300ms);
    type(shell.master, "stty size\n");
    EXPECT_TRUE(shell.expect("40 120")) << shell.seen;

    type(shell.master, "echo hi-$((40+2)); exit 7\n");
    EXPECT_TRUE(shell.expect("hi-42")) << shell.seen;
    EXPECT_EQ(shell.finish(), 7) << shell.seen;
}

TEST_F(SshIntegration, InteractiveShellRestoresTerminalWhenConnectionDrops) {
    PtyShell shell(target(), winsize{24, 80, 0, 0});
    ASSERT_GT(shell.pid, 0) << std::strerror(errno);
    // Kills the guest-side sshd process serving this session: the connection drops.
    type(shell.master, "kill -KILL $PPID\n");
    EXPECT_EQ(shell.finish(), 250) << shell.seen;
    EXPECT_NE(shell.seen.find("was lost"), std::string::npos) << shell.seen;
}

TEST_F(SshIntegration, InteractiveShellRestoresTerminalOnSigterm) {
    PtyShell shell(target(), winsize{24, 80, 0, 0});
    ASSERT_GT(shell.pid, 0) << std::strerror(errno);
    type(shell.master, "echo ready-$((1+1))\n");
    ASSERT_TRUE(shell.expect("ready-2")) << shell.seen;
    ::kill(shell.pid, SIGTERM);
    EXPECT_EQ(shell.finish(), 250) << shell.seen;
    EXPECT_NE(shell.seen.find("Terminated"), std::string::npos) << shell.seen;
}

TEST_F(SshIntegration, InteractiveShellWithoutTerminal) {
    auto t = target();
    auto r = run_in_child(
        sshd().dir(), [&] { return sbx::ssh::interactive_shell(t); },
        "echo hi-$((40+2)); tty || true; exit 7\n");
    EXPECT_EQ(r.exit_code, 7) << r.err;
    EXPECT_NE(r.out.find("hi-42"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("not a tty"), std::string::npos) << r.out;  // no pty requested
}

}  // namespace
