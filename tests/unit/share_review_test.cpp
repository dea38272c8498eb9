// Review-mode shares: the verbs (sbx diff / review / apply) as the CLI calls them, on a
// temporary SBX_HOME-like folder and a profile with a review share.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>

#include "sbx/share/snapshot.hpp"
#include "sbx/share/verbs.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace sbx;
using namespace sbx::share;

namespace {

// Captures what a verb prints.
class Capture {
public:
    Capture() : m_file(std::tmpfile()) {}
    ~Capture() { std::fclose(m_file); }
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;
    std::FILE* file() const { return m_file; }
    std::string text() const {
        std::fflush(m_file);
        std::rewind(m_file);
        std::string out;
        int c = 0;
        while ((c = std::fgetc(m_file)) != EOF) {
            out += static_cast<char>(c);
        }
        return out;
    }

private:
    std::FILE* m_file;
};

// Scripted answers on a FILE*, as a pipe would give them.
class Input {
public:
    explicit Input(const std::string& text) : m_file(std::tmpfile()) {
        std::fwrite(text.data(), 1, text.size(), m_file);
        std::rewind(m_file);
    }
    ~Input() { std::fclose(m_file); }
    Input(const Input&) = delete;
    Input& operator=(const Input&) = delete;
    std::FILE* file() const { return m_file; }

private:
    std::FILE* m_file;
};

struct Instance {
    test::TempDir tmp;
    fs::path vms = tmp.path() / "vms";
    fs::path host = tmp.path() / "project";
    profile::Profile prof;

    Instance() {
        fs::create_directories(host);
        fs::create_directories(vms / "dev");
        prof.name = "dev";
        prof.file = tmp.path() / "profiles" / "dev.toml";
        profile::Share rw;
        rw.host = tmp.path();
        rw.guest = "/other";
        rw.mode = profile::ShareMode::rw;
        profile::Share review;
        review.host = host;
        review.guest = "/work";
        review.mode = profile::ShareMode::review;
        review.hide = {".env"};
        prof.shares = {rw, review};  // the review share is index 1
    }
    instance::ShareLayout layout() const {
        return instance::ShareLayout{instance::InstanceLayout(vms, "dev").share_dir(1)};
    }
    void host_file(const std::string& rel, const std::string& content) const {
        auto p = host / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << content;
    }
    void work_file(const std::string& rel, const std::string& content) const {
        auto p = layout().work() / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << content;
    }
    void prepare() const { share::prepare(host, prof.shares[1].hide, "/work", layout()); }

    std::string review(const std::string& answers, bool expect_error = false) const {
        Input in(answers);
        Capture out;
        if (expect_error) {
            EXPECT_THROW(run_review(prof, vms, {}, in.file(), out.file()), Error);
        } else {
            run_review(prof, vms, {}, in.file(), out.file());
        }
        return out.text();
    }
};

std::string slurp_or(const fs::path& p, const std::string& missing) {
    return fs::exists(p) ? test::slurp(p) : missing;
}

}  // namespace

TEST(ShareVerbs, FindsReviewSharesByProfileIndex) {
    Instance i;
    auto shares = review_shares(i.prof, i.vms);
    ASSERT_EQ(shares.size(), 1u);
    EXPECT_EQ(shares[0].index, 1u);
    EXPECT_EQ(shares[0].layout.dir, i.vms / "dev" / "shares" / "1");
}

TEST(ShareVerbs, ClearErrors) {
    Instance i;
    // Not prepared yet: the VM never started with the share.
    Capture out;
    try {
        run_diff(i.prof, i.vms, {}, out.file());
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::not_found);
        EXPECT_NE(std::string(e.what()).find("never prepared"), std::string::npos);
        ASSERT_FALSE(e.hints().empty());
        EXPECT_NE(e.hints()[0].find("sbx up dev"), std::string::npos);
    }
    // No review share in the profile.
    auto plain = i.prof;
    plain.shares.resize(1);
    try {
        review_shares(plain, i.vms);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("profile dev"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("review"), std::string::npos);
    }
    // No instance.
    auto other = i.prof;
    other.name = "nosuch";
    try {
        review_shares(other, i.vms);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ExitCode::not_found);
    }
}

