// Profiles that load: every section read into the Profile, extends merging, path resolution,
// the shipped profiles, the features `sbx up` cannot run yet, and docs/profile.md kept in
// step with the schema.

#include "sbx/profile/profile.hpp"
#include "sbx/util/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <regex>
#include <set>

namespace sbx {
namespace {

using test::TempDir;
const std::filesystem::path k_source = SBX_SOURCE_DIR;

TEST(ProfileSchema, ReadsEverySection) {
    TempDir dir;
    std::filesystem::create_directories(dir.path() / "src/acme");
    dir.write("setup.sh", "echo hi\n");
    auto file = dir.write("full.toml", R"(
[vm]
cpus = 3
[[share]]
host = "src/acme"
guest = "/home/dev/acme/"
mode = "review"
hide = [".git", "config/.env"]
[[share]]
host = "src"
guest = "/srv/ro"
mode = "ro"
type = "9p"
[network]
policy = "allowlist"
learn = true
allow = ["GitHub.com:443,22", "*.github.com:443",
         { cidr = "140.82.113.7/32", ports = [22] },
         { host = "ollama.lan", ports = [11434], private = true },
         { host = "ntp.example.org", ports = [123], proto = "udp" },
         { cidr = "2001:db8::/32", proto = ["icmp"] }]
host_ports = [5432, 5432, 6379]
[[forward]]
host = 8080
guest = 3000
[[forward]]
host = 5353
guest = 53
proto = "udp"
[secrets.ANTHROPIC_API_KEY]
from_env = "ANTHROPIC_API_KEY"
hosts = ["api.anthropic.com"]
[secrets.GH_TOKEN]
from_file = "~/tokens/gh"
hosts = ["api.github.com", "*.github.com"]
[provision]
run = ["apt-get install -y ripgrep"]
script = "setup.sh"
)");
    ::setenv("HOME", "/home/tester", 1);
    auto p = profile::load_profile_file(file);
    EXPECT_EQ(p.vm.cpus, 3);
    ASSERT_EQ(p.shares.size(), 2u);
    EXPECT_EQ(p.shares[0].host, dir.path() / "src/acme");
    EXPECT_EQ(p.shares[0].guest, "/home/dev/acme");
    EXPECT_EQ(p.shares[0].mode, profile::ShareMode::review);
    EXPECT_EQ(p.shares[0].type, profile::ShareType::virtiofs);
    EXPECT_EQ(p.shares[0].hide, (std::vector<std::string>{".git", "config/.env"}));
    EXPECT_EQ(p.shares[1].mode, profile::ShareMode::ro);
    EXPECT_EQ(p.shares[1].type, profile::ShareType::ninep);

    const auto& net = p.network;
    EXPECT_TRUE(net.learn);
    ASSERT_EQ(net.allow.size(), 6u);
    EXPECT_EQ(net.allow[0].host, "github.com");
    EXPECT_EQ(net.allow[0].ports, (std::vector<std::uint16_t>{22, 443}));
    EXPECT_EQ(net.allow[0].protos, static_cast<std::uint8_t>(profile::Proto::tcp));
    EXPECT_EQ(net.allow[0].source, "GitHub.com:443,22");
    EXPECT_EQ(net.allow[1].host, "*.github.com");
    EXPECT_EQ(net.allow[2].cidr, "140.82.113.7/32");
    EXPECT_TRUE(net.allow[3].allow_private);
    EXPECT_EQ(net.allow[4].protos, static_cast<std::uint8_t>(profile::Proto::udp));
    EXPECT_EQ(net.allow[5].cidr, "2001:db8::/32");
    EXPECT_EQ(net.allow[5].protos, static_cast<std::uint8_t>(profile::Proto::icmp));
    EXPECT_TRUE(net.allow[5].ports.empty());
    EXPECT_EQ(net.host_ports, (std::vector<std::uint16_t>{5432, 6379}));

    ASSERT_EQ(p.forwards.size(), 2u);
    EXPECT_EQ(p.forwards[1].host, 5353);
    EXPECT_EQ(p.forwards[1].guest, 53);
    EXPECT_EQ(p.forwards[1].proto, profile::Proto::udp);

    ASSERT_EQ(p.secrets.size(), 2u);
    EXPECT_EQ(p.secrets[0].name, "ANTHROPIC_API_KEY");
    EXPECT_EQ(p.secrets[0].from_env, "ANTHROPIC_API_KEY");
    EXPECT_EQ(p.secrets[1].from_file, "/home/tester/tokens/gh");
    EXPECT_EQ(p.secrets[1].hosts, (std::vector<std::string>{"api.github.com", "*.github.com"}));

    EXPECT_EQ(p.provision.run, (std::vector<std::string>{"apt-get install -y ripgrep"}));
    EXPECT_EQ(p.provision.script, dir.path() / "setup.sh");
}

TEST(ProfileSchema, ExtendsMergesTablesAndReplacesArrays) {
    TempDir dir;
    std::filesystem::create_directories(dir.path() / "base/code");
    dir.write("base/base.toml", R"(
[vm]
cpus = 4
memory = "4G"
[[share]]
host = "code"
guest = "/srv/code"
[network]
allow = ["a.example.com:443", "b.example.com:443"]
host_ports = [5432]
)");
    auto child = dir.write("work.toml", R"(
extends = "base/base.toml"
[vm]
memory = "8G"
[network]
allow = ["c.example.com:443"]
)");
    auto p = profile::load_profile_file(child);
    EXPECT_EQ(p.name, "work");
    EXPECT_EQ(p.vm.cpus, 4);                 // inherited
    EXPECT_EQ(p.vm.memory, 8ULL << 30);      // overridden
    ASSERT_EQ(p.network.allow.size(), 1u);   // arrays replace
    EXPECT_EQ(p.network.allow[0].host, "c.example.com");
    EXPECT_EQ(p.network.host_ports, (std::vector<std::uint16_t>{5432}));  // table merge keeps it
    ASSERT_EQ(p.shares.size(), 1u);
    // A relative path resolves against the folder of the file that wrote it.
    EXPECT_EQ(p.shares[0].host, dir.path() / "base/code");
    ASSERT_EQ(p.parents.size(), 1u);
    EXPECT_EQ(p.parents[0], dir.path() / "base/base.toml");
}

TEST(ProfileSchema, ExtendsByNameFindsASibling) {
    TempDir dir;
    dir.write("common.toml", "[ssh]\nuser = \"alice\"\n");
    auto child = dir.write("mine.toml", "extends = \"common\"\n");
    EXPECT_EQ(profile::load_profile_file(child).ssh.user, "alice");
}

TEST(ProfileSchema, AProfileMayExtendTheOneItShadows) {
    TempDir dir;
    dir.write("cfg/sbx/profiles/work.toml", "extends = \"work\"\n[vm]\ncpus = 5\n");
    dir.write("profiles/work.toml", "[vm]\nmemory = \"3G\"\n");
    auto old = std::filesystem::current_path();
    std::filesystem::current_path(dir.path());
    ::setenv("XDG_CONFIG_HOME", (dir.path() / "cfg").c_str(), 1);
    // ./profiles comes first in the search order, so the user's copy extends it.
    auto p = profile::load_profile_file(dir.path() / "cfg/sbx/profiles/work.toml");
    EXPECT_EQ(p.vm.cpus, 5);
    EXPECT_EQ(p.vm.memory, 3ULL << 30);
    ASSERT_EQ(p.parents.size(), 1u);
    EXPECT_EQ(p.parents[0], dir.path() / "profiles/work.toml");
    std::filesystem::current_path(old);
    ::unsetenv("XDG_CONFIG_HOME");
}

TEST(ProfileSchema, ProblemsInAParentNameTheParentFile) {
    TempDir dir;
    auto parent = dir.write("base.toml", "[vm]\ncpus = 100\n");
    auto child = dir.write("kid.toml", "extends = \"base\"\n[vm]\nmemroy = \"1G\"\n");
    try {
        profile::load_profile_file(child);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  child.string() + ":3:1: vm.memroy: unknown key (did you mean \"memory\"?)\n" +
                      parent.string() + ":2:8: vm.cpus: 100 is out of range (1 to 64)");
    }
}

TEST(ProfileSchema, ShippedProfilesAreValid) {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(k_source / "profiles")) {
        if (e.path().extension() != ".toml") {
            continue;
        }
        SCOPED_TRACE(e.path().string());
        auto p = profile::load_profile_file(e.path());
        names.insert(p.name);
    }
    for (const char* want : {"work", "personal", "agent", "credentials", "tor", "example"}) {
        EXPECT_TRUE(names.count(want)) << "profiles/" << want << ".toml is missing";
    }
}

