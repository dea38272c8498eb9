// The flow table; see flow_table.hpp for the theory of operation.

#include "sbx/net/flow_table.hpp"

#include <algorithm>
#include <cstring>
#include <new>

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

std::uint64_t word(const std::uint8_t* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
}

}  // namespace

FlowTable::FlowTable(std::size_t capacity, std::uint64_t seed)
    : m_capacity(std::max<std::size_t>(capacity, 1)), m_seed(seed) {
    std::size_t size = 64;
    while (size < m_capacity * 2) {
        size *= 2;
    }
    // calloc: zeroed (used == false) without touching the pages up front.
    auto* p = static_cast<FlowEntry*>(std::calloc(size, sizeof(FlowEntry)));
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    m_slots.reset(p);
    m_mask = size - 1;
}

std::uint32_t FlowTable::hash(const FlowKey& k) const noexcept {
    // Five independent multiplies (they run in parallel on the hot path), the seed inside each
    // so colliding key sets depend on it, then one final mix.
    const std::uint64_t s = m_seed;
    std::uint64_t h = ((word(k.src.bytes.data()) ^ s) * 0x9e3779b97f4a7c15ull) +
                      ((word(k.src.bytes.data() + 8) ^ s) * 0xc2b2ae3d27d4eb4full) +
                      ((word(k.dst.bytes.data()) ^ s) * 0x165667b19e3779f9ull) +
                      ((word(k.dst.bytes.data() + 8) ^ s) * 0xd6e8feb86659fd93ull) +
                      (((std::uint64_t{k.sport} | (std::uint64_t{k.dport} << 16) |
                         (std::uint64_t{k.protocol} << 32)) ^ s) * 0xff51afd7ed558ccdull);
    return static_cast<std::uint32_t>(mix(h));
}

std::size_t FlowTable::locate(const FlowKey& key, std::uint32_t h) const noexcept {
    FlowEntry* slots = m_slots.get();
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

FlowEntry* FlowTable::find(const FlowKey& key, Millis now) noexcept {
    std::size_t pos = locate(key, hash(key));
    if (pos == SIZE_MAX) {
        return nullptr;
    }
    FlowEntry& e = m_slots.get()[pos];
    e.last_seen = now;
    return &e;
}

void FlowTable::remove_at(std::size_t pos) noexcept {
    FlowEntry* slots = m_slots.get();
    std::size_t hole = pos;
    std::size_t j = pos;
    for (;;) {
        j = (j + 1) & m_mask;
        if (!slots[j].used) {
            break;
        }
        std::size_t h = slots[j].hash & m_mask;
        if (((j - h) & m_mask) >= ((j - hole) & m_mask)) {
            slots[hole] = slots[j];
            hole = j;
        }
    }
    slots[hole].used = false;
    --m_size;
}

bool FlowTable::erase(const FlowKey& key) noexcept {
    std::size_t pos = locate(key, hash(key));
    if (pos == SIZE_MAX) {
        return false;
    }
    remove_at(pos);
    return true;
}

FlowEntry& FlowTable::insert(const FlowKey& key, std::uint8_t verdict, std::uint8_t reason, Millis now) noexcept {
    FlowEntry* slots = m_slots.get();
    std::uint32_t h = hash(key);
    std::size_t pos = locate(key, h);
    if (pos == SIZE_MAX) {
        // The least recently seen flow among the window's slots.
        auto oldest_in_window = [&]() {
            std::size_t oldest = SIZE_MAX;
            for (std::size_t i = 0; i < k_probe_window; ++i) {
                std::size_t p = (h + i) & m_mask;
                if (slots[p].used && (oldest == SIZE_MAX || slots[p].last_seen < slots[oldest].last_seen)) {
                    oldest = p;
                }
            }
            return oldest;
        };
        if (m_size >= m_capacity) {
            std::size_t victim = oldest_in_window();
            if (victim != SIZE_MAX) {
                remove_at(victim);
                ++m_evictions;
            }
        }
        std::size_t empty = SIZE_MAX;
        for (std::size_t i = 0; i < k_probe_window; ++i) {
            std::size_t p = (h + i) & m_mask;
            if (!slots[p].used) {
                empty = p;
                break;
            }
        }
        if (empty == SIZE_MAX) {
            // Full window: take over the oldest flow's slot in place (the run stays contiguous).
            pos = oldest_in_window();
            ++m_evictions;
        } else {
            pos = empty;
            ++m_size;
        }
    }
    FlowEntry& e = slots[pos];
    e.key = key;
    e.hash = h;
    e.verdict = verdict;
    e.reason = reason;
    e.last_seen = now;
    e.decided_at = now;
    e.host_opened = false;
    e.used = true;
    return e;
}

}  // namespace sbx::net