TEST(ShareVerbs, DiffStatAndPaths) {
    Instance i;
    i.host_file("a.txt", "one\n");
    i.prepare();
    i.work_file("a.txt", "two\n");
    i.work_file(".envrc", "export A=1\n");
    i.work_file(".env", "hidden\n");
    Capture out;
    DiffCommand cmd;
    cmd.stat = true;
    run_diff(i.prof, i.vms, cmd, out.file());
    EXPECT_EQ(out.text(),
              " .envrc  | 1 +  ! runs on the host: direnv (.envrc)\n"
              " a.txt   | 2 +-\n"
              " 2 paths changed, 2 insertions(+), 1 deletion(-), 1 flagged\n"
              "note: 1 path the guest created is hidden by the share's hide list (never applied): .env\n");
    // PATHs: relative, or absolute under the guest path.
    Capture one;
    DiffCommand by_path;
    by_path.paths = {"/work/a.txt"};
    run_diff(i.prof, i.vms, by_path, one.file());
    EXPECT_EQ(one.text(), "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+two\n");
    DiffCommand missing;
    missing.paths = {"b.txt"};
    Capture none;
    EXPECT_THROW(run_diff(i.prof, i.vms, missing, none.file()), Error);
}

TEST(ShareVerbs, ApplyReportsAndFailsOnRefusals) {
    Instance i;
    i.host_file("a.txt", "one\n");
    i.host_file("gone.txt", "bye\n");
    i.prepare();
    i.work_file("a.txt", "two\n");
    fs::remove(i.layout().work() / "gone.txt");
    Capture out;
    ApplyCommand cmd;
    try {
        run_apply(i.prof, i.vms, cmd, out.file());
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("1 change was refused: gone.txt"), std::string::npos);
        ASSERT_FALSE(e.hints().empty());
        EXPECT_EQ(e.hints()[0], "sbx apply dev gone.txt --allow-delete");
    }
    EXPECT_EQ(out.text(),
              "  refused  gone.txt: deletion not applied without --allow-delete\n"
              "  applied  a.txt: written\n"
              "1 applied, 0 kept as the host has them, 1 refused\n");
    EXPECT_EQ(test::slurp(i.host / "a.txt"), "two\n");
    EXPECT_TRUE(fs::exists(i.host / "gone.txt"));
    Capture again;
    cmd.options.allow_delete = true;
    run_apply(i.prof, i.vms, cmd, again.file());
    EXPECT_FALSE(fs::exists(i.host / "gone.txt"));
    Capture nothing;
    run_apply(i.prof, i.vms, cmd, nothing.file());
    EXPECT_EQ(nothing.text(), "no changes to apply\n");
}

TEST(ShareReview, AcceptAndSkip) {
    Instance i;
    i.host_file("a.txt", "one\n");
    i.host_file("b.txt", "one\n");
    i.prepare();
    i.work_file("a.txt", "guest\n");
    i.work_file("b.txt", "guest\n");
    auto text = i.review("a\ns\n");
    EXPECT_NE(text.find("[1/2] a.txt (modified)"), std::string::npos);
    EXPECT_NE(text.find("[2/2] b.txt (modified)"), std::string::npos);
    EXPECT_NE(text.find("[a]ccept [s]kip [d]iff [q]uit? "), std::string::npos);
    EXPECT_NE(text.find("applied  a.txt: written"), std::string::npos);
    EXPECT_EQ(test::slurp(i.host / "a.txt"), "guest\n");
    EXPECT_EQ(test::slurp(i.host / "b.txt"), "one\n");
}

