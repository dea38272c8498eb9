#pragma once
// What netd gives its flow engines (engine_io.hpp), in miniature for their tests: the output
// queue toward the guest, popped as frames, and a record of the flows the host opened.

#include "net_frames.hpp"

#include "sbx/net/engine_io.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <span>
#include <vector>

namespace sbx::test {

// netd's output queue: stream records into one buffer, popped as frames; limit() shortens
// the free tail (back-pressure).
class Queue final : public net::GuestQueue {
public:
    explicit Queue(std::size_t size = 8u << 20) : m_buf(size), m_limit(size) {}
    net::MutBytes tail_space() noexcept override {
        if (m_head == m_tail) {
            m_head = m_tail = 0;
        }
        return net::MutBytes(m_buf.data() + m_tail, m_limit > m_tail ? m_limit - m_tail : 0);
    }
    void advance(std::size_t bytes, std::size_t frames) noexcept override {
        m_tail += bytes;
        m_frames += frames;
    }
    // Frames in the order written; each record's length prefix is checked.
    std::vector<Frame> take() {
        std::vector<Frame> out;
        while (m_head < m_tail) {
            std::size_t len = get32(std::span(m_buf).subspan(m_head), 0);
            EXPECT_GE(m_tail - m_head, 4 + len);
            out.emplace_back(m_buf.begin() + static_cast<std::ptrdiff_t>(m_head + 4),
                             m_buf.begin() + static_cast<std::ptrdiff_t>(m_head + 4 + len));
            m_head += 4 + len;
        }
        return out;
    }
    void limit(std::size_t bytes) { m_limit = std::min(bytes, m_buf.size()); }
    std::size_t frames() const { return m_frames; }

private:
    std::vector<std::byte> m_buf;
    std::size_t m_head = 0, m_tail = 0, m_frames = 0;
    std::size_t m_limit;
};

// The flows an engine reported opened and closed by the host, in order.
class HostFlows final : public net::HostFlows {
public:
    void host_opened(const net::FlowKey& k) noexcept override { opened.push_back(k); }
    void host_closed(const net::FlowKey& k) noexcept override { closed.push_back(k); }
    std::vector<net::FlowKey> opened, closed;
};

inline net::Millis now_ms() {
    return static_cast<net::Millis>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace sbx::test
