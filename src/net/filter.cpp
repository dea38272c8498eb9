// The egress filter engine.
//
// Theory of operation: every guest frame is parsed once (frame.hpp) into a flat Packet. ARP,
// IPv6 neighbour discovery and MLD, DHCP and DHCPv6 pass untouched: nothing of them leaves
// the host (netd answers ARP and neighbour solicitations itself, neighbour.hpp; the rest has
// nobody to answer it, the guest being configured statically). UDP to netd's resolver (GuestNet::dns/dns6
// port 53) is answered here: NXDOMAIN/NODATA/REFUSED/FORMERR at once, A/AAAA for an allowed
// name by handing the lookup to the runtime (a pending slot, token = generation << 16 | slot),
// whose answer complete_dns() filters for rebinding, pins and frames. Everything else is a
// flow: the 5-tuple's cached verdict (flow_table.hpp) decides; on a miss, decide() runs the
// policy once and caches the verdict. Denied flows get a TCP RST or an ICMP "administratively
// prohibited" per frame, under a token bucket so a flood costs little.
//
// Limits (all from Limits, fixed at construction): flows, pins, pending lookups (<= 65535),
// decision records; DNS queries per second (burst 2x); replies per second (burst 2x). Deny
// decisions are logged at most once per k_deny_log_interval_ms per (name or address, port,
// protocol, reason) through a 4096-slot direct-mapped table (a collision logs once more, never
// less); every denial also counts against its destination in a table of the first
// k_denied_destinations destinations, which never evicts. Pins live clamp(ttl) +
// k_pin_grace_s so a guest that uses an answer at the very end of its TTL still connects. A pending lookup older than k_pending_timeout_ms may be reused.
// The host's own addresses (host_address) are a sorted vector, binary-searched once per flow
// decision; netd keeps it in step with the host (netlink_addr.hpp). After construction
// nothing allocates and nothing throws, except those updates (rare and host-driven: they may
// throw std::bad_alloc; a host address closes the cached flows to it, a walk of the table).

#include "sbx/net/filter.hpp"

#include "sbx/net/addr_class.hpp"
#include "sbx/net/craft.hpp"
#include "sbx/net/dns_codec.hpp"
#include "sbx/net/flow_table.hpp"
#include "sbx/net/frame.hpp"
#include "sbx/net/matcher.hpp"
#include "sbx/net/pin_table.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <random>
#include <vector>

namespace sbx::net {

namespace {

constexpr Millis k_deny_log_interval_ms = 10'000;
constexpr std::size_t k_deny_log_slots = 4096;
constexpr Millis k_pending_timeout_ms = 30'000;
constexpr std::uint32_t k_pin_grace_s = 10;
constexpr std::size_t k_reply_buffer = 2048;
constexpr std::size_t k_max_pending = 0xffff;
constexpr Millis k_redecide_ms = 5'000;  // a UDP/ICMP flow's cached verdict is trusted this long

// Tokens kept in thousandths so any rate refills smoothly with a millisecond clock.
class TokenBucket {
public:
    TokenBucket(std::uint32_t per_second, std::uint32_t burst)
        : m_rate(per_second), m_cap(std::uint64_t{burst} * 1000), m_units(m_cap) {}

