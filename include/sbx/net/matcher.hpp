#pragma once
// The allowlist, compiled into an index at start-up so one lookup costs a handful of hash
// probes whatever the number of rules.
//
// Theory of operation: exact names live in one open-addressed table keyed by the name, suffix
// rules ("*.example.com", stored as "example.com") in another; a name is checked against the
// exact table once and against the suffix table at each label boundary strictly inside it
// ("a.b.example.com" probes "b.example.com", "example.com", "com"), so "*.example.com" matches
// subdomains and never the apex. CIDR rules are keyed by (prefix length, masked address) in a
// third table; a lookup masks the address once per distinct prefix length present (at most
// 129, in practice a few). Each key maps to the list of rules it came from; a rule carries its
// protocol bits, sorted ports and `private`. Names are compared lowercase without a trailing
// dot. Tables are sized to at most 50% load at construction and never change afterwards.

#include "sbx/net/policy.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::net {

// What the rules say about one (destination, protocol, port), best outcome first.
enum class Access : std::uint8_t {
    allowed,
    private_not_allowed,  // a matching rule would allow it, but the address is private and the rule does not say so
    port_not_allowed,     // a matching rule names the protocol, not the port
    proto_not_allowed,    // matching rules exist, none for this protocol
    unlisted,             // no rule matches the name or address
};

class PolicyMatcher {
public:
    explicit PolicyMatcher(const std::vector<Rule>& rules);

    // For a destination reached through `name` (pinned from a DNS answer). `private_addr`:
    // the address is in a rebinding range, which only rules with allow_private accept.
    Access name_access(std::string_view name, Proto proto, std::uint16_t port,
                       bool private_addr) const noexcept;
    // For a raw address, through CIDR rules only; rules shorter than `min_prefix` (over the
    // 128-bit form) do not count.
    Access cidr_access(const IpAddr& addr, Proto proto, std::uint16_t port,
                       std::uint8_t min_prefix = 0) const noexcept;
    // Some rule names `name` (the resolver answers for it).
    bool name_listed(std::string_view name) const noexcept;
    // Some rule naming `name` says private = true (its answers may be private addresses).
    bool name_allows_private(std::string_view name) const noexcept;

    std::size_t rule_count() const noexcept { return m_rules.size(); }
    std::size_t memory_bytes() const noexcept;

    // Lowercase, trailing dot removed: the form names are compared in.
    static std::string normalize(std::string_view name);

private:
    struct CompiledRule {
        std::uint32_t ports_begin = 0;
        std::uint32_t ports_count = 0;
        std::uint8_t protos = 0;
        bool allow_private = false;
    };
    // Open-addressed map from a key (bytes) to a range of rule indices.
    struct KeyTable {
        std::vector<std::uint32_t> slots;  // entry index + 1; 0 = empty
        std::vector<std::string> keys;
        std::vector<std::uint32_t> lists_begin, lists_count;
        std::vector<std::uint32_t> rule_ids;
        void build(std::vector<std::pair<std::string, std::uint32_t>> key_rule);
        // The rule ids stored under `key`, or an empty range.
        std::pair<const std::uint32_t*, const std::uint32_t*> find(std::string_view key) const noexcept;
        std::size_t memory_bytes() const noexcept;
    };

    Access rule_access(std::uint32_t rule, Proto proto, std::uint16_t port, bool private_addr) const noexcept;
    template <class Fn>
    void for_each_name_rule(std::string_view name, Fn&& fn) const noexcept;

    std::vector<CompiledRule> m_rules;
    std::vector<std::uint16_t> m_ports;
    KeyTable m_exact;
    KeyTable m_suffix;
    // Open-addressed map from (prefix length, masked address as two 64-bit halves) to rules.
    struct CidrTable {
        struct Entry {
            std::uint64_t hi = 0, lo = 0;
            std::uint32_t begin = 0, count = 0;
            std::uint8_t prefix = 0;
        };
        struct Key {
            std::uint64_t hi = 0, lo = 0;
            std::uint8_t prefix = 0;
            std::uint32_t rule = 0;
        };
        std::vector<std::uint32_t> slots;  // entry index + 1; 0 = empty
        std::vector<Entry> entries;
        std::vector<std::uint32_t> rule_ids;
        void build(std::vector<Key> keys);
        std::pair<const std::uint32_t*, const std::uint32_t*> find(std::uint64_t hi, std::uint64_t lo,
                                                                   std::uint8_t prefix) const noexcept;
        std::size_t memory_bytes() const noexcept;
    };
    CidrTable m_cidr;
    std::vector<std::uint8_t> m_cidr_prefixes;  // distinct prefix lengths, longest first
};

}  // namespace sbx::net
