// sbx cp's SFTP copies against a real OpenSSH sshd on 127.0.0.1 (no VM): the sshd runs as
// the current user from a temporary folder with `Subsystem sftp internal-sftp -d <home>`,
// so the "guest" is a folder of this machine whose relative paths start at <home>.

#include "sbx/ssh/sftp.hpp"
#include "sbx/ssh/ssh.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/process.hpp"

#include "loopback_ports.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::string& data, mode_t mode = 0644) {
    fs::create_directories(p.parent_path());
    {
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out << data;
    }
    ::chmod(p.c_str(), mode);
}

mode_t mode_of(const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
        return 0;
    }
    return st.st_mode & 07777;
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    std::mt19937 rng(seed);
    for (std::size_t i = 0; i < n; i += 4) {
        std::uint32_t v = rng();
        std::memcpy(s.data() + i, &v, std::min<std::size_t>(4, n - i));
    }
    return s;
}

using sbx::test::free_port;
using sbx::test::port_accepts;

// One sshd with SFTP for the whole suite.
class SftpServer {
public:
    std::string start() {
        const fs::path sshd = "/usr/sbin/sshd";
        if (!fs::exists(sshd)) {
            return "no /usr/sbin/sshd (Debian package openssh-server)";
        }
        if (::geteuid() == 0 && !fs::exists("/run/sshd")) {
            std::error_code ec;
            fs::create_directories("/run/sshd", ec);
            ::chmod("/run/sshd", 0755);
        }
        char tmpl[] = "/tmp/sbx-sftp-test-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            return std::string("mkdtemp: ") + std::strerror(errno);
        }
        m_dir = tmpl;
        fs::create_directories(m_dir / "home");
        const passwd* pw = ::getpwuid(::geteuid());
        m_user = pw ? pw->pw_name : "";
        sbx::ssh::generate_keypair(m_dir / "host_ed25519", "sbx-test-host");
        sbx::ssh::generate_keypair(m_dir / "client_ed25519", "sbx-test-client");
        spit(m_dir / "authorized_keys", sbx::ssh::read_public_key(m_dir / "client_ed25519.pub") + "\n", 0600);