    bool take(Millis now) noexcept {
        if (now > m_last) {
            std::uint64_t add = (now - m_last) * m_rate;
            m_units = std::min(m_cap, m_units + std::min(add, m_cap));
        }
        m_last = std::max(m_last, now);
        if (m_units < 1000) {
            return false;
        }
        m_units -= 1000;
        return true;
    }

private:
    std::uint64_t m_rate;
    std::uint64_t m_cap;
    std::uint64_t m_units;
    Millis m_last = 0;
};

std::uint64_t mix(std::uint64_t x) noexcept {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

std::optional<Proto> proto_of(std::uint8_t protocol) noexcept {
    switch (protocol) {
        case k_ipproto_tcp:
            return Proto::tcp;
        case k_ipproto_udp:
            return Proto::udp;
        case k_ipproto_icmp:
        case k_ipproto_icmpv6:
            return Proto::icmp;
        default:
            return std::nullopt;
    }
}

Reason reason_of(Access a) noexcept {
    switch (a) {
        case Access::allowed:
            return Reason::allowed;
        case Access::port_not_allowed:
            return Reason::port_not_allowed;
        case Access::proto_not_allowed:
            return Reason::proto_not_allowed;
        case Access::private_not_allowed:
            return Reason::private_answer;
        case Access::unlisted:
            break;
    }
    return Reason::not_in_allowlist;
}

bool better(Access a, Access b) noexcept {
    return static_cast<std::uint8_t>(a) < static_cast<std::uint8_t>(b);
}

// The shortest cidr prefix (over the 128-bit form) that counts as naming a metadata or
// link-local address: a /16 for IPv4 (169.254.0.0/16, 168.63.0.0/16), fe80::/10 for IPv6
// link-local, a /32 for other IPv6 (fd00:ec2::/32).
std::uint8_t explicit_prefix(const IpAddr& a) noexcept {
    if (a.is_v4()) {
        return 96 + 16;
    }
    return (classify(a) & addr_class::link_local) != 0 ? 10 : 32;
}

const IpAddr k_dhcpv6_servers = IpAddr::v6({0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2});
const IpAddr k_broadcast = IpAddr::v4(0xffffffff);

}  // namespace

std::string_view to_string(Reason r) {
    switch (r) {
        case Reason::allowed:
            return "allowed";
        case Reason::open_policy:
            return "open_policy";
        case Reason::not_in_allowlist:
            return "not_in_allowlist";
        case Reason::port_not_allowed:
            return "port_not_allowed";
        case Reason::proto_not_allowed:
            return "proto_not_allowed";
        case Reason::not_resolved:
            return "not_resolved";
        case Reason::private_answer:
            return "private_answer";
        case Reason::host_loopback:
            return "host_loopback";
        case Reason::dns_elsewhere:
            return "dns_elsewhere";
        case Reason::policy_none:
            return "policy_none";
        case Reason::fragment:
            return "fragment";
        case Reason::rate_limited:
            return "rate_limited";
        case Reason::host_address:
            return "host_address";
        case Reason::metadata:
            return "metadata";
    }
    return "unknown";
}

std::string_view to_string(Verdict v) {
    switch (v) {
        case Verdict::allow:
            return "allow";
        case Verdict::deny:
            return "deny";
        case Verdict::learn:
            return "learn";
    }
    return "unknown";
}

std::string_view to_string(Proto p) {
    switch (p) {
        case Proto::tcp:
            return "tcp";
        case Proto::udp:
            return "udp";
        case Proto::icmp:
            return "icmp";
    }
    return "unknown";
}

struct Filter::Impl {
    struct Pending {
        bool used = false;
        std::uint16_t gen = 1;
        Millis created = 0;
        std::uint16_t id = 0;
        bool rd = false;
        std::uint16_t qtype = 0;
        std::uint16_t question_len = 0;
        std::array<std::byte, k_dns_max_question> question{};
        std::array<char, k_dns_max_name + 1> name{};
        std::size_t name_len = 0;
        UdpReplyAddr reply;
        std::string_view name_view() const noexcept { return {name.data(), name_len}; }
    };
    struct LogSlot {
        std::uint64_t key = 0;
        Millis at = 0;
        bool used = false;
    };
    struct Outcome {
        Verdict verdict = Verdict::deny;
        Reason reason = Reason::not_in_allowlist;
        std::string_view name;
    };

    Policy policy;
    GuestNet net;
    Limits limits;
    Cidr guest6_net;
    std::vector<IpAddr> host_addrs;  // sorted, unique
    PolicyMatcher matcher;
    PinTable pins;
    FlowTable flows;
    std::vector<Pending> pending;
    std::vector<std::uint16_t> pending_free;
    std::vector<Decision> decisions;
    std::size_t decisions_head = 0;
    std::size_t decisions_count = 0;
    std::vector<LogSlot> log_slots;
    std::vector<DeniedDestination> denied;   // capacity k_denied_destinations, never reallocated
    std::vector<std::uint64_t> denied_keys;  // destination_key() of each entry
    std::vector<std::uint16_t> denied_index; // entry + 1, or 0: empty
    std::uint64_t denied_changes = 0;
    static_assert(k_denied_destinations < 0xffff, "denied_index holds entry numbers in 16 bits");
    std::uint64_t log_seed;
    TokenBucket dns_bucket;
    TokenBucket reply_bucket;
    Counters counters;
    std::array<std::byte, k_reply_buffer> out{};

    static std::uint64_t pick_seed(std::uint64_t seed) {
        if (seed != 0) {
            return seed;
        }
        std::random_device rd;
        return (std::uint64_t{rd()} << 32) ^ rd() ^ 0x9e3779b97f4a7c15ull;
    }

