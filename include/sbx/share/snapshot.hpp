#pragma once
// Review-mode shares, part 1: the snapshot. prepare() copies a host folder into the share
// folder twice, as base/ (what the host had; the diff compares against it) and work/ (what
// the guest sees and edits), and records in share.json what each host entry was at that
// moment, so that apply can tell a file the host changed since then (a conflict).
//
// What is copied: regular files (permission bits kept, setuid/setgid/sticky stripped,
// mtime kept), folders (owner rwx added so sbx can always write into them), symlinks as
// symlinks (never followed). FIFOs, sockets and devices are skipped with a note. Paths the
// hide list matches are never read. Hard links become separate files.
// The layout of a share folder is in include/sbx/instance/layout.hpp (ShareLayout).

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "sbx/instance/layout.hpp"

namespace sbx::share {

enum class EntryKind { none, file, dir, symlink, special };
std::string to_string(EntryKind k);

// What one path is in a tree (base/, work/ or the host), as lstat sees it.
struct Entry {
    EntryKind kind = EntryKind::none;
    std::uint32_t mode = 0;  // st_mode: type and all permission bits (setuid included)
    std::uint64_t size = 0;
    std::string target;  // symlinks: the target as written
};

// A host entry as recorded at snapshot time (and after each apply of its path).
struct Identity {
    EntryKind kind = EntryKind::none;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::uint64_t inode = 0;
    std::uint32_t mode = 0;
    std::string sha256;  // regular files: the content copied to base/
    std::string target;  // symlinks
};

// share.json.
struct ShareMeta {
    static constexpr int k_version = 1;
    std::filesystem::path host_root;
    std::uint64_t host_root_dev = 0;  // the folder snapshotted, so a replaced one is noticed
    std::uint64_t host_root_inode = 0;
    std::string guest;  // the guest path (for messages)
    std::vector<std::string> hide;
    std::string created;                    // UTC, "2024-05-01T12:00:00Z"
    std::vector<std::string> notes;         // what prepare skipped or changed, for people
    std::map<std::string, Identity> files;  // every copied path, relative ("a/b.c")
};

// Reads share.json; throws sbx::Error naming the file when it is missing or invalid.
ShareMeta read_meta(const instance::ShareLayout& share);
// Writes share.json atomically.
void write_meta(const instance::ShareLayout& share, const ShareMeta& meta);

// Has prepare() completed for this share folder (share.json exists)?
bool is_prepared(const instance::ShareLayout& share);

// Does work/ differ from base/ (anything the guest changed that is not hidden)?
// False for a share folder that was never prepared.
bool has_pending_changes(const instance::ShareLayout& share);

struct PrepareOptions {
    // Re-preparing over a share whose work/ has changes throws unless this is set (the
    // changes are then lost). The caller asks has_pending_changes() first and decides:
    // keep the existing copy (do not call prepare), or discard it.
    bool discard_pending = false;
};

struct PrepareReport {
    std::size_t files = 0;
    std::size_t dirs = 0;
    std::size_t symlinks = 0;
    std::uint64_t bytes = 0;
    std::size_t hidden = 0;          // paths left out by the hide list
    std::vector<std::string> notes;  // skipped special files, stripped bits
};

// Snapshots `host_root` into share.dir (base/, work/, share.json written last). The share
// folder is created 0700. Throws sbx::Error when host_root cannot be read, a hide entry is
// invalid, or pending changes would be lost (see PrepareOptions).
PrepareReport prepare(const std::filesystem::path& host_root, const std::vector<std::string>& hide,
                      const std::string& guest, const instance::ShareLayout& share,
                      const PrepareOptions& options = {});

}  // namespace sbx::share
