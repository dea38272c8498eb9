// Theory of operation: diff() walks base/ and work/ side by side from their root fds (no
// symlink is ever followed; work/ is the guest's and may change under us), merging the
// sorted names of each folder pair. Files of equal size are compared byte by byte (the
// guest controls mtimes, so they prove nothing). Each change is then flagged: by its kind
// and modes, by its name (files host tools run), by its symlink target (resolved lexically,
// then through symlinks inside work/), and by a look at the host (conflicts).
#include "sbx/share/changes.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <set>

#include "sbx/share/display.hpp"
#include "sbx/share/hide.hpp"
#include "sbx/util/error.hpp"
#include "tree_io.hpp"

namespace sbx::share {

using detail::Fd;

namespace {

constexpr std::size_t k_max_depth = 128;  // deeper guest folders are an error, not a crash
constexpr int k_max_symlink_hops = 40;    // as the kernel's MAXSYMLINKS

bool same_content(int base_dir, int work_dir, const std::string& name) {
    int err = 0;
    auto b = detail::open_regular(base_dir, name, err);
    auto w = detail::open_regular(work_dir, name, err);
    if (!b || !w) {
        return false;
    }
    std::array<char, 65536> bb{};
    std::array<char, 65536> wb{};
    while (true) {
        ssize_t nb = ::read(b->get(), bb.data(), bb.size());
        if (nb < 0 && errno == EINTR) {
            continue;
        }
        if (nb < 0) {
            return false;
        }
        std::size_t got = 0;
        while (got < static_cast<std::size_t>(nb)) {
            ssize_t nw = ::read(w->get(), wb.data() + got, static_cast<std::size_t>(nb) - got);
            if (nw < 0 && errno == EINTR) {
                continue;
            }
            if (nw <= 0) {
                return false;
            }
            got += static_cast<std::size_t>(nw);
        }
        if (nb == 0) {
            char extra = 0;
            return ::read(w->get(), &extra, 1) == 0;
        }
        if (std::memcmp(bb.data(), wb.data(), got) != 0) {
            return false;
        }
    }
}

// Resolves a relative symlink target inside the work tree, following symlinks found there.
bool resolves_outside(int work_root, std::string_view link_path, std::string_view target) {
    if (!target.empty() && target.front() == '/') {
        return true;
    }
    std::vector<std::string> stack;
    {
        auto parts = detail::split_rel(link_path);
        parts.pop_back();
        stack = std::move(parts);
    }
    std::deque<std::string> pending;
    auto push_target = [&](std::string_view t) {
        std::vector<std::string> comps;
        std::size_t start = 0;
        while (start <= t.size()) {
            std::size_t slash = t.find('/', start);
            if (slash == std::string_view::npos) {
                slash = t.size();
            }
            comps.emplace_back(t.substr(start, slash - start));
            start = slash + 1;
        }
        pending.insert(pending.begin(), comps.begin(), comps.end());
    };
    push_target(target);
    int hops = 0;
    while (!pending.empty()) {
        std::string c = pending.front();
        pending.pop_front();
        if (c.empty() || c == ".") {
            continue;
        }
        if (c == "..") {
            if (stack.empty()) {
                return true;
            }
            stack.pop_back();
            continue;
        }
        stack.push_back(c);
        detail::WalkFailure failure;
        auto parent = detail::open_parent(work_root, stack, std::nullopt, failure);
        if (!parent) {
            continue;  // missing or blocked: the rest is lexical
        }
        detail::Stat s;
        try {
            s = detail::stat_at(parent->get(), stack.back());
        } catch (const Error&) {
            continue;
        }
        if (s.entry.kind != EntryKind::symlink) {
            continue;
        }
        if (++hops > k_max_symlink_hops) {
            return true;  // a loop: treat as unsafe
        }
        stack.pop_back();
        if (!s.entry.target.empty() && s.entry.target.front() == '/') {
            return true;
        }
        push_target(s.entry.target);
    }
    return false;
}

struct NamedRule {
    const char* name;
    const char* reason;
};

// Files host tools run or obey, by exact name at any depth.
constexpr NamedRule k_names[] = {
    {".gitlab-ci.yml", "CI workflow"},
    {".travis.yml", "CI workflow"},
    {"azure-pipelines.yml", "CI workflow"},
    {"Jenkinsfile", "CI workflow"},
    {"bitbucket-pipelines.yml", "CI workflow"},
    {".drone.yml", "CI workflow"},
    {".woodpecker.yml", "CI workflow"},
    {".pre-commit-config.yaml", "git hook (pre-commit)"},
    {".pre-commit-hooks.yaml", "git hook (pre-commit)"},
    {"Makefile", "build file (Makefile)"},
    {"makefile", "build file (Makefile)"},
    {"GNUmakefile", "build file (Makefile)"},
    {"CMakeLists.txt", "build file (CMake)"},
    {"CMakePresets.json", "build file (CMake)"},
    {"meson.build", "build file (Meson)"},
    {"configure", "build file (configure script)"},
    {"configure.ac", "build file (autoconf)"},
    {"build.rs", "build file (Cargo build script)"},
    {"Cargo.toml", "build file (Cargo)"},
    {"package.json", "npm package (scripts)"},
    {".npmrc", "npm configuration"},
    {".yarnrc", "yarn configuration"},
    {".yarnrc.yml", "yarn configuration"},
    {"setup.py", "Python build (setup.py)"},
    {"setup.cfg", "Python build (setup.cfg)"},
    {"pyproject.toml", "Python build (pyproject.toml)"},
    {"conftest.py", "pytest (loaded automatically)"},
    {"tox.ini", "Python test runner (tox)"},
    {"noxfile.py", "Python test runner (nox)"},
    {"Rakefile", "build file (Rake)"},
    {"Gemfile", "Ruby bundle (Gemfile)"},
    {"build.gradle", "build file (Gradle)"},
    {"build.gradle.kts", "build file (Gradle)"},
    {"settings.gradle", "build file (Gradle)"},
    {"pom.xml", "build file (Maven)"},
    {"justfile", "build file (just)"},
    {"Justfile", "build file (just)"},
    {"Taskfile.yml", "build file (Task)"},
    {".envrc", "direnv (.envrc)"},
    {".env", "environment file (read by tools)"},
    {".bashrc", "shell startup file"},
    {".bash_profile", "shell startup file"},
    {".bash_login", "shell startup file"},
    {".bash_logout", "shell startup file"},
    {".profile", "shell startup file"},
    {".zshrc", "shell startup file"},
    {".zshenv", "shell startup file"},
    {".zprofile", "shell startup file"},
    {".zlogin", "shell startup file"},
    {"config.fish", "shell startup file"},
    {".exrc", "editor startup file (vim exrc)"},
    {".nvim.lua", "editor startup file (neovim exrc)"},
    {".nvimrc", "editor startup file (neovim exrc)"},
    {".dir-locals.el", "editor startup file (Emacs)"},
    {"Dockerfile", "container build file"},
    {"Containerfile", "container build file"},
    {"docker-compose.yml", "container build file"},
    {"docker-compose.yaml", "container build file"},
    {"compose.yml", "container build file"},
    {"compose.yaml", "container build file"},
    {".gitmodules", "git submodules (fetched by git)"},
    {".gitattributes", "git attributes (filters, diff drivers)"},
};

// Folders whose contents host tools run, matched as a pair of path components
// (".github/workflows/x"), or as one component (".husky/x") at any depth.
struct FolderRule {
    const char* first;
    const char* second;  // nullptr: any file below `first`
    const char* reason;
};
constexpr FolderRule k_folders[] = {
    {".github", "workflows", "CI workflow"},
    {".github", "actions", "CI workflow (action)"},
    {".circleci", nullptr, "CI workflow"},
    {".buildkite", nullptr, "CI workflow"},
    {".git", "hooks", "git hook"},
    {".husky", nullptr, "git hook (husky)"},
    {".githooks", nullptr, "git hook"},
    {".vscode", "tasks.json", "editor tasks"},
    {".vscode", "launch.json", "editor tasks (launch)"},
    {".vscode", "settings.json", "editor settings (can name programs)"},
    {".idea", nullptr, "editor settings (JetBrains)"},
    {".devcontainer", nullptr, "dev container (runs commands)"},
    {".cargo", "config.toml", "Cargo configuration"},
    {".cargo", "config", "Cargo configuration"},
    {".git", "config", "git configuration (can run commands)"},
    {".mvn", nullptr, "Maven wrapper"},
    {"gradle", "wrapper", "Gradle wrapper"},
};

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

class Walker {
public:
    Walker(const HideList& hide, DiffResult& result) : m_hide(hide), m_result(result) {}