    Impl(Policy p, GuestNet n, Limits l, std::uint64_t seed)
        : policy(std::move(p)),
          net(n),
          limits(l),
          guest6_net{n.guest6_prefix, 64},
          matcher(policy.rules),
          pins(l.pins, mix(seed ^ 1)),
          flows(l.flows, mix(seed ^ 2)),
          log_seed(mix(seed ^ 3)),
          dns_bucket(l.dns_per_second, 2 * l.dns_per_second),
          reply_bucket(l.replies_per_second, 2 * l.replies_per_second) {
        std::sort(policy.host_ports.begin(), policy.host_ports.end());
        // The matcher holds all the rules say; the list itself is megabytes with 10 000 rules.
        std::vector<Rule>().swap(policy.rules);
        std::size_t n_pending = std::clamp<std::size_t>(limits.pending_dns, 1, k_max_pending);
        pending.resize(n_pending);
        pending_free.reserve(n_pending);
        for (std::size_t i = n_pending; i > 0; --i) {
            pending_free.push_back(static_cast<std::uint16_t>(i - 1));
        }
        decisions.resize(std::max<std::size_t>(limits.decisions, 1));
        log_slots.resize(k_deny_log_slots);
        denied.reserve(k_denied_destinations);
        denied_keys.reserve(k_denied_destinations);
        denied_index.resize(2 * k_denied_destinations);
        limits.min_ttl_s = std::min(limits.min_ttl_s, limits.max_ttl_s);
    }

    bool learning() const noexcept { return policy.learn && policy.mode == Mode::allowlist; }

    // Where a flow would reach the host itself: the guest network (10.0.2.0/24 and the IPv6
    // /64, whose host alias means the host's loopback to the engines), loopback, and the unspecified/"this network" addresses that
    // connect() treats as local. Embedded-IPv4 forms of those count too.
    bool host_side(const IpAddr& a) const noexcept {
        if (net.network.contains(a) || guest6_net.contains(a)) {
            return true;
        }
        return (classify(a) & (addr_class::loopback | addr_class::unspecified)) != 0;
    }

    bool is_host_address(const IpAddr& a) const noexcept {
        return !host_addrs.empty() && std::binary_search(host_addrs.begin(), host_addrs.end(), a);
    }

    static bool ipv6_link_local(const IpAddr& a) noexcept {
        return a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80;  // fe80::/10
    }

    bool host_port_allowed(std::uint16_t port) const noexcept {
        return std::binary_search(policy.host_ports.begin(), policy.host_ports.end(), port);
    }

    // --- decision records ---------------------------------------------------------------

    // A destination's key, keyed by the secret seed so the guest cannot aim collisions.
    std::uint64_t destination_key(const Decision& d) const noexcept {
        std::uint64_t h = log_seed;
        std::size_t name_len = ::strnlen(d.name, sizeof d.name);
        for (std::size_t i = 0; i < name_len; ++i) {
            h = (h ^ static_cast<std::uint8_t>(d.name[i])) * 0x100000001b3ull;
        }
        if (name_len == 0) {
            std::uint64_t a = 0, b = 0;
            std::memcpy(&a, d.addr.bytes.data(), 8);
            std::memcpy(&b, d.addr.bytes.data() + 8, 8);
            h = mix(mix(h ^ a) ^ b);
        }
        h = mix(h ^ (std::uint64_t{d.port} | (std::uint64_t{static_cast<std::uint8_t>(d.proto)} << 16) |
                     (std::uint64_t{static_cast<std::uint8_t>(d.reason)} << 24) |
                     (std::uint64_t{static_cast<std::uint8_t>(d.verdict)} << 32) |
                     (std::uint64_t{d.dns} << 40)));
        return h;
    }

    bool log_due(std::uint64_t h, Millis now) noexcept {
        LogSlot& s = log_slots[h % log_slots.size()];
        if (s.used && s.key == h && now >= s.at && now - s.at < k_deny_log_interval_ms) {
            return false;
        }
        s.used = true;
        s.key = h;
        s.at = now;
        return true;
    }

    // Counts a denial against its destination's entry, adding one while there is room.
    // Open addressing over an index twice the table's size: a probe ends at an empty slot.
    void count_denied(const Decision& d, std::uint64_t key) noexcept {
        ++denied_changes;
        std::size_t mask = denied_index.size() - 1;
        for (std::size_t i = key & mask;; i = (i + 1) & mask) {
            std::uint16_t slot = denied_index[i];
            if (slot == 0) {
                if (denied.size() == denied.capacity()) {
                    ++counters.denied_unlisted;
                    return;
                }
                denied.push_back(DeniedDestination{d, d.at, 1});
                denied_keys.push_back(key);
                denied_index[i] = static_cast<std::uint16_t>(denied.size());
                return;
            }
            if (denied_keys[slot - 1] == key) {
                DeniedDestination& e = denied[slot - 1];
                e.last = d.at;
                ++e.count;
                return;
            }
        }
    }

