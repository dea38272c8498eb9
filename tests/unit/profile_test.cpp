#include "sbx/profile/profile.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

namespace sbx {
namespace {

using test::TempDir;

std::string error_of(const std::filesystem::path& file) {
    try {
        profile::load_profile_file(file);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::config);
        return e.what();
    }
    ADD_FAILURE() << "no error for " << file;
    return {};
}

TEST(Profile, DefaultsWhenTablesAreEmpty) {
    TempDir dir;
    auto file = dir.write("work.toml", "[vm]\n[ssh]\n");
    auto p = profile::load_profile_file(file);
    EXPECT_EQ(p.name, "work");
    EXPECT_EQ(p.vm.image, "debian-12");
    EXPECT_EQ(p.vm.cpus, 2);
    EXPECT_EQ(p.vm.memory, 2ULL << 30);
    EXPECT_EQ(p.vm.accel, profile::Accel::automatic);
    EXPECT_EQ(p.ssh.user, "dev");
}

TEST(Profile, ReadsEveryKey) {
    TempDir dir;
    auto file = dir.write("big.toml",
                          "[vm]\nimage = \"custom-1\"\ncpus = 6\nmemory = \"8G\"\ndisk = \"40G\"\n"
                          "accel = \"tcg\"\n[ssh]\nuser = \"alice\"\n");
    auto p = profile::load_profile_file(file);
    EXPECT_EQ(p.vm.image, "custom-1");
    EXPECT_EQ(p.vm.cpus, 6);
    EXPECT_EQ(p.vm.memory, 8ULL << 30);
    EXPECT_EQ(p.vm.disk, 40ULL << 30);
    EXPECT_EQ(p.vm.accel, profile::Accel::tcg);
    EXPECT_EQ(p.ssh.user, "alice");
}

TEST(Profile, ShippedWorkProfileIsValid) {
    auto p = profile::load_profile_file(std::filesystem::path(SBX_SOURCE_DIR) / "profiles/work.toml");
    EXPECT_EQ(p.name, "work");
    EXPECT_EQ(p.ssh.user, "dev");
}

TEST(Profile, UnknownKeyWithSuggestion) {
    TempDir dir;
    auto file = dir.write("w.toml", "[vm]\ncpu = 4\n");
    EXPECT_EQ(error_of(file), file.string() + ":2:1: vm.cpu: unknown key (did you mean \"cpus\"?)");
}

TEST(Profile, UnknownTableWithSuggestion) {
    TempDir dir;
    auto file = dir.write("w.toml", "[sshh]\nuser = \"x\"\n");
    EXPECT_EQ(error_of(file), file.string() + ":1:2: sshh: unknown key (did you mean \"ssh\"?)");
}

TEST(Profile, AllProblemsReportedAtOnce) {
    TempDir dir;
    auto file = dir.write("w.toml",
                          "[vm]\ncpus = \"four\"\nmemory = \"lots\"\naccel = \"hvf\"\ndisk = \"1M\"\n"
                          "[ssh]\nuser = \"root\"\n");
    std::string f = file.string();
    EXPECT_EQ(error_of(file),
              f + ":2:8: vm.cpus: expected an integer, found a string\n" +
              f + ":3:10: vm.memory: invalid size \"lots\" (use a number with K, M, G or T, like \"8G\")\n" +
              f + ":4:9: vm.accel: \"hvf\" is not one of auto, kvm, tcg\n" +
              f + ":5:8: vm.disk: 1M is out of range (1G to 16T)\n" +
              f + ":7:8: ssh.user: \"root\" is not a valid user name (lowercase, not root, at most 32 characters)");
}

// Every place a host pattern is read names the public suffix and the next step.
TEST(Profile, WildcardOverAPublicSuffixNamesTheSuffix) {
    TempDir dir;
    auto file = dir.write("w.toml",
                          "[network]\n"
                          "allow = [{ host = \"*.s3.amazonaws.com\", ports = [443] }]\n"
                          "[secrets.TOKEN]\n"
                          "from_env = \"TOKEN\"\n"
                          "hosts = [\"*.compute-1.amazonaws.com\", \"*.sslip.io\", \"*.bucket.s3.amazonaws.com\"]\n");
    std::string f = file.string();
    EXPECT_EQ(error_of(file),
              f + ":2:19: network.allow[0].host: \"*.s3.amazonaws.com\" is too broad: \"s3.amazonaws.com\" is a "
                  "public suffix, so it allows names owned by anyone under it; name the domain, as in "
                  "\"*.example.s3.amazonaws.com\"\n" +
              f + ":5:10: secrets.TOKEN.hosts[0]: \"*.compute-1.amazonaws.com\" is too broad: every name directly "
                  "under \"compute-1.amazonaws.com\" is a public suffix, so it allows names owned by anyone; name "
                  "the domain, as in \"*.example.example.compute-1.amazonaws.com\"\n" +
              f + ":5:39: secrets.TOKEN.hosts[1]: \"*.sslip.io\" is too broad: \"sslip.io\" is a wildcard-DNS "
                  "service (every name under it resolves to the address its labels spell), so the guest would "
                  "choose the address; name the host itself or its address");
}

TEST(Profile, CpusOutOfRange) {
    TempDir dir;
    auto file = dir.write("w.toml", "[vm]\ncpus = 0\n");
    EXPECT_EQ(error_of(file), file.string() + ":2:8: vm.cpus: 0 is out of range (1 to 64)");
}

TEST(Profile, TomlSyntaxErrorHasPosition) {
    TempDir dir;
    auto file = dir.write("w.toml", "[vm]\ncpus = = 2\n");
    auto msg = error_of(file);
    EXPECT_EQ(msg.rfind(file.string() + ":2:", 0), 0u) << msg;
}

TEST(Profile, TableExpected) {
    TempDir dir;
    auto file = dir.write("w.toml", "vm = 3\n");
    EXPECT_EQ(error_of(file), file.string() + ":1:6: vm: expected a table ([vm]), found an integer");
}

TEST(Profile, FindByNameInCurrentFolder) {
    TempDir dir;
    dir.write("profiles/alpha.toml", "[vm]\n");
    auto old = std::filesystem::current_path();
    std::filesystem::current_path(dir.path());
    ::setenv("XDG_CONFIG_HOME", (dir.path() / "cfg").c_str(), 1);
    EXPECT_EQ(profile::find_profile("alpha"), dir.path() / "profiles/alpha.toml");
    try {
        profile::find_profile("alpah");
        ADD_FAILURE() << "expected not found";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::not_found);
        EXPECT_EQ(std::string(e.what()), "no profile named \"alpah\"");
        bool suggested = false;
        for (const auto& h : e.hints()) {
            suggested |= h == "did you mean \"alpha\"?";
        }
        EXPECT_TRUE(suggested);
    }
    std::filesystem::current_path(old);
    ::unsetenv("XDG_CONFIG_HOME");
}

TEST(Profile, UserConfigFolderIsSearchedAfterCurrentFolder) {
    TempDir dir;
    dir.write("cfg/sbx/profiles/beta.toml", "[vm]\n");
    auto old = std::filesystem::current_path();
    std::filesystem::current_path(dir.path());
    ::setenv("XDG_CONFIG_HOME", (dir.path() / "cfg").c_str(), 1);
    EXPECT_EQ(profile::find_profile("beta"), dir.path() / "cfg/sbx/profiles/beta.toml");
    dir.write("profiles/beta.toml", "[vm]\n");
    EXPECT_EQ(profile::find_profile("beta"), dir.path() / "profiles/beta.toml");
    std::filesystem::current_path(old);
    ::unsetenv("XDG_CONFIG_HOME");
}

TEST(Profile, BadFileNameIsRejected) {
    TempDir dir;
    auto file = dir.write("Bad Name.toml", "[vm]\n");
    EXPECT_THROW(profile::load_profile_file(file), Error);
}

}  // namespace
}  // namespace sbx
