// Which "*.DOMAIN" wildcards reach names other owners hold or the guest chooses: the Public
// Suffix List (ICANN and private sections) and the wildcard-DNS services.

#include "sbx/util/public_suffix.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace sbx {
namespace {

void expect_broad(const std::string& domain, WildcardReach reach, const std::string& suffix) {
    SCOPED_TRACE(domain);
    auto b = broad_wildcard(domain);
    ASSERT_TRUE(b.has_value()) << "*." << domain << " passed";
    EXPECT_EQ(b->reach, reach);
    EXPECT_EQ(b->suffix, suffix);
}

TEST(PublicSuffix, RefusesWildcardsOverPublicSuffixes) {
    if (!std::filesystem::exists(k_public_suffix_list)) {
        GTEST_SKIP() << "skipped: no " << k_public_suffix_list << " (apt-get install publicsuffix)";
    }
    expect_broad("com", WildcardReach::top_level, "com");
    expect_broad("co.uk", WildcardReach::public_suffix, "co.uk");          // ICANN section
    expect_broad("github.io", WildcardReach::public_suffix, "github.io");  // private section
    expect_broad("s3.amazonaws.com", WildcardReach::public_suffix, "s3.amazonaws.com");
    expect_broad("foo.compute-1.amazonaws.com", WildcardReach::public_suffix, "foo.compute-1.amazonaws.com");
    expect_broad("compute-1.amazonaws.com", WildcardReach::suffix_children, "compute-1.amazonaws.com");
    expect_broad("kawasaki.jp", WildcardReach::suffix_children, "kawasaki.jp");  // "*.kawasaki.jp"
    expect_broad("amazonaws.com", WildcardReach::suffix_beneath, "s3.amazonaws.com");
    expect_broad("ngrok-free.app", WildcardReach::public_suffix, "ngrok-free.app");  // newer than the list
}

TEST(PublicSuffix, RefusesWildcardsAnywhereUnderWildcardDns) {
    expect_broad("sslip.io", WildcardReach::wildcard_dns, "sslip.io");
    expect_broad("nip.io", WildcardReach::wildcard_dns, "nip.io");
    expect_broad("10.0.0.1.nip.io", WildcardReach::wildcard_dns, "nip.io");
    expect_broad("xip.io", WildcardReach::wildcard_dns, "xip.io");
}

TEST(PublicSuffix, AllowsWildcardsUnderOneOwner) {
    if (!std::filesystem::exists(k_public_suffix_list)) {
        GTEST_SKIP() << "skipped: no " << k_public_suffix_list << " (apt-get install publicsuffix)";
    }
    for (const char* d :
         {"example.com", "api.example.com", "foo.github.io", "example.co.uk", "bucket.s3.amazonaws.com",
          "x.foo.compute-1.amazonaws.com", "city.kawasaki.jp", "github.com", "snip.io"}) {
        EXPECT_FALSE(broad_wildcard(d).has_value()) << "*." << d << " refused";
    }
}

}  // namespace
}  // namespace sbx
