#include "sbx/image/image.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

namespace sbx {
namespace {

using test::TempDir;

// A built image as build_image leaves it (contents are placeholders).
void fake_image(const TempDir& root, const std::string& name, bool with_info = true) {
    root.write(name + "/disk.qcow2", "QFI\xfb");
    root.write(name + "/vmlinuz", "kernel");
    root.write(name + "/initrd.img", "initrd");
    if (with_info) {
        root.write(name + "/image.json",
                   "{\"name\": \"" + name +
                       "\", \"fingerprint\": \"fnv1a64:00000000000000ff\", "
                       "\"built_at\": \"2025-01-02T03:04:05Z\", \"disk_bytes\": 4}\n");
    }
}

TEST(ImageStore, FilesLayout) {
    auto f = image::image_files("/x/images", "debian-12");
    EXPECT_EQ(f.dir, "/x/images/debian-12");
    EXPECT_EQ(f.disk, "/x/images/debian-12/disk.qcow2");
    EXPECT_EQ(f.kernel, "/x/images/debian-12/vmlinuz");
    EXPECT_EQ(f.initrd, "/x/images/debian-12/initrd.img");
    EXPECT_EQ(f.info, "/x/images/debian-12/image.json");
}

TEST(ImageStore, ReadsCompleteImagesOnly) {
    TempDir root;
    fake_image(root, "good");
    fake_image(root, "noinfo", false);
    fake_image(root, "broken");
    root.write("broken/image.json", "{not json");
    fake_image(root, "nokernel");
    std::filesystem::remove(root.path() / "nokernel" / "vmlinuz");

    auto info = image::read_image_info(image::image_files(root.path(), "good"));
    ASSERT_TRUE(info);
    EXPECT_EQ(info->name, "good");
    EXPECT_EQ(info->fingerprint, "fnv1a64:00000000000000ff");
    EXPECT_EQ(info->built_at, "2025-01-02T03:04:05Z");
    EXPECT_EQ(info->disk_bytes, 4U);
    EXPECT_FALSE(image::read_image_info(image::image_files(root.path(), "noinfo")));
    EXPECT_FALSE(image::read_image_info(image::image_files(root.path(), "broken")));
    EXPECT_FALSE(image::read_image_info(image::image_files(root.path(), "nokernel")));
    EXPECT_FALSE(image::read_image_info(image::image_files(root.path(), "absent")));
}

TEST(ImageStore, ListSkipsHiddenAndIncomplete) {
    TempDir root;
    fake_image(root, "zeta");
    fake_image(root, "alpha");
    fake_image(root, ".alpha.build-abc123");
    fake_image(root, "half", false);
    root.write(".alpha.lock", "");
    auto list = image::list_images(root.path());
    ASSERT_EQ(list.size(), 2U);
    EXPECT_EQ(list[0].name, "alpha");
    EXPECT_EQ(list[1].name, "zeta");
    EXPECT_TRUE(image::list_images(root.path() / "does-not-exist").empty());
}

TEST(ImageStore, Remove) {
    TempDir root;
    fake_image(root, "old");
    image::remove_image(root.path(), "old");
    EXPECT_FALSE(std::filesystem::exists(root.path() / "old"));
    EXPECT_TRUE(image::list_images(root.path()).empty());
    EXPECT_TRUE(std::filesystem::is_empty(root.path())) << "nothing left behind";
    try {
        image::remove_image(root.path(), "old");
        FAIL() << "removing a missing image must fail";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::not_found);
        EXPECT_EQ(std::string(e.what()), "no image named old");
    }
    EXPECT_THROW(image::remove_image(root.path(), "../etc"), Error);
}

}  // namespace
}  // namespace sbx