        std::string last_log;
        for (int attempt = 0; attempt < 3; ++attempt) {
            m_port = free_port();
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
                "Subsystem sftp internal-sftp -d {dir}/home\n"
                "LogLevel VERBOSE\n",
                fmt::arg("port", m_port), fmt::arg("dir", m_dir.string()));
            spit(m_dir / "sshd_config", config, 0600);
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
                if (sbx::try_wait_child(m_child)) {
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

    ~SftpServer() {
        stop();
        if (!m_dir.empty() && std::getenv("SBX_KEEP_TEST_DIRS") == nullptr) {
            std::error_code ec;
            fs::permissions(m_dir, fs::perms::owner_all, fs::perm_options::add, ec);
            fs::remove_all(m_dir, ec);
        }
    }

    sbx::ssh::Target target() const {
        sbx::ssh::Target t;
        t.port = m_port;
        t.user = m_user;
        t.identity = m_dir / "client_ed25519";
        t.host_key_pub = m_dir / "host_ed25519.pub";
        return t;
    }
    const fs::path& dir() const { return m_dir; }
    std::string log() const { return sbx::tail_file(m_dir / "sshd.log", 30); }

private:
    fs::path m_dir;
    std::string m_user;
    int m_port = -1;
    sbx::Child m_child;
};

class Sftp : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        s_server = new SftpServer();
        try {
            s_skip = s_server->start();
        } catch (const std::exception& e) {
            s_skip = std::string("setting up sshd failed: ") + e.what();
        }
        if (s_skip.empty()) {
            std::string why = sbx::ssh::probe(s_server->target());
            if (!why.empty() && s_server->log().find("not allowed because") != std::string::npos) {
                s_skip = "sshd will not log this user in: " + why;
            }
        }
    }
    static void TearDownTestSuite() {
        delete s_server;
        s_server = nullptr;
    }
    void SetUp() override {
        if (!s_skip.empty()) {
            GTEST_SKIP() << "skipped: " << s_skip;
        }
        // Each test works in its own folders: host side and guest side.
        static int n = 0;
        std::string tag = "t" + std::to_string(++n);
        m_host = s_server->dir() / "host" / tag;
        m_guest = s_server->dir() / "home" / tag;
        fs::create_directories(m_host);
        fs::create_directories(m_guest);
        m_tag = tag;
    }
    void TearDown() override {
        if (HasFailure() && s_server != nullptr) {
            std::cerr << "sshd log (last lines):\n" << s_server->log() << "\n";
        }
    }

    sbx::ssh::CopyOptions opts(bool recursive = false) {
        sbx::ssh::CopyOptions o;
        o.recursive = recursive;
        o.guest_label = "vm";
        return o;
    }
    sbx::ssh::CopyStats up(const std::vector<fs::path>& src, const std::string& dst, bool recursive = false) {
        return sbx::ssh::copy_to_guest(s_server->target(), src, dst, opts(recursive));
    }
    sbx::ssh::CopyStats down(const std::vector<std::string>& src, const fs::path& dst, bool recursive = false) {
        return sbx::ssh::copy_from_guest(s_server->target(), src, dst, opts(recursive));
    }

    // No ".NAME.sbx-XXXX" temporary left anywhere under `dir`.
    static void expect_no_temp_files(const fs::path& dir) {
        for (const auto& e : fs::recursive_directory_iterator(dir)) {
            EXPECT_EQ(e.path().filename().string().find(".sbx-"), std::string::npos) << e.path();
        }
    }

    // A tree with modes, an empty folder and symlinks (in the tree, outside it, dangling).
    static void make_tree(const fs::path& root) {
        spit(root / "readme.txt", "hello\n", 0644);
        spit(root / "bin" / "run.sh", "#!/bin/sh\necho hi\n", 0755);
        spit(root / "secret" / "key", "k", 0600);
        spit(root / "setuid", "s", 04755);
        ::chmod((root / "secret").c_str(), 0700);
        fs::create_directories(root / "empty");
        ::chmod((root / "empty").c_str(), 0751);
        fs::create_symlink("readme.txt", root / "link-in");
        fs::create_symlink("../../outside-target", root / "bin" / "link-out");
        fs::create_symlink("/etc/passwd", root / "link-abs");
    }

    static void expect_tree(const fs::path& root) {
        EXPECT_EQ(slurp(root / "readme.txt"), "hello\n");
        EXPECT_EQ(mode_of(root / "readme.txt"), 0644U);
        EXPECT_EQ(slurp(root / "bin" / "run.sh"), "#!/bin/sh\necho hi\n");
        EXPECT_EQ(mode_of(root / "bin" / "run.sh"), 0755U);
        EXPECT_EQ(mode_of(root / "secret"), 0700U);
        EXPECT_EQ(mode_of(root / "secret" / "key"), 0600U);
        EXPECT_EQ(mode_of(root / "setuid"), 0755U) << "setuid must not be copied";
        EXPECT_TRUE(fs::is_directory(root / "empty"));
        EXPECT_EQ(mode_of(root / "empty"), 0751U);
        ASSERT_TRUE(fs::is_symlink(root / "link-in"));
        EXPECT_EQ(fs::read_symlink(root / "link-in"), "readme.txt");
        ASSERT_TRUE(fs::is_symlink(root / "bin" / "link-out"));
        EXPECT_EQ(fs::read_symlink(root / "bin" / "link-out"), "../../outside-target");
        ASSERT_TRUE(fs::is_symlink(root / "link-abs"));
        EXPECT_EQ(fs::read_symlink(root / "link-abs"), "/etc/passwd");
    }

    static SftpServer* s_server;
    static std::string s_skip;
    fs::path m_host;
    fs::path m_guest;
    std::string m_tag;
};

SftpServer* Sftp::s_server = nullptr;
std::string Sftp::s_skip;

