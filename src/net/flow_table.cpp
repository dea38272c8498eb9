// The flow table; see flow_table.hpp for the theory of operation.

#include "sbx/net/flow_table.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <new>

namespace sbx::net {

void FlowTable::Unmap::operator()(FlowEntry* p) const noexcept {
    ::munmap(p, bytes);
}

FlowTable::FlowTable(std::size_t capacity, std::uint64_t seed)
    : m_capacity(std::max<std::size_t>(capacity, 1)), m_seed(seed) {
    std::size_t size = 64;
    while (size < m_capacity * 2) {
        size *= 2;
    }
    // An anonymous mapping: page-aligned (each entry is one cache line) and zeroed (used ==
    // false) without touching the pages up front.
    std::size_t bytes = size * sizeof(FlowEntry);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        throw std::bad_alloc();
    }
    m_slots = std::unique_ptr<FlowEntry, Unmap>(static_cast<FlowEntry*>(p), Unmap{bytes});
    m_mask = size - 1;
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

bool FlowTable::erase(const FlowKey& k) noexcept {
    PackedFlowKey key = PackedFlowKey::of(k);
    std::size_t pos = locate(key, hash(key));
    if (pos == SIZE_MAX) {
        return false;
    }
    remove_at(pos);
    return true;
}

FlowEntry& FlowTable::insert(const FlowKey& k, std::uint8_t verdict, std::uint8_t reason, Millis now) noexcept {
    PackedFlowKey key = PackedFlowKey::of(k);
    FlowEntry* slots = m_slots.get();
    std::uint32_t h = hash(key);
    std::size_t pos = locate(key, h);
    if (pos == SIZE_MAX) {
        // The least recently seen flow among the window's slots; with `spare_host_opened`, only
        // among flows the host did not open.
        auto oldest_in_window = [&](bool spare_host_opened) {
            std::size_t oldest = SIZE_MAX;
            for (std::size_t i = 0; i < k_probe_window; ++i) {
                std::size_t p = (h + i) & m_mask;
                if (slots[p].used && !(spare_host_opened && slots[p].host_opened) &&
                    (oldest == SIZE_MAX || slots[p].last_seen < slots[oldest].last_seen)) {
                    oldest = p;
                }
            }
            return oldest;
        };
        if (m_size >= m_capacity) {
            // A host-opened flow (a forward) is never the victim here: it is the guest's side of
            // a live connection into the host, whose tuple decided afresh is the host's
            // loopback and refused. When the window holds nothing else, the table goes over
            // its capacity instead (there are twice as many slots, and the engines' tables
            // bound the host-opened flows).
            std::size_t victim = oldest_in_window(true);
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
            // Full window: take over the oldest flow's slot in place (the run stays contiguous),
            // a host-opened one only when the window holds nothing else.
            pos = oldest_in_window(true);
            if (pos == SIZE_MAX) {
                pos = oldest_in_window(false);
            }
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
