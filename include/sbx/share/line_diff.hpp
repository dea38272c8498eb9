#pragma once
// Line diffs for `sbx diff`: Myers' O((N+M)D) algorithm in its linear-space form (the
// "middle snake" bisection), after trimming common prefix and suffix. A work budget bounds
// the time on huge, very different inputs: past it the rest of a region is reported as
// removed-then-added, which is still a correct (if not minimal) edit script.
//
// Lines keep their '\n'; a last line without one differs from the same text with one, and
// is printed with git's "\ No newline at end of file" marker.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::share {

// "a\nb" -> {"a\n", "b"}; "" -> {}.
std::vector<std::string_view> split_lines(std::string_view text);

// Which lines of `a` are removed and which of `b` are added; the rest pair up in order.
struct EditMarks {
    std::vector<bool> removed;  // size a.size()
    std::vector<bool> added;    // size b.size()
};

// A shortest edit script (within `budget` snake steps; 0 = the default, about 50 million).
EditMarks diff_lines(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b,
                     std::size_t budget = 0);

struct UnifiedOptions {
    std::size_t context = 3;
    bool color = false;  // ANSI colours for hunk headers, removed and added lines
};

struct UnifiedDiff {
    std::string text;       // "@@ -1,3 +1,4 @@\n..." hunks only; empty when a == b
    std::size_t added = 0;  // lines
    std::size_t removed = 0;
};

// Unified hunks of `a` -> `b`. Content lines pass through display_text().
UnifiedDiff unified_diff(std::string_view a, std::string_view b, const UnifiedOptions& options = {});

}  // namespace sbx::share
