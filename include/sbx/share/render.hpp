#pragma once
// Review-mode shares: changes shown to people, git-style. `sbx diff` prints, per change,
// its flags as warning lines ("! runs on the host: CI workflow", "!!" for the loud ones),
// then a git-like header and unified hunks (3 lines of context); `--stat` one line per
// change with its +/- counts and flags, then a summary. Every guest-made byte goes
// through display_path()/display_text() first.

#include <cstddef>
#include <string>
#include <vector>

#include "sbx/instance/layout.hpp"
#include "sbx/share/changes.hpp"

namespace sbx::share {

struct RenderOptions {
    bool color = false;  // ANSI colours (the CLI: on a terminal, never with NO_COLOR)
    std::size_t context = 3;
};

// One change's content diff.
struct FileDiff {
    std::string text;  // header and hunks (no flag lines)
    std::size_t added = 0;
    std::size_t removed = 0;
    bool binary = false;  // binary or too large for a line diff
    std::string summary;  // for --stat when there are no line counts: "Bin 10 -> 20 bytes"
};

// Files over this size are compared but not diffed line by line.
inline constexpr std::size_t k_max_text_diff_bytes = 8u << 20;

FileDiff file_diff(const instance::ShareLayout& share, const Change& change, const RenderOptions& options);

// "! text" / "!! text" lines, one per flag.
std::string flag_lines(const Change& change, bool color);

// " path | 5 +++--  ! flag; !! flag" (path padded to width).
std::string stat_line(const Change& change, const FileDiff& diff, std::size_t width, bool color);

// The whole `sbx diff` output for these changes (empty when there are none).
std::string render_diff(const instance::ShareLayout& share, const std::vector<Change>& changes,
                        const RenderOptions& options);

// The whole `sbx diff --stat` output: one line per change, then
// " 3 files changed, 10 insertions(+), 2 deletions(-), 2 flagged, 1 conflict".
std::string render_stat(const instance::ShareLayout& share, const std::vector<Change>& changes,
                        const RenderOptions& options);

// "note: 2 paths the guest created are hidden (never applied): .git, .env" or "".
std::string hidden_note(const std::vector<std::string>& hidden);

}  // namespace sbx::share