    void walk(const Fd* base, const Fd* work, const std::string& prefix, std::size_t depth) {
        if (depth > k_max_depth) {
            throw Error(fmt::format("the review copy has folders deeper than {} levels at {}", k_max_depth,
                                    display_path(prefix)),
                        {"remove or flatten that folder in the guest, then retry"});
        }
        std::vector<std::string> names;
        if (base) {
            names = detail::list_dir(base->get());
        }
        if (work) {
            auto w = detail::list_dir(work->get());
            names.insert(names.end(), w.begin(), w.end());
            std::sort(names.begin(), names.end());
            names.erase(std::unique(names.begin(), names.end()), names.end());
        }
        for (const auto& name : names) {
            std::string rel = prefix.empty() ? name : prefix + "/" + name;
            detail::Stat b;
            detail::Stat w;
            if (base) {
                b = detail::stat_at(base->get(), name);
            }
            if (work) {
                w = detail::stat_at(work->get(), name);
            }
            if (m_hide.matches_exactly(rel)) {
                if (w.entry.kind != EntryKind::none) {
                    m_result.hidden.push_back(rel);
                }
                continue;
            }
            compare(base, work, name, rel, b.entry, w.entry, depth);
        }
    }

private:
    void add(const std::string& rel, ChangeKind kind, const Entry& b, const Entry& w) {
        m_result.changes.push_back(Change{rel, kind, b, w, {}, {}});
    }

