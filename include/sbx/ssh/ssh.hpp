#pragma once
// SSH to a guest with libssh: key generation, a strict host-key check against the key
// sbx generated for the guest (no known_hosts guessing, no trust on first use), the
// readiness probe, one-command mode and the interactive pty session. No agent forwarding.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace sbx::ssh {

// Generates an ed25519 key pair: `private_key` (OpenSSH format, mode 0600) and
// `private_key`.pub (one line "ssh-ed25519 AAAA... comment").
void generate_keypair(const std::filesystem::path& private_key, const std::string& comment);

// The "ssh-ed25519 AAAA..." line of a .pub file, without a trailing newline.
std::string read_public_key(const std::filesystem::path& pub_file);

// "SHA256:..." fingerprint of a .pub file, as `ssh-keygen -l` prints it.
std::string public_key_fingerprint(const std::filesystem::path& pub_file);

struct Target {
    std::string host = "127.0.0.1";
    int port = 22;
    std::string user;
    std::filesystem::path identity;     // client private key
    std::filesystem::path host_key_pub; // the only host key accepted (a .pub file)
    std::chrono::milliseconds connect_timeout{5000};
};

// One attempt: connect, verify the host key, authenticate, run `true`. Returns "" on
// success, else why it failed (for the readiness loop and its final error message).
// The whole attempt takes at most about connect_timeout; it never throws.
std::string probe(const Target& target);

// Runs argv. Several words are shell-quoted
// and joined, so `sh -c 'exit 3'` keeps its words; a single word is run as a shell command
// line, as OpenSSH does (`'make && make test'`). Output passes through with stdin,
// stdout and stderr passed through. Returns the remote exit status (255 if the guest
// gave none, e.g. killed by a signal). Throws sbx::Error (ExitCode::ssh_failed) when it
// cannot connect or the connection drops. A closed fd 0/1/2 is replaced by /dev/null.
// `stdin_fd` feeds the remote stdin (our stdin by default).
int run_command(const Target& target, const std::vector<std::string>& argv, int stdin_fd = 0);

// Interactive login shell on a pty: local terminal in raw mode (restored on every exit
// path), window-size changes forwarded, returns the shell's exit status. When stdin is
// not a terminal there is no pty and no raw mode (as with OpenSSH). SIGTERM and SIGHUP
// end the session with an sbx::Error. One at a time per process (it owns SIGWINCH).
int interactive_shell(const Target& target);

// POSIX-shell quoting of each word, only where needed ("abc" stays abc, "exit 3" becomes
// 'exit 3'), joined with spaces. A first word that the shell would read as a keyword or
// an assignment (if, FOO=bar) is quoted too, so it still runs as a command.
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace sbx::ssh
