// sbx ssh-config: the Host block's content, checked by OpenSSH's own parser (ssh -G) where
// the client is installed, and the running / stopped / missing instance cases on a fake
// instance folder (a held supervisor lock and a state.json, as a running supervisor leaves).

#include "sbx/instance/layout.hpp"
#include "sbx/instance/state.hpp"
#include "sbx/util/error.hpp"
#include "sbx/util/process.hpp"
#include "sbx/vm/ssh_config.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>

namespace {

namespace fs = std::filesystem;
using sbx::test::TempDir;

// SBX_HOME pointed at a temp folder for one test.
class ScopedSbxHome {
public:
    explicit ScopedSbxHome(const fs::path& p) {
        if (const char* old = std::getenv("SBX_HOME")) {
            m_old = old;
        }
        ::setenv("SBX_HOME", p.c_str(), 1);
    }
    ~ScopedSbxHome() {
        if (m_old) {
            ::setenv("SBX_HOME", m_old->c_str(), 1);
        } else {
            ::unsetenv("SBX_HOME");
        }
    }
    ScopedSbxHome(const ScopedSbxHome&) = delete;
    ScopedSbxHome& operator=(const ScopedSbxHome&) = delete;

private:
    std::optional<std::string> m_old;
};

sbx::vm::SshConfigEntry entry(const fs::path& dir) {
    sbx::vm::SshConfigEntry e;
    e.name = "work";
    e.port = 40022;
    e.user = "dev";
    e.identity = dir / "id_ed25519";
    e.known_hosts = dir / "known_hosts";
    return e;
}

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(SshConfig, BlockHasEveryPinnedSetting) {
    auto b = sbx::vm::ssh_config_block(entry("/state/vms/work"));
    for (const char* line : {"Host sbx-work", "  HostName 127.0.0.1", "  Port 40022", "  User dev",
                             "  IdentityFile /state/vms/work/id_ed25519", "  IdentitiesOnly yes",
                             "  UserKnownHostsFile /state/vms/work/known_hosts", "  GlobalKnownHostsFile /dev/null",
                             "  StrictHostKeyChecking yes", "  UpdateHostKeys no", "  ForwardAgent no",
                             "  ForwardX11 no", "  PasswordAuthentication no", "  LogLevel ERROR"}) {
        EXPECT_TRUE(has_line(b, line)) << "missing \"" << line << "\" in:\n" << b;
    }
}

TEST(SshConfig, PathsWithSpacesAndPercentAreQuotedAndEscaped) {
    auto b = sbx::vm::ssh_config_block(entry("/home/a b/100%/vms/work"));
    EXPECT_TRUE(has_line(b, "  IdentityFile \"/home/a b/100%%/vms/work/id_ed25519\"")) << b;
    EXPECT_TRUE(has_line(b, "  UserKnownHostsFile \"/home/a b/100%%/vms/work/known_hosts\"")) << b;
}

TEST(SshConfig, PathThatCannotBeWrittenIsRefused) {
    EXPECT_THROW(sbx::vm::ssh_config_block(entry("/home/a\"b/vms/work")), sbx::Error);
    EXPECT_THROW(sbx::vm::ssh_config_block(entry("/home/a\nb/vms/work")), sbx::Error);
}

// What OpenSSH makes of the block (`ssh -G` parses the config and resolves the host).
TEST(SshConfig, OpenSshReadsTheBlockAsIntended) {
    if (!sbx::find_program("ssh")) {
        GTEST_SKIP() << "skipped: no ssh client (Debian package openssh-client)";
    }
    TempDir dir;
    auto e = entry(dir.path() / "with space" / "100%");
    auto conf = dir.write("config", sbx::vm::ssh_config_block(e));
    auto r = sbx::run_command({"ssh", "-G", "-F", conf.string(), "sbx-work"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // ssh -G shows IdentityFile before %-expansion (OpenSSH expands it when loading the
    // key, "%%" becoming "%"), UserKnownHostsFile after it.
    std::string id = (dir.path() / "with space" / "100%%" / "id_ed25519").string();
    std::string kh = (dir.path() / "with space" / "100%" / "known_hosts").string();
    for (const std::string& line :
         {std::string("hostname 127.0.0.1"), std::string("port 40022"), std::string("user dev"),
          "identityfile " + id, std::string("identitiesonly yes"), "userknownhostsfile " + kh,
          std::string("globalknownhostsfile /dev/null"), std::string("stricthostkeychecking true"),
          std::string("updatehostkeys false"), std::string("forwardagent no"), std::string("forwardx11 no"),
          std::string("passwordauthentication no"), std::string("loglevel ERROR")}) {
        EXPECT_TRUE(has_line("\n" + r.output, line)) << "ssh -G lacks \"" << line << "\":\n" << r.output;
    }
}

class SshConfigInstances : public ::testing::Test {
protected:
    void SetUp() override { m_home.emplace(m_dir.path()); }
    void TearDown() override { m_home.reset(); }

    sbx::instance::InstanceLayout make(const std::string& name) {
        sbx::instance::InstanceLayout layout(m_dir.path() / "vms", name);
        fs::create_directories(layout.dir());
        return layout;
    }

    // As a supervisor leaves a running instance: lock held, state.json, known_hosts.
    sbx::instance::FileLock make_running(const std::string& name, int port, const std::string& known_hosts) {
        auto layout = make(name);
        auto lock = sbx::instance::FileLock::try_acquire(layout.supervisor_lock());
        EXPECT_TRUE(lock.has_value());
        sbx::instance::State s;
        s.status = "running";
        s.supervisor_pid = 1;
        s.ssh_port = port;
        s.ssh_user = "tester";
        sbx::instance::write_state(layout, s);
        m_dir.write("vms/" + name + "/known_hosts", known_hosts);
        return std::move(*lock);
    }

    TempDir m_dir;
    std::optional<ScopedSbxHome> m_home;
};

TEST_F(SshConfigInstances, RunningInstanceGivesItsPortUserAndFiles) {
    auto lock = make_running("work", 41234, "[127.0.0.1]:41234 ssh-ed25519 AAAAC3Nza sbx-guest-work\n");
    auto b = sbx::vm::ssh_config("work");
    auto dir = m_dir.path() / "vms" / "work";
    EXPECT_TRUE(has_line(b, "Host sbx-work")) << b;
    EXPECT_TRUE(has_line(b, "  Port 41234")) << b;
    EXPECT_TRUE(has_line(b, "  User tester")) << b;
    EXPECT_TRUE(has_line(b, "  IdentityFile " + (dir / "id_ed25519").string())) << b;
    EXPECT_TRUE(has_line(b, "  UserKnownHostsFile " + (dir / "known_hosts").string())) << b;
}

TEST_F(SshConfigInstances, KnownHostsForAnotherPortIsRefused) {
    auto lock = make_running("work", 41234, "[127.0.0.1]:40000 ssh-ed25519 AAAAC3Nza sbx-guest-work\n");
    EXPECT_THROW(sbx::vm::ssh_config("work"), sbx::Error);
}

TEST_F(SshConfigInstances, StoppedInstanceIsNotRunningWithHint) {
    make("idle");
    try {
        sbx::vm::ssh_config("idle");
        FAIL() << "ssh_config of a stopped instance returned";
    } catch (const sbx::Error& e) {
        EXPECT_EQ(e.code(), sbx::ExitCode::not_running);
        ASSERT_FALSE(e.hints().empty());
        EXPECT_NE(e.hints()[0].find("sbx up idle"), std::string::npos) << e.hints()[0];
    }
}

TEST_F(SshConfigInstances, MissingInstanceIsNotFound) {
    try {
        sbx::vm::ssh_config("nope");
        FAIL() << "ssh_config of a missing instance returned";
    } catch (const sbx::Error& e) {
        EXPECT_EQ(e.code(), sbx::ExitCode::not_found);
    }
}

TEST_F(SshConfigInstances, AllListsRunningAndCommentsStopped) {
    auto lock = make_running("alpha", 41000, "[127.0.0.1]:41000 ssh-ed25519 AAAAC3Nza x\n");
    make("beta");
    auto all = sbx::vm::ssh_config_all();
    EXPECT_TRUE(has_line(all, "Host sbx-alpha")) << all;
    EXPECT_TRUE(has_line(all, "  Port 41000")) << all;
    EXPECT_EQ(all.find("Host sbx-beta"), std::string::npos) << all;
    EXPECT_NE(all.find("# sbx-beta: not running; `sbx up beta` starts it"), std::string::npos) << all;
}

}  // namespace
