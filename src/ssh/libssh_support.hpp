#pragma once
// What the files of src/ssh share about libssh itself (private to the subsystem).

#include "sbx/util/error.hpp"

#include <libssh/libssh.h>

#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace sbx::ssh {
struct Target;
}

namespace sbx::ssh::detail {

// A session to `target`, connected, host key checked against target.host_key_pub and
// authenticated with target.identity (session.cpp: the one way sbx connects). The caller
// owns it (ssh_disconnect + ssh_free). Throws sbx::Error (ExitCode::ssh_failed) with hints.
ssh_session connect_authenticated(const Target& target);

// libssh wants ssh_init once per process before any other call.
inline void ensure_libssh() {
    static const int k_rc = ssh_init();
    if (k_rc != SSH_OK) {
        throw Error("cannot initialise libssh", {"check that the libssh4 package is installed"},
                    ExitCode::ssh_failed);
    }
}

struct KeyFree {
    void operator()(ssh_key k) const { ssh_key_free(k); }
};
using KeyPtr = std::unique_ptr<std::remove_pointer_t<ssh_key>, KeyFree>;

struct CharFree {
    void operator()(char* p) const { ssh_string_free_char(p); }
};
using LibsshString = std::unique_ptr<char, CharFree>;

// "SHA256:..." as ssh-keygen -l prints it; nothing when libssh cannot hash the key.
inline std::optional<std::string> sha256_fingerprint(ssh_key key) {
    unsigned char* hash = nullptr;
    size_t len = 0;
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK) {
        return std::nullopt;
    }
    LibsshString fp(ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len));
    ssh_clean_pubkey_hash(&hash);
    if (!fp) {
        return std::nullopt;
    }
    return std::string(fp.get());
}

}  // namespace sbx::ssh::detail
