#pragma once
// `sbx cp SRC... DST`: which side each argument is on, then the copy over SFTP.

#include <string>
#include <vector>

namespace sbx::vm {

// One command-line argument of `sbx cp`. "work:/etc/hosts" is the guest path /etc/hosts of
// instance work; anything else is a host path. An argument is a guest path when the text
// before its first ':' is a valid instance name and contains no '/' (so ./a:b stays a
// host path). "work:" alone is the guest user's home folder.
struct CopyEndpoint {
    std::string instance;  // empty for a host path
    std::string path;
};
CopyEndpoint parse_copy_endpoint(const std::string& arg);

// A whole `sbx cp` command line, checked: exactly one side is a guest, every guest path
// names the same instance. Throws sbx::Error (ExitCode::usage) otherwise.
struct CopyRequest {
    std::string instance;
    bool to_guest = false;              // host sources -> guest destination
    std::vector<std::string> sources;   // paths without the "NAME:" prefix
    std::string destination;
};
CopyRequest parse_copy_args(const std::vector<std::string>& args);

struct CopyCommandOptions {
    bool recursive = false;
};

// Runs `sbx cp`: parses args, finds the running instance, copies. Progress goes to stderr
// when it is a terminal. Throws sbx::Error with the exit code (see ssh::copy_to_guest).
void copy(const std::vector<std::string>& args, const CopyCommandOptions& options);

}  // namespace sbx::vm