    // Records a decision; `limited`: at most once per interval per destination.
    void record(Millis now, Verdict v, Reason r, Proto proto, bool dns, const IpAddr& addr,
                std::uint16_t port, std::string_view name, bool limited) noexcept {
        Decision d;
        d.at = now;
        d.verdict = v;
        d.reason = r;
        d.proto = proto;
        d.dns = dns;
        d.addr = addr;
        d.port = port;
        std::size_t n = std::min(name.size(), sizeof d.name - 1);
        if (n > 0) {
            std::memcpy(d.name, name.data(), n);
        }
        d.name[n] = '\0';
        std::uint64_t key = v == Verdict::deny || limited ? destination_key(d) : 0;
        if (v == Verdict::deny) {
            ++counters.denied_by_reason[static_cast<std::size_t>(r)];
            count_denied(d, key);
        }
        if (limited && !log_due(key, now)) {
            return;
        }
        if (decisions_count == decisions.size()) {
            decisions_head = (decisions_head + 1) % decisions.size();
            --decisions_count;
            ++counters.decisions_dropped;
        }
        decisions[(decisions_head + decisions_count) % decisions.size()] = d;
        ++decisions_count;
    }

    // --- replies ---------------------------------------------------------------------------

    GuestFrameResult reply(std::size_t size) noexcept {
        GuestFrameResult r;
        if (size == 0) {
            ++counters.dropped;
            return r;
        }
        r.kind = GuestFrameResult::Kind::reply;
        r.reply = std::span<const std::byte>(out.data(), size);
        ++counters.frames_out;
        counters.bytes_out += size;
        return r;
    }

    GuestFrameResult drop() noexcept {
        ++counters.dropped;
        return {};
    }

    // The RST or ICMP error a denied frame earns, within the reply rate cap.
    GuestFrameResult deny_reply(Bytes frame, const Packet& p, Millis now) noexcept {
        bool tcp = p.protocol == k_ipproto_tcp;
        if (tcp && (p.tcp_flags & k_tcp_rst) != 0) {
            return drop();
        }
        // No ICMP errors about packets to multicast/broadcast or from an unspecified source.
        std::uint32_t dst_cls = classify(p.dst);
        if (!tcp && ((dst_cls & (addr_class::multicast | addr_class::broadcast)) != 0 ||
                     (classify(p.src) & (addr_class::unspecified | addr_class::multicast)) != 0)) {
            return drop();
        }
        if (!reply_bucket.take(now)) {
            ++counters.replies_limited;
            return drop();
        }
        ++counters.replies;
        return reply(tcp ? craft_tcp_reset(out, frame, p) : craft_icmp_prohibited(out, frame, p));
    }

    // --- flows ----------------------------------------------------------------------------

    Outcome decide(const Packet& p, Proto proto, std::uint16_t port, Millis now) const noexcept {
        if (host_side(p.dst)) {
            if ((p.dst == net.host || p.dst == net.host6) && proto == Proto::tcp && host_port_allowed(port)) {
                return {Verdict::allow, Reason::allowed, {}};
            }
            return {Verdict::deny, Reason::host_loopback, {}};
        }
        if (is_host_address(p.dst)) {
            return {Verdict::deny, Reason::host_address, {}};
        }
        // Cloud metadata and link-local space hold the host's credentials on a cloud machine:
        // closed in every mode (open and learn too) unless a cidr rule names them, narrowly
        // enough that 0.0.0.0/0 or a private /8 does not count as naming them.
        if ((classify(p.dst) & (addr_class::metadata | addr_class::link_local)) != 0) {
            if (matcher.cidr_access(p.dst, proto, port, explicit_prefix(p.dst)) == Access::allowed) {
                return {Verdict::allow, Reason::allowed, {}};
            }
            return {Verdict::deny, Reason::metadata, {}};
        }
        if (proto != Proto::icmp && port == 53) {
            if (policy.mode == Mode::open) {
                return {Verdict::allow, Reason::open_policy, {}};
            }
            return {Verdict::deny, Reason::dns_elsewhere, {}};
        }
        if (policy.mode == Mode::none) {
            return {Verdict::deny, Reason::policy_none, {}};
        }
        if (policy.mode == Mode::open) {
            return {Verdict::allow, Reason::open_policy, {}};
        }
        Access by_cidr = matcher.cidr_access(p.dst, proto, port);
        if (by_cidr == Access::allowed) {
            return {Verdict::allow, Reason::allowed, {}};
        }
        std::array<std::string_view, PinTable::k_max_names_per_address> names;
        std::size_t n = pins.names(p.dst, now, names);
        Access best = Access::unlisted;
        std::string_view best_name;
        bool rebinding = n > 0 && is_rebinding_target(p.dst);
        for (std::size_t i = 0; i < n; ++i) {
            Access a = matcher.name_access(names[i], proto, port, rebinding);
            if (best_name.empty() || better(a, best)) {
                best = a;
                best_name = names[i];
            }
            if (best == Access::allowed) {
                return {Verdict::allow, Reason::allowed, best_name};
            }
        }
        Reason r = Reason::not_resolved;
        if (n > 0) {
            r = reason_of(best);
        } else if (by_cidr == Access::port_not_allowed) {
            r = Reason::port_not_allowed;
        } else if (by_cidr == Access::proto_not_allowed) {
            r = Reason::proto_not_allowed;
        }
        return {learning() ? Verdict::learn : Verdict::deny, r, best_name};
    }

