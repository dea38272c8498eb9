#include "sbx/profile/profile.hpp"

#include "schema.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/strings.hpp"
#include "sbx/util/toml_problems.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <set>

namespace sbx::profile {

namespace {

constexpr int k_max_extends_depth = 8;

toml::table parse_toml(const std::filesystem::path& file) {
    try {
        return toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        throw Error(fmt::format("{}:{}:{}: {}", file.string(), e.source().begin.line, e.source().begin.column,
                                e.description()),
                    {"this is a TOML syntax error; see https://toml.io for the syntax"}, ExitCode::config);
    }
}

// Where `extends = "X"` in `from` points: a path (relative to from's folder), or a name
// looked up beside `from` first, then along the profile search path.
std::optional<std::filesystem::path> find_parent(const std::string& ref, const std::filesystem::path& from) {
    std::error_code ec;
    auto dir = from.parent_path();
    bool looks_like_path = ref.find('/') != std::string::npos ||
                           (ref.size() > 5 && ref.compare(ref.size() - 5, 5, ".toml") == 0);
    if (looks_like_path) {
        auto p = std::filesystem::path(expand_home(ref));
        if (p.is_relative()) {
            p = dir / p;
        }
        if (std::filesystem::is_regular_file(p, ec)) {
            return std::filesystem::absolute(p).lexically_normal();
        }
        return std::nullopt;
    }
    if (!valid_instance_name(ref)) {
        return std::nullopt;
    }
    // A profile never finds itself: ~/.config/sbx/profiles/work.toml may extend the shipped work.
    std::vector<std::filesystem::path> dirs = {dir};
    for (const auto& d : paths::search_dirs("profiles")) {
        dirs.push_back(std::filesystem::absolute(d));
    }
    for (const auto& d : dirs) {
        auto candidate = (d / (ref + ".toml")).lexically_normal();
        if (candidate != from && std::filesystem::is_regular_file(candidate, ec)) {
            return candidate;
        }
    }
    return std::nullopt;
}

// Tables merge key by key; anything else (arrays included) in `over` replaces `base`.
void merge_into(toml::table& base, const toml::table& over) {
    for (auto&& [k, v] : over) {
        auto* existing = base.get(k.str());
        if (existing && existing->is_table() && v.is_table()) {
            merge_into(*existing->as_table(), *v.as_table());
        } else {
            base.insert_or_assign(k, v);
        }
    }
}

// Loads `file` and what it extends, merged; the parents found go to `parents`.
toml::table load_merged(const std::filesystem::path& file, std::vector<std::filesystem::path>& chain,
                        std::vector<std::filesystem::path>& parents, TomlProblems& problems) {
    toml::table root = parse_toml(file);
    chain.push_back(file);
    const auto* ext = root.get("extends");
    if (!ext) {
        return root;
    }
    auto ref = ext->value_exact<std::string>();
    if (!ref) {
        problems.add(ext->source(), "extends", fmt::format("expected a profile name or path, found {}", toml_type_name(*ext)));
        return root;
    }
    auto parent = find_parent(*ref, file);
    if (!parent) {
        problems.add(ext->source(), "extends",
                     fmt::format("no profile \"{}\" beside this file or along the profile search path "
                                 "(./profiles, ~/.config/sbx/profiles, the shipped profiles)",
                                 *ref));
        return root;
    }
    if (std::find(chain.begin(), chain.end(), *parent) != chain.end()) {
        std::vector<std::string> names;
        for (const auto& c : chain) {
            names.push_back(c.filename().string());
        }
        names.push_back(parent->filename().string());
        problems.add(ext->source(), "extends", fmt::format("extends cycle: {}", fmt::join(names, " -> ")));
        return root;
    }
    if (static_cast<int>(chain.size()) >= k_max_extends_depth) {
        problems.add(ext->source(), "extends", fmt::format("extends goes deeper than {} profiles", k_max_extends_depth));
        return root;
    }
    parents.push_back(*parent);
    toml::table merged = load_merged(*parent, chain, parents, problems);
    merge_into(merged, root);
    return merged;
}

}  // namespace

Profile load_profile_as(const std::filesystem::path& file_in, const std::string& name) {
    std::error_code ec;
    auto file = std::filesystem::absolute(file_in, ec).lexically_normal();
    if (!std::filesystem::is_regular_file(file, ec)) {
        throw Error(fmt::format("profile {} does not exist", file.string()), {}, ExitCode::not_found);
    }
    if (!valid_instance_name(name)) {
        throw Error(fmt::format("{}: \"{}\" is not a valid profile name", file.string(), name),
                    {"profile names use lowercase letters, digits, - and _ (at most 32), e.g. work.toml"},
                    ExitCode::config);
    }
    Profile prof;
    prof.file = file;
    prof.name = name;
    TomlProblems problems(file.string());
    std::vector<std::filesystem::path> chain;
    toml::table root = load_merged(file, chain, prof.parents, problems);
    detail::read_profile_tree(root, prof, problems);
    if (!problems.empty()) {
        problems.raise({fmt::format("the profile reference is docs/profile.md; fix {} and retry (`sbx check {}`)",
                                    file.filename().string(), name)});
    }
    return prof;
}

Profile load_profile_file(const std::filesystem::path& file) {
    return load_profile_as(file, file.stem().string());
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
