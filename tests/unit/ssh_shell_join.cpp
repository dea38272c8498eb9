// shell_join: the one command string SSH carries must give the guest's shell back the
// same words. Checked by exact output and by a round trip through a real /bin/sh.

#include "sbx/ssh/ssh.hpp"
#include "sbx/util/process.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using sbx::ssh::shell_join;

TEST(SshShellJoin, PlainWordsStayUnquoted) {
    EXPECT_EQ(shell_join({"abc"}), "abc");
    EXPECT_EQ(shell_join({"ls", "-la", "/tmp/x.y", "a,b:c", "user@host", "50%", "a+b"}),
              "ls -la /tmp/x.y a,b:c user@host 50% a+b");
    EXPECT_EQ(shell_join({"cmd", "--opt=value"}), "cmd --opt=value");
}

TEST(SshShellJoin, QuotesOnlyWhereNeeded) {
    EXPECT_EQ(shell_join({"sh", "-c", "exit 3"}), "sh -c 'exit 3'");
    EXPECT_EQ(shell_join({"echo", "$HOME"}), "echo '$HOME'");
    EXPECT_EQ(shell_join({"echo", "a;b", "c|d", "e&f", "*", "~", "#x"}),
              "echo 'a;b' 'c|d' 'e&f' '*' '~' '#x'");
}

TEST(SshShellJoin, EmptyWordIsKept) {
    EXPECT_EQ(shell_join({"printf", ""}), "printf ''");
    EXPECT_EQ(shell_join({}), "");
}

TEST(SshShellJoin, EmbeddedSingleQuote) {
    EXPECT_EQ(shell_join({"echo", "it's"}), "echo 'it'\\''s'");
    EXPECT_EQ(shell_join({"'"}), "''\\'''");
}

TEST(SshShellJoin, CommandPositionIsNotAKeywordOrAssignment) {
    // Unquoted, `FOO=bar cmd` would set a variable and run cmd instead of running FOO=bar.
    EXPECT_EQ(shell_join({"FOO=bar", "cmd"}), "'FOO=bar' cmd");
    EXPECT_EQ(shell_join({"if", "x"}), "'if' x");
    EXPECT_EQ(shell_join({"echo", "if", "FOO=bar"}), "echo if FOO=bar");
}

TEST(SshShellJoin, RoundTripsThroughPosixShell) {
    if (!sbx::find_program("sh")) {
        GTEST_SKIP() << "skipped: no sh in PATH";
    }
    std::vector<std::vector<std::string>> cases = {
        {"plain", "two words", ""},
        {"it's", "'", "''", "a'b'c"},
        {"$HOME", "`id`", "$(id)", "\\", "\"", "\\'", "!x", "a\"b"},
        {"tab\there", "new\nline", "*", "?", "[a]", "{a,b}", "~root", "#c", "a=b"},
        {"; rm -rf /nonexistent", "&& false", "| cat", "> /dev/null", "<x", "(x)"},
        {"\xc3\xa9t\xc3\xa9", "\x7f", "\x01"},
    };
    for (const auto& words : cases) {
        // printf repeats its format for each argument: "%s\x02" marks each word's end.
        std::vector<std::string> argv = {"printf", "%s\\002"};
        argv.insert(argv.end(), words.begin(), words.end());
        auto result = sbx::run_command({"sh", "-c", shell_join(argv)});
        ASSERT_EQ(result.exit_code, 0) << shell_join(argv);
        std::string expected;
        for (const auto& w : words) {
            expected += w;
            expected += '\x02';
        }
        EXPECT_EQ(result.output, expected) << shell_join(argv);
    }
}

}  // namespace
