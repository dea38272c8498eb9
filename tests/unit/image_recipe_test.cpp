#include "sbx/image/image.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace sbx {
namespace {

using test::TempDir;

std::string error_of(const std::filesystem::path& file) {
    try {
        image::load_recipe(file);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::config) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no error for " << file;
    return {};
}

// A recipe folder like images/: the recipe plus a guest/ folder beside it.
struct RecipeDir {
    TempDir dir;
    std::filesystem::path recipe(const std::string& name, const std::string& text) const {
        dir.write("guest/install.sh", "#!/bin/sh\necho install\n");
        dir.write("guest/sbx-seed", "#!/bin/sh\necho seed\n");
        return dir.write(name, text);
    }
};

TEST(ImageRecipe, ShippedDefaultRecipeIsValid) {
    auto r = image::load_recipe(std::filesystem::path(SBX_SOURCE_DIR) / "images" / "debian-12.toml");
    EXPECT_EQ(r.name, "debian-12");
    EXPECT_EQ(r.suite, "bookworm");
    EXPECT_EQ(r.kernel, "cloud");
    EXPECT_EQ(r.size_bytes, 2ULL << 30);
    EXPECT_FALSE(r.packages.empty());
    EXPECT_EQ(image::guest_dir(r), std::filesystem::path(SBX_SOURCE_DIR) / "images" / "guest");
    EXPECT_TRUE(r.fingerprint().rfind("fnv1a64:", 0) == 0) << r.fingerprint();
}

TEST(ImageRecipe, ReadsEveryKey) {
    RecipeDir d;
    auto file = d.recipe("custom-1.toml",
                         "suite = \"trixie\"\nkernel = \"amd64\"\nsize = \"512M\"\n"
                         "packages = [\"git\", \"g++\", \"python3.11\"]\nsetup = \"echo hi\"\n");
    auto r = image::load_recipe(file);
    EXPECT_EQ(r.name, "custom-1");
    EXPECT_EQ(r.suite, "trixie");
    EXPECT_EQ(r.kernel, "amd64");
    EXPECT_EQ(r.size_bytes, 512ULL << 20);
    EXPECT_EQ(r.packages, (std::vector<std::string>{"git", "g++", "python3.11"}));
    EXPECT_EQ(r.setup, "echo hi");
    EXPECT_TRUE(r.file.is_absolute());
}

TEST(ImageRecipe, Defaults) {
    RecipeDir d;
    auto r = image::load_recipe(d.recipe("minimal.toml", "suite = \"bookworm\"\n"));
    EXPECT_EQ(r.kernel, "cloud");
    EXPECT_EQ(r.size_bytes, 2ULL << 30);
    EXPECT_TRUE(r.packages.empty());
    EXPECT_TRUE(r.setup.empty());
}

TEST(ImageRecipe, UnknownKeyNamesFileLineColumnAndGuess) {
    RecipeDir d;
    auto file = d.recipe("x.toml", "suite = \"bookworm\"\npakages = [\"git\"]\n");
    EXPECT_EQ(error_of(file),
              file.string() + ":2:1: pakages: unknown key (did you mean \"packages\"?)");
}

TEST(ImageRecipe, UnknownKeyWithoutGuess) {
    RecipeDir d;
    auto file = d.recipe("x.toml", "suite = \"bookworm\"\n  mirror = \"http://x\"\n");
    EXPECT_EQ(error_of(file), file.string() + ":2:3: mirror: unknown key");
}

TEST(ImageRecipe, BadSize) {
    RecipeDir d;
    auto file = d.recipe("x.toml", "suite = \"bookworm\"\nsize = \"2X\"\n");
    EXPECT_EQ(error_of(file),
              file.string() + ":2:8: size: invalid size \"2X\" (use a number with K, M, G or T, like \"2G\")");
}

TEST(ImageRecipe, SizeOutOfRangeAndWrongType) {
    RecipeDir d;
    auto small = d.recipe("a.toml", "suite = \"bookworm\"\nsize = \"100M\"\n");
    EXPECT_EQ(error_of(small), small.string() + ":2:8: size: 100M is out of range (512M to 2T)");
    auto number = d.recipe("b.toml", "suite = \"bookworm\"\nsize = 2048\n");
    EXPECT_EQ(error_of(number),
              number.string() + ":2:8: size: expected a size string like \"2G\", found an integer");
}

TEST(ImageRecipe, MissingSuite) {
    RecipeDir d;
    auto file = d.recipe("x.toml", "size = \"2G\"\n");
    EXPECT_EQ(error_of(file),
              file.string() + ":1:1: suite: missing (the Debian suite to install, like \"bookworm\")");
}

TEST(ImageRecipe, AllProblemsAreReported) {
    RecipeDir d;
    auto file = d.recipe("x.toml",
                         "suite = 12\npackages = [\"ok\", \"Not Valid\", 3]\nkernel = \"Cloud\"\n");
    EXPECT_EQ(error_of(file),
              file.string() + ":1:9: suite: expected a string, found an integer\n" +
                  file.string() + ":2:19: packages[1]: invalid package name \"Not Valid\"\n" +
                  file.string() + ":2:32: packages[2]: expected a string, found an integer\n" +
                  file.string() +
                  ":3:10: kernel: \"Cloud\" is not a valid kernel flavour (lowercase letters, digits and -)");
}

TEST(ImageRecipe, SyntaxErrorNamesPosition) {
    RecipeDir d;
    auto file = d.recipe("x.toml", "suite = \"bookworm\n");
    auto msg = error_of(file);
    EXPECT_EQ(msg.rfind(file.string() + ":1:", 0), 0U) << msg;
}

TEST(ImageRecipe, MissingFileIsNotFound) {
    try {
        image::load_recipe("/nonexistent/nothing.toml");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::not_found);
    }
}

TEST(ImageRecipe, FingerprintFollowsRecipeAndGuestFiles) {
    RecipeDir d;
    auto file = d.recipe("fp.toml", "suite = \"bookworm\"\n");
    auto r = image::load_recipe(file);
    auto first = r.fingerprint();
    EXPECT_EQ(first, r.fingerprint()) << "stable for the same content";

    d.dir.write("fp.toml", "suite = \"bookworm\"\npackages = [\"git\"]\n");
    auto second = image::load_recipe(file).fingerprint();
    EXPECT_NE(first, second) << "the recipe changed";

    d.dir.write("guest/sbx-seed", "#!/bin/sh\necho seed v2\n");
    auto third = image::load_recipe(file).fingerprint();
    EXPECT_NE(second, third) << "a guest file changed";

    d.dir.write("guest/new-file", "x");
    EXPECT_NE(third, image::load_recipe(file).fingerprint()) << "a guest file was added";
}

TEST(ImageRecipe, FingerprintNeedsGuestFiles) {
    TempDir dir;
    auto file = dir.write("lonely.toml", "suite = \"bookworm\"\n");
    auto r = image::load_recipe(file);
    EXPECT_THROW(r.fingerprint(), Error);
}

}  // namespace
}  // namespace sbx
