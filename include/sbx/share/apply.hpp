#pragma once
// Review-mode shares, part 3: copying accepted changes back to the host.
//
// The safety rules, each enforced here rather than trusted to the caller:
//   - every host path is reached from the share root's fd by openat() with O_NOFOLLOW, one
//     component at a time: a symlink component on the host refuses the change, so nothing
//     is written through a symlink or outside the share root;
//   - a file is written to a temp file in its host folder, fsynced, given its mode (setuid,
//     setgid and sticky stripped) and renamed over the target: readers see old or new;
//   - symlinks are created (to a temp name, then renamed) only when their target stays in
//     the share, unless allow_outside_symlinks;
//   - special files (FIFOs, sockets, devices) are refused;
//   - a path the host changed since the snapshot is refused unless a side is chosen;
//   - deletions (and replacing a folder) need allow_delete;
//   - hidden paths are never written.
// After a change is applied, base/ gets the new version of that path (so it is no longer
// a change) and share.json the host's new identity.

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "sbx/instance/layout.hpp"
#include "sbx/share/changes.hpp"

namespace sbx::share {

enum class ConflictChoice {
    refuse,  // a path the host changed since the snapshot is refused (the default)
    guest,   // the guest's version overwrites the host's
    host,    // the host's version stays; the guest's change is dropped from the review
};

struct ApplyOptions {
    bool allow_delete = false;
    ConflictChoice conflict = ConflictChoice::refuse;
    bool allow_outside_symlinks = false;
    bool dry_run = false;  // check everything, write nothing
};

enum class Outcome {
    applied,    // the host has the guest's version (or dry run: would have)
    kept_host,  // a conflict resolved for the host: nothing written to the host
    refused,    // not applied; message says why, hint what to do
};
std::string to_string(Outcome o);

struct FileResult {
    std::string path;
    ChangeKind kind;
    Outcome outcome;
    std::string message;  // "written", "deleted", or why it was refused
    std::string hint;     // refused only: the next step
};

struct ApplyReport {
    std::vector<FileResult> results;  // in the order applied
    bool dry_run = false;
    std::size_t count(Outcome o) const;
    bool any_refused() const { return count(Outcome::refused) > 0; }
};

// One change with the options that apply to it (sbx review decides per change).
struct PlannedChange {
    Change change;
    ApplyOptions options;
};

// Applies the changes (deletions deepest first, then the rest parents first). Refusals are
// reported, not thrown; throws sbx::Error only when the share cannot be used at all (never
// prepared, host_root differs from the snapshot's, another apply holds the lock).
ApplyReport apply_changes(const instance::ShareLayout& share, const std::filesystem::path& host_root,
                          std::vector<PlannedChange> planned, const DiffOptions& diff_options = {});

// diff() + select_changes(paths) (all changes when paths is empty) + apply_changes().
ApplyReport apply(const instance::ShareLayout& share, const std::filesystem::path& host_root,
                  const std::vector<std::string>& paths, const ApplyOptions& options,
                  const DiffOptions& diff_options = {});

}  // namespace sbx::share
