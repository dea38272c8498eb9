#pragma once
// Whether a wildcard host pattern reaches names that different owners hold or the guest
// chooses, from the Public Suffix List (ICANN and private sections, read with libpsl) and a
// short list of wildcard-DNS services. The profile's allow rules and `sbx net suggest` both
// ask it, so a suggestion is never one the profile refuses.

#include <optional>
#include <string>
#include <string_view>

namespace sbx {

// The list file, from Debian's publicsuffix package.
inline constexpr const char* k_public_suffix_list = "/usr/share/publicsuffix/public_suffix_list.dat";

enum class WildcardReach {
    top_level,        // "com": one label
    public_suffix,    // "github.io", "co.uk", "s3.amazonaws.com": anyone registers names under it
    suffix_children,  // "compute-1.amazonaws.com": every name directly under it is a public suffix
    suffix_beneath,   // "amazonaws.com": a public suffix ("s3.amazonaws.com") lies under it
    wildcard_dns,     // "nip.io": every name resolves to the address its labels spell
};

struct BroadWildcard {
    WildcardReach reach;
    std::string suffix;  // what the error names: the domain itself, the suffix under it, or the service
};

// Why "*.DOMAIN" is too broad, or nothing when every name under DOMAIN has the owner DOMAIN
// has. DOMAIN is lowercase, without the "*." and the trailing dot. Reads the list once; throws
// sbx::Error naming the file and its package if it cannot (no list: no wildcard passes).
std::optional<BroadWildcard> broad_wildcard(std::string_view domain);

}  // namespace sbx
