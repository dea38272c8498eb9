// sbx cp's command line (which side is the guest) and sbx run --rm's instance names.

#include "sbx/util/error.hpp"
#include "sbx/util/strings.hpp"
#include "sbx/vm/copy.hpp"
#include "sbx/vm/run.hpp"

#include <gtest/gtest.h>

namespace {

using sbx::vm::parse_copy_args;
using sbx::vm::parse_copy_endpoint;

TEST(CopyArgs, EndpointSyntax) {
    auto g = parse_copy_endpoint("work:/etc/hosts");
    EXPECT_EQ(g.instance, "work");
    EXPECT_EQ(g.path, "/etc/hosts");
    auto home = parse_copy_endpoint("work:");
    EXPECT_EQ(home.instance, "work");
    EXPECT_EQ(home.path, "");
    auto rel = parse_copy_endpoint("my_vm-2:src/a:b");
    EXPECT_EQ(rel.instance, "my_vm-2");
    EXPECT_EQ(rel.path, "src/a:b");
    // Host paths: no colon, a slash before the colon, or no valid instance name before it.
    for (const char* host : {"/tmp/x", "./a:b", "dir/file:1", ":x", "Work:/x", "a b:c", "notes.txt"}) {
        auto h = parse_copy_endpoint(host);
        EXPECT_EQ(h.instance, "") << host;
        EXPECT_EQ(h.path, host);
    }
}

TEST(CopyArgs, HostToGuest) {
    auto r = parse_copy_args({"a.txt", "dir", "work:/tmp/"});
    EXPECT_TRUE(r.to_guest);
    EXPECT_EQ(r.instance, "work");
    EXPECT_EQ(r.sources, (std::vector<std::string>{"a.txt", "dir"}));
    EXPECT_EQ(r.destination, "/tmp/");
}

TEST(CopyArgs, GuestToHost) {
    auto r = parse_copy_args({"work:a", "work:/b/c", "."});
    EXPECT_FALSE(r.to_guest);
    EXPECT_EQ(r.instance, "work");
    EXPECT_EQ(r.sources, (std::vector<std::string>{"a", "/b/c"}));
    EXPECT_EQ(r.destination, ".");
}

void expect_usage(const std::vector<std::string>& args) {
    try {
        parse_copy_args(args);
        ADD_FAILURE() << "accepted: " << ::testing::PrintToString(args);
    } catch (const sbx::Error& e) {
        EXPECT_EQ(e.code(), sbx::ExitCode::usage) << e.what();
        EXPECT_FALSE(e.hints().empty()) << e.what();
    }
}

TEST(CopyArgs, RefusesWhatIsNotExactlyOneGuestSide) {
    expect_usage({"a", "b"});                      // host to host
    expect_usage({"work:a", "other:b"});           // guest to guest
    expect_usage({"work:a", "other:b", "/tmp"});   // two instances
    expect_usage({"work:a", "b", "/tmp"});         // mixed sources
    expect_usage({"work:a"});                      // no destination
    expect_usage({"", "work:/tmp"});               // empty path
}

TEST(RunNames, EphemeralNameIsAValidInstanceName) {
    EXPECT_EQ(sbx::vm::ephemeral_name("work", "1a2b"), "work-run-1a2b");
    std::string long_profile(32, 'p');
    auto n = sbx::vm::ephemeral_name(long_profile, "beef");
    EXPECT_EQ(n.size(), 32U);
    EXPECT_EQ(n, std::string(23, 'p') + "-run-beef");
    for (const auto& p : {std::string("a"), std::string("x_y-z"), long_profile, std::string("abcdefghijklmnopqrstuvw-")}) {
        auto name = sbx::vm::ephemeral_name(p, "0f0f");
        EXPECT_TRUE(sbx::valid_instance_name(name)) << name;
        EXPECT_LE(name.size(), 32U) << name;
        EXPECT_NE(name.find("-run-0f0f"), std::string::npos) << name;
    }
}

}  // namespace