    GuestFrameResult flow(Bytes frame, const Packet& p, Millis now) noexcept {
        auto proto = proto_of(p.protocol);
        if (!proto) {
            return drop();  // the engines carry TCP, UDP and ICMP echo only
        }
        std::uint16_t port = *proto == Proto::icmp ? 0 : p.dport;
        FlowKey key{p.src, p.dst, p.sport, port, p.protocol};
        Verdict v = Verdict::deny;
        FlowEntry* e = flows.find(key, now);
        // A cached verdict stands for the packets of one connection. A bare SYN starts a new
        // one (the guest reuses ports), and a UDP/ICMP verdict is only trusted for
        // k_redecide_ms: pins expire and lookups happen, so both are decided again.
        bool new_connection = *proto == Proto::tcp && (p.tcp_flags & (k_tcp_syn | k_tcp_ack)) == k_tcp_syn;
        bool stale = e && *proto != Proto::tcp && now - e->decided_at >= k_redecide_ms;
        if (e && e->host_opened && new_connection) {
            // A tuple the host opened (SSH, a forward) stands for that connection only: a
            // fresh SYN on it is a new connection into the host, decided like any other,
            // and leaves the host's own entry as it is.
            Outcome o = decide(p, *proto, port, now);
            v = o.verdict;
            if (v == Verdict::deny) {
                ++counters.flows_denied;
            } else {
                ++counters.flows_allowed;
            }
            record(now, o.verdict, o.reason, *proto, false, p.dst, port, o.name, v == Verdict::deny);
        } else if (e && (e->host_opened || (!new_connection && !stale))) {
            v = static_cast<Verdict>(e->verdict);
        } else {
            Outcome o = decide(p, *proto, port, now);
            v = o.verdict;
            bool changed = !e || e->verdict != static_cast<std::uint8_t>(o.verdict);
            if (e) {
                e->verdict = static_cast<std::uint8_t>(o.verdict);
                e->reason = static_cast<std::uint8_t>(o.reason);
                e->decided_at = now;
            } else {
                flows.insert(key, static_cast<std::uint8_t>(o.verdict), static_cast<std::uint8_t>(o.reason), now);
                counters.flow_evictions = flows.evictions();
            }
            // Every connection counts; a periodic re-decision of a datagram flow only when it
            // changes the verdict.
            if (new_connection || changed) {
                if (v == Verdict::deny) {
                    ++counters.flows_denied;
                } else {
                    ++counters.flows_allowed;
                }
                record(now, o.verdict, o.reason, *proto, false, p.dst, port, o.name, v == Verdict::deny);
            }
        }
        if (v != Verdict::deny) {
            return {GuestFrameResult::Kind::pass, {}, {}};
        }
        return deny_reply(frame, p, now);
    }

    // --- DNS --------------------------------------------------------------------------------

    UdpReplyAddr reply_addr(Bytes frame, const Packet& p) const noexcept {
        UdpReplyAddr a;
        auto eth = EthernetView::of(frame);
        a.guest_mac = eth->src();
        a.our_mac = eth->dst();
        a.guest_ip = p.src;
        a.our_ip = p.dst;
        a.guest_port = p.sport;
        a.our_port = p.dport;
        a.v6 = p.v6;
        return a;
    }

    std::span<const std::byte> dns_frame(const UdpReplyAddr& a, const DnsResponse& r) noexcept {
        std::size_t off = udp_reply_payload_offset(a.v6);
        std::size_t len = write_dns_response(std::span(out).subspan(off, k_dns_max_reply), r);
        if (len == 0) {
            return {};
        }
        std::size_t size = finish_udp_reply(out, a, len);
        ++counters.frames_out;
        counters.bytes_out += size;
        return {out.data(), size};
    }

    GuestFrameResult dns_reply(const UdpReplyAddr& a, const DnsQuery& q, std::uint8_t rcode,
                               bool with_question) noexcept {
        DnsResponse r;
        r.id = q.id;
        r.rd = q.rd;
        r.rcode = rcode;
        r.qtype = q.qtype;
        if (with_question) {
            r.question = q.question;
        }
        auto f = dns_frame(a, r);
        if (f.empty()) {
            return drop();
        }
        GuestFrameResult res;
        res.kind = GuestFrameResult::Kind::reply;
        res.reply = f;
        return res;
    }

