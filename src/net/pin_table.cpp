// The pin table: a ring of entries plus a windowed open-addressed index; see pin_table.hpp.

#include "sbx/net/pin_table.hpp"

#include <algorithm>
#include <cstring>

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

}  // namespace

PinTable::PinTable(std::size_t capacity, std::uint64_t seed)
    : m_capacity(std::max<std::size_t>(capacity, 1)), m_seed(seed) {
    m_entries.reset(new Entry[m_capacity]);
    std::size_t size = 64;
    while (size < m_capacity * 2) {
        size *= 2;
    }
    m_index.assign(size, 0);
    m_mask = size - 1;
}

std::size_t PinTable::home(const std::array<std::uint8_t, 16>& addr) const noexcept {
    std::uint64_t a = 0, b = 0;
    std::memcpy(&a, addr.data(), 8);
    std::memcpy(&b, addr.data() + 8, 8);
    return static_cast<std::size_t>(mix(mix(a ^ m_seed) ^ b)) & m_mask;
}

void PinTable::unlink(std::size_t slot, Millis now) noexcept {
    Entry& e = m_entries[m_index[slot] - 1];
    if (e.expires > now) {
        ++m_evictions;
    }
    e.live = false;
    --m_live;
    // Backward-shift deletion: pull later entries of the run toward their home so lookups,
    // which stop at the first empty slot, still find them.
    std::size_t hole = slot;
    std::size_t j = slot;
    for (;;) {
        j = (j + 1) & m_mask;
        std::uint32_t s = m_index[j];
        if (s == 0) {
            break;
        }
        std::size_t h = home(m_entries[s - 1].addr);
        if (((j - h) & m_mask) >= ((j - hole) & m_mask)) {
            m_index[hole] = s;
            hole = j;
        }
    }
    m_index[hole] = 0;
}

void PinTable::pin(const IpAddr& addr, std::string_view name, Millis expires, Millis now) noexcept {
    if (name.size() > k_max_name) {
        return;
    }
    // Drop an existing pin of the same pair (it is re-made at the ring head) and keep the
    // address's name count bounded.
    for (int pass = 0; pass < 2; ++pass) {
        std::size_t h = home(addr.bytes);
        std::size_t same = 0;
        std::size_t soonest_slot = SIZE_MAX;
        Millis soonest = ~Millis{0};
        bool removed = false;
        for (std::size_t i = 0; i < k_probe_window; ++i) {
            std::size_t pos = (h + i) & m_mask;
            std::uint32_t s = m_index[pos];
            if (s == 0) {
                break;
            }
            const Entry& e = m_entries[s - 1];
            if (e.addr != addr.bytes) {
                continue;
            }
            if (e.name_view() == name) {
                Entry& me = m_entries[s - 1];
                me.expires = 0;  // not an eviction
                unlink(pos, now);
                removed = true;
                break;
            }
            ++same;
            if (e.expires < soonest) {
                soonest = e.expires;
                soonest_slot = pos;
            }
        }
        if (removed) {
            continue;  // rescan: the shift moved slots
        }
        if (same >= k_max_names_per_address && soonest_slot != SIZE_MAX) {
            unlink(soonest_slot, now);
        }
        break;
    }
    // Take the ring head, evicting what lives there.
    std::size_t idx = m_next;
    m_next = (m_next + 1) % m_capacity;
    if (idx < m_high && m_entries[idx].live) {
        std::size_t h = home(m_entries[idx].addr);
        for (std::size_t i = 0; i < k_probe_window; ++i) {
            std::size_t pos = (h + i) & m_mask;
            if (m_index[pos] == idx + 1) {
                unlink(pos, now);
                break;
            }
        }
    }
    m_high = std::max(m_high, idx + 1);
    // Find an index slot within the window. A full window gives up its soonest-expiring pin,
    // whose slot the new pin takes over in place (the run stays contiguous).
    std::size_t h = home(addr.bytes);
    std::size_t slot = SIZE_MAX;
    std::size_t soonest_slot = h;
    Millis soonest = ~Millis{0};
    for (std::size_t i = 0; i < k_probe_window; ++i) {
        std::size_t pos = (h + i) & m_mask;
        std::uint32_t s = m_index[pos];
        if (s == 0) {
            slot = pos;
            break;
        }
        if (m_entries[s - 1].expires < soonest) {
            soonest = m_entries[s - 1].expires;
            soonest_slot = pos;
        }
    }
    if (slot == SIZE_MAX) {
        Entry& victim = m_entries[m_index[soonest_slot] - 1];
        if (victim.expires > now) {
            ++m_evictions;
        }
        victim.live = false;
        --m_live;
        slot = soonest_slot;
    }
    Entry& e = m_entries[idx];
    e.addr = addr.bytes;
    e.expires = expires;
    e.name_len = static_cast<std::uint8_t>(name.size());
    e.live = true;
    if (!name.empty()) {
        std::memcpy(e.name, name.data(), name.size());
    }
    m_index[slot] = static_cast<std::uint32_t>(idx + 1);
    ++m_live;
}

std::size_t PinTable::names(const IpAddr& addr, Millis now,
                            std::span<std::string_view, k_max_names_per_address> out) const noexcept {
    std::size_t n = 0;
    std::size_t h = home(addr.bytes);
    for (std::size_t i = 0; i < k_probe_window && n < out.size(); ++i) {
        std::uint32_t s = m_index[(h + i) & m_mask];
        if (s == 0) {
            break;
        }
        const Entry& e = m_entries[s - 1];
        if (e.addr == addr.bytes && e.expires > now) {
            out[n++] = e.name_view();
        }
    }
    return n;
}

std::size_t PinTable::memory_bytes() const noexcept {
    return m_capacity * sizeof(Entry) + m_index.capacity() * sizeof(std::uint32_t);
}

}  // namespace sbx::net
