#pragma once
// The `hide` list of a share: paths of the host folder the guest never sees.
//
// An entry is a relative path with '/' separators, matched component by component with
// shell globs inside a component (`*`, `?`, `[...]`; `*` never crosses a '/'):
//   - without a '/' (".git", ".env", "*.pem") it matches that name at any depth, as in
//     .gitignore;
//   - with a '/' ("secrets/*.pem", "config/local.toml", "/build") it is anchored at the
//     share root (a leading '/' only says so explicitly);
//   - a trailing '/' is ignored; a match on a folder hides everything below it.
// Entries that are empty, absolute beyond the leading '/', or contain "." or ".." components
// are rejected.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::share {

class HideList {
public:
    HideList() = default;
    // Throws sbx::Error (ExitCode::config) naming the first bad entry.
    explicit HideList(const std::vector<std::string>& entries);

    // Adds more entries (the same rules). Throws like the constructor.
    void add(const std::vector<std::string>& entries);

    // Does this entry match `rel` itself ("a/b/c", no leading '/')? Parents are not looked at.
    bool matches_exactly(std::string_view rel) const;
    // Is `rel` hidden: does an entry match it or one of its parent folders?
    bool hides(std::string_view rel) const;
    // The entry that hides `rel` (as written), if any.
    std::optional<std::string> hidden_by(std::string_view rel) const;

    const std::vector<std::string>& entries() const { return m_entries; }
    bool empty() const { return m_entries.empty(); }

private:
    struct Rule {
        std::string source;  // as written
        bool anchored = false;
        std::vector<std::string> parts;  // glob per component
    };
    std::vector<std::string> m_entries;
    std::vector<Rule> m_rules;
};

}  // namespace sbx::share
