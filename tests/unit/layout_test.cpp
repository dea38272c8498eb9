#include "sbx/instance/layout.hpp"
#include "sbx/instance/state.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

namespace sbx {
namespace {

using instance::InstanceLayout;

TEST(Layout, NamesEveryFileInsideTheInstanceFolder) {
    InstanceLayout l("/s/vms", "work");
    EXPECT_EQ(l.dir(), "/s/vms/work");
    for (const auto& p : {l.supervisor_lock(), l.up_lock(), l.state(), l.events(), l.supervisor_log(),
                          l.serial_log(), l.qmp_socket(), l.disk(), l.seed(), l.client_key(),
                          l.client_key_pub(), l.host_key(), l.host_key_pub(), l.known_hosts()}) {
        EXPECT_EQ(p.parent_path(), l.dir()) << p;
    }
    EXPECT_EQ(l.qmp_socket(), "/s/vms/work/qmp.sock");
    EXPECT_EQ(l.disk(), "/s/vms/work/disk.qcow2");
}

TEST(Layout, RejectsNamesThatCouldEscapeTheFolder) {
    for (const char* bad : {"", "..", "a/b", "Work", "-x", "a b", "x.y",
                            "abcdefghijklmnopqrstuvwxyz0123456789"}) {
        EXPECT_THROW(InstanceLayout("/s/vms", bad), Error) << bad;
    }
}

TEST(Layout, SocketPathLimitIsChecked) {
    InstanceLayout ok("/tmp/sbx/vms", "work");
    EXPECT_NO_THROW(ok.check_socket_paths());
    InstanceLayout too_long(std::string(100, 'a'), "work");
    EXPECT_THROW(too_long.check_socket_paths(), Error);
}

TEST(State, RoundTripsThroughTheFile) {
    test::TempDir dir;
    InstanceLayout l(dir.path(), "work");
    std::filesystem::create_directories(l.dir());
    auto fresh = instance::read_state(l);
    EXPECT_EQ(fresh.status, "stopped");
    instance::State s;
    s.status = "running";
    s.ssh_port = 40022;
    s.memory = 2ULL << 30;
    s.run_id = "abc";
    instance::write_state(l, s);
    auto back = instance::read_state(l);
    EXPECT_EQ(back.status, "running");
    EXPECT_EQ(back.ssh_port, 40022);
    EXPECT_EQ(back.memory, 2ULL << 30);
    EXPECT_EQ(back.run_id, "abc");
}

TEST(State, CorruptFileIsANamedError) {
    test::TempDir dir;
    InstanceLayout l(dir.path(), "work");
    dir.write("work/state.json", "{not json");
    try {
        instance::read_state(l);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(l.state().string()), std::string::npos);
    }
}

TEST(State, RunningWithoutSupervisorIsStale) {
    test::TempDir dir;
    InstanceLayout l(dir.path(), "work");
    std::filesystem::create_directories(l.dir());
    instance::State s;
    s.status = "running";
    EXPECT_EQ(instance::effective_status(l, s), "stale");
    {
        auto lock = instance::FileLock::try_acquire(l.supervisor_lock());
        ASSERT_TRUE(lock);
        EXPECT_TRUE(instance::supervisor_alive(l));
        EXPECT_EQ(instance::effective_status(l, s), "running");
        EXPECT_FALSE(instance::FileLock::try_acquire(l.supervisor_lock()));
    }
    EXPECT_FALSE(instance::supervisor_alive(l));
    s.status = "stopped";
    EXPECT_EQ(instance::effective_status(l, s), "stopped");
}

TEST(Events, AppendsOneJsonLinePerEvent) {
    test::TempDir dir;
    InstanceLayout l(dir.path(), "work");
    std::filesystem::create_directories(l.dir());
    instance::append_event(l, "r1", "step", {{"step", "disk"}, {"msg", "ok"}});
    instance::append_event(l, "r1", "ready");
    auto text = test::slurp(l.events());
    auto nl = text.find('\n');
    ASSERT_NE(nl, std::string::npos);
    auto first = nlohmann::json::parse(text.substr(0, nl));
    EXPECT_EQ(first["run"], "r1");
    EXPECT_EQ(first["kind"], "step");
    EXPECT_EQ(first["step"], "disk");
    auto second = nlohmann::json::parse(text.substr(nl + 1));
    EXPECT_EQ(second["kind"], "ready");
}

}  // namespace
}  // namespace sbx
