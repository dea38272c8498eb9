#pragma once
// The flow table: the cached verdict of every 5-tuple the guest has sent, so the policy runs
// once per flow and every later frame costs one hash and a few compares.
//
// Theory of operation: `capacity` flows (Limits::flows, 16384 by default) in an open-addressed
// array of 2 * capacity slots rounded up to a power of two (<= 50% load), linear probing from
// a keyed hash of the 5-tuple (the seed is random per netd, so a guest cannot aim collisions).
// A flow sits at most k_probe_window slots from its home slot, so a lookup never probes more
// than k_probe_window slots. Inserting into a full table (or a full window) evicts the entry
// of the window seen least recently (counted); removal is backward-shift deletion, so there
// are no tombstones. Entries are 64 bytes: 2 MiB of slots for the default capacity, from
// calloc so untouched pages cost nothing. Flows are never expired by time on their own:
// only eviction reuses a slot, and an evicted flow is simply decided again on its next frame.
// The table only caches: the Filter decides again when a cached verdict may be out of date
// (a new TCP connection on a reused 5-tuple; a UDP/ICMP verdict older than a few seconds).

#include "sbx/net/policy.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace sbx::net {

using Millis = std::uint64_t;

struct FlowKey {
    IpAddr src, dst;
    std::uint16_t sport = 0, dport = 0;
    std::uint8_t protocol = 0;
    bool operator==(const FlowKey&) const = default;
};

struct FlowEntry {
    FlowKey key;
    Millis last_seen;
    Millis decided_at;     // when the policy last ran for it (the Filter re-decides, see filter.cpp)
    std::uint32_t hash;
    std::uint8_t verdict;  // the Filter's Verdict, stored raw
    std::uint8_t reason;   // the Filter's Reason, stored raw
    bool host_opened;      // a host forward's connection (libslirp opened it): never re-decided
    bool used;
};

class FlowTable {
public:
    static constexpr std::size_t k_probe_window = 32;

    explicit FlowTable(std::size_t capacity, std::uint64_t seed = 0);

    // The entry for `key` with last_seen set to `now`; nullptr when unknown.
    FlowEntry* find(const FlowKey& key, Millis now) noexcept;
    // Inserts or overwrites the flow; evicts the least recently seen flow of the window when
    // the table or the window is full. Never fails.
    FlowEntry& insert(const FlowKey& key, std::uint8_t verdict, std::uint8_t reason, Millis now) noexcept;
    // Forgets a flow; false when unknown.
    bool erase(const FlowKey& key) noexcept;

    std::size_t size() const noexcept { return m_size; }
    std::size_t capacity() const noexcept { return m_capacity; }
    std::uint64_t evictions() const noexcept { return m_evictions; }
    std::size_t memory_bytes() const noexcept { return (m_mask + 1) * sizeof(FlowEntry); }

private:
    struct Free {
        void operator()(FlowEntry* p) const noexcept { std::free(p); }
    };
    std::uint32_t hash(const FlowKey& key) const noexcept;
    std::size_t locate(const FlowKey& key, std::uint32_t h) const noexcept;  // SIZE_MAX if absent
    void remove_at(std::size_t pos) noexcept;

    std::size_t m_capacity;
    std::unique_ptr<FlowEntry, Free> m_slots;
    std::size_t m_mask = 0;
    std::size_t m_size = 0;
    std::uint64_t m_seed;
    std::uint64_t m_evictions = 0;
};

}  // namespace sbx::net
