// Review-mode shares: sbx apply's safety rules on temporary trees.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbx/share/apply.hpp"
#include "sbx/share/sha256.hpp"
#include "sbx/share/snapshot.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace sbx;
using namespace sbx::share;

namespace {

struct Trees {
    test::TempDir tmp;
    fs::path host = tmp.path() / "host";
    fs::path outside = tmp.path() / "outside";
    instance::ShareLayout share{tmp.path() / "shares" / "0"};

    Trees() {
        fs::create_directories(host);
        fs::create_directories(outside);
    }

    fs::path put(const fs::path& root, const std::string& rel, const std::string& content,
                 mode_t mode = 0644) const {
        auto p = root / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << content;
        ::chmod(p.c_str(), mode);
        return p;
    }
    fs::path host_file(const std::string& rel, const std::string& content, mode_t mode = 0644) const {
        return put(host, rel, content, mode);
    }
    fs::path work_file(const std::string& rel, const std::string& content, mode_t mode = 0644) const {
        return put(share.work(), rel, content, mode);
    }
    void prepare(const std::vector<std::string>& hide = {}) const {
        share::prepare(host, hide, "/work", share);
    }

    ApplyReport apply(const std::vector<std::string>& paths = {}, ApplyOptions o = {}) const {
        return share::apply(share, host, paths, o);
    }
    std::size_t pending() const { return diff(share).changes.size(); }
};

const FileResult* result(const ApplyReport& r, const std::string& path) {
    for (const auto& f : r.results) {
        if (f.path == path) {
            return &f;
        }
    }
    return nullptr;
}

ino_t inode(const fs::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Any temp file left behind by a write (".sbx-<hex>.tmp")?
bool temp_files_left(const fs::path& root) {
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        if (e.path().filename().string().rfind(".sbx-", 0) == 0) {
            return true;
        }
    }
    return false;
}

}  // namespace

