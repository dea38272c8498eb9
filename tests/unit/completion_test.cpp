// sbx completion: the scripts come from the real CLI (the built sbx binary), cover every
// verb and option that `sbx --help` shows, are valid shell, and a real bash completes
// verbs, flags and the profile and instance names that exist at TAB time.

#include "sbx/util/process.hpp"
#include "sbx/vm/completion.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using sbx::test::TempDir;

const std::string k_sbx = SBX_BIN;

sbx::RunResult sbx_cmd(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {k_sbx};
    argv.insert(argv.end(), args.begin(), args.end());
    return sbx::run_command(argv, {}, std::chrono::seconds(30), {"NO_COLOR=1"});
}

std::vector<std::string> split_ws(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    std::string w;
    while (in >> w) {
        out.push_back(w);
    }
    return out;
}

// The first words of the lines of a help section ("Options:", "Subcommands:").
std::vector<std::string> help_section(const std::string& help, const std::string& title) {
    std::vector<std::string> out;
    std::istringstream in(help);
    std::string line;
    bool inside = false;
    while (std::getline(in, line)) {
        if (line == title) {
            inside = true;
            continue;
        }
        if (inside && (line.empty() || line[0] != ' ')) {
            inside = false;
        }
        if (inside) {
            auto w = split_ws(line);
            // Continuation lines of a wrapped description start far to the right.
            // Hidden internal verbs (_supervise) show in CLI11's list without a description.
            if (!w.empty() && line.find_first_not_of(' ') < 10 && w[0][0] != '_') {
                out.push_back(w[0]);
            }
        }
    }
    return out;
}

// Every option name ("-f", "--force") that `sbx PATH... --help` lists.
std::vector<std::string> help_options(const std::string& help) {
    std::vector<std::string> out;
    for (const auto& first : help_section(help, "Options:")) {
        std::stringstream names(first);
        std::string n;
        while (std::getline(names, n, ',')) {
            if (n.rfind('-', 0) == 0) {
                out.push_back(n);
            }
        }
    }
    return out;
}

