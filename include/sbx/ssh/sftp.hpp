#pragma once
// File copies between the host and a guest over SFTP (`sbx cp`), on the same strictly
// checked connection as every other sbx SSH session.
//
// The semantics are cp's: one source onto a new name, or any number of sources into an
// existing folder; folders need `recursive`. Modes are kept without setuid/setgid.
// Symlinks inside a copied folder are copied as symlinks, never followed; a symlink named
// on the command line is followed (as cp without -r, and scp, do). Every file is written
// to a temporary name beside its destination and renamed into place, so an interrupted
// copy never leaves a partial file under the final name. Guest paths that are relative
// are relative to the guest user's home folder.

#include "sbx/ssh/ssh.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sbx::ssh {

struct CopyOptions {
    bool recursive = false;   // folders are copied only with it (cp -r)
    bool progress = false;    // a progress line on stderr for large files (callers: "is a TTY")
    std::string guest_label;  // "work": guest paths in messages read "work:/path"
};

// What a copy did.
struct CopyStats {
    std::uint64_t files = 0;
    std::uint64_t directories = 0;
    std::uint64_t symlinks = 0;
    std::uint64_t skipped = 0;  // fifos, sockets, devices: not copied (a warning names each)
    std::uint64_t bytes = 0;
};

// Copies host `sources` to the guest path `destination`. Throws sbx::Error naming the
// path: ExitCode::not_found for a missing source, ExitCode::usage for a folder without
// `recursive` or several sources onto a non-folder, ExitCode::ssh_failed when the
// connection fails, ExitCode::failure otherwise (permission denied, ...). SIGINT, SIGTERM
// and SIGHUP stop the copy (the partial file is removed) with an error; a second one kills.
CopyStats copy_to_guest(const Target& target, const std::vector<std::filesystem::path>& sources,
                        const std::string& destination, const CopyOptions& options);

// Copies guest `sources` to the host path `destination`, with the same rules and errors.
// The guest is not trusted: names it lists are checked (no "/", ".", ".."), nothing is
// written through a symlink, and folder depth is bounded.
CopyStats copy_from_guest(const Target& target, const std::vector<std::string>& sources,
                          const std::filesystem::path& destination, const CopyOptions& options);

}  // namespace sbx::ssh
