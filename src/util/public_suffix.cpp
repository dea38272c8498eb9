// Theory of operation: "*.X" is safe only when every name under X belongs to whoever holds X.
// The Public Suffix List says where that stops: a public suffix ("co.uk", "github.io",
// "s3.amazonaws.com") is a domain under which unrelated parties register names, and a
// wildcard rule ("*.compute-1.amazonaws.com") makes every child of a domain one. libpsl answers
// "is this a public suffix" with the list's wildcard and exception rules; it cannot list the
// suffixes under a domain, so the list file is also read once here for the domains that hold
// a public suffix beneath them ("amazonaws.com" holds "s3.amazonaws.com"), about 200 of them.
// Both come from the one file, so they cannot disagree; libpsl's built-in copy is not used as
// a fallback because it would answer the first question and not the second (fail closed).

#include "sbx/util/public_suffix.hpp"

#include "sbx/util/error.hpp"

#include <fmt/format.h>
#include <libpsl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <unordered_map>

namespace sbx {
namespace {

// Wildcard-DNS services: a name under them resolves to the address spelled in its labels
// ("10.0.0.1.nip.io", "app-203-0-113-7.sslip.io"), at any depth, so a wildcard anywhere under
// them lets the guest choose the address. The 2023 list in Debian 12 names none of them. Keep
// this to services known to do exactly that.
constexpr std::array<std::string_view, 4> k_wildcard_dns = {
    "nip.io",      // 10.0.0.1.nip.io, 10-0-0-1.nip.io
    "sslip.io",    // 10.0.0.1.sslip.io, 10-0-0-1.sslip.io, IPv6 as 2001-db8--1.sslip.io
    "traefik.me",  // 10.0.0.1.traefik.me
    "xip.io",      // the original service, gone; its name could be anyone's now
};

// Public suffixes newer than the 2023 list in Debian 12 that sbx refused before it read the
// list: anyone gets a name under them. Drop an entry once Debian's list has it.
constexpr std::array<std::string_view, 1> k_newer_suffixes = {
    "ngrok-free.app",  // ngrok's free tunnels: a random name each, anyone's
};

class SuffixList {
public:
    SuffixList() {
        errno = 0;
        std::ifstream in(k_public_suffix_list);
        if (!in) {
            int err = errno;
            throw Error(fmt::format("cannot read the Public Suffix List {}: {}", k_public_suffix_list,
                                    err != 0 ? std::strerror(err) : "cannot open it"),
                        {"install it: sudo apt-get install publicsuffix (scripts/install-deps.sh does)",
                         "sbx needs it to check wildcard host patterns (\"*.example.com\")"});
        }
        std::string line;
        while (std::getline(in, line)) {
            add_rule(line);
        }
        m_ctx = psl_load_file(k_public_suffix_list);
        if (m_ctx == nullptr) {
            throw Error(fmt::format("libpsl could not load the Public Suffix List {}", k_public_suffix_list),
                        {"reinstall it: sudo apt-get install --reinstall publicsuffix"});
        }
    }
    ~SuffixList() { psl_free(m_ctx); }
    SuffixList(const SuffixList&) = delete;
    SuffixList& operator=(const SuffixList&) = delete;

    bool is_suffix(const std::string& domain) const {
        return psl_is_public_suffix2(m_ctx, domain.c_str(), PSL_TYPE_ANY) != 0;
    }
    // A public suffix strictly under `domain` (the shortest rule), or null.
    const std::string* suffix_beneath(const std::string& domain) const {
        auto it = m_beneath.find(domain);
        return it == m_beneath.end() ? nullptr : &it->second;
    }

private:
    // "s3.amazonaws.com" marks "amazonaws.com"; "*.compute-1.amazonaws.com" marks
    // "compute-1.amazonaws.com" and "amazonaws.com". Exceptions ("!city.kawasaki.jp") take a
    // name out of a wildcard: they add no suffix. One-label domains are refused anyway.
    void add_rule(std::string_view line) {
        auto start = line.find_first_not_of(" \t");
        if (start == std::string_view::npos) {
            return;
        }
        line.remove_prefix(start);
        line = line.substr(0, line.find_first_of(" \t\r"));
        if (line.empty() || line.rfind("//", 0) == 0 || line.front() == '!') {
            return;
        }
        std::string_view rule = line;
        std::string_view domain = rule;
        if (domain.rfind("*.", 0) == 0) {
            domain.remove_prefix(2);
        } else {
            auto dot = domain.find('.');
            domain = dot == std::string_view::npos ? std::string_view{} : domain.substr(dot + 1);
        }
        while (domain.find('.') != std::string_view::npos) {
            auto& shortest = m_beneath[std::string(domain)];
            if (shortest.empty() || better_example(rule, shortest)) {
                shortest = std::string(rule);
            }
            domain.remove_prefix(domain.find('.') + 1);
        }
    }
    // The suffix an error names: a plain rule before a wildcard one, then the shortest.
    static bool better_example(std::string_view a, std::string_view b) {
        bool aw = a.rfind("*.", 0) == 0;
        bool bw = b.rfind("*.", 0) == 0;
        if (aw != bw) {
            return bw;
        }
        return a.size() != b.size() ? a.size() < b.size() : a < b;
    }

    psl_ctx_t* m_ctx = nullptr;
    std::unordered_map<std::string, std::string> m_beneath;
};

const SuffixList& suffix_list() {
    static const SuffixList k_list;
    return k_list;
}

bool at_or_under(std::string_view domain, std::string_view parent) {
    return domain == parent ||
           (domain.size() > parent.size() && domain.substr(domain.size() - parent.size()) == parent &&
            domain[domain.size() - parent.size() - 1] == '.');
}

}  // namespace

std::optional<BroadWildcard> broad_wildcard(std::string_view domain) {
    std::string d(domain);
    if (d.find('.') == std::string::npos) {
        return BroadWildcard{WildcardReach::top_level, d};
    }
    for (auto service : k_wildcard_dns) {
        if (at_or_under(d, service)) {
            return BroadWildcard{WildcardReach::wildcard_dns, std::string(service)};
        }
    }
    const auto& list = suffix_list();
    // A label no list names stands for "any child": it is a suffix only by a wildcard rule.
    if (list.is_suffix("sbx-any-label." + d)) {
        return BroadWildcard{WildcardReach::suffix_children, d};
    }
    if (list.is_suffix(d) ||
        std::find(k_newer_suffixes.begin(), k_newer_suffixes.end(), d) != k_newer_suffixes.end()) {
        return BroadWildcard{WildcardReach::public_suffix, d};
    }
    if (const auto* beneath = list.suffix_beneath(d)) {
        return BroadWildcard{WildcardReach::suffix_beneath, *beneath};
    }
    return std::nullopt;
}

}  // namespace sbx
