#include "sbx/profile/profile.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/strings.hpp"
#include "sbx/util/toml_problems.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <functional>
#include <set>

namespace sbx::profile {

std::string to_string(Accel a) {
    switch (a) {
    case Accel::automatic: return "auto";
    case Accel::kvm: return "kvm";
    case Accel::tcg: return "tcg";
    }
    return "auto";
}

namespace {

// One key of the schema: its name, and how to read it into the Profile.
struct KeySpec {
    std::string name;
    std::function<void(const toml::node&, const std::string& path, Profile&, TomlProblems&)> read;
};

struct TableSpec {
    std::string name;
    std::vector<KeySpec> keys;
};

void wrong_type(const toml::node& n, const std::string& path, const char* want, TomlProblems& p) {
    p.add(n.source(), path, fmt::format("expected {}, found {}", want, toml_type_name(n)));
}

KeySpec size_key(std::string name, std::uint64_t min, std::uint64_t max,
                 std::uint64_t VmSection::*field) {
    return {name, [=](const toml::node& n, const std::string& path, Profile& prof, TomlProblems& p) {
                auto s = n.value<std::string>();
                if (!s) {
                    wrong_type(n, path, "a size string like \"8G\" or \"512M\"", p);
                    return;
                }
                auto bytes = parse_size(*s);
                if (!bytes) {
                    p.add(n.source(), path,
                          fmt::format("invalid size \"{}\" (use a number with K, M, G or T, like \"8G\")", *s));
                    return;
                }
                if (*bytes < min || *bytes > max) {
                    p.add(n.source(), path,
                          fmt::format("{} is out of range ({} to {})", *s, format_size(min), format_size(max)));
                    return;
                }
                prof.vm.*field = *bytes;
            }};
}

const std::vector<TableSpec>& schema() {
    static const std::vector<TableSpec> k_schema = {
        {"vm",
         {
             {"image",
              [](const toml::node& n, const std::string& path, Profile& prof, TomlProblems& p) {
                  auto s = n.value<std::string>();
                  if (!s) {
                      wrong_type(n, path, "a string", p);
                  } else if (!valid_instance_name(*s)) {
                      p.add(n.source(), path,
                            fmt::format("\"{}\" is not an image recipe name (lowercase letters, digits, - and _)", *s));
                  } else {
                      prof.vm.image = *s;
                  }
              }},
             {"cpus",
              [](const toml::node& n, const std::string& path, Profile& prof, TomlProblems& p) {
                  auto v = n.value_exact<std::int64_t>();
                  if (!v) {
                      wrong_type(n, path, "an integer", p);
                  } else if (*v < 1 || *v > 64) {
                      p.add(n.source(), path, fmt::format("{} is out of range (1 to 64)", *v));
                  } else {
                      prof.vm.cpus = static_cast<int>(*v);
                  }
              }},
             size_key("memory", 128ULL << 20, 1ULL << 40, &VmSection::memory),
             size_key("disk", 1ULL << 30, 16ULL << 40, &VmSection::disk),
             {"accel",
              [](const toml::node& n, const std::string& path, Profile& prof, TomlProblems& p) {
                  auto s = n.value<std::string>();
                  if (!s) {
                      wrong_type(n, path, "a string", p);
                  } else if (*s == "auto") {
                      prof.vm.accel = Accel::automatic;
                  } else if (*s == "kvm") {
                      prof.vm.accel = Accel::kvm;
                  } else if (*s == "tcg") {
                      prof.vm.accel = Accel::tcg;
                  } else {
                      p.add(n.source(), path, fmt::format("\"{}\" is not one of auto, kvm, tcg", *s));
                  }
              }},
         }},
        {"ssh",
         {
             {"user",
              [](const toml::node& n, const std::string& path, Profile& prof, TomlProblems& p) {
                  auto s = n.value<std::string>();
                  auto ok = [](const std::string& u) {
                      if (u.empty() || u.size() > 32 || u == "root" ||
                          !((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_')) {
                          return false;
                      }
                      return std::all_of(u.begin(), u.end(), [](char c) {
                          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
                      });
                  };
                  if (!s) {
                      wrong_type(n, path, "a string", p);
                  } else if (!ok(*s)) {
                      p.add(n.source(), path,
                            fmt::format("\"{}\" is not a valid user name (lowercase, not root, at most 32 characters)", *s));
                  } else {
                      prof.ssh.user = *s;
                  }
              }},
         }},
    };
    return k_schema;
}

std::vector<std::string> names_of(const std::vector<KeySpec>& keys) {
    std::vector<std::string> out;
    for (const auto& k : keys) {
        out.push_back(k.name);
    }
    return out;
}

void unknown_key(const toml::key& key, const std::string& path, const std::vector<std::string>& known,
                 TomlProblems& p) {
    std::string what = "unknown key";
    if (auto guess = did_you_mean(key.str(), known)) {
        what += fmt::format(" (did you mean \"{}\"?)", *guess);
    }
    p.add(key.source(), path, what);
}

}  // namespace

Profile load_profile_file(const std::filesystem::path& file_in) {
    std::error_code ec;
    auto file = std::filesystem::absolute(file_in, ec);
    if (!std::filesystem::is_regular_file(file, ec)) {
        throw Error(fmt::format("profile {} does not exist", file.string()), {}, ExitCode::not_found);
    }
    Profile prof;
    prof.file = file;
    prof.name = file.stem().string();
    TomlProblems problems(file.string());
    if (!valid_instance_name(prof.name)) {
        throw Error(fmt::format("{}: \"{}\" is not a valid profile name", file.string(), prof.name),
                    {"profile names use lowercase letters, digits, - and _ (at most 32), e.g. work.toml"},
                    ExitCode::config);
    }

    toml::table root;
    try {
        root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        throw Error(fmt::format("{}:{}:{}: {}", file.string(), e.source().begin.line,
                                e.source().begin.column, e.description()),
                    {"this is a TOML syntax error; see https://toml.io for the syntax"}, ExitCode::config);
    }

    std::vector<std::string> table_names;
    for (const auto& t : schema()) {
        table_names.push_back(t.name);
    }
    for (auto&& [key, node] : root) {
        const TableSpec* spec = nullptr;
        for (const auto& t : schema()) {
            if (t.name == key.str()) {
                spec = &t;
            }
        }
        if (!spec) {
            unknown_key(key, std::string(key.str()), table_names, problems);
            continue;
        }
        const toml::table* tbl = node.as_table();
        if (!tbl) {
            problems.add(node.source(), spec->name,
                         fmt::format("expected a table ([{}]), found {}", spec->name, toml_type_name(node)));
            continue;
        }
        auto known = names_of(spec->keys);
        for (auto&& [k, v] : *tbl) {
            std::string path = fmt::format("{}.{}", spec->name, k.str());
            auto it = std::find_if(spec->keys.begin(), spec->keys.end(),
                                   [&](const KeySpec& ks) { return ks.name == k.str(); });
            if (it == spec->keys.end()) {
                unknown_key(k, path, known, problems);
                continue;
            }
            it->read(v, path, prof, problems);
        }
    }
    if (!problems.empty()) {
        problems.raise({fmt::format("the profile reference is docs/profile.md; fix {} and retry",
                                    file.filename().string())});
    }
    return prof;
}

std::filesystem::path find_profile(const std::string& name_or_path) {
    std::error_code ec;
    bool looks_like_path = name_or_path.find('/') != std::string::npos ||
                           (name_or_path.size() > 5 &&
                            name_or_path.compare(name_or_path.size() - 5, 5, ".toml") == 0);
    if (looks_like_path) {
        if (std::filesystem::is_regular_file(name_or_path, ec)) {
            return std::filesystem::absolute(name_or_path);
        }
        throw Error(fmt::format("profile file {} does not exist", name_or_path), {}, ExitCode::not_found);
    }
    if (!valid_instance_name(name_or_path)) {
        throw Error(fmt::format("\"{}\" is not a valid profile name", name_or_path),
                    {"profile names use lowercase letters, digits, - and _ (at most 32)"}, ExitCode::usage);
    }
    if (auto found = paths::find_named("profiles", name_or_path)) {
        return *found;
    }
    Error err(fmt::format("no profile named \"{}\"", name_or_path), {}, ExitCode::not_found);
    err.hint(fmt::format("looked in: {}", paths::search_dirs_text("profiles")));
    auto names = list_profile_names();
    if (auto guess = did_you_mean(name_or_path, names)) {
        err.hint(fmt::format("did you mean \"{}\"?", *guess));
    } else if (!names.empty()) {
        err.hint(fmt::format("profiles found: {}", fmt::join(names, ", ")));
    }
    err.hint(fmt::format("create one as {}/{}.toml", paths::user_config_dir().string() + "/profiles",
                         name_or_path));
    throw err;
}

Profile load_profile(const std::string& name_or_path) {
    return load_profile_file(find_profile(name_or_path));
}

std::vector<std::string> list_profile_names() {
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& dir : paths::search_dirs("profiles")) {
        for (auto it = std::filesystem::directory_iterator(dir, ec);
             !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
            const auto& p = it->path();
            if (p.extension() == ".toml" && valid_instance_name(p.stem().string())) {
                names.insert(p.stem().string());
            }
        }
        ec.clear();
    }
    return {names.begin(), names.end()};
}

}  // namespace sbx::profile
