#include "sbx/util/toml_problems.hpp"

#include "sbx/util/error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

namespace sbx {

void TomlProblems::add(const toml::source_region& where, std::string_view key, std::string_view what) {
    // A node merged in from another file (profile `extends`) names that file.
    const std::string& file = where.path && !where.path->empty() ? *where.path : m_file;
    m_lines.push_back({file == m_file ? 0U : 1U, file, where.begin.line, where.begin.column,
                       fmt::format("{}:{}:{}: {}: {}", file, where.begin.line, where.begin.column, key, what)});
}

void TomlProblems::add_at_start(std::string_view key, std::string_view what) {
    m_lines.push_back({0, m_file, 1, 1, fmt::format("{}:1:1: {}: {}", m_file, key, what)});
}

void TomlProblems::raise(std::vector<std::string> hints) const {
    auto lines = m_lines;
    std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
        if (a.other_file != b.other_file || a.file != b.file) {
            return std::tie(a.other_file, a.file) < std::tie(b.other_file, b.file);
        }
        return a.line != b.line ? a.line < b.line : a.column < b.column;
    });
    std::string msg;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        msg += (i ? "\n" : "") + lines[i].text;
    }
    throw Error(msg, std::move(hints), ExitCode::config);
}

const char* toml_type_name(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date/time";
    }
}

}  // namespace sbx