TEST(ProfileSchema, ShippedProfilesSayWhatTheyPromise) {
    auto agent = profile::load_profile_file(k_source / "profiles/agent.toml");
    std::set<std::string> hosts;
    for (const auto& r : agent.network.allow) {
        hosts.insert(r.host);
    }
    for (const char* h : {"api.anthropic.com", "api.openai.com", "github.com", "registry.npmjs.org",
                          "pypi.org", "deb.debian.org"}) {
        EXPECT_TRUE(hosts.count(h)) << h;
    }
    EXPECT_EQ(agent.network.policy, profile::NetPolicy::allowlist);
    auto cred = profile::load_profile_file(k_source / "profiles/credentials.toml");
    EXPECT_EQ(cred.network.policy, profile::NetPolicy::none);
    EXPECT_TRUE(cred.shares.empty());
    auto tor = profile::load_profile_file(k_source / "profiles/tor.toml");
    EXPECT_EQ(tor.network.upstream, "socks5h://127.0.0.1:9050");
}

TEST(ProfileSchema, UnsupportedFeaturesAreListed) {
    TempDir dir;
    auto plain = profile::load_profile_file(dir.write("a.toml", "[network]\npolicy = \"none\"\n"));
    EXPECT_TRUE(profile::unsupported_features(plain).empty());
    auto secret = profile::load_profile_file(
        dir.write("b.toml", "[secrets.T]\nfrom_env = \"T\"\nhosts = [\"api.example.com\"]\n"));
    auto f = profile::unsupported_features(secret);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0], "[secrets]: secret injection");
}

