#include "sbx/util/paths.hpp"

#include "sbx/util/error.hpp"

#include <unistd.h>

#include <cstdlib>

namespace sbx::paths {

namespace {

std::filesystem::path home_dir() {
    const char* home = std::getenv("HOME");
    if (!home || !*home) {
        throw Error("HOME is not set", {"set HOME, or SBX_HOME to choose where sbx keeps its state"});
    }
    return home;
}

std::filesystem::path xdg(const char* var, const char* fallback) {
    const char* v = std::getenv(var);
    if (v && *v == '/') {
        return v;
    }
    return home_dir() / fallback;
}

std::optional<std::filesystem::path> sbx_home() {
    const char* v = std::getenv("SBX_HOME");
    if (v && *v) {
        return std::filesystem::absolute(v);
    }
    return std::nullopt;
}

}  // namespace

std::filesystem::path vms_root() {
    if (auto h = sbx_home()) {
        return *h / "vms";
    }
    return xdg("XDG_STATE_HOME", ".local/state") / "sbx" / "vms";
}

std::filesystem::path images_root() {
    if (auto h = sbx_home()) {
        return *h / "images";
    }
    return xdg("XDG_DATA_HOME", ".local/share") / "sbx" / "images";
}

std::filesystem::path user_config_dir() {
    return xdg("XDG_CONFIG_HOME", ".config") / "sbx";
}

std::optional<std::filesystem::path> shipped_data_dir() {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) {
        return std::nullopt;
    }
    auto dir = exe.parent_path().parent_path() / "share" / "sbx";
    if (std::filesystem::is_directory(dir, ec)) {
        return dir;
    }
    return std::nullopt;
}

std::vector<std::filesystem::path> search_dirs(const std::string& kind) {
    std::vector<std::filesystem::path> dirs;
    std::error_code ec;
    dirs.push_back(std::filesystem::current_path(ec) / kind);
    if (std::getenv("HOME") || std::getenv("XDG_CONFIG_HOME")) {
        dirs.push_back(user_config_dir() / kind);
    }
    if (auto shipped = shipped_data_dir()) {
        dirs.push_back(*shipped / kind);
    }
    return dirs;
}

std::optional<std::filesystem::path> find_named(const std::string& kind, const std::string& name) {
    std::error_code ec;
    for (const auto& dir : search_dirs(kind)) {
        auto candidate = dir / (name + ".toml");
        if (std::filesystem::is_regular_file(candidate, ec)) {
            return candidate;
        }
    }
    return std::nullopt;
}

std::string search_dirs_text(const std::string& kind) {
    std::string out;
    for (const auto& dir : search_dirs(kind)) {
        out += (out.empty() ? "" : ", ") + dir.string();
    }
    return out;
}

}  // namespace sbx::paths
