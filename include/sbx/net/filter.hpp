#pragma once
// The egress filter engine: every guest->host Ethernet frame goes through Filter before it may
// reach a flow engine. Pure: no I/O, no clock of its own (callers pass `now`), no allocation
// per frame, never throws after construction. The netd runtime (the engines' sockets, c-ares)
// wraps it.
//
// Contract with the runtime:
//   guest frame -> on_guest_frame():
//       pass       -> the TCP or datagram engine, or the neighbour answerer (netd.cpp)
//       drop       -> nothing (counted)
//       reply      -> write `reply` back to the guest (TCP RST, ICMP unreachable, DNS answer)
//       dns_lookup -> resolve `lookup.name` on the host (A for qtype 1, AAAA for 28), then call
//                     complete_dns(token, addresses, ttl) or fail_dns(token) and write the
//                     returned frame to the guest.
//   an engine opens a flow into the guest (a forward) -> host_opened(); it ends -> host_closed().
//   frames the engines wrote for the guest -> count_host_frames().
//   Periodically: drain_decisions() -> the net log; counters() -> status.

#include "sbx/net/flow_table.hpp"
#include "sbx/net/policy.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace sbx::net {

using Millis = std::uint64_t;  // a monotonic clock in milliseconds, from the caller

// Sizes fixed at start-up: tables never grow.
struct Limits {
    std::size_t flows = 16384;          // flow-table entries
    std::size_t pins = 16384;           // pinned (address, name) pairs
    std::size_t pending_dns = 256;      // DNS lookups in flight
    std::uint32_t dns_per_second = 100; // query rate cap (burst: twice this)
    std::uint32_t min_ttl_s = 30;       // pins live at least this long
    std::uint32_t max_ttl_s = 3600;     // and at most this long
    std::size_t decisions = 1024;       // decision records kept until drained
    std::uint32_t replies_per_second = 1000;  // RSTs/ICMP errors for denied flows (burst: twice this)
    std::uint64_t hash_seed = 0;        // table hash key; 0: a random one per Filter
};

enum class Verdict : std::uint8_t { allow, deny, learn };

enum class Reason : std::uint8_t {
    allowed,            // a rule allowed it
    open_policy,        // policy = "open"
    not_in_allowlist,   // name or address matches no rule
    port_not_allowed,   // the name is allowed, not on this port
    proto_not_allowed,  // the name is allowed, not for this protocol
    not_resolved,       // a raw IP the guest never resolved through netd
    private_answer,     // the name resolved into a private/loopback/metadata range (rebinding)
    host_loopback,      // the host's own loopback, not in host_ports
    dns_elsewhere,      // DNS to a server other than netd
    policy_none,        // policy = "none"
    fragment,           // IP fragments are never forwarded
    rate_limited,       // DNS query rate cap
    host_address,       // one of the host's own interface addresses (set_host_addresses)
    metadata,           // cloud metadata or link-local space that no narrow cidr rule names
};
inline constexpr std::size_t k_reasons = static_cast<std::size_t>(Reason::metadata) + 1;
std::string_view to_string(Reason r);
std::string_view to_string(Verdict v);
std::string_view to_string(Proto p);

// One logged decision (deny logs are rate-limited per destination).
struct Decision {
    Millis at = 0;
    Verdict verdict = Verdict::deny;
    Reason reason = Reason::not_in_allowlist;
    Proto proto = Proto::tcp;
    bool dns = false;          // a DNS query decision (name set, addr unset)
    IpAddr addr;
    std::uint16_t port = 0;
    char name[254] = {};       // the pinned or queried name, NUL-terminated, may be empty
};

struct Counters {
    std::uint64_t frames_in = 0, frames_out = 0;
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint64_t flows_allowed = 0, flows_denied = 0;
    std::uint64_t dns_allowed = 0, dns_denied = 0;
    std::uint64_t malformed = 0, fragments = 0, dropped = 0;
    std::uint64_t flow_evictions = 0, pin_evictions = 0;
    std::uint64_t replies = 0;             // RSTs and ICMP errors written for denied flows
    std::uint64_t replies_limited = 0;     // ... and the ones the reply rate cap suppressed
    std::uint64_t decisions_dropped = 0;   // decision records lost because nobody drained them
    // Every denial by its reason (indexed by Reason), rate limit or not: the decision log is
    // bounded, these never roll over.
    std::array<std::uint64_t, k_reasons> denied_by_reason{};
    // Denials of destinations first seen after the destination table filled (see
    // Filter::denied_destinations): counted, not listed.
    std::uint64_t denied_unlisted = 0;
};

