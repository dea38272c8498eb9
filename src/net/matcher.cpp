// The compiled allowlist; see matcher.hpp for the index layout.

#include "sbx/net/matcher.hpp"

#include <algorithm>
#include <cstring>
#include <tuple>

namespace sbx::net {

namespace {

std::uint64_t mix(std::uint64_t x) noexcept {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

// Eight bytes per step: names and CIDR keys are short, lookups happen per new flow. Keys come
// from the profile and lookups only probe, so no seed is needed against collision attacks.
std::uint64_t hash_bytes(std::string_view s) noexcept {
    std::uint64_t h = 0x9e3779b97f4a7c15ull ^ s.size();
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + i, 8);
        h = mix(h ^ w);
    }
    if (i < s.size()) {
        std::uint64_t w = 0;
        std::memcpy(&w, s.data() + i, s.size() - i);
        h = mix(h ^ w ^ 0xff);
    }
    return h;
}

std::uint64_t load_be64(const std::uint8_t* p) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        v = (v << 8) | p[i];
    }
    return v;
}

// The masks keeping the first `prefix` bits of the (hi, lo) halves of an address.
std::pair<std::uint64_t, std::uint64_t> prefix_masks(std::uint8_t prefix) noexcept {
    constexpr std::uint64_t k_all = ~std::uint64_t{0};
    if (prefix <= 64) {
        return {prefix == 0 ? 0 : k_all << (64 - prefix), 0};
    }
    return {k_all, prefix >= 128 ? k_all : k_all << (128 - prefix)};
}

std::uint64_t cidr_hash(std::uint64_t hi, std::uint64_t lo, std::uint8_t prefix) noexcept {
    return mix((hi * 0x9e3779b97f4a7c15ull) ^ (lo * 0xc2b2ae3d27d4eb4full) ^ prefix);
}

IpAddr mask(const IpAddr& a, std::uint8_t prefix) noexcept {
    IpAddr out = a;
    for (std::size_t i = 0; i < 16; ++i) {
        std::size_t bit = i * 8;
        if (bit >= prefix) {
            out.bytes[i] = 0;
        } else if (bit + 8 > prefix) {
            auto keep = static_cast<unsigned>(prefix - bit);
            out.bytes[i] = static_cast<std::uint8_t>(out.bytes[i] & (0xffu << (8 - keep)));
        }
    }
    return out;
}

Access better(Access a, Access b) noexcept {
    return static_cast<std::uint8_t>(a) < static_cast<std::uint8_t>(b) ? a : b;
}

}  // namespace