TEST(ShareReview, DiffThenQuitAppliesWhatWasAccepted) {
    Instance i;
    i.host_file("a.txt", "one\n");
    i.host_file("b.txt", "one\n");
    i.prepare();
    i.work_file("a.txt", "guest\n");
    i.work_file("b.txt", "guest\n");
    auto text = i.review("d\nx\na\nq\n");
    EXPECT_NE(text.find("@@ -1 +1 @@\n-one\n+guest\n"), std::string::npos);  // the d answer
    EXPECT_NE(text.find("a: accept this change"), std::string::npos);        // the x answer
    EXPECT_EQ(test::slurp(i.host / "a.txt"), "guest\n");
    EXPECT_EQ(test::slurp(i.host / "b.txt"), "one\n");
}

TEST(ShareReview, EndOfInputAppliesNothing) {
    Instance i;
    i.host_file("a.txt", "one\n");
    i.host_file("b.txt", "one\n");
    i.prepare();
    i.work_file("a.txt", "guest\n");
    i.work_file("b.txt", "guest\n");
    auto none = i.review("");
    EXPECT_NE(none.find("end of input: quitting without applying anything"), std::string::npos);
    auto partial = i.review("a\n");  // accepted one, then the input ends
    EXPECT_NE(partial.find("end of input"), std::string::npos);
    EXPECT_EQ(test::slurp(i.host / "a.txt"), "one\n");
    EXPECT_EQ(test::slurp(i.host / "b.txt"), "one\n");
}

TEST(ShareReview, AsksAboutDeletionsAndConflicts) {
    Instance i;
    i.host_file("gone.txt", "bye\n");
    i.host_file("keep.txt", "stay\n");
    i.host_file("c.txt", "base\n");
    i.prepare();
    fs::remove(i.layout().work() / "gone.txt");
    fs::remove(i.layout().work() / "keep.txt");
    i.work_file("c.txt", "guest\n");
    i.host_file("c.txt", "host\n");
    // c.txt: accept, guest wins; gone.txt: accept, yes; keep.txt: accept, no.
    auto text = i.review("a\ng\na\ny\na\nn\n");
    EXPECT_NE(text.find("!! conflict: content changed on the host"), std::string::npos);
    EXPECT_NE(text.find("delete gone.txt on the host? [y/N]"), std::string::npos);
    EXPECT_EQ(test::slurp(i.host / "c.txt"), "guest\n");
    EXPECT_FALSE(fs::exists(i.host / "gone.txt"));
    EXPECT_EQ(slurp_or(i.host / "keep.txt", "<missing>"), "stay\n");
}

TEST(ShareReview, RefusalsStillFail) {
    Instance i;
    i.host_file("a.txt", "one\n");
    i.prepare();
    ASSERT_EQ(::mkfifo((i.layout().work() / "fifo").c_str(), 0644), 0);
    auto text = i.review("a\n", true);
    EXPECT_NE(text.find("!! special file (fifo): never applied"), std::string::npos);
    EXPECT_NE(text.find("refused  fifo"), std::string::npos);
}

TEST(ShareVerbs, ProfileFileWithAReviewShare) {
    // The path the CLI takes: a real profile file, loaded and validated, then the verb.
    test::TempDir tmp;
    auto host = tmp.path() / "proj";
    fs::create_directories(host);
    std::ofstream(host / "a.txt") << "one\n";
    auto file = tmp.write("profiles/web.toml",
                          "[[share]]\nhost = \"../proj\"\nguest = \"/home/dev/proj\"\n"
                          "mode = \"review\"\nhide = [\".env\"]\n");
    auto prof = profile::load_profile_file(file);
    ASSERT_EQ(prof.shares.size(), 1u);
    auto vms = tmp.path() / "vms";
    fs::create_directories(vms / prof.name);
    auto shares = review_shares(prof, vms);
    ASSERT_EQ(shares.size(), 1u);
    share::prepare(shares[0].share.host, shares[0].share.hide, shares[0].share.guest, shares[0].layout);
    std::ofstream(shares[0].layout.work() / "a.txt") << "two\n";
    Capture out;
    ApplyCommand cmd;
    run_apply(prof, vms, cmd, out.file());
    EXPECT_EQ(out.text(), "  applied  a.txt: written\n1 applied, 0 kept as the host has them, 0 refused\n");
    EXPECT_EQ(test::slurp(host / "a.txt"), "two\n");
}
