#pragma once
// The flow table: the cached verdict of every 5-tuple the guest has sent, so the policy runs
// once per flow and every later frame costs one hash and a few compares.
//
// Theory of operation: `capacity` flows (Limits::flows, 16384 by default) in an open-addressed
// array of 2 * capacity slots rounded up to a power of two (<= 50% load), linear probing from
// a keyed hash of the 5-tuple (the seed is random per netd, so a guest cannot aim collisions).
// A flow sits at most k_probe_window slots from its home slot, so a lookup never probes more
// than k_probe_window slots. Inserting into a full table (or a full window) evicts the entry
// of the window seen least recently (counted), sparing host-opened flows (forwards: decided
// again, their tuple would be the host's loopback and refused) unless the window holds
// nothing else; a full table whose window holds only those takes the flow over its capacity
// rather than cut one (the slots are twice the capacity). Removal is backward-shift deletion,
// so there are no tombstones. Entries are 64 bytes, one cache line each (the slots are page-aligned):
// 2 MiB of slots for the default capacity, from an anonymous mapping so untouched pages cost
// nothing. An entry holds its 5-tuple packed into five 64-bit words, which the hash reads and
// a lookup compares without a call to memcmp. Flows are never expired by time on their own:
// only eviction reuses a slot, and an evicted flow is simply decided again on its next frame.
// The table only caches: the Filter decides again when a cached verdict may be out of date
// (a new TCP connection on a reused 5-tuple; a UDP/ICMP verdict older than a few seconds).

#include "sbx/net/policy.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

namespace sbx::net {

using Millis = std::uint64_t;

struct FlowKey {
    IpAddr src, dst;
    std::uint16_t sport = 0, dport = 0;
    std::uint8_t protocol = 0;
    bool operator==(const FlowKey&) const = default;
};

// A FlowKey as five words: source, destination (two each), then ports and protocol.
struct PackedFlowKey {
    std::uint64_t w0, w1, w2, w3, w4;

    static PackedFlowKey of(const FlowKey& k) noexcept {
        auto word = [](const std::uint8_t* p) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);
            return w;
        };
        return {word(k.src.bytes.data()), word(k.src.bytes.data() + 8), word(k.dst.bytes.data()),
                word(k.dst.bytes.data() + 8),
                std::uint64_t{k.sport} | (std::uint64_t{k.dport} << 16) | (std::uint64_t{k.protocol} << 32)};
    }
    bool operator==(const PackedFlowKey& o) const noexcept {
        return ((w0 ^ o.w0) | (w1 ^ o.w1) | (w2 ^ o.w2) | (w3 ^ o.w3) | (w4 ^ o.w4)) == 0;
    }
};

struct FlowEntry {
    PackedFlowKey key;
    Millis last_seen;
    Millis decided_at;     // when the policy last ran for it (the Filter re-decides, see filter.cpp)
    std::uint32_t hash;
    std::uint8_t verdict;  // the Filter's Verdict, stored raw
    std::uint8_t reason;   // the Filter's Reason, stored raw
    bool host_opened;      // a forward's flow (an engine opened it): passes until host_closed()
    bool used;
};
static_assert(sizeof(FlowEntry) == 64, "one flow, one cache line");

class FlowTable {
public:
    static constexpr std::size_t k_probe_window = 32;

    explicit FlowTable(std::size_t capacity, std::uint64_t seed = 0);

    // The entry for `key` with last_seen set to `now`; nullptr when unknown. Inline, with the
    // hash and the probe: this is every frame's lookup.
    FlowEntry* find(const FlowKey& k, Millis now) noexcept {
        PackedFlowKey key = PackedFlowKey::of(k);
        std::size_t pos = locate(key, hash(key));
        if (pos == SIZE_MAX) {
            return nullptr;
        }
        FlowEntry& e = m_slots.get()[pos];
        e.last_seen = now;
        return &e;
    }
    // Inserts or overwrites the flow; evicts the least recently seen flow of the window when
    // the table or the window is full, a host-opened one last. Never fails.
    FlowEntry& insert(const FlowKey& key, std::uint8_t verdict, std::uint8_t reason, Millis now) noexcept;
    // Forgets a flow; false when unknown.
    bool erase(const FlowKey& key) noexcept;
    // Every flow, in slot order: a walk of the whole table, for rare changes (the host
    // gained an address), never per frame. `f` may change an entry's verdict, not its key.
    template <class F>
    void for_each(F&& f) noexcept {
        FlowEntry* slots = m_slots.get();
        for (std::size_t i = 0; i <= m_mask; ++i) {
            if (slots[i].used) {
                f(slots[i]);
            }
        }
    }

    std::size_t size() const noexcept { return m_size; }
    std::size_t capacity() const noexcept { return m_capacity; }
    std::uint64_t evictions() const noexcept { return m_evictions; }
    std::size_t memory_bytes() const noexcept { return (m_mask + 1) * sizeof(FlowEntry); }

private:
    struct Unmap {
        std::size_t bytes;  // no initializer: it would make Unmap not default-constructible here
        void operator()(FlowEntry* p) const noexcept;
    };
    std::uint32_t hash(const PackedFlowKey& k) const noexcept {
        // Five independent multiplies (they run in parallel), the seed inside each so colliding
        // key sets depend on it, then a final mix.
        const std::uint64_t s = m_seed;
        std::uint64_t h = ((k.w0 ^ s) * 0x9e3779b97f4a7c15ull) + ((k.w1 ^ s) * 0xc2b2ae3d27d4eb4full) +
                          ((k.w2 ^ s) * 0x165667b19e3779f9ull) + ((k.w3 ^ s) * 0xd6e8feb86659fd93ull) +
                          ((k.w4 ^ s) * 0xff51afd7ed558ccdull);
        // One fold and multiply, keeping the product's top half: every index bit depends on
        // every bit of the sum.
        h ^= h >> 32;
        h *= 0xd6e8feb86659fd93ull;
        return static_cast<std::uint32_t>(h >> 32);
    }
    // The slot holding `key`, SIZE_MAX if absent.
    std::size_t locate(const PackedFlowKey& key, std::uint32_t h) const noexcept {
        const FlowEntry* slots = m_slots.get();
        for (std::size_t i = 0; i < k_probe_window; ++i) {
            std::size_t pos = (h + i) & m_mask;
            const FlowEntry& e = slots[pos];
            if (!e.used) {
                return SIZE_MAX;
            }
            if (e.hash == h && e.key == key) {
                return pos;
            }
        }
        return SIZE_MAX;
    }
    void remove_at(std::size_t pos) noexcept;

    std::size_t m_capacity;
    std::unique_ptr<FlowEntry, Unmap> m_slots;
    std::size_t m_mask = 0;
    std::size_t m_size = 0;
    std::uint64_t m_seed;
    std::uint64_t m_evictions = 0;
};

}  // namespace sbx::net