// The tree of verbs as `--help` shows it: "" -> {"up", ...}, "image" -> {"build", ...}.
void walk_help(const std::vector<std::string>& path, std::map<std::string, std::string>& helps) {
    std::vector<std::string> args = path;
    args.push_back("--help");
    auto r = sbx_cmd(args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::string key;
    for (const auto& p : path) {
        key += (key.empty() ? "" : " ") + p;
    }
    helps[key] = r.output;
    for (const auto& sub : help_section(r.output, "Subcommands:")) {
        auto next = path;
        next.push_back(sub);
        walk_help(next, helps);
    }
}

// The text of `case` arm PATH of shell function FN in a bash/zsh script.
std::string case_arm(const std::string& script, const std::string& fn, const std::string& path) {
    auto f = script.find(fn + "() {");
    if (f == std::string::npos) {
        return "";
    }
    auto end = script.find("\n}\n", f);
    std::string body = script.substr(f, end - f);
    std::string head = "\n    '" + path + "') echo '";
    auto at = body.find(head);
    if (at == std::string::npos) {
        return "";
    }
    at += head.size();
    return body.substr(at, body.find('\'', at) - at);
}

TEST(Completion, ScriptsCoverEveryVerbAndOption) {
    std::map<std::string, std::string> helps;
    walk_help({}, helps);
    ASSERT_GT(helps.size(), 10U) << "sbx --help lists too few verbs";
    EXPECT_TRUE(helps.count("up") && helps.count("ssh") && helps.count("cp") && helps.count("run") &&
                helps.count("ssh-config") && helps.count("completion") && helps.count("image build"));
    EXPECT_FALSE(helps.count("_supervise") || helps.count("_complete"));

    auto bash = sbx_cmd({"completion", "bash"});
    auto zsh = sbx_cmd({"completion", "zsh"});
    auto fish = sbx_cmd({"completion", "fish"});
    ASSERT_EQ(bash.exit_code, 0) << bash.output;
    ASSERT_EQ(zsh.exit_code, 0) << zsh.output;
    ASSERT_EQ(fish.exit_code, 0) << fish.output;

    for (const auto& [path, help] : helps) {
        // Subcommands of this level, in the data every script is built from.
        auto subs = help_section(help, "Subcommands:");
        auto arm = split_ws(case_arm(bash.output, "_sbx_subcommands", path));
        std::set<std::string> bash_subs(arm.begin(), arm.end());
        EXPECT_EQ(bash_subs, std::set<std::string>(subs.begin(), subs.end())) << "verbs of \"" << path << "\"";
        for (const auto& s : subs) {
            bool in_zsh = zsh.output.find("\n" + s + ":") != std::string::npos ||
                          zsh.output.find("'" + s + ":") != std::string::npos;
            EXPECT_TRUE(in_zsh) << "zsh lacks verb " << s;
            EXPECT_NE(fish.output.find(" -a '" + s + "' "), std::string::npos) << "fish lacks verb " << s;
        }
        // Options: flags and options with a value, together.
        auto flags = split_ws(case_arm(bash.output, "_sbx_flags", path));
        auto valued = split_ws(case_arm(bash.output, "_sbx_valued", path));
        std::set<std::string> bash_opts(flags.begin(), flags.end());
        bash_opts.insert(valued.begin(), valued.end());
        auto opts = help_options(help);
        EXPECT_FALSE(opts.empty()) << path;
        EXPECT_EQ(bash_opts, std::set<std::string>(opts.begin(), opts.end())) << "options of \"" << path << "\"";
        for (const auto& o : opts) {
            std::string fish_spec = o.rfind("--", 0) == 0 ? " -l '" + o.substr(2) + "'" : " -s '" + o.substr(1) + "'";
            EXPECT_NE(fish.output.find(fish_spec), std::string::npos) << "fish lacks " << o << " of " << path;
        }
    }
}

TEST(Completion, BashScriptIsValidBash) {
    if (!sbx::find_program("bash")) {
        GTEST_SKIP() << "skipped: bash not installed";
    }
    TempDir dir;
    auto script = dir.write("sbx.bash", sbx_cmd({"completion", "bash"}).output);
    auto r = sbx::run_command({"bash", "-n", script.string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(Completion, ZshScriptIsValidZsh) {
    if (!sbx::find_program("zsh")) {
        GTEST_SKIP() << "skipped: zsh not installed";
    }
    TempDir dir;
    auto script = dir.write("_sbx", sbx_cmd({"completion", "zsh"}).output);
    auto r = sbx::run_command({"zsh", "-n", script.string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(Completion, FishScriptIsValidFish) {
    if (!sbx::find_program("fish")) {
        GTEST_SKIP() << "skipped: fish not installed";
    }
    TempDir dir;
    auto script = dir.write("sbx.fish", sbx_cmd({"completion", "fish"}).output);
    auto r = sbx::run_command({"fish", "-n", script.string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(Completion, UnknownShellIsAUsageError) {
    auto r = sbx_cmd({"completion", "tcsh"});
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_THROW(sbx::vm::parse_shell("tcsh"), std::exception);
}

// A real bash, the generated script sourced, the completion function called as readline
// would call it; profiles and instances come from a temporary config and SBX_HOME.
class BashCompletion : public ::testing::Test {
protected:
    void SetUp() override {
        if (!sbx::find_program("bash")) {
            GTEST_SKIP() << "skipped: bash not installed";
        }
        m_dir.write("cfg/sbx/profiles/alpha.toml", "");
        m_dir.write("cfg/sbx/profiles/beta.toml", "");
        fs::create_directories(m_dir.path() / "home" / "vms" / "inst1");
        fs::create_directories(m_dir.path() / "home" / "vms" / "other-vm");
        fs::create_directories(m_dir.path() / "cwd" / "somedir");
        m_script = m_dir.write("sbx.bash", sbx_cmd({"completion", "bash"}).output);
    }

    // The candidates bash offers for `words` (the last one is the word being typed).
    std::vector<std::string> complete(const std::vector<std::string>& words) {
        std::string arr;
        for (const auto& w : words) {
            arr += " '" + w + "'";
        }
        std::string prog = "source '" + m_script.string() +
                           "' || exit 90\n"
                           "complete -p sbx >/dev/null || exit 91\n"
                           "COMP_WORDS=('" + k_sbx + "'" + arr +
                           ")\n"
                           "COMP_CWORD=" + std::to_string(words.size()) +
                           "\n"
                           "COMPREPLY=()\n"
                           "_sbx 2>/dev/null\n"
                           "printf 'C:%s\\n' \"${COMPREPLY[@]}\"\n";
        sbx::RunOptions o;
        o.extra_env = {"XDG_CONFIG_HOME=" + (m_dir.path() / "cfg").string(),
                       "SBX_HOME=" + (m_dir.path() / "home").string()};
        o.cwd = m_dir.path() / "cwd";
        o.timeout = std::chrono::seconds(30);
        auto r = sbx::run_command({"bash", "--norc", "--noprofile", "-c", prog}, o);
        EXPECT_EQ(r.exit_code, 0) << r.output;
        std::vector<std::string> out;
        std::istringstream in(r.output);
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("C:", 0) == 0 && line.size() > 2) {
                out.push_back(line.substr(2));
            }
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    using V = std::vector<std::string>;
    TempDir m_dir;
    fs::path m_script;
};

TEST_F(BashCompletion, Verbs) {
    EXPECT_EQ(complete({"u"}), V{"up"});
    auto s = complete({"s"});
    EXPECT_TRUE(std::find(s.begin(), s.end(), "ssh") != s.end());
    EXPECT_TRUE(std::find(s.begin(), s.end(), "ssh-config") != s.end());
    EXPECT_TRUE(std::find(s.begin(), s.end(), "status") != s.end());
    EXPECT_EQ(complete({"_su"}), V{});  // hidden verbs stay hidden
    EXPECT_EQ(complete({"image", ""}), (V{"build", "ls", "rm"}));
}

TEST_F(BashCompletion, ProfileAndInstanceNames) {
    EXPECT_EQ(complete({"up", ""}), (V{"alpha", "beta"}));
    EXPECT_EQ(complete({"up", "b"}), V{"beta"});
    EXPECT_EQ(complete({"run", "--rm", ""}), (V{"alpha", "beta"}));
    EXPECT_EQ(complete({"ssh", ""}), (V{"inst1", "other-vm"}));
    EXPECT_EQ(complete({"down", "--force", "o"}), V{"other-vm"});
    EXPECT_EQ(complete({"ssh-config", "i"}), V{"inst1"});
}

TEST_F(BashCompletion, FlagsAndChoices) {
    EXPECT_EQ(complete({"rm", "--f"}), V{"--force"});
    EXPECT_EQ(complete({"up", "--fr"}), V{"--fresh"});
    EXPECT_EQ(complete({"cp", "-"}), (V{"--help", "--recursive", "-h", "-r"}));
    EXPECT_EQ(complete({"completion", ""}), (V{"bash", "fish", "zsh"}));
}

TEST_F(BashCompletion, CopyPathsOfferInstancesAndHostFiles) {
    auto c = complete({"cp", ""});
    EXPECT_TRUE(std::find(c.begin(), c.end(), "inst1:") != c.end()) << ::testing::PrintToString(c);
    EXPECT_TRUE(std::find(c.begin(), c.end(), "somedir") != c.end()) << ::testing::PrintToString(c);
    EXPECT_EQ(complete({"cp", "somedir", "ot"}), V{"other-vm:"});
}

TEST_F(BashCompletion, NothingAfterDoubleDash) {
    EXPECT_EQ(complete({"ssh", "inst1", "--", ""}), V{});
    EXPECT_EQ(complete({"run", "alpha", "--", "l"}), V{});
}

TEST(CompletionWords, ListsProfilesAndInstances) {
    TempDir dir;
    dir.write("cfg/sbx/profiles/zeta.toml", "");
    fs::create_directories(dir.path() / "home" / "vms" / "box");
    sbx::RunOptions o;
    o.extra_env = {"XDG_CONFIG_HOME=" + (dir.path() / "cfg").string(), "SBX_HOME=" + (dir.path() / "home").string()};
    o.cwd = dir.path();
    auto p = sbx::run_command({k_sbx, "_complete", "profiles"}, o);
    EXPECT_EQ(p.exit_code, 0);
    EXPECT_EQ(p.output, "zeta\n");
    auto i = sbx::run_command({k_sbx, "_complete", "instances"}, o);
    EXPECT_EQ(i.exit_code, 0);
    EXPECT_EQ(i.output, "box\n");
    auto junk = sbx::run_command({k_sbx, "_complete", "whatever"}, o);
    EXPECT_EQ(junk.exit_code, 0);
    EXPECT_EQ(junk.output, "");
}

}  // namespace
