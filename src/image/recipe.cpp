// Image recipes (images/NAME.toml): parsing, validation, lookup and fingerprint.
//
// A recipe is a small flat TOML table:
//
//   suite    = "bookworm"           required: the Debian suite
//   kernel   = "cloud"              kernel flavour: linux-image-<flavour>-amd64 ("amd64": generic)
//   size     = "2G"                 root filesystem size
//   packages = ["git", "curl"]      extra packages on top of what every sbx image has
//   setup    = "shell"              run with /bin/sh -e inside the image at build time
//
// Every problem is reported (not only the first) as <file>:<line>:<col>: <key>: <what>.

#include "sbx/image/image.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"
#include "sbx/util/hash.hpp"
#include "sbx/util/paths.hpp"
#include "sbx/util/strings.hpp"
#include "sbx/util/toml_problems.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <system_error>

namespace sbx::image {

namespace {

constexpr std::uint64_t k_min_size = 512ULL << 20;
constexpr std::uint64_t k_max_size = 2ULL << 40;
constexpr std::uint64_t k_default_size = 2ULL << 30;

// Bumped when the way sbx builds images changes in a way the files below do not show.
constexpr std::string_view k_build_format = "sbx-image-build 1";

const std::vector<std::string>& known_keys() {
    static const std::vector<std::string> k_keys = {"suite", "kernel", "size", "packages", "setup"};
    return k_keys;
}

bool is_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Debian suite / kernel flavour: lowercase letters, digits and '-'.
bool valid_word(std::string_view s) {
    return !s.empty() && s.size() <= 64 && is_lower_alnum(s.front()) &&
           std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

// Debian policy 5.6.7: [a-z0-9][a-z0-9+.-]+ (we also accept a one-letter name).
bool valid_package(std::string_view s) {
    return !s.empty() && s.size() <= 128 && is_lower_alnum(s.front()) &&
           std::all_of(s.begin(), s.end(),
                       [](char c) { return is_lower_alnum(c) || c == '+' || c == '-' || c == '.'; });
}

bool valid_recipe_name(std::string_view s) {
    return !s.empty() && s.size() <= 64 && is_lower_alnum(s.front()) &&
           std::all_of(s.begin(), s.end(),
                       [](char c) { return is_lower_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

}  // namespace

Recipe load_recipe(const std::filesystem::path& file) {
    const std::string shown = file.string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
        throw Error(fmt::format("image recipe {} does not exist", shown),
                    {"recipes live in images/NAME.toml; `sbx image build debian-12` uses the default one"},
                    ExitCode::not_found);
    }
    Recipe r;
    r.file = std::filesystem::absolute(file, ec);
    r.name = file.stem().string();
    if (!valid_recipe_name(r.name)) {
        throw Error(fmt::format("{}: \"{}\" is not a valid image name", shown, r.name),
                    {"image names use lowercase letters, digits, '-', '_' and '.', e.g. debian-12.toml"},
                    ExitCode::config);
    }

    std::string text = read_file(file);
    toml::table root;
    try {
        root = toml::parse(text, shown);
    } catch (const toml::parse_error& e) {
        throw Error(fmt::format("{}:{}:{}: {}", shown, e.source().begin.line, e.source().begin.column,
                                e.description()),
                    {"this is a TOML syntax error; see https://toml.io for the syntax"}, ExitCode::config);
    }

    TomlProblems problems(shown);
    r.kernel = "cloud";

    for (auto&& [key, node] : root) {
        const std::string k(key.str());
        if (k == "suite" || k == "kernel") {
            auto s = node.value_exact<std::string>();
            if (!s) {
                problems.add(node.source(), k, fmt::format("expected a string, found {}", toml_type_name(node)));
            } else if (!valid_word(*s)) {
                problems.add(node.source(), k,
                             fmt::format("\"{}\" is not a valid {} (lowercase letters, digits and -)", *s,
                                         k == "suite" ? "Debian suite" : "kernel flavour"));
            } else if (k == "suite") {
                r.suite = *s;
            } else {
                r.kernel = *s;
            }
        } else if (k == "size") {
            auto s = node.value_exact<std::string>();
            if (!s) {
                problems.add(node.source(), k,
                             fmt::format("expected a size string like \"2G\", found {}", toml_type_name(node)));
                continue;
            }
            auto bytes = parse_size(*s);
            if (!bytes) {
                problems.add(node.source(), k,
                             fmt::format("invalid size \"{}\" (use a number with K, M, G or T, like \"2G\")",
                                         *s));
            } else if (*bytes < k_min_size || *bytes > k_max_size) {
                problems.add(node.source(), k,
                             fmt::format("{} is out of range ({} to {})", *s, format_size(k_min_size),
                                         format_size(k_max_size)));
            } else if (*bytes % 4096 != 0) {
                problems.add(node.source(), k, fmt::format("{} is not a multiple of 4K", *s));
            } else {
                r.size_bytes = *bytes;
            }
        } else if (k == "packages") {
            const toml::array* arr = node.as_array();
            if (!arr) {
                problems.add(node.source(), k,
                             fmt::format("expected an array of package names, found {}", toml_type_name(node)));
                continue;
            }
            for (std::size_t i = 0; i < arr->size(); ++i) {
                const toml::node& item = *arr->get(i);
                std::string path = fmt::format("packages[{}]", i);
                auto s = item.value_exact<std::string>();
                if (!s) {
                    problems.add(item.source(), path,
                                 fmt::format("expected a string, found {}", toml_type_name(item)));
                } else if (!valid_package(*s)) {
                    problems.add(item.source(), path, fmt::format("invalid package name \"{}\"", *s));
                } else {
                    r.packages.push_back(*s);
                }
            }
        } else if (k == "setup") {
            auto s = node.value_exact<std::string>();
            if (!s) {
                problems.add(node.source(), k, fmt::format("expected a string, found {}", toml_type_name(node)));
            } else {
                r.setup = *s;
            }
        } else {
            std::string what = "unknown key";
            if (auto guess = did_you_mean(k, known_keys())) {
                what += fmt::format(" (did you mean \"{}\"?)", *guess);
            }
            problems.add(key.source(), k, what);
        }
    }
    if (!root.contains("suite")) {
        problems.add_at_start("suite", "missing (the Debian suite to install, like \"bookworm\")");
    }
    if (!root.contains("size")) {
        r.size_bytes = k_default_size;
    }
    if (!problems.empty()) {
        problems.raise({"the recipe format is described in docs/images.md"});
    }
    return r;
}

std::optional<std::filesystem::path> find_recipe(const std::string& name) {
    if (!valid_recipe_name(name)) {
        return std::nullopt;
    }
    return paths::find_named("images", name);
}

std::filesystem::path guest_dir(const Recipe& recipe) {
    return recipe.file.parent_path() / "guest";
}

std::string Recipe::fingerprint() const {
    Fnv1a64 h;
    h.add_field(k_build_format);
    h.add_field(read_file(file));
    auto dir = guest_dir(*this);
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (entry.is_regular_file()) {
            files.push_back(entry.path());
        }
    }
    if (ec || files.empty()) {
        throw Error(fmt::format("the guest files for image {} are missing: {} is empty or unreadable", name,
                                dir.string()),
                    {"sbx images need the images/guest/ folder that ships beside the recipes"},
                    ExitCode::not_found);
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        h.add_field(f.filename().string());
        h.add_field(read_file(f));
    }
    return fmt::format("fnv1a64:{:016x}", h.value());
}

}  // namespace sbx::image
