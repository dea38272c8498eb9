#pragma once
// FNV-1a, 64 bit: a small content hash that is stable across builds and platforms
// (std::hash is neither). For change detection (fingerprints, ids), not for security.

#include <fmt/format.h>

#include <cstdint>
#include <string_view>

namespace sbx {

class Fnv1a64 {
public:
    void add(std::string_view bytes) {
        for (unsigned char c : bytes) {
            m_h = (m_h ^ c) * 1099511628211ULL;
        }
    }
    // Length-prefixed, so that ("ab","c") and ("a","bc") differ.
    void add_field(std::string_view bytes) {
        add(fmt::format("{}:", bytes.size()));
        add(bytes);
    }
    std::uint64_t value() const { return m_h; }

private:
    std::uint64_t m_h = 1469598103934665603ULL;
};

}  // namespace sbx