TEST(ShareApply, WritesFilesAtomicallyAndUpdatesBase) {
    Trees t;
    t.host_file("src/main.c", "old\n");
    t.host_file("keep.txt", "keep\n");
    t.prepare();
    t.work_file("src/main.c", "new\n");
    t.work_file("src/new/deep/added.txt", "hello\n", 0640);
    const ino_t before = inode(t.host / "src/main.c");

    auto r = t.apply();
    EXPECT_FALSE(r.any_refused());
    EXPECT_EQ(r.count(Outcome::applied), 4u);  // main.c, new/, new/deep/, added.txt
    EXPECT_EQ(test::slurp(t.host / "src/main.c"), "new\n");
    EXPECT_EQ(test::slurp(t.host / "src/new/deep/added.txt"), "hello\n");
    EXPECT_NE(inode(t.host / "src/main.c"), before);  // replaced by rename, not rewritten
    struct stat st {};
    ASSERT_EQ(::stat((t.host / "src/new/deep/added.txt").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_FALSE(temp_files_left(t.host));
    EXPECT_FALSE(temp_files_left(t.share.base()));
    // base/ and the recorded identity follow: nothing pending, no conflict next time.
    EXPECT_EQ(test::slurp(t.share.base() / "src/main.c"), "new\n");
    EXPECT_EQ(t.pending(), 0u);
    auto meta = read_meta(t.share);
    EXPECT_EQ(meta.files.at("src/main.c").sha256, sha256_hex("new\n"));
    EXPECT_EQ(meta.files.at("src/main.c").inode, inode(t.host / "src/main.c"));
    t.work_file("src/main.c", "newer\n");
    auto again = t.apply();
    EXPECT_FALSE(again.any_refused());
    EXPECT_EQ(test::slurp(t.host / "src/main.c"), "newer\n");
}

TEST(ShareApply, NothingChangesOnTheHostWithoutApply) {
    Trees t;
    t.host_file("a.txt", "one\n");
    t.prepare();
    t.work_file("a.txt", "two\n");
    t.work_file("b.txt", "new\n");
    (void)diff(t.share);
    ApplyOptions o;
    o.dry_run = true;
    auto r = t.apply({}, o);
    EXPECT_EQ(r.count(Outcome::applied), 2u);
    EXPECT_EQ(test::slurp(t.host / "a.txt"), "one\n");
    EXPECT_FALSE(fs::exists(t.host / "b.txt"));
    EXPECT_EQ(t.pending(), 2u);
}

TEST(ShareApply, SymlinkPointingOutsideIsRefused) {
    Trees t;
    t.host_file("a.txt", "one\n");
    t.prepare();
    fs::create_symlink("/etc/passwd", t.share.work() / "abs");
    fs::create_symlink("../outside", t.share.work() / "up");
    fs::create_symlink("a.txt", t.share.work() / "inside");
    auto r = t.apply();
    EXPECT_EQ(result(r, "abs")->outcome, Outcome::refused);
    EXPECT_EQ(result(r, "up")->outcome, Outcome::refused);
    EXPECT_NE(result(r, "up")->message.find("outside the share"), std::string::npos);
    EXPECT_EQ(result(r, "inside")->outcome, Outcome::applied);
    EXPECT_FALSE(fs::exists(fs::symlink_status(t.host / "abs")));
    EXPECT_FALSE(fs::exists(fs::symlink_status(t.host / "up")));
    ASSERT_TRUE(fs::is_symlink(t.host / "inside"));
    EXPECT_EQ(fs::read_symlink(t.host / "inside"), "a.txt");
    // Only with the explicit option.
    ApplyOptions o;
    o.allow_outside_symlinks = true;
    auto r2 = t.apply({"up"}, o);
    EXPECT_FALSE(r2.any_refused());
    EXPECT_EQ(fs::read_symlink(t.host / "up"), "../outside");
}

TEST(ShareApply, NeverWritesThroughASymlinkOnTheHost) {
    Trees t;
    t.host_file("dir/file.txt", "one\n");
    t.prepare();
    t.work_file("dir/file.txt", "guest\n");
    t.work_file("dir/new.txt", "guest\n");
    // After the snapshot, the host's dir/ becomes a symlink to a folder outside the share.
    t.put(t.outside, "file.txt", "outside\n");
    fs::remove_all(t.host / "dir");
    fs::create_symlink(t.outside, t.host / "dir");

    ApplyOptions o;
    o.conflict = ConflictChoice::guest;  // even when told the guest wins
    auto r = t.apply({}, o);
    ASSERT_TRUE(result(r, "dir/file.txt"));
    EXPECT_EQ(result(r, "dir/file.txt")->outcome, Outcome::refused);
    EXPECT_NE(result(r, "dir/file.txt")->message.find("is a symlink"), std::string::npos)
        << result(r, "dir/file.txt")->message;
    EXPECT_EQ(result(r, "dir/new.txt")->outcome, Outcome::refused);
    EXPECT_EQ(test::slurp(t.outside / "file.txt"), "outside\n");
    EXPECT_FALSE(fs::exists(t.outside / "new.txt"));
    EXPECT_FALSE(temp_files_left(t.outside));
}

TEST(ShareApply, ConflictsAreRefusedUnlessASideIsChosen) {
    Trees t;
    t.host_file("a.txt", "base\n");
    t.host_file("b.txt", "base\n");
    t.prepare();
    t.work_file("a.txt", "guest\n");
    t.work_file("b.txt", "guest\n");
    t.host_file("a.txt", "host\n");
    t.host_file("b.txt", "host\n");

    auto r = t.apply();
    EXPECT_EQ(result(r, "a.txt")->outcome, Outcome::refused);
    EXPECT_NE(result(r, "a.txt")->message.find("host changed it since the snapshot"), std::string::npos);
    EXPECT_NE(result(r, "a.txt")->hint.find("--conflict=guest"), std::string::npos);
    EXPECT_EQ(test::slurp(t.host / "a.txt"), "host\n");

    ApplyOptions guest;
    guest.conflict = ConflictChoice::guest;
    auto rg = t.apply({"a.txt"}, guest);
    EXPECT_EQ(result(rg, "a.txt")->outcome, Outcome::applied);
    EXPECT_EQ(test::slurp(t.host / "a.txt"), "guest\n");

    ApplyOptions host;
    host.conflict = ConflictChoice::host;
    auto rh = t.apply({"b.txt"}, host);
    EXPECT_EQ(result(rh, "b.txt")->outcome, Outcome::kept_host);
    EXPECT_EQ(test::slurp(t.host / "b.txt"), "host\n");
    EXPECT_EQ(t.pending(), 0u);  // dropped from the review
    // A later guest edit of b.txt is a conflict again: the host still differs from the snapshot.
    t.work_file("b.txt", "guest again\n");
    auto r2 = t.apply({"b.txt"});
    EXPECT_EQ(result(r2, "b.txt")->outcome, Outcome::refused);
    EXPECT_EQ(test::slurp(t.host / "b.txt"), "host\n");
}

TEST(ShareApply, DeletionsOnlyWithAllowDelete) {
    Trees t;
    t.host_file("gone.txt", "bye\n");
    t.host_file("olddir/x.txt", "x\n");
    t.prepare();
    fs::remove(t.share.work() / "gone.txt");
    fs::remove_all(t.share.work() / "olddir");

    auto r = t.apply();
    EXPECT_EQ(r.count(Outcome::refused), 3u);
    EXPECT_NE(result(r, "gone.txt")->message.find("--allow-delete"), std::string::npos);
    EXPECT_TRUE(fs::exists(t.host / "gone.txt"));
    EXPECT_TRUE(fs::exists(t.host / "olddir/x.txt"));

    ApplyOptions o;
    o.allow_delete = true;
    auto r2 = t.apply({}, o);
    EXPECT_FALSE(r2.any_refused());
    EXPECT_FALSE(fs::exists(t.host / "gone.txt"));
    EXPECT_FALSE(fs::exists(t.host / "olddir"));
    EXPECT_FALSE(fs::exists(t.share.base() / "gone.txt"));
    EXPECT_EQ(t.pending(), 0u);
    EXPECT_FALSE(read_meta(t.share).files.count("gone.txt"));
}

TEST(ShareApply, FolderKeepsHiddenFilesSoItIsNotDeleted) {
    Trees t;
    t.host_file("cfg/app.toml", "a\n");
    t.host_file("cfg/.env", "SECRET\n");
    t.prepare({".env"});
    fs::remove_all(t.share.work() / "cfg");
    ApplyOptions o;
    o.allow_delete = true;
    auto r = t.apply({}, o);
    EXPECT_EQ(result(r, "cfg/app.toml")->outcome, Outcome::applied);
    EXPECT_EQ(result(r, "cfg")->outcome, Outcome::refused);
    EXPECT_EQ(test::slurp(t.host / "cfg/.env"), "SECRET\n");
}

TEST(ShareApply, SetuidAndSetgidAreStripped) {
    Trees t;
    t.host_file("a.txt", "x\n");
    t.prepare();
    auto p = t.work_file("tool", "#!/bin/sh\n", 0755);
    ASSERT_EQ(::chmod(p.c_str(), 06755), 0);
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    if ((st.st_mode & (S_ISUID | S_ISGID)) == 0) {
        GTEST_SKIP() << "skipped: this file system does not keep setuid/setgid bits";
    }
    auto d = diff(t.share);
    ASSERT_EQ(d.changes.size(), 1u);
    EXPECT_TRUE(d.changes[0].has(FlagKind::setuid));
    auto r = t.apply();
    EXPECT_FALSE(r.any_refused());
    ASSERT_EQ(::stat((t.host / "tool").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    EXPECT_NE(result(r, "tool")->message.find("stripped"), std::string::npos);
}

TEST(ShareApply, SpecialFilesAreRefused) {
    Trees t;
    t.host_file("a.txt", "x\n");
    t.prepare();
    ASSERT_EQ(::mkfifo((t.share.work() / "fifo").c_str(), 0644), 0);
    auto r = t.apply();
    ASSERT_TRUE(result(r, "fifo"));
    EXPECT_EQ(result(r, "fifo")->outcome, Outcome::refused);
    EXPECT_NE(result(r, "fifo")->message.find("special file (fifo)"), std::string::npos);
    EXPECT_FALSE(fs::exists(fs::symlink_status(t.host / "fifo")));
}

TEST(ShareApply, HiddenPathsAreNeverWritten) {
    Trees t;
    t.host_file("a.txt", "x\n");
    t.host_file(".env", "HOST_SECRET\n");
    t.prepare({".env", ".git"});
    t.work_file(".env", "GUEST\n");
    t.work_file(".git/hooks/post-checkout", "#!/bin/sh\nevil\n", 0755);
    t.work_file("sub/.env", "GUEST\n");
    auto r = t.apply();
    EXPECT_FALSE(result(r, ".env"));
    EXPECT_FALSE(result(r, ".git/hooks/post-checkout"));
    EXPECT_EQ(test::slurp(t.host / ".env"), "HOST_SECRET\n");
    EXPECT_FALSE(fs::exists(t.host / ".git"));
    EXPECT_FALSE(fs::exists(t.host / "sub/.env"));

    // Even a hand-made change for a hidden path is refused.
    Change forged{".env", ChangeKind::modified, {}, {}, {}, sha256_hex("GUEST\n")};
    forged.work.kind = EntryKind::file;
    forged.work.mode = S_IFREG | 0644;
    auto r2 = apply_changes(t.share, t.host, {{forged, ApplyOptions{}}});
    ASSERT_EQ(r2.results.size(), 1u);
    EXPECT_EQ(r2.results[0].outcome, Outcome::refused);
    EXPECT_EQ(test::slurp(t.host / ".env"), "HOST_SECRET\n");
}

TEST(ShareApply, GuestEditsAfterTheReviewAreRefused) {
    Trees t;
    t.host_file("a.txt", "x\n");
    t.prepare();
    t.work_file("a.txt", "reviewed\n");
    auto d = diff(t.share);
    ASSERT_EQ(d.changes.size(), 1u);
    t.work_file("a.txt", "swapped!\n");  // after the human looked
    auto r = apply_changes(t.share, t.host, {{d.changes[0], ApplyOptions{}}});
    EXPECT_EQ(r.results[0].outcome, Outcome::refused);
    EXPECT_EQ(test::slurp(t.host / "a.txt"), "x\n");
    EXPECT_FALSE(temp_files_left(t.host));
}

TEST(ShareApply, ReplacingAFolderNeedsAllowDelete) {
    Trees t;
    t.host_file("thing/inner.txt", "x\n");
    t.prepare();
    fs::remove_all(t.share.work() / "thing");
    t.work_file("thing", "now a file\n");
    auto r = t.apply();
    EXPECT_EQ(result(r, "thing")->outcome, Outcome::refused);
    EXPECT_TRUE(fs::is_directory(t.host / "thing"));
    ApplyOptions o;
    o.allow_delete = true;
    auto r2 = t.apply({}, o);
    EXPECT_FALSE(r2.any_refused());
    EXPECT_EQ(test::slurp(t.host / "thing"), "now a file\n");
    EXPECT_EQ(t.pending(), 0u);
}

TEST(ShareApply, AReplacedHostFolderStopsEverything) {
    Trees t;
    t.host_file("a.txt", "x\n");
    t.prepare();
    t.work_file("a.txt", "y\n");
    fs::rename(t.host, t.tmp.path() / "moved");
    fs::create_directories(t.host);
    EXPECT_THROW(t.apply(), Error);
    EXPECT_FALSE(fs::exists(t.host / "a.txt"));
}

TEST(ShareApply, PathSelection) {
    Trees t;
    t.host_file("a.txt", "x\n");
    t.prepare();
    t.work_file("a.txt", "y\n");
    t.work_file("dir/b.txt", "b\n");
    auto r = t.apply({"./dir/"});
    EXPECT_EQ(r.results.size(), 2u);  // dir and dir/b.txt
    EXPECT_EQ(test::slurp(t.host / "a.txt"), "x\n");
    EXPECT_EQ(test::slurp(t.host / "dir/b.txt"), "b\n");
    try {
        t.apply({"nope.txt"});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::not_found);
        EXPECT_NE(std::string(e.what()).find("nope.txt"), std::string::npos);
    }
    EXPECT_THROW(t.apply({"../etc"}), Error);
}