    GuestFrameResult dns_query(Bytes frame, const Packet& p, Millis now) noexcept {
        auto parsed = parse_dns_query(frame.subspan(p.udp_payload_offset, p.udp_payload_len));
        const DnsQuery& q = parsed.query;
        UdpReplyAddr ra = reply_addr(frame, p);
        switch (parsed.status) {
            case DnsQueryStatus::ignore:
                ++counters.malformed;
                return {};
            case DnsQueryStatus::formerr:
                ++counters.dns_denied;
                return dns_reply(ra, q, dns_rcode::formerr, false);
            case DnsQueryStatus::notimp:
                ++counters.dns_denied;
                return dns_reply(ra, q, dns_rcode::notimp, false);
            case DnsQueryStatus::ok:
                break;
        }
        std::string_view name = q.name_view();
        if (!dns_bucket.take(now)) {
            ++counters.dns_denied;
            record(now, Verdict::deny, Reason::rate_limited, Proto::udp, true, {}, 53, name, true);
            return dns_reply(ra, q, dns_rcode::refused, true);
        }
        if (q.qclass != k_dns_class_in) {
            ++counters.dns_denied;
            return dns_reply(ra, q, dns_rcode::refused, true);
        }
        Verdict v = Verdict::allow;
        Reason r = Reason::allowed;
        if (policy.mode == Mode::none) {
            v = Verdict::deny;
            r = Reason::policy_none;
        } else if (policy.mode == Mode::open) {
            r = Reason::open_policy;
        } else if (!matcher.name_listed(name)) {
            v = learning() ? Verdict::learn : Verdict::deny;
            r = Reason::not_in_allowlist;
        }
        // Allowed queries repeat for every lookup the guest makes: they are rate-limited too.
        record(now, v, r, Proto::udp, true, {}, 53, name, true);
        if (v == Verdict::deny) {
            ++counters.dns_denied;
            return dns_reply(ra, q, dns_rcode::nxdomain, true);
        }
        ++counters.dns_allowed;
        if (q.qtype != k_dns_type_a && q.qtype != k_dns_type_aaaa) {
            return dns_reply(ra, q, dns_rcode::noerror, true);  // NODATA: only addresses are served
        }
        auto slot = take_pending(now);
        if (!slot) {
            return dns_reply(ra, q, dns_rcode::servfail, true);
        }
        Pending& pq = pending[*slot];
        pq.used = true;
        pq.created = now;
        pq.id = q.id;
        pq.rd = q.rd;
        pq.qtype = q.qtype;
        pq.question_len = static_cast<std::uint16_t>(q.question.size());
        std::memcpy(pq.question.data(), q.question.data(), q.question.size());
        std::memcpy(pq.name.data(), q.name.data(), q.name_len + 1);
        pq.name_len = q.name_len;
        pq.reply = ra;
        GuestFrameResult res;
        res.kind = GuestFrameResult::Kind::dns_lookup;
        res.lookup.token = (std::uint32_t{pq.gen} << 16) | *slot;
        res.lookup.name = pq.name_view();
        res.lookup.qtype = q.qtype;
        return res;
    }

    std::optional<std::uint16_t> take_pending(Millis now) noexcept {
        if (pending_free.empty()) {
            // Reclaim lookups the runtime never finished.
            for (std::size_t i = 0; i < pending.size(); ++i) {
                if (pending[i].used && now >= pending[i].created + k_pending_timeout_ms) {
                    release(pending[i], static_cast<std::uint16_t>(i));
                }
            }
        }
        if (pending_free.empty()) {
            return std::nullopt;
        }
        std::uint16_t slot = pending_free.back();
        pending_free.pop_back();
        return slot;
    }

    void release(Pending& pq, std::uint16_t slot) noexcept {
        pq.used = false;
        pq.gen = static_cast<std::uint16_t>(pq.gen == 0xffff ? 1 : pq.gen + 1);
        pending_free.push_back(slot);  // capacity reserved at construction
    }

    Pending* find_pending(std::uint32_t token) noexcept {
        std::size_t slot = token & 0xffffu;
        auto gen = static_cast<std::uint16_t>(token >> 16);
        if (slot >= pending.size() || !pending[slot].used || pending[slot].gen != gen) {
            return nullptr;
        }
        return &pending[slot];
    }

    std::span<const std::byte> pending_reply(Pending& pq, std::uint8_t rcode, std::span<const IpAddr> addrs,
                                             std::uint32_t ttl) noexcept {
        DnsResponse r;
        r.id = pq.id;
        r.rd = pq.rd;
        r.question = Bytes(pq.question.data(), pq.question_len);
        r.rcode = rcode;
        r.qtype = pq.qtype;
        r.addrs = addrs;
        r.ttl = ttl;
        return dns_frame(pq.reply, r);
    }

