// Stream deframing with partial-frame carry; see deframer.hpp for the theory of operation.

#include "sbx/net/deframer.hpp"

#include "sbx/net/frame.hpp"

#include <algorithm>
#include <cstring>

namespace sbx::net {

Deframer::Deframer(std::size_t capacity)
    : m_capacity(std::max(capacity, 2 * (k_max_frame + k_header))) {
    // Default-initialised: pages are touched only as the stream fills them.
    m_buf.reset(new std::byte[m_capacity]);
}

std::span<std::byte> Deframer::write_space() noexcept {
    if (m_failed) {
        return {};
    }
    if (m_end == m_capacity) {
        compact();
    }
    return {m_buf.get() + m_end, m_capacity - m_end};
}

void Deframer::commit(std::size_t n) noexcept {
    m_end += std::min(n, m_capacity - m_end);
}

std::size_t Deframer::feed(std::span<const std::byte> bytes) noexcept {
    auto space = write_space();
    std::size_t n = std::min(space.size(), bytes.size());
    if (n > 0) {
        std::memcpy(space.data(), bytes.data(), n);
    }
    commit(n);
    return n;
}

Deframer::Next Deframer::next() noexcept {
    if (m_failed) {
        return {Status::error, {}};
    }
    std::size_t avail = m_end - m_begin;
    if (avail >= k_header) {
        std::uint32_t len = load_be32(m_buf.get() + m_begin);
        if (len == 0 || len > k_max_frame) {
            m_failed = true;
            return {Status::error, {}};
        }
        if (avail >= k_header + len) {
            std::span<const std::byte> frame(m_buf.get() + m_begin + k_header, len);
            m_begin += k_header + len;
            return {Status::frame, frame};
        }
    }
    compact();
    return {Status::need_more, {}};
}

void Deframer::compact() noexcept {
    if (m_begin == 0) {
        return;
    }
    std::size_t n = m_end - m_begin;
    if (n > 0) {
        std::memmove(m_buf.get(), m_buf.get() + m_begin, n);
    }
    m_begin = 0;
    m_end = n;
}

std::array<std::byte, 4> stream_prefix(std::size_t len) noexcept {
    std::array<std::byte, 4> out{};
    store_be32(out.data(), static_cast<std::uint32_t>(len));
    return out;
}

}  // namespace sbx::net