// One destination the guest was denied (a name or address, port, protocol, DNS or not, and
// reason), counted from its first denial on. The table keeps the first
// k_denied_destinations destinations and never evicts one: a flood of new destinations
// cannot push out what was tried first.
struct DeniedDestination {
    Decision first;  // the first denial: its time, reason, name or address
    Millis last = 0;
    std::uint64_t count = 0;
};
inline constexpr std::size_t k_denied_destinations = 1024;

// The size of the fixed tables (for status and benchmarks).
struct TableStats {
    std::size_t flows = 0, flow_capacity = 0;
    std::size_t pins = 0, pin_capacity = 0;
    std::size_t pending_dns = 0;
    std::size_t memory_bytes = 0;   // flow, pin, pending and decision tables, and the matcher
};

struct DnsLookup {
    std::uint32_t token = 0;
    std::string_view name;     // lowercase, no trailing dot; valid until complete/fail_dns
    std::uint16_t qtype = 0;   // 1 (A) or 28 (AAAA)
};

struct GuestFrameResult {
    enum class Kind : std::uint8_t { pass, drop, reply, dns_lookup };
    Kind kind = Kind::drop;
    std::span<const std::byte> reply;  // Kind::reply: valid until the next call into Filter
    DnsLookup lookup;                  // Kind::dns_lookup
};

enum class HostAddressAdd : std::uint8_t {
    closed,          // added to the set
    already_closed,  // it was in the set
    not_needed,      // closed otherwise (host_address_needed() is false): not kept
};

class Filter {
public:
    Filter(Policy policy, GuestNet net, Limits limits);
    ~Filter();
    Filter(const Filter&) = delete;
    Filter& operator=(const Filter&) = delete;

    // The host's own interface addresses (LAN, public, docker bridges, ...): a service bound
    // to 0.0.0.0 on the host is reachable through them, so no flow to one passes, whatever
    // the policy (host services are reached through host_ports on 10.0.2.2 only). The set
    // follows the host (netlink_addr.hpp): these may allocate, and are rare and host-driven;
    // the per-flow lookup is a binary search and allocates nothing. Addresses closed
    // otherwise are not kept: loopback and the guest network (host_loopback), and IPv6
    // link-local (the engines never give a scope id, so the kernel refuses to connect there).
    // IPv4 link-local stays: a narrow cidr rule can open 169.254.0.0/16, not the host's own.
    bool host_address_needed(const IpAddr& a) const noexcept;
    // Replaces the set.
    void set_host_addresses(std::span<const IpAddr> addrs);
    // Closes one more address. The flows to it that the cache allowed are denied from their
    // next frame (a connected UDP socket would now reach the host's service).
    HostAddressAdd add_host_address(const IpAddr& a);
    // Opens it to the policy again (the host no longer holds it: whoever does now is not the
    // host); false when it was not in the set. Cached denials stand until decided again.
    bool remove_host_address(const IpAddr& a) noexcept;
    std::span<const IpAddr> host_addresses() const noexcept;

    // One guest->host Ethernet frame (without the 4-byte stream length).
    GuestFrameResult on_guest_frame(std::span<const std::byte> frame, Millis now) noexcept;

    // A connection the host opened into the guest (a flow engine's forward: SSH, [[forward]]),
    // keyed as the guest sends: its frames on that tuple pass, until host_closed(); a fresh
    // SYN on it is still decided like any other.
    void host_opened(const FlowKey& key, Millis now) noexcept;
    void host_closed(const FlowKey& key) noexcept;

    // Frames the flow engines wrote for the guest themselves: counted, nothing else.
    void count_host_frames(std::size_t frames, std::size_t bytes) noexcept;

    // The answer frame for a lookup: addresses outside what the rule allows (rebinding) are
    // removed, the rest pinned for clamp(ttl). Empty span when the token is unknown.
    std::span<const std::byte> complete_dns(std::uint32_t token, std::span<const IpAddr> addrs,
                                            std::uint32_t ttl_s, Millis now) noexcept;
    // SERVFAIL (upstream failure/timeout) or NXDOMAIN (name does not exist) for a lookup.
    std::span<const std::byte> fail_dns(std::uint32_t token, bool nxdomain, Millis now) noexcept;

    // Moves up to out.size() decision records out; returns how many.
    std::size_t drain_decisions(std::span<Decision> out) noexcept;
    // The destinations denied since construction, in the order first seen (at most
    // k_denied_destinations; later ones count in Counters::denied_unlisted). Entries never
    // move; denied_changes() grows whenever an entry or that counter does.
    std::span<const DeniedDestination> denied_destinations() const noexcept;
    std::uint64_t denied_changes() const noexcept;
    const Counters& counters() const noexcept;
    TableStats tables() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace sbx::net