    std::span<const std::byte> complete(std::uint32_t token, std::span<const IpAddr> addrs, std::uint32_t ttl_s,
                                        Millis now) noexcept {
        Pending* pq = find_pending(token);
        if (pq == nullptr) {
            return {};
        }
        std::string_view name = pq->name_view();
        bool want_v4 = pq->qtype == k_dns_type_a;
        bool private_ok = policy.mode == Mode::open || matcher.name_allows_private(name);
        std::array<IpAddr, k_dns_max_answers> keep;
        std::size_t n = 0;
        std::optional<IpAddr> refused;
        for (const IpAddr& a : addrs) {
            if (a.is_v4() != want_v4) {
                continue;
            }
            if (n == keep.size()) {
                break;
            }
            if (!private_ok && is_rebinding_target(a)) {
                if (learning()) {
                    record(now, Verdict::learn, Reason::private_answer, Proto::udp, true, a, 53, name, true);
                } else {
                    refused = refused ? refused : a;
                    continue;
                }
            }
            keep[n++] = a;
        }
        std::uint32_t ttl = std::clamp(ttl_s, limits.min_ttl_s, limits.max_ttl_s);
        Millis expires = now + (Millis{ttl} + k_pin_grace_s) * 1000;
        for (std::size_t i = 0; i < n; ++i) {
            pins.pin(keep[i], name, expires, now);
        }
        counters.pin_evictions = pins.evictions();
        if (refused) {
            record(now, Verdict::deny, Reason::private_answer, Proto::udp, true, *refused, 53, name, true);
        }
        auto slot = static_cast<std::uint16_t>(pq - pending.data());
        std::span<const std::byte> f;
        if (n == 0 && refused) {
            f = pending_reply(*pq, dns_rcode::nxdomain, {}, 0);
        } else {
            f = pending_reply(*pq, dns_rcode::noerror, std::span<const IpAddr>(keep.data(), n), ttl);
        }
        release(*pq, slot);
        return f;
    }

    std::span<const std::byte> fail(std::uint32_t token, bool nxdomain) noexcept {
        Pending* pq = find_pending(token);
        if (pq == nullptr) {
            return {};
        }
        auto slot = static_cast<std::uint16_t>(pq - pending.data());
        auto f = pending_reply(*pq, nxdomain ? dns_rcode::nxdomain : dns_rcode::servfail, {}, 0);
        release(*pq, slot);
        return f;
    }

    // --- frames -----------------------------------------------------------------------------

