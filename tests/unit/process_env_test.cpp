// A child's environment: explicit variables replace inherited ones.
#include "sbx/util/process.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

TEST(ChildEnv, SetEntryReplacesTheSameNameOnly) {
    std::vector<std::string> env = {"PATH=/bin", "SBX_HOME=/inherited", "SBX_HOME_X=keep"};
    sbx::set_env_entry(env, "SBX_HOME=/mine");
    sbx::set_env_entry(env, "NEW=1");
    EXPECT_EQ(env, (std::vector<std::string>{"PATH=/bin", "SBX_HOME=/mine", "SBX_HOME_X=keep", "NEW=1"}));
}

TEST(ChildEnv, RunCommandExtraEnvWinsOverTheInheritedValue) {
    const char* old = std::getenv("SBX_HOME");
    std::string saved = old ? old : "";
    ::setenv("SBX_HOME", "/inherited/home", 1);
    sbx::RunOptions o;
    o.extra_env = {"SBX_HOME=/explicit/home"};
    o.timeout = std::chrono::seconds(10);
    auto r = sbx::run_command({"sh", "-c", "printf '%s' \"$SBX_HOME\"; env | grep -c '^SBX_HOME='"}, o);
    if (old) {
        ::setenv("SBX_HOME", saved.c_str(), 1);
    } else {
        ::unsetenv("SBX_HOME");
    }
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "/explicit/home1\n");
}

}  // namespace