    std::optional<Fd> sub(const Fd* dir, const std::string& name) {
        int err = 0;
        auto fd = detail::open_subdir(dir->get(), name, err);
        if (!fd) {
            throw Error(fmt::format("cannot open folder {} in the review copy: {}", name, std::strerror(err)),
                        {"the guest may be changing it right now; retry"});
        }
        return fd;
    }

    void compare(const Fd* base, const Fd* work, const std::string& name, const std::string& rel,
                 const Entry& b, const Entry& w, std::size_t depth) {
        if (b.kind == EntryKind::none && w.kind == EntryKind::none) {
            return;
        }
        if (b.kind == EntryKind::none) {
            add(rel, ChangeKind::added, b, w);
            if (w.kind == EntryKind::dir) {
                auto wd = sub(work, name);
                walk(nullptr, &*wd, rel, depth + 1);
            }
            return;
        }
        if (w.kind == EntryKind::none) {
            add(rel, ChangeKind::deleted, b, w);
            if (b.kind == EntryKind::dir) {
                auto bd = sub(base, name);
                walk(&*bd, nullptr, rel, depth + 1);
            }
            return;
        }
        if (b.kind != w.kind) {
            add(rel, ChangeKind::type_changed, b, w);
            if (b.kind == EntryKind::dir) {
                auto bd = sub(base, name);
                walk(&*bd, nullptr, rel, depth + 1);
            }
            if (w.kind == EntryKind::dir) {
                auto wd = sub(work, name);
                walk(nullptr, &*wd, rel, depth + 1);
            }
            return;
        }
        switch (b.kind) {
            case EntryKind::dir: {
                auto bd = sub(base, name);
                auto wd = sub(work, name);
                walk(&*bd, &*wd, rel, depth + 1);
                return;
            }
            case EntryKind::file: {
                bool same = b.size == w.size && same_content(base->get(), work->get(), name);
                bool mode_same = (b.mode & 07777) == (w.mode & 07777);
                if (!same) {
                    add(rel, ChangeKind::modified, b, w);
                } else if (!mode_same) {
                    add(rel, ChangeKind::mode_changed, b, w);
                }
                return;
            }
            case EntryKind::symlink:
                if (b.target != w.target) {
                    add(rel, ChangeKind::modified, b, w);
                }
                return;
            case EntryKind::special:
                if (b.mode != w.mode) {
                    add(rel, ChangeKind::modified, b, w);
                }
                return;
            case EntryKind::none:
                return;
        }
    }