TEST_F(Sftp, FileToGuestAndBack) {
    spit(m_host / "a.txt", "alpha\n", 0640);
    auto st = up({m_host / "a.txt"}, (m_guest / "b.txt").string());
    EXPECT_EQ(st.files, 1U);
    EXPECT_EQ(st.bytes, 6U);
    EXPECT_EQ(slurp(m_guest / "b.txt"), "alpha\n");
    EXPECT_EQ(mode_of(m_guest / "b.txt"), 0640U);

    down({(m_guest / "b.txt").string()}, m_host / "c.txt");
    EXPECT_EQ(slurp(m_host / "c.txt"), "alpha\n");
    EXPECT_EQ(mode_of(m_host / "c.txt"), 0640U);
    expect_no_temp_files(m_host);
    expect_no_temp_files(m_guest);
}

TEST_F(Sftp, RelativeGuestPathsStartAtHome) {
    spit(m_host / "r.txt", "rel");
    up({m_host / "r.txt"}, m_tag + "/");  // into the existing folder <home>/<tag>
    EXPECT_EQ(slurp(m_guest / "r.txt"), "rel");
    down({m_tag + "/r.txt"}, m_host / "back.txt");
    EXPECT_EQ(slurp(m_host / "back.txt"), "rel");
}

TEST_F(Sftp, IntoExistingFolderKeepsTheName) {
    spit(m_host / "one", "1");
    spit(m_host / "two", "2");
    fs::create_directories(m_guest / "dst");
    up({m_host / "one", m_host / "two"}, (m_guest / "dst").string());
    EXPECT_EQ(slurp(m_guest / "dst" / "one"), "1");
    EXPECT_EQ(slurp(m_guest / "dst" / "two"), "2");

    fs::create_directories(m_host / "back");
    down({(m_guest / "dst" / "one").string(), (m_guest / "dst" / "two").string()}, m_host / "back");
    EXPECT_EQ(slurp(m_host / "back" / "one"), "1");
    EXPECT_EQ(slurp(m_host / "back" / "two"), "2");
}

TEST_F(Sftp, ReplacesAnExistingFile) {
    spit(m_host / "new", "new content");
    spit(m_guest / "old", "old content that was longer");
    up({m_host / "new"}, (m_guest / "old").string());
    EXPECT_EQ(slurp(m_guest / "old"), "new content");
    spit(m_host / "local", "stale");
    down({(m_guest / "old").string()}, m_host / "local");
    EXPECT_EQ(slurp(m_host / "local"), "new content");
}

TEST_F(Sftp, TreeToGuestKeepsModesAndSymlinks) {
    make_tree(m_host / "tree");
    auto st = up({m_host / "tree"}, (m_guest / "copy").string(), true);
    expect_tree(m_guest / "copy");
    EXPECT_EQ(st.files, 4U);
    EXPECT_EQ(st.symlinks, 3U);
    EXPECT_EQ(st.directories, 4U);  // tree, bin, secret, empty
    expect_no_temp_files(m_guest);
    // Into an existing folder: the tree keeps its name.
    up({m_host / "tree"}, (m_guest / "copy").string(), true);
    expect_tree(m_guest / "copy" / "tree");
}

TEST_F(Sftp, TreeFromGuestKeepsModesAndSymlinks) {
    make_tree(m_guest / "tree");
    auto st = down({(m_guest / "tree").string()}, m_host / "copy", true);
    expect_tree(m_host / "copy");
    EXPECT_EQ(st.files, 4U);
    EXPECT_EQ(st.symlinks, 3U);
    expect_no_temp_files(m_host);
    // Nothing was followed: the outside target and /etc/passwd were not read or written.
    EXPECT_FALSE(fs::exists(m_host / "outside-target"));
}

TEST_F(Sftp, LargeFileBothWays) {
    std::string data = random_bytes(20 * 1024 * 1024 + 4321, 7);
    spit(m_host / "big.bin", data);
    auto t0 = std::chrono::steady_clock::now();
    auto st = up({m_host / "big.bin"}, (m_guest / "big.bin").string());
    auto t1 = std::chrono::steady_clock::now();
    EXPECT_EQ(st.bytes, data.size());
    EXPECT_TRUE(slurp(m_guest / "big.bin") == data) << "guest copy differs";

    auto t2 = std::chrono::steady_clock::now();
    auto back = down({(m_guest / "big.bin").string()}, m_host / "big-back.bin");
    auto t3 = std::chrono::steady_clock::now();
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    std::cerr << "20 MiB to the guest in " << ms(t1 - t0) << " ms, back in " << ms(t3 - t2) << " ms\n";
    EXPECT_EQ(back.bytes, data.size());
    std::string got = slurp(m_host / "big-back.bin");
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data) << "host copy differs";
}