std::string PolicyMatcher::normalize(std::string_view name) {
    std::string out(name);
    while (!out.empty() && out.back() == '.') {
        out.pop_back();
    }
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

void PolicyMatcher::KeyTable::build(std::vector<std::pair<std::string, std::uint32_t>> key_rule) {
    std::stable_sort(key_rule.begin(), key_rule.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (std::size_t i = 0; i < key_rule.size();) {
        std::size_t j = i;
        keys.push_back(key_rule[i].first);
        lists_begin.push_back(static_cast<std::uint32_t>(rule_ids.size()));
        while (j < key_rule.size() && key_rule[j].first == key_rule[i].first) {
            rule_ids.push_back(key_rule[j].second);
            ++j;
        }
        lists_count.push_back(static_cast<std::uint32_t>(j - i));
        i = j;
    }
    std::size_t size = 8;
    while (size < keys.size() * 2) {
        size *= 2;
    }
    slots.assign(size, 0);
    for (std::size_t e = 0; e < keys.size(); ++e) {
        std::size_t pos = static_cast<std::size_t>(hash_bytes(keys[e])) & (size - 1);
        while (slots[pos] != 0) {
            pos = (pos + 1) & (size - 1);
        }
        slots[pos] = static_cast<std::uint32_t>(e + 1);
    }
}

std::pair<const std::uint32_t*, const std::uint32_t*> PolicyMatcher::KeyTable::find(
    std::string_view key) const noexcept {
    if (keys.empty()) {
        return {nullptr, nullptr};
    }
    std::size_t mask_bits = slots.size() - 1;
    std::size_t pos = static_cast<std::size_t>(hash_bytes(key)) & mask_bits;
    for (;;) {
        std::uint32_t s = slots[pos];
        if (s == 0) {
            return {nullptr, nullptr};
        }
        if (keys[s - 1] == key) {
            const std::uint32_t* b = rule_ids.data() + lists_begin[s - 1];
            return {b, b + lists_count[s - 1]};
        }
        pos = (pos + 1) & mask_bits;
    }
}

std::size_t PolicyMatcher::KeyTable::memory_bytes() const noexcept {
    std::size_t n = slots.capacity() * 4 + lists_begin.capacity() * 4 + lists_count.capacity() * 4 +
                    rule_ids.capacity() * 4 + keys.capacity() * sizeof(std::string);
    for (const auto& k : keys) {
        n += k.capacity() > 15 ? k.capacity() + 1 : 0;
    }
    return n;
}

PolicyMatcher::PolicyMatcher(const std::vector<Rule>& rules) {
    std::vector<std::pair<std::string, std::uint32_t>> exact, suffix;
    std::vector<CidrTable::Key> cidr;
    for (const auto& r : rules) {
        auto id = static_cast<std::uint32_t>(m_rules.size());
        CompiledRule c;
        std::vector<std::uint16_t> ports = r.ports;
        std::sort(ports.begin(), ports.end());
        ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
        c.ports_begin = static_cast<std::uint32_t>(m_ports.size());
        c.ports_count = static_cast<std::uint32_t>(ports.size());
        m_ports.insert(m_ports.end(), ports.begin(), ports.end());
        c.protos = r.protos;
        c.allow_private = r.allow_private;
        m_rules.push_back(c);
        switch (r.kind) {
            case Rule::Kind::name:
                exact.emplace_back(normalize(r.name), id);
                break;
            case Rule::Kind::suffix:
                suffix.emplace_back(normalize(r.name), id);
                break;
            case Rule::Kind::cidr: {
                std::uint8_t prefix = std::min<std::uint8_t>(r.cidr.prefix, 128);
                IpAddr base = mask(r.cidr.base, prefix);
                cidr.push_back({load_be64(base.bytes.data()), load_be64(base.bytes.data() + 8), prefix, id});
                if (std::find(m_cidr_prefixes.begin(), m_cidr_prefixes.end(), prefix) ==
                    m_cidr_prefixes.end()) {
                    m_cidr_prefixes.push_back(prefix);
                }
                break;
            }
        }
    }
    std::sort(m_cidr_prefixes.begin(), m_cidr_prefixes.end(), std::greater<>());
    m_exact.build(std::move(exact));
    m_suffix.build(std::move(suffix));
    m_cidr.build(std::move(cidr));
}

Access PolicyMatcher::rule_access(std::uint32_t rule, Proto proto, std::uint16_t port,
                                  bool private_addr) const noexcept {
    const CompiledRule& r = m_rules[rule];
    if ((r.protos & static_cast<std::uint8_t>(proto)) == 0) {
        return Access::proto_not_allowed;
    }
    if (proto != Proto::icmp) {
        const std::uint16_t* b = m_ports.data() + r.ports_begin;
        const std::uint16_t* e = b + r.ports_count;
        if (!std::binary_search(b, e, port)) {
            return Access::port_not_allowed;
        }
    }
    if (private_addr && !r.allow_private) {
        return Access::private_not_allowed;
    }
    return Access::allowed;
}

template <class Fn>
void PolicyMatcher::for_each_name_rule(std::string_view name, Fn&& fn) const noexcept {
    auto [b, e] = m_exact.find(name);
    for (; b != e; ++b) {
        fn(*b);
    }
    for (std::size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
        auto [sb, se] = m_suffix.find(name.substr(dot + 1));
        for (; sb != se; ++sb) {
            fn(*sb);
        }
    }
}

Access PolicyMatcher::name_access(std::string_view name, Proto proto, std::uint16_t port,
                                  bool private_addr) const noexcept {
    Access best = Access::unlisted;
    for_each_name_rule(name, [&](std::uint32_t id) { best = better(best, rule_access(id, proto, port, private_addr)); });
    return best;
}

Access PolicyMatcher::cidr_access(const IpAddr& addr, Proto proto, std::uint16_t port,
                                  std::uint8_t min_prefix) const noexcept {
    Access best = Access::unlisted;
    std::uint64_t hi = load_be64(addr.bytes.data());
    std::uint64_t lo = load_be64(addr.bytes.data() + 8);
    for (std::uint8_t prefix : m_cidr_prefixes) {
        if (prefix < min_prefix) {
            break;  // longest first: the rest are shorter still
        }
        auto [hm, lm] = prefix_masks(prefix);
        auto [b, e] = m_cidr.find(hi & hm, lo & lm, prefix);
        for (; b != e; ++b) {
            best = better(best, rule_access(*b, proto, port, false));
            if (best == Access::allowed) {
                return best;
            }
        }
    }
    return best;
}

void PolicyMatcher::CidrTable::build(std::vector<Key> keys) {
    std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
        return std::tie(a.prefix, a.hi, a.lo, a.rule) < std::tie(b.prefix, b.hi, b.lo, b.rule);
    });
    for (std::size_t i = 0; i < keys.size();) {
        std::size_t j = i;
        Entry e;
        e.hi = keys[i].hi;
        e.lo = keys[i].lo;
        e.prefix = keys[i].prefix;
        e.begin = static_cast<std::uint32_t>(rule_ids.size());
        while (j < keys.size() && keys[j].hi == e.hi && keys[j].lo == e.lo && keys[j].prefix == e.prefix) {
            rule_ids.push_back(keys[j].rule);
            ++j;
        }
        e.count = static_cast<std::uint32_t>(j - i);
        entries.push_back(e);
        i = j;
    }
    std::size_t size = 8;
    while (size < entries.size() * 2) {
        size *= 2;
    }
    slots.assign(size, 0);
    for (std::size_t n = 0; n < entries.size(); ++n) {
        std::size_t pos = static_cast<std::size_t>(cidr_hash(entries[n].hi, entries[n].lo, entries[n].prefix)) & (size - 1);
        while (slots[pos] != 0) {
            pos = (pos + 1) & (size - 1);
        }
        slots[pos] = static_cast<std::uint32_t>(n + 1);
    }
}