// Every key of the schema has its row in docs/profile.md, and every row names a real key.
TEST(ProfileSchema, DocsMatchTheSchema) {
    std::string doc = test::slurp(k_source / "docs/profile.md");
    std::set<std::string> documented;
    std::istringstream in(doc);
    std::string line;
    std::set<std::string> expected_rows;
    for (const auto& k : profile::schema_reference()) {
        std::string row = fmt::format("| `{}` | {} | {} | {} |", k.key, k.type,
                                      k.default_value.empty()        ? std::string("required")
                                      : k.default_value[0] == '(' ? k.default_value
                                                                  : "`" + k.default_value + "`",
                                      k.meaning);
        std::string where = k.section.empty() ? "top level" : "[" + k.section + "]";
        EXPECT_NE(doc.find(row), std::string::npos)
            << "docs/profile.md lacks the row for " << where << " " << k.key << ":\n" << row;
        documented.insert(k.key);
    }
    // No row documents a key the schema does not have.
    std::regex row_key(R"(^\| `([a-z_]+)` \|)");
    bool in_key_table = false;
    while (std::getline(in, line)) {
        std::smatch m;
        if (line == "| key | type | default | meaning |") {
            in_key_table = true;
        } else if (line.empty()) {
            in_key_table = false;
        } else if (in_key_table && std::regex_search(line, m, row_key)) {
            EXPECT_TRUE(documented.count(m[1])) << "docs/profile.md documents unknown key " << m[1];
        }
    }
}

}  // namespace
}  // namespace sbx