TEST_F(Sftp, EmptyFileBothWays) {
    spit(m_host / "empty", "");
    up({m_host / "empty"}, (m_guest / "empty").string());
    EXPECT_TRUE(fs::exists(m_guest / "empty"));
    EXPECT_EQ(fs::file_size(m_guest / "empty"), 0U);
    down({(m_guest / "empty").string()}, m_host / "empty2");
    EXPECT_EQ(fs::file_size(m_host / "empty2"), 0U);
}

void expect_error(const std::function<void()>& fn, sbx::ExitCode code, const std::string& text) {
    try {
        fn();
        ADD_FAILURE() << "no error; expected one containing \"" << text << "\"";
    } catch (const sbx::Error& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
}

TEST_F(Sftp, ErrorsNameThePath) {
    using sbx::ExitCode;
    expect_error([&] { up({m_host / "missing"}, (m_guest / "x").string()); }, ExitCode::not_found,
                 (m_host / "missing").string() + ": no such file or directory");
    expect_error([&] { down({(m_guest / "missing").string()}, m_host / "x"); }, ExitCode::not_found,
                 "vm:" + (m_guest / "missing").string() + ": no such file or directory");

    fs::create_directories(m_host / "d");
    fs::create_directories(m_guest / "d");
    expect_error([&] { up({m_host / "d"}, (m_guest / "x").string()); }, ExitCode::usage,
                 (m_host / "d").string() + " is a folder");
    expect_error([&] { down({(m_guest / "d").string()}, m_host / "x"); }, ExitCode::usage,
                 "vm:" + (m_guest / "d").string() + " is a folder");

    spit(m_host / "f1", "1");
    spit(m_host / "f2", "2");
    expect_error([&] { up({m_host / "f1", m_host / "f2"}, (m_guest / "nodir").string()); }, ExitCode::not_found,
                 "is not an existing folder");
    expect_error([&] { up({m_host / "f1"}, (m_guest / "nodir" / "x").string()); }, ExitCode::not_found,
                 "no such file or directory");
    expect_error([&] { down({(m_guest / "d").string()}, m_host / "f1", true); }, ExitCode::failure,
                 "it exists and is not a folder");
    expect_no_temp_files(m_host);
    expect_no_temp_files(m_guest);
}

TEST_F(Sftp, PermissionDeniedIsReported) {
    if (::geteuid() == 0) {
        // Root writes whatever the mode; an immutable folder (chattr +i) still refuses it.
        fs::create_directories(m_guest / "immutable");
        auto r = sbx::run_command({"chattr", "+i", (m_guest / "immutable").string()});
        if (r.exit_code != 0) {
            GTEST_SKIP() << "skipped: running as root and chattr +i is not available here: " << r.output;
        }
        spit(m_host / "f", "f");
        expect_error([&] { up({m_host / "f"}, (m_guest / "immutable" / "f").string()); }, sbx::ExitCode::failure,
                     "permission denied");
        sbx::run_command({"chattr", "-i", (m_guest / "immutable").string()});
        return;
    }
    spit(m_guest / "locked", "x", 0000);
    expect_error([&] { down({(m_guest / "locked").string()}, m_host / "x"); }, sbx::ExitCode::failure,
                 "permission denied");
    fs::create_directories(m_guest / "ro");
    ::chmod((m_guest / "ro").c_str(), 0555);
    spit(m_host / "f", "f");
    expect_error([&] { up({m_host / "f"}, (m_guest / "ro" / "f").string()); }, sbx::ExitCode::failure,
                 "permission denied");
    ::chmod((m_guest / "ro").c_str(), 0755);
}

TEST_F(Sftp, NeverWritesThroughASymlinkOnTheHost) {
    // The host destination already holds "sub" as a symlink to a folder outside it; the
    // guest tree has a folder "sub". The copy must refuse, not write into the outside folder.
    fs::create_directories(m_host / "outside");
    fs::create_directories(m_host / "dst");
    fs::create_directory_symlink(m_host / "outside", m_host / "dst" / "sub");
    spit(m_guest / "tree" / "sub" / "payload", "p");
    expect_error([&] { down({(m_guest / "tree").string() + "/."}, m_host / "dst", true); }, sbx::ExitCode::failure,
                 "symlink");
    EXPECT_FALSE(fs::exists(m_host / "outside" / "payload"));
    // A symlink at a file's place is replaced, not followed.
    spit(m_host / "victim", "untouched");
    fs::create_symlink(m_host / "victim", m_host / "dst" / "payload");
    down({(m_guest / "tree" / "sub" / "payload").string()}, m_host / "dst");
    EXPECT_EQ(slurp(m_host / "victim"), "untouched");
    EXPECT_FALSE(fs::is_symlink(m_host / "dst" / "payload"));
    EXPECT_EQ(slurp(m_host / "dst" / "payload"), "p");
}

TEST_F(Sftp, WrongHostKeyIsRefused) {
    auto t = s_server->target();
    sbx::ssh::generate_keypair(m_host / "other_host", "other");
    t.host_key_pub = m_host / "other_host.pub";
    spit(m_host / "f", "f");
    try {
        sbx::ssh::copy_to_guest(t, {m_host / "f"}, (m_guest / "f").string(), opts());
        FAIL() << "copied despite a wrong host key";
    } catch (const sbx::Error& e) {
        EXPECT_EQ(e.code(), sbx::ExitCode::ssh_failed);
        EXPECT_NE(std::string(e.what()).find("host key mismatch"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(m_guest / "f"));
}

// SIGINT in the middle of a large copy: the copy stops with an error, and neither the
// final name nor a temporary file is left behind.
TEST_F(Sftp, InterruptedCopyLeavesNoPartialFile) {
    std::string data = random_bytes(64 * 1024 * 1024, 3);
    spit(m_guest / "huge.bin", data);
    spit(m_host / "huge.bin", data);
    data.clear();
    for (bool to_guest : {false, true}) {
        fs::path out_dir = to_guest ? m_guest / "in" : m_host / "in";
        fs::create_directories(out_dir);
        auto t = s_server->target();
        std::fflush(nullptr);
        pid_t pid = ::fork();
        if (pid == 0) {
            int rc = 0;
            try {
                if (to_guest) {
                    sbx::ssh::copy_to_guest(t, {m_host / "huge.bin"}, out_dir.string(), opts());
                } else {
                    sbx::ssh::copy_from_guest(t, {(m_guest / "huge.bin").string()}, out_dir, opts());
                }
                rc = 10;  // finished before the signal
            } catch (const sbx::Error& e) {
                rc = std::string(e.what()).find("interrupted") != std::string::npos ? 20 : 30;
            }
            ::_exit(rc);
        }
        ASSERT_GT(pid, 0);
        // Wait until the temporary file exists and has grown, then interrupt.
        auto deadline = std::chrono::steady_clock::now() + 20s;
        bool started = false;
        while (!started && std::chrono::steady_clock::now() < deadline) {
            for (const auto& e : fs::directory_iterator(out_dir)) {
                std::error_code ec;
                if (e.path().filename().string().find(".sbx-") != std::string::npos &&
                    fs::file_size(e.path(), ec) > 1024 * 1024) {
                    started = true;
                }
            }
            std::this_thread::sleep_for(5ms);
        }
        ::kill(pid, SIGINT);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFEXITED(status)) << "the copy died instead of stopping cleanly";
        if (WEXITSTATUS(status) == 10) {
            GTEST_SKIP() << "skipped: the copy finished before it could be interrupted";
        }
        EXPECT_TRUE(started) << (to_guest ? "to guest" : "from guest");
        EXPECT_EQ(WEXITSTATUS(status), 20) << (to_guest ? "to guest" : "from guest");
        EXPECT_FALSE(fs::exists(out_dir / "huge.bin")) << (to_guest ? "to guest" : "from guest");
        expect_no_temp_files(out_dir);
    }
}

}  // namespace