    GuestFrameResult guest_frame(Bytes frame, Millis now) noexcept {
        ++counters.frames_in;
        counters.bytes_in += frame.size();
        Packet p = parse_packet(frame);
        switch (p.kind) {
            case Packet::Kind::malformed:
                ++counters.malformed;
                return {};
            case Packet::Kind::arp:
                return {GuestFrameResult::Kind::pass, {}, {}};
            case Packet::Kind::fragment: {
                ++counters.fragments;
                if (auto proto = proto_of(p.protocol)) {
                    record(now, Verdict::deny, Reason::fragment, *proto, false, p.dst, 0, {}, true);
                }
                return {};
            }
            case Packet::Kind::ip:
                break;
        }
        switch (p.protocol) {
            case k_ipproto_icmpv6:
                if (!p.v6) {
                    return drop();
                }
                switch (p.icmp_type) {
                    case 130:  // MLD query, report, done; MLDv2 report
                    case 131:
                    case 132:
                    case 143:
                    case 133:  // router solicitation/advertisement, neighbour solicitation/
                    case 134:  // advertisement, redirect: netd answers solicitations (neighbour.hpp)
                    case 135:
                    case 136:
                    case 137:
                        return {GuestFrameResult::Kind::pass, {}, {}};
                    case 128:  // echo request: a flow like any other
                        return flow(frame, p, now);
                    default:
                        return drop();
                }
            case k_ipproto_icmp:
                if (p.v6 || p.icmp_type != 8) {
                    return drop();  // only echo requests go anywhere
                }
                return flow(frame, p, now);
            case k_ipproto_udp:
                if (!p.v6 && p.sport == 68 && p.dport == 67 && (p.dst == k_broadcast || p.dst == net.host)) {
                    return {GuestFrameResult::Kind::pass, {}, {}};  // DHCP: goes nowhere (static guest)
                }
                if (p.v6 && p.dport == 547 && (p.dst == k_dhcpv6_servers || p.dst == net.host6)) {
                    return {GuestFrameResult::Kind::pass, {}, {}};  // DHCPv6: goes nowhere
                }
                if (p.dport == 53 && (p.dst == net.dns || p.dst == net.dns6)) {
                    return dns_query(frame, p, now);
                }
                return flow(frame, p, now);
            default:
                return flow(frame, p, now);
        }
    }
};

Filter::Filter(Policy policy, GuestNet net, Limits limits)
    : m_impl(std::make_unique<Impl>(std::move(policy), net, limits, Impl::pick_seed(limits.hash_seed))) {}

Filter::~Filter() = default;

bool Filter::host_address_needed(const IpAddr& a) const noexcept {
    return !m_impl->host_side(a) && !Impl::ipv6_link_local(a);
}

void Filter::set_host_addresses(std::span<const IpAddr> addrs) {
    m_impl->host_addrs.clear();
    for (const IpAddr& a : addrs) {
        add_host_address(a);
    }
}

HostAddressAdd Filter::add_host_address(const IpAddr& a) {
    auto& m = *m_impl;
    if (!host_address_needed(a)) {
        return HostAddressAdd::not_needed;
    }
    auto it = std::lower_bound(m.host_addrs.begin(), m.host_addrs.end(), a);
    if (it != m.host_addrs.end() && *it == a) {
        return HostAddressAdd::already_closed;
    }
    m.host_addrs.insert(it, a);
    if (m.flows.size() == 0) {
        return HostAddressAdd::closed;  // at start: nothing cached, no walk
    }
    const PackedFlowKey dst = PackedFlowKey::of(FlowKey{{}, a, 0, 0, 0});
    m.flows.for_each([&](FlowEntry& e) {
        if (e.key.w2 == dst.w2 && e.key.w3 == dst.w3 && !e.host_opened) {
            e.verdict = static_cast<std::uint8_t>(Verdict::deny);
            e.reason = static_cast<std::uint8_t>(Reason::host_address);
        }
    });
    return HostAddressAdd::closed;
}

bool Filter::remove_host_address(const IpAddr& a) noexcept {
    auto& m = *m_impl;
    auto it = std::lower_bound(m.host_addrs.begin(), m.host_addrs.end(), a);
    if (it == m.host_addrs.end() || *it != a) {
        return false;
    }
    m.host_addrs.erase(it);
    return true;
}

std::span<const IpAddr> Filter::host_addresses() const noexcept {
    return m_impl->host_addrs;
}

GuestFrameResult Filter::on_guest_frame(std::span<const std::byte> frame, Millis now) noexcept {
    return m_impl->guest_frame(frame, now);
}

void Filter::host_opened(const FlowKey& key, Millis now) noexcept {
    auto& m = *m_impl;
    m.flows.insert(key, static_cast<std::uint8_t>(Verdict::allow), static_cast<std::uint8_t>(Reason::allowed), now)
        .host_opened = true;
    m.counters.flow_evictions = m.flows.evictions();
}

void Filter::host_closed(const FlowKey& key) noexcept {
    m_impl->flows.erase(key);
}

void Filter::count_host_frames(std::size_t frames, std::size_t bytes) noexcept {
    m_impl->counters.frames_out += frames;
    m_impl->counters.bytes_out += bytes;
}

std::span<const std::byte> Filter::complete_dns(std::uint32_t token, std::span<const IpAddr> addrs,
                                                std::uint32_t ttl_s, Millis now) noexcept {
    return m_impl->complete(token, addrs, ttl_s, now);
}

std::span<const std::byte> Filter::fail_dns(std::uint32_t token, bool nxdomain, Millis /*now*/) noexcept {
    return m_impl->fail(token, nxdomain);
}

std::size_t Filter::drain_decisions(std::span<Decision> out) noexcept {
    Impl& m = *m_impl;
    std::size_t n = std::min(out.size(), m.decisions_count);
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = m.decisions[(m.decisions_head + i) % m.decisions.size()];
    }
    m.decisions_head = (m.decisions_head + n) % m.decisions.size();
    m.decisions_count -= n;
    return n;
}

std::span<const DeniedDestination> Filter::denied_destinations() const noexcept { return m_impl->denied; }

std::uint64_t Filter::denied_changes() const noexcept { return m_impl->denied_changes; }

const Counters& Filter::counters() const noexcept {
    return m_impl->counters;
}

TableStats Filter::tables() const noexcept {
    const Impl& m = *m_impl;
    TableStats s;
    s.flows = m.flows.size();
    s.flow_capacity = m.flows.capacity();
    s.pins = m.pins.size();
    s.pin_capacity = m.pins.capacity();
    s.pending_dns = m.pending.size() - m.pending_free.size();
    s.memory_bytes = m.flows.memory_bytes() + m.pins.memory_bytes() + m.matcher.memory_bytes() +
                     m.pending.capacity() * sizeof(Impl::Pending) + m.decisions.capacity() * sizeof(Decision) +
                     m.log_slots.capacity() * sizeof(Impl::LogSlot) +
                     m.denied.capacity() * (sizeof(DeniedDestination) + sizeof(std::uint64_t)) +
                     m.denied_index.capacity() * sizeof(std::uint16_t);
    return s;
}

}  // namespace sbx::net
