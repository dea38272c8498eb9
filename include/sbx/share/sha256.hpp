#pragma once
// SHA-256 (FIPS 180-4): the content hash share.json records for each host file, so that a
// file the host changed since the snapshot is told apart from one that was only touched.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sbx::share {

class Sha256 {
public:
    Sha256();
    void add(std::string_view bytes);
    // The digest as 64 lowercase hex digits. The object is spent afterwards.
    std::string hex();

private:
    void block(const unsigned char* p);

    std::array<std::uint32_t, 8> m_h{};
    std::array<unsigned char, 64> m_buf{};
    std::size_t m_used = 0;
    std::uint64_t m_len = 0;
};

// The hex digest of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace sbx::share
