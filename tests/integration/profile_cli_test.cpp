// `sbx check`, `sbx new`, `sbx edit` and `sbx up`'s refusal, through the real binary, with a
// scripted editor (EDITOR is a shell command that changes the draft it is given).

#include "sbx/util/process.hpp"
#include "../unit/test_support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

namespace sbx {
namespace {

using test::TempDir;

struct Cli {
    TempDir home;
    std::filesystem::path config() const { return home.path() / "config"; }
    std::filesystem::path profiles() const { return config() / "sbx/profiles"; }

    RunResult run(std::vector<std::string> args, const std::string& editor = "true") const {
        std::vector<std::string> argv = {"env",
                                         "XDG_CONFIG_HOME=" + config().string(),
                                         "SBX_HOME=" + (home.path() / "state").string(),
                                         "EDITOR=" + editor,
                                         "VISUAL=",
                                         "NO_COLOR=1",
                                         SBX_BINARY};
        argv.insert(argv.end(), args.begin(), args.end());
        RunOptions opts;
        opts.cwd = home.path();  // no ./profiles here: only the user's folder and the shipped ones
        opts.timeout = std::chrono::seconds(60);
        return run_command(argv, opts);
    }
};

TEST(ProfileCli, CheckReportsValidAndInvalid) {
    Cli cli;
    cli.home.write("config/sbx/profiles/good.toml", "[vm]\ncpus = 2\n");
    auto bad = cli.home.write("config/sbx/profiles/bad.toml", "[vm]\ncpus = 0\nmemroy = \"1G\"\n");
    auto ok = cli.run({"check", "good"});
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_NE(ok.output.find("✓ good: " + (cli.profiles() / "good.toml").string()), std::string::npos) << ok.output;
    EXPECT_NE(ok.output.find("vm debian-12, 2 cpus"), std::string::npos) << ok.output;

    auto r = cli.run({"check", "bad"});
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find(bad.string() + ":2:8: vm.cpus: 0 is out of range (1 to 64)"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find(bad.string() + ":3:1: vm.memroy: unknown key (did you mean \"memory\"?)"),
              std::string::npos)
        << r.output;

    // Without a name: every profile on the search path; one bad one fails the whole check.
    auto all = cli.run({"check"});
    EXPECT_EQ(all.exit_code, 3) << all.output;
    EXPECT_NE(all.output.find("✓ good"), std::string::npos);
    EXPECT_NE(all.output.find("invalid"), std::string::npos);
}

TEST(ProfileCli, NewCopiesATemplateAndRefusesToOverwrite) {
    Cli cli;
    auto r = cli.run({"new", "proj", "--from", std::string(SBX_SOURCE_DIR) + "/profiles/agent.toml"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto file = cli.profiles() / "proj.toml";
    ASSERT_TRUE(std::filesystem::exists(file));
    EXPECT_NE(test::slurp(file).find("api.anthropic.com:443"), std::string::npos);
    EXPECT_EQ(cli.run({"check", "proj"}).exit_code, 0);
    auto again = cli.run({"new", "proj"});
    EXPECT_EQ(again.exit_code, 1) << again.output;
    EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;
    auto missing = cli.run({"new", "other", "--from", "no-such-template"});
    EXPECT_EQ(missing.exit_code, 4) << missing.output;
}

TEST(ProfileCli, EditSavesOnlyValidProfiles) {
    Cli cli;
    auto file = cli.home.write("config/sbx/profiles/ed.toml", "[vm]\ncpus = 2\n");

    // A valid change is saved.
    auto ok = cli.run({"edit", "ed"}, "sed -i s/cpus\\ =\\ 2/cpus\\ =\\ 3/");
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_EQ(test::slurp(file), "[vm]\ncpus = 3\n");
    EXPECT_NE(ok.output.find("saved"), std::string::npos) << ok.output;

    // An invalid change (no terminal to ask on) leaves the profile as it was and keeps the draft.
    auto bad = cli.run({"edit", "ed"}, "sed -i s/cpus\\ =\\ 3/cpus\\ =\\ 99/");
    EXPECT_EQ(bad.exit_code, 3) << bad.output;
    EXPECT_EQ(test::slurp(file), "[vm]\ncpus = 3\n");
    auto draft = cli.profiles() / "ed.draft.toml";
    ASSERT_TRUE(std::filesystem::exists(draft));
    EXPECT_EQ(test::slurp(draft), "[vm]\ncpus = 99\n");
    EXPECT_NE(bad.output.find(draft.string() + ":2:8: vm.cpus: 99 is out of range (1 to 64)"), std::string::npos)
        << bad.output;
    EXPECT_NE(bad.output.find("unchanged"), std::string::npos) << bad.output;

    // The next edit continues the draft; fixing it saves and removes the draft.
    auto fix = cli.run({"edit", "ed"}, "sed -i s/cpus\\ =\\ 99/cpus\\ =\\ 4/");
    EXPECT_EQ(fix.exit_code, 0) << fix.output;
    EXPECT_NE(fix.output.find("continuing the draft"), std::string::npos) << fix.output;
    EXPECT_EQ(test::slurp(file), "[vm]\ncpus = 4\n");
    EXPECT_FALSE(std::filesystem::exists(draft));

    // No change: nothing written, no draft left.
    auto same = cli.run({"edit", "ed"}, "true");
    EXPECT_EQ(same.exit_code, 0) << same.output;
    EXPECT_NE(same.output.find("no changes"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(draft));

    // A failing editor changes nothing.
    auto fail = cli.run({"edit", "ed"}, "false");
    EXPECT_EQ(fail.exit_code, 1) << fail.output;
    EXPECT_EQ(test::slurp(file), "[vm]\ncpus = 4\n");
}

TEST(ProfileCli, UpRefusesFeaturesThisBuildCannotRun) {
    Cli cli;
    cli.home.write("config/sbx/profiles/sec.toml",
                   "[secrets.TOKEN]\nfrom_env = \"TOKEN\"\nhosts = [\"api.example.com\"]\n");
    auto r = cli.run({"up", "sec"});
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find("[secrets]: secret injection"), std::string::npos) << r.output;
    // Nothing was started or created.
    EXPECT_FALSE(std::filesystem::exists(cli.home.path() / "state/vms/sec"));
}

}  // namespace
}  // namespace sbx
