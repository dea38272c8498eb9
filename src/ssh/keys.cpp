// Key files for a guest: the ed25519 pair sbx generates for the client and for the guest's
// sshd. The private key is written in OpenSSH's own format (libssh 0.10 exports ed25519
// that way; both ssh and sshd read it) and is never on disk with a mode wider than 0600.

#include "sbx/ssh/ssh.hpp"

#include "libssh_support.hpp"

#include "sbx/util/error.hpp"
#include "sbx/util/fs.hpp"

#include <libssh/libssh.h>

#include <sys/stat.h>

#include <memory>
#include <string_view>

namespace sbx::ssh {

namespace {

using detail::ensure_libssh;
using detail::KeyPtr;

using detail::LibsshString;

// A .pub file is one short line; anything longer is not a key we wrote.
constexpr std::size_t k_max_pub_line = 16 * 1024;

// PEM-style line length, as ssh-keygen writes it (libssh emits one long line; OpenSSH
// accepts that, other readers of the file may not).
constexpr std::size_t k_pem_width = 70;

std::string wrap_pem(std::string_view pem) {
    constexpr std::string_view k_begin = "-----BEGIN OPENSSH PRIVATE KEY-----";
    constexpr std::string_view k_end = "-----END OPENSSH PRIVATE KEY-----";
    auto b = pem.find(k_begin);
    auto e = pem.find(k_end);
    if (b != 0 || e == std::string_view::npos || e < k_begin.size()) {
        throw Error("internal: libssh exported an ed25519 key that is not in OpenSSH format",
                    {"sbx needs libssh 0.10 or newer"}, ExitCode::ssh_failed);
    }
    std::string body;
    for (char c : pem.substr(k_begin.size(), e - k_begin.size())) {
        if (c != '\n' && c != '\r' && c != ' ') {
            body.push_back(c);
        }
    }
    std::string out(k_begin);
    out.push_back('\n');
    for (std::size_t i = 0; i < body.size(); i += k_pem_width) {
        out.append(body, i, k_pem_width);
        out.push_back('\n');
    }
    out.append(k_end);
    out.push_back('\n');
    return out;
}

bool is_printable_ascii(std::string_view s) {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

std::filesystem::path pub_path_of(const std::filesystem::path& private_key) {
    auto pub = private_key;
    pub += ".pub";
    return pub;
}

}  // namespace

void generate_keypair(const std::filesystem::path& private_key, const std::string& comment) {
    ensure_libssh();
    if (!is_printable_ascii(comment)) {
        throw Error(fmt::format("key comment for {} has control characters", private_key.string()));
    }
    ssh_key raw = nullptr;
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK || raw == nullptr) {
        throw Error(fmt::format("cannot generate an ed25519 key for {}", private_key.string()),
                    {"libssh could not generate the key; check that libssh4 is installed intact"},
                    ExitCode::ssh_failed);
    }
    KeyPtr key(raw);

    char* priv_raw = nullptr;
    if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &priv_raw) != SSH_OK ||
        priv_raw == nullptr) {
        throw Error(fmt::format("cannot export the private key for {}", private_key.string()),
                    {}, ExitCode::ssh_failed);
    }
    LibsshString priv(priv_raw);
    // Not ssh_pki_export_privkey_file: it creates the file with the umask's mode (0644)
    // before anything could tighten it.
    std::string pem = wrap_pem(priv.get());
    write_file_atomic(private_key, pem,
                      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    // write_file_atomic only sets the mode on a file it creates; make sure of it.
    if (::chmod(private_key.c_str(), 0600) != 0) {
        throw_errno(fmt::format("cannot chmod 0600 {}", private_key.string()), errno);
    }

    char* pub_raw = nullptr;
    if (ssh_pki_export_pubkey_base64(key.get(), &pub_raw) != SSH_OK || pub_raw == nullptr) {
        throw Error(fmt::format("cannot export the public key for {}", private_key.string()),
                    {}, ExitCode::ssh_failed);
    }
    LibsshString pub(pub_raw);
    std::string line = fmt::format("{} {}", ssh_key_type_to_char(ssh_key_type(key.get())), pub.get());
    if (!comment.empty()) {
        line += " " + comment;
    }
    line.push_back('\n');
    write_file_atomic(pub_path_of(private_key), line,
                      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                          std::filesystem::perms::group_read | std::filesystem::perms::others_read);
}

std::string read_public_key(const std::filesystem::path& pub_file) {
    std::string text = read_file(pub_file);
    auto nl = text.find('\n');
    std::string line = text.substr(0, nl);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
        line.pop_back();
    }
    if (line.empty() || line.size() > k_max_pub_line || !is_printable_ascii(line)) {
        throw Error(fmt::format("{} is not a public key file", pub_file.string()),
                    {"expected one line like \"ssh-ed25519 AAAA... comment\""});
    }
    // Parse it, so a damaged file is reported here and not as a confusing SSH failure.
    ensure_libssh();
    auto sp1 = line.find(' ');
    if (sp1 == std::string::npos) {
        throw Error(fmt::format("{} is not a public key file", pub_file.string()),
                    {"expected one line like \"ssh-ed25519 AAAA... comment\""});
    }
    auto sp2 = line.find(' ', sp1 + 1);
    std::string type = line.substr(0, sp1);
    std::string b64 = line.substr(sp1 + 1, sp2 == std::string::npos ? std::string::npos : sp2 - sp1 - 1);
    ssh_key raw = nullptr;
    enum ssh_keytypes_e kt = ssh_key_type_from_name(type.c_str());
    if (kt == SSH_KEYTYPE_UNKNOWN || ssh_pki_import_pubkey_base64(b64.c_str(), kt, &raw) != SSH_OK) {
        throw Error(fmt::format("{} does not hold a valid {} public key", pub_file.string(), type),
                    {"regenerate the key pair, or restore the file"});
    }
    KeyPtr key(raw);
    return line;
}

std::string public_key_fingerprint(const std::filesystem::path& pub_file) {
    ensure_libssh();
    ssh_key raw = nullptr;
    if (ssh_pki_import_pubkey_file(pub_file.c_str(), &raw) != SSH_OK || raw == nullptr) {
        throw Error(fmt::format("cannot read public key {}", pub_file.string()),
                    {"regenerate the key pair, or restore the file"});
    }
    KeyPtr key(raw);
    auto fp = detail::sha256_fingerprint(key.get());
    if (!fp) {
        throw Error(fmt::format("cannot hash public key {}", pub_file.string()));
    }
    return *fp;
}

}  // namespace sbx::ssh
