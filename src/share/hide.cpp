#include "sbx/share/hide.hpp"

#include <fmt/format.h>
#include <fnmatch.h>

#include "sbx/util/error.hpp"

namespace sbx::share {

namespace {

std::vector<std::string> split(std::string_view path) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t slash = path.find('/', start);
        if (slash == std::string_view::npos) {
            slash = path.size();
        }
        out.emplace_back(path.substr(start, slash - start));
        start = slash + 1;
    }
    return out;
}

bool glob_match(const std::string& pattern, const std::string& name) {
    // FNM_PERIOD off: "*.pem" should hide ".x.pem" too; hiding errs on the safe side.
    return ::fnmatch(pattern.c_str(), name.c_str(), FNM_PATHNAME) == 0;
}

}  // namespace

HideList::HideList(const std::vector<std::string>& entries) {
    add(entries);
}

void HideList::add(const std::vector<std::string>& entries) {
    for (const auto& entry : entries) {
        std::string_view text = entry;
        auto bad = [&](std::string_view why) {
            return Error(fmt::format("hide entry \"{}\": {}", entry, why),
                         {"hide entries are relative paths inside the share, like \".git\", "
                          "\"secrets/*.pem\" or \"config/local.toml\""},
                         ExitCode::config);
        };
        Rule rule;
        rule.source = entry;
        if (!text.empty() && text.front() == '/') {
            rule.anchored = true;
            text.remove_prefix(1);
        }
        while (!text.empty() && text.back() == '/') {
            text.remove_suffix(1);
        }
        if (text.empty()) {
            throw bad("empty");
        }
        if (text.find('\0') != std::string_view::npos) {
            throw bad("contains a NUL byte");
        }
        rule.parts = split(text);
        if (rule.parts.size() > 1) {
            rule.anchored = true;
        }
        for (const auto& part : rule.parts) {
            if (part.empty()) {
                throw bad("has an empty component (\"//\")");
            }
            if (part == "." || part == "..") {
                throw bad("has a \".\" or \"..\" component");
            }
        }
        m_entries.push_back(entry);
        m_rules.push_back(std::move(rule));
    }
}

bool HideList::matches_exactly(std::string_view rel) const {
    if (m_rules.empty() || rel.empty()) {
        return false;
    }
    auto parts = split(rel);
    for (const auto& rule : m_rules) {
        if (!rule.anchored) {
            if (glob_match(rule.parts.front(), parts.back())) {
                return true;
            }
            continue;
        }
        if (rule.parts.size() != parts.size()) {
            continue;
        }
        bool all = true;
        for (std::size_t i = 0; i < parts.size() && all; ++i) {
            all = glob_match(rule.parts[i], parts[i]);
        }
        if (all) {
            return true;
        }
    }
    return false;
}

std::optional<std::string> HideList::hidden_by(std::string_view rel) const {
    if (m_rules.empty() || rel.empty()) {
        return std::nullopt;
    }
    auto parts = split(rel);
    for (const auto& rule : m_rules) {
        if (!rule.anchored) {
            for (const auto& p : parts) {
                if (glob_match(rule.parts.front(), p)) {
                    return rule.source;
                }
            }
            continue;
        }
        if (rule.parts.size() > parts.size()) {
            continue;
        }
        bool all = true;
        for (std::size_t i = 0; i < rule.parts.size() && all; ++i) {
            all = glob_match(rule.parts[i], parts[i]);
        }
        if (all) {
            return rule.source;
        }
    }
    return std::nullopt;
}

bool HideList::hides(std::string_view rel) const {
    return hidden_by(rel).has_value();
}

}  // namespace sbx::share