    const HideList& m_hide;
    DiffResult& m_result;
};

// The sha256 of a work/ file, or "" when it cannot be read as a regular file now.
std::string work_file_sha256(int work_root, const std::string& rel) {
    auto parts = detail::split_rel(rel);
    detail::WalkFailure failure;
    auto parent = detail::open_parent(work_root, parts, std::nullopt, failure);
    if (!parent) {
        return {};
    }
    int err = 0;
    auto fd = detail::open_regular(parent->get(), parts.back(), err);
    if (!fd) {
        return {};
    }
    return detail::copy_stream(fd->get(), {});
}

void flag(Change& c, FlagKind kind, std::string text, bool loud = false) {
    c.flags.push_back(Flag{kind, loud, std::move(text)});
}

void compute_flags(Change& c, int work_root, int host_root, const ShareMeta& meta) {
    const Entry& b = c.base;
    const Entry& w = c.work;
    if (c.kind == ChangeKind::deleted) {
        flag(c, FlagKind::deletion, b.kind == EntryKind::dir ? "deletes a folder" : "deleted");
    } else if (c.kind == ChangeKind::type_changed && b.kind == EntryKind::dir) {
        flag(c, FlagKind::deletion, fmt::format("replaces a folder with a {}", to_string(w.kind)));
    }
    if (b.kind == EntryKind::file && w.kind == EntryKind::file && (b.mode & 07777) != (w.mode & 07777)) {
        flag(c, FlagKind::mode_change,
             fmt::format("mode {} -> {}", detail::mode_text(b.mode), detail::mode_text(w.mode)));
    }
    if (w.kind == EntryKind::file && (w.mode & 0111) != 0 &&
        (b.kind != EntryKind::file || (b.mode & 0111) == 0)) {
        flag(c, FlagKind::new_executable, b.kind == EntryKind::file ? "made executable" : "new executable");
    }
    if (w.kind == EntryKind::file && (w.mode & (S_ISUID | S_ISGID)) != 0) {
        flag(c, FlagKind::setuid,
             fmt::format("{} bit set (stripped on apply)", (w.mode & S_ISUID) ? "setuid" : "setgid"), true);
    }
    if (w.kind == EntryKind::symlink) {
        std::string target = display_text(w.target);
        if (symlink_escapes(c.path, w.target)) {
            flag(c, FlagKind::symlink_outside, fmt::format("symlink points outside the share: -> {}", target),
                 true);
        } else if (resolves_outside(work_root, c.path, w.target)) {
            flag(c, FlagKind::symlink_outside,
                 fmt::format("symlink leads outside the share through another symlink: -> {}", target), true);
        } else {
            flag(c, FlagKind::symlink, fmt::format("symlink -> {}", target));
        }
    }
    if (w.kind == EntryKind::special) {
        flag(c, FlagKind::special_file,
             fmt::format("special file ({}): never applied", detail::kind_name(static_cast<mode_t>(w.mode))),
             true);
    }
    if (w.kind != EntryKind::none && w.kind != EntryKind::dir) {
        if (auto why = runs_on_host(c.path)) {
            flag(c, FlagKind::runs_on_host, "runs on the host: " + *why);
        }
    }
    if (host_root >= 0) {
        auto it = meta.files.find(c.path);
        const Identity* recorded = it == meta.files.end() ? nullptr : &it->second;
        std::optional<std::string> drift;
        try {
            drift = detail::host_drift(host_root, c.path, recorded);
        } catch (const Error& e) {
            drift = e.what();
        }
        if (drift) {
            flag(c, FlagKind::conflict, "conflict: " + *drift, true);
        }
    }
}

}  // namespace

std::string to_string(ChangeKind k) {
    switch (k) {
        case ChangeKind::added:
            return "added";
        case ChangeKind::modified:
            return "modified";
        case ChangeKind::mode_changed:
            return "mode changed";
        case ChangeKind::type_changed:
            return "type changed";
        case ChangeKind::deleted:
            return "deleted";
    }
    return "changed";
}

bool Change::has(FlagKind k) const {
    return std::any_of(flags.begin(), flags.end(), [k](const Flag& f) { return f.kind == k; });
}

std::optional<std::string> runs_on_host(std::string_view rel_path) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (start <= rel_path.size()) {
        std::size_t slash = rel_path.find('/', start);
        if (slash == std::string_view::npos) {
            slash = rel_path.size();
        }
        parts.push_back(rel_path.substr(start, slash - start));
        start = slash + 1;
    }
    std::string_view name = parts.back();
    for (const auto& rule : k_names) {
        if (name == rule.name) {
            return std::string(rule.reason);
        }
    }
    if (ends_with(name, ".mk")) {
        return std::string("build file (Makefile)");
    }
    if (ends_with(name, ".cmake")) {
        return std::string("build file (CMake)");
    }
    if (ends_with(name, ".Dockerfile") || name.rfind("Dockerfile.", 0) == 0) {
        return std::string("container build file");
    }
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        for (const auto& rule : k_folders) {
            if (parts[i] != rule.first) {
                continue;
            }
            if (!rule.second || parts[i + 1] == rule.second) {
                return std::string(rule.reason);
            }
        }
    }
    return std::nullopt;
}