std::pair<const std::uint32_t*, const std::uint32_t*> PolicyMatcher::CidrTable::find(
    std::uint64_t hi, std::uint64_t lo, std::uint8_t prefix) const noexcept {
    if (entries.empty()) {
        return {nullptr, nullptr};
    }
    std::size_t m = slots.size() - 1;
    for (std::size_t pos = static_cast<std::size_t>(cidr_hash(hi, lo, prefix)) & m;; pos = (pos + 1) & m) {
        std::uint32_t s = slots[pos];
        if (s == 0) {
            return {nullptr, nullptr};
        }
        const Entry& e = entries[s - 1];
        if (e.hi == hi && e.lo == lo && e.prefix == prefix) {
            const std::uint32_t* b = rule_ids.data() + e.begin;
            return {b, b + e.count};
        }
    }
}

std::size_t PolicyMatcher::CidrTable::memory_bytes() const noexcept {
    return slots.capacity() * 4 + entries.capacity() * sizeof(Entry) + rule_ids.capacity() * 4;
}

bool PolicyMatcher::name_listed(std::string_view name) const noexcept {
    bool listed = false;
    for_each_name_rule(name, [&](std::uint32_t) { listed = true; });
    return listed;
}

bool PolicyMatcher::name_allows_private(std::string_view name) const noexcept {
    bool yes = false;
    for_each_name_rule(name, [&](std::uint32_t id) { yes = yes || m_rules[id].allow_private; });
    return yes;
}

std::size_t PolicyMatcher::memory_bytes() const noexcept {
    return m_rules.capacity() * sizeof(CompiledRule) + m_ports.capacity() * 2 + m_exact.memory_bytes() +
           m_suffix.memory_bytes() + m_cidr.memory_bytes() + m_cidr_prefixes.capacity();
}

}  // namespace sbx::net
