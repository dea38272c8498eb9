#pragma once
// Problems found while reading a TOML file (profiles, image recipes), collected so that
// all of them are reported at once, in file order, as "<file>:<line>:<col>: <key>: <what>".

#include <toml++/toml.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sbx {

class TomlProblems {
public:
    // `file` is the name shown in every line, unless a node's source names another file.
    explicit TomlProblems(std::string file) : m_file(std::move(file)) {}

    void add(const toml::source_region& where, std::string_view key, std::string_view what);
    // For a problem with no place of its own (a missing key): reported at 1:1.
    void add_at_start(std::string_view key, std::string_view what);
    bool empty() const { return m_lines.empty(); }

    // Throws sbx::Error (ExitCode::config): every line in file order (the TOML library
    // iterates keys in key order), then `hints`.
    [[noreturn]] void raise(std::vector<std::string> hints) const;

private:
    struct Line {
        std::uint32_t other_file;  // 0: the file itself first, then files it extends
        std::string file;
        std::uint32_t line;
        std::uint32_t column;
        std::string text;
    };
    std::string m_file;
    std::vector<Line> m_lines;
};

// "a string", "an integer", ... for "expected X, found Y" messages.
const char* toml_type_name(const toml::node& node);

}  // namespace sbx