bool symlink_escapes(std::string_view link_path, std::string_view target) {
    if (target.empty()) {
        return false;
    }
    if (target.front() == '/') {
        return true;
    }
    // Depth of the folder holding the link.
    long depth = static_cast<long>(std::count(link_path.begin(), link_path.end(), '/'));
    std::size_t start = 0;
    while (start <= target.size()) {
        std::size_t slash = target.find('/', start);
        if (slash == std::string_view::npos) {
            slash = target.size();
        }
        auto part = target.substr(start, slash - start);
        if (part == "..") {
            if (--depth < 0) {
                return true;
            }
        } else if (!part.empty() && part != ".") {
            ++depth;
        }
        start = slash + 1;
    }
    return false;
}

DiffResult diff(const instance::ShareLayout& share, const DiffOptions& options) {
    ShareMeta meta = read_meta(share);
    HideList hide(meta.hide);
    hide.add(options.extra_hide);
    Fd base = detail::open_root(share.base());
    Fd work = detail::open_root(share.work());
    DiffResult result;
    Walker(hide, result).walk(&base, &work, "", 0);
    std::sort(result.changes.begin(), result.changes.end(),
              [](const Change& a, const Change& b) { return a.path < b.path; });
    std::optional<Fd> host;
    if (options.check_host) {
        try {
            host = detail::open_root(meta.host_root);
        } catch (const Error&) {
            // Reported per change below as a conflict: the host folder is gone.
        }
    }
    for (auto& c : result.changes) {
        if (c.work.kind == EntryKind::file) {
            c.work_sha256 = work_file_sha256(work.get(), c.path);
        }
        if (options.check_host && !host) {
            compute_flags(c, work.get(), -1, meta);
            flag(c, FlagKind::conflict,
                 fmt::format("conflict: the host folder {} cannot be opened", meta.host_root.string()), true);
            continue;
        }
        compute_flags(c, work.get(), host ? host->get() : -1, meta);
    }
    return result;
}

std::string normalise_path_arg(std::string_view path) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t slash = path.find('/', start);
        if (slash == std::string_view::npos) {
            slash = path.size();
        }
        auto part = path.substr(start, slash - start);
        if (part == "..") {
            throw Error(fmt::format("path {} leaves the share", display_path(path)),
                        {"give paths relative to the share's root, like src/main.c"}, ExitCode::usage);
        }
        if (!part.empty() && part != ".") {
            parts.emplace_back(part);
        }
        start = slash + 1;
    }
    return detail::join_rel(parts, parts.size());
}

bool path_selects(std::string_view wanted, std::string_view path) {
    return wanted.empty() || path == wanted ||
           (path.size() > wanted.size() && path.substr(0, wanted.size()) == wanted &&
            path[wanted.size()] == '/');
}

std::vector<Change> select_changes(const std::vector<Change>& all, const std::vector<std::string>& paths) {
    if (paths.empty()) {
        return all;
    }
    std::vector<std::string> wanted;
    for (const auto& p : paths) {
        wanted.push_back(normalise_path_arg(p));
    }
    std::vector<Change> out;
    std::set<std::string> matched;
    for (const auto& c : all) {
        bool take = false;
        for (const auto& p : wanted) {
            if (path_selects(p, c.path)) {
                matched.insert(p);
                take = true;
            }
        }
        if (take) {
            out.push_back(c);
        }
    }
    std::vector<std::string> missing;
    for (const auto& p : wanted) {
        if (!matched.count(p)) {
            missing.push_back(display_path(p));
        }
    }
    if (!missing.empty()) {
        std::string list;
        for (const auto& m : missing) {
            list += (list.empty() ? "" : ", ") + m;
        }
        throw Error(fmt::format("no change at {}", list), {"sbx diff NAME --stat lists the changed paths"},
                    ExitCode::not_found);
    }
    return out;
}

}  // namespace sbx::share
