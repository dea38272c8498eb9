#include "sbx/image/image.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstring>

namespace sbx {
namespace {

using test::TempDir;

// One member of a ustar archive, parsed back by hand (independently of the writer).
struct Member {
    std::string name;
    unsigned mode = 0;
    std::size_t size = 0;
    std::string data;
};

std::uint64_t octal(const std::string& block, std::size_t off, std::size_t len) {
    std::uint64_t v = 0;
    for (std::size_t i = off; i < off + len && block[i] >= '0' && block[i] <= '7'; ++i) {
        v = v * 8 + static_cast<std::uint64_t>(block[i] - '0');
    }
    return v;
}

std::vector<Member> parse_ustar(const std::string& archive) {
    std::vector<Member> out;
    std::size_t pos = 0;
    for (;;) {
        EXPECT_LE(pos + 512, archive.size());
        std::string h = archive.substr(pos, 512);
        if (h == std::string(512, '\0')) {
            // End of archive: two zero blocks.
            EXPECT_EQ(archive.substr(pos + 512, 512), std::string(512, '\0'));
            break;
        }
        EXPECT_EQ(h.substr(257, 6), std::string("ustar\0", 6));
        EXPECT_EQ(h.substr(263, 2), "00");
        EXPECT_EQ(h[156], '0') << "regular file";
        // Checksum: the sum of all header bytes with the checksum field read as spaces.
        unsigned sum = 0;
        for (std::size_t i = 0; i < 512; ++i) {
            sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
        }
        EXPECT_EQ(octal(h, 148, 8), sum);
        EXPECT_EQ(h[154], '\0');
        EXPECT_EQ(h[155], ' ');
        EXPECT_EQ(octal(h, 108, 8), 0U) << "uid";
        EXPECT_EQ(octal(h, 116, 8), 0U) << "gid";
        Member m;
        m.name = std::string(h.c_str());
        m.mode = static_cast<unsigned>(octal(h, 100, 8));
        m.size = static_cast<std::size_t>(octal(h, 124, 12));
        m.data = archive.substr(pos + 512, m.size);
        out.push_back(m);
        pos += 512 + (m.size + 511) / 512 * 512;
    }
    return out;
}

image::Seed sample_seed() {
    image::Seed s;
    s.id = "0123456789abcdef";
    s.hostname = "work";
    s.user = "dev";
    s.authorized_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIClient sbx@work\n";
    s.host_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
                 "-----END OPENSSH PRIVATE KEY-----\n";
    s.host_key_pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost sbx-guest-work";
    return s;
}

TEST(ImageSeed, ArchiveLayout) {
    auto archive = image::encode_seed(sample_seed());
    EXPECT_EQ(archive.size() % (64 * 1024), 0U);
    EXPECT_GE(archive.size(), 64U * 1024);
    auto members = parse_ustar(archive);
    ASSERT_EQ(members.size(), 6U);
    struct Want {
        const char* name;
        unsigned mode;
        std::string data;
    };
    auto s = sample_seed();
    std::vector<Want> want = {
        {"id", 0644, "0123456789abcdef\n"},
        {"hostname", 0644, "work\n"},
        {"user", 0644, "dev\n"},
        {"authorized_keys", 0644, s.authorized_key},
        {"ssh_host_ed25519_key", 0600, s.host_key},
        {"ssh_host_ed25519_key.pub", 0644, s.host_key_pub + "\n"},
    };
    for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(members[i].name, want[i].name);
        EXPECT_EQ(members[i].mode, want[i].mode) << want[i].name;
        EXPECT_EQ(members[i].size, want[i].data.size()) << want[i].name;
        EXPECT_EQ(members[i].data, want[i].data) << want[i].name;
    }
}

TEST(ImageSeed, IsDeterministicAndOptionalUid) {
    auto s = sample_seed();
    EXPECT_EQ(image::encode_seed(s), image::encode_seed(s));
    s.uid = 1234;
    auto members = parse_ustar(image::encode_seed(s));
    ASSERT_EQ(members.size(), 7U);
    EXPECT_EQ(members[3].name, "uid");
    EXPECT_EQ(members[3].data, "1234\n");
}

TEST(ImageSeed, IdFollowsTheContent) {
    auto base = sample_seed();
    auto id = image::seed_id(base);
    EXPECT_EQ(id.size(), 16u);
    EXPECT_EQ(image::seed_id(sample_seed()), id);
    auto other = base;
    other.id = "something-else";
    EXPECT_EQ(image::seed_id(other), id);  // the id field itself does not count
    other = base;
    other.hostname += "x";
    EXPECT_NE(image::seed_id(other), id);
    other = base;
    other.host_key += "x";
    EXPECT_NE(image::seed_id(other), id);
    other = base;
    other.uid = 1234;
    EXPECT_NE(image::seed_id(other), id);
}

TEST(ImageSeed, WriteSeedIsPrivate) {
    TempDir dir;
    auto path = dir.path() / "seed.tar";
    image::write_seed(path, sample_seed());
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600U);
    EXPECT_EQ(test::slurp(path), image::encode_seed(sample_seed()));
}

TEST(ImageSeed, RejectsWhatTheGuestCouldNotApplySafely) {
    auto expect_bad = [](const char* what, auto change) {
        auto s = sample_seed();
        change(s);
        EXPECT_THROW(image::encode_seed(s), Error) << what;
    };
    expect_bad("root user", [](image::Seed& s) { s.user = "root"; });
    expect_bad("shell in user", [](image::Seed& s) { s.user = "a;b"; });
    expect_bad("uppercase user", [](image::Seed& s) { s.user = "Dev"; });
    expect_bad("bad hostname", [](image::Seed& s) { s.hostname = "-x"; });
    expect_bad("hostname with space", [](image::Seed& s) { s.hostname = "a b"; });
    expect_bad("empty id", [](image::Seed& s) { s.id = ""; });
    expect_bad("id with slash", [](image::Seed& s) { s.id = "../x"; });
    expect_bad("two keys", [](image::Seed& s) { s.authorized_key = "ssh-ed25519 A\nssh-ed25519 B"; });
    expect_bad("not a private key", [](image::Seed& s) { s.host_key = "hello"; });
    expect_bad("rsa host key", [](image::Seed& s) { s.host_key_pub = "ssh-rsa AAAA"; });
    expect_bad("system uid", [](image::Seed& s) { s.uid = 100; });
    // Instance names may contain '_': allowed as a host name label.
    auto s = sample_seed();
    s.hostname = "my_vm";
    EXPECT_NO_THROW(image::encode_seed(s));
}

}  // namespace
}  // namespace sbx
