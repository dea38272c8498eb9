#pragma once
// Pins: which names the guest resolved (through netd) to which addresses, until when.
//
// Theory of operation: `capacity` entries (Limits::pins, 16384 by default) of
// {address, expiry, name} live in one array used as a ring: a new pin takes the next ring
// slot, so when the table is full the oldest pin is evicted (counted). Re-pinning an
// (address, name) pair moves it to the ring's head with the new expiry. An index of
// 2 * capacity (rounded up to a power of two) 32-bit slots, open-addressed by a keyed hash of
// the address, finds an address's entries within a probe window of k_probe_window slots;
// when a window is full its soonest-expiring entry is evicted, so no lookup ever probes more
// than k_probe_window slots whatever the addresses. An address keeps at most
// k_max_names_per_address names (the soonest-expiring goes). Names are stored inline,
// at most 253 bytes. Memory: capacity * sizeof(Entry) (~288 B) + 8 B per pin for the index,
// touched only as pins are made: about 2.9 MiB at 10 000 pins. Expired pins are never
// returned; their slots are reused in ring order.

#include "sbx/net/policy.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace sbx::net {

using Millis = std::uint64_t;

class PinTable {
public:
    static constexpr std::size_t k_max_names_per_address = 4;
    static constexpr std::size_t k_probe_window = 32;
    static constexpr std::size_t k_max_name = 253;

    explicit PinTable(std::size_t capacity, std::uint64_t seed = 0);

    // Pins `name` to `addr` until `expires`. Names longer than k_max_name are not pinned.
    void pin(const IpAddr& addr, std::string_view name, Millis expires, Millis now) noexcept;

    // The names `addr` is pinned to at `now` (at most k_max_names_per_address); the views stay
    // valid until the next pin().
    std::size_t names(const IpAddr& addr, Millis now,
                      std::span<std::string_view, k_max_names_per_address> out) const noexcept;

    std::size_t size() const noexcept { return m_live; }  // entries in use, expired or not
    std::size_t capacity() const noexcept { return m_capacity; }
    std::uint64_t evictions() const noexcept { return m_evictions; }
    std::size_t memory_bytes() const noexcept;

private:
    // Trivial on purpose: the array is allocated uninitialised and only entries below
    // m_high (ever used) are read, so pages are touched as the ring first reaches them.
    struct Entry {
        std::array<std::uint8_t, 16> addr;
        Millis expires;
        std::uint8_t name_len;
        bool live;
        char name[k_max_name];
        std::string_view name_view() const noexcept { return {name, name_len}; }
    };

    std::size_t home(const std::array<std::uint8_t, 16>& addr) const noexcept;
    void unlink(std::size_t slot, Millis now) noexcept;  // removes the index slot and its entry

    std::size_t m_capacity;
    std::unique_ptr<Entry[]> m_entries;
    std::vector<std::uint32_t> m_index;  // entry index + 1; 0 = empty
    std::size_t m_mask = 0;
    std::size_t m_next = 0;              // ring head
    std::size_t m_high = 0;              // ring slots ever used (initialised)
    std::size_t m_live = 0;
    std::uint64_t m_seed;
    std::uint64_t m_evictions = 0;
};

}  // namespace sbx::net
