#include "sbx/util/strings.hpp"

#include <gtest/gtest.h>

namespace sbx {
namespace {

TEST(Strings, ParseSize) {
    EXPECT_EQ(parse_size("8G"), 8ULL << 30);
    EXPECT_EQ(parse_size("512M"), 512ULL << 20);
    EXPECT_EQ(parse_size("512MB"), 512ULL << 20);
    EXPECT_EQ(parse_size("1.5G"), 3ULL << 29);
    EXPECT_EQ(parse_size("4096"), 4096u);
    EXPECT_EQ(parse_size("2t"), 2ULL << 40);
    EXPECT_FALSE(parse_size(""));
    EXPECT_FALSE(parse_size("G"));
    EXPECT_FALSE(parse_size("-1G"));
    EXPECT_FALSE(parse_size("8X"));
    EXPECT_FALSE(parse_size("1.5"));  // fractional bytes
    EXPECT_FALSE(parse_size("99999999999T"));
}

TEST(Strings, FormatSize) {
    EXPECT_EQ(format_size(8ULL << 30), "8G");
    EXPECT_EQ(format_size(512ULL << 20), "512M");
    EXPECT_EQ(format_size(1536), "1.5K");
    EXPECT_EQ(format_size(100), "100");
}

TEST(Strings, DidYouMean) {
    EXPECT_EQ(did_you_mean("cpu", {"cpus", "memory"}), "cpus");
    EXPECT_EQ(did_you_mean("memroy", {"cpus", "memory"}), "memory");
    EXPECT_FALSE(did_you_mean("zzzzzz", {"cpus", "memory"}));
}

TEST(Strings, ShellQuote) {
    EXPECT_EQ(shell_quote("abc"), "abc");
    EXPECT_EQ(shell_quote("exit 3"), "'exit 3'");
    EXPECT_EQ(shell_quote(""), "''");
    EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
    EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
}

TEST(Strings, InstanceNames) {
    EXPECT_TRUE(valid_instance_name("work"));
    EXPECT_TRUE(valid_instance_name("a-b_c9"));
    EXPECT_FALSE(valid_instance_name(".."));
    EXPECT_FALSE(valid_instance_name("Work"));
}

TEST(Strings, Durations) {
    EXPECT_EQ(format_duration_ms(1234), "1.2s");
    EXPECT_EQ(format_duration_ms(65'000), "1m 5s");
    EXPECT_EQ(format_duration_ms(3'700'000), "1h 1m");
}

}  // namespace
}  // namespace sbx
