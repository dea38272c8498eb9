#pragma once
// The one error type of sbx's cold paths. It carries the message, the next steps
// ("hint" lines) and the process exit code the CLI should use.

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace sbx {

// Process exit codes; documented in `sbx --help` and docs/cli.md.
enum class ExitCode : int {
    ok = 0,
    failure = 1,       // something went wrong while doing the work
    usage = 2,         // bad command line
    config = 3,        // profile or recipe invalid
    not_found = 4,     // no such profile, instance or image
    not_running = 5,   // the instance is not running
    timeout = 6,       // a bounded wait ran out
    ssh_failed = 255,  // sbx ssh could not reach the guest (as OpenSSH does)
};

class Error : public std::runtime_error {
public:
    explicit Error(std::string message, std::vector<std::string> hints = {},
                   ExitCode code = ExitCode::failure)
        : std::runtime_error(std::move(message)), m_hints(std::move(hints)), m_code(code) {}

    const std::vector<std::string>& hints() const { return m_hints; }
    ExitCode code() const { return m_code; }

    Error& hint(std::string h) {
        m_hints.push_back(std::move(h));
        return *this;
    }

private:
    std::vector<std::string> m_hints;
    ExitCode m_code;
};

// Throws sbx::Error with an errno description appended: "open /x: No such file".
[[noreturn]] void throw_errno(const std::string& what, int err);

}  // namespace sbx
