#pragma once
// Review-mode shares, part 2: what the guest changed. diff() compares work/ against base/
// (both walked without following symlinks; work/ is the guest's and treated as hostile)
// and flags each change that deserves a second look before it reaches the host.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sbx/instance/layout.hpp"
#include "sbx/share/snapshot.hpp"

namespace sbx::share {

enum class ChangeKind {
    added,         // in work/ only
    modified,      // both, same kind, different content (and maybe mode)
    mode_changed,  // both, same content, different permission bits
    type_changed,  // both, different kinds (file -> symlink, folder -> file, ...)
    deleted,       // in base/ only
};
std::string to_string(ChangeKind k);

enum class FlagKind {
    deletion,         // the host copy would be deleted
    mode_change,      // permission bits differ
    new_executable,   // a new file with an x bit, or an x bit added
    setuid,           // setuid or setgid set in work/ (stripped on apply)
    symlink,          // a symlink is added or changed (target shown)
    symlink_outside,  // ... and its target is absolute or leaves the share (loud)
    special_file,     // FIFO, socket or device (never applied; loud)
    runs_on_host,     // a file host tools execute or obey (CI, hooks, builds, editor tasks, rc)
    conflict,         // the host changed this path since the snapshot (loud)
};

struct Flag {
    FlagKind kind;
    bool loud = false;  // printed as "!!" (and in red on a terminal)
    std::string text;   // "runs on the host: CI workflow"
};

struct Change {
    std::string path;  // relative, '/'-separated
    ChangeKind kind;
    Entry base;  // kind none when added
    Entry work;  // kind none when deleted
    std::vector<Flag> flags;
    std::string work_sha256;  // files in work/: the content the diff saw; apply writes only that

    bool has(FlagKind k) const;
    bool conflict() const { return has(FlagKind::conflict); }
};

struct DiffResult {
    // Sorted by path bytewise, so a folder comes before what is inside it.
    std::vector<Change> changes;
    // Paths the guest created in work/ that the hide list covers: never applied, not
    // walked into, listed here once (the topmost hidden path).
    std::vector<std::string> hidden;
};

struct DiffOptions {
    std::vector<std::string> extra_hide;  // hide entries beyond share.json's (the profile's now)
    bool check_host = true;               // compare against the host for conflict flags
};

// Compares work/ with base/ and flags each change. Throws sbx::Error when the share was
// never prepared or a tree cannot be read.
DiffResult diff(const instance::ShareLayout& share, const DiffOptions& options = {});

// Why a path runs on (or steers) the host, if it does: "CI workflow", "git hook",
// "build file (Makefile)", "npm package (scripts)", "direnv (.envrc)", "editor tasks",
// "shell startup file", "container build file"... Matched by name at any depth.
std::optional<std::string> runs_on_host(std::string_view rel_path);

// Does a symlink at `link_path` (relative to the share root) with this target point
// outside the share, resolving ".." lexically? Absolute targets always do.
bool symlink_escapes(std::string_view link_path, std::string_view target);

// The changes at PATHs (a change at the path or below it). Throws sbx::Error
// (ExitCode::not_found) naming the PATHs that match no change.
std::vector<Change> select_changes(const std::vector<Change>& all, const std::vector<std::string>& paths);

// Does a (normalised) PATH argument select the change at `path`: the same path, a path
// below it, or "" (everything)?
bool path_selects(std::string_view wanted, std::string_view path);

// Normalises a PATH argument: strips "./", trailing '/', repeated '/'. Throws on "..".
std::string normalise_path_arg(std::string_view path);

}  // namespace sbx::share
