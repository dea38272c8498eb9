// The bad-profile corpus: tests/profiles/bad/NAME.toml must fail to load with exactly the
// text in NAME.err (the corpus folder written as DIR). SBX_UPDATE_GOLDEN=1 rewrites the
// .err files; review the diff before committing.

#include "sbx/profile/profile.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace sbx {
namespace {

const std::filesystem::path k_bad = std::filesystem::path(SBX_SOURCE_DIR) / "tests/profiles/bad";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
        s.replace(pos, from.size(), to);
    }
    return s;
}

TEST(ProfileCorpus, EveryBadProfileFailsWithItsExactError) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(k_bad)) {
        if (e.path().extension() == ".toml") {
            files.push_back(e.path());
        }
    }
    std::sort(files.begin(), files.end());
    ASSERT_GE(files.size(), 25u);
    bool update = std::getenv("SBX_UPDATE_GOLDEN") != nullptr;
    for (const auto& file : files) {
        SCOPED_TRACE(file.filename().string());
        std::string got;
        try {
            profile::load_profile_file(file);
            ADD_FAILURE() << file << " loaded without an error";
            continue;
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ExitCode::config);
            got = replace_all(e.what(), k_bad.string(), "DIR") + "\n";
        }
        auto expected_file = std::filesystem::path(file).replace_extension(".err");
        if (update) {
            std::ofstream(expected_file) << got;
            continue;
        }
        ASSERT_TRUE(std::filesystem::exists(expected_file)) << "missing " << expected_file;
        EXPECT_EQ(got, test::slurp(expected_file));
    }
}

}  // namespace
}  // namespace sbx
