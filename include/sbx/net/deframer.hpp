#pragma once
// QEMU's `-netdev stream` byte stream -> Ethernet frames, and back.
//
// Theory of operation: the stream is a sequence of [4-byte big-endian length][frame]. The
// runtime bulk-reads into one large buffer (write_space() / commit(), or feed() without a
// socket), then takes every complete frame with next(); each frame is a span into the buffer,
// no copy. When next() finds only part of a frame it moves that part to the front of the
// buffer (one memmove of at most k_max_frame + 4 bytes) so the next read appends to it.
// Limits: frames are 1..k_max_frame bytes (65535, the largest IP packet, + a 14-byte Ethernet
// header); a length of 0 or above that is a protocol error the stream cannot recover from
// (there is no resynchronisation marker): the runtime must close the connection. The buffer
// (k_default_capacity, 256 KiB) always has room for a whole maximal frame after compaction.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace sbx::net {

class Deframer {
public:
    static constexpr std::size_t k_header = 4;
    static constexpr std::size_t k_max_frame = 65535 + 14;
    static constexpr std::size_t k_default_capacity = 256 * 1024;

    // capacity is raised to at least 2 * (k_max_frame + k_header).
    explicit Deframer(std::size_t capacity = k_default_capacity);

    // Where the next read() may write. Empty only when failed() or when complete frames
    // wait for next() and fill the buffer (call next() until need_more, then read).
    std::span<std::byte> write_space() noexcept;
    // Declares that n bytes were written at the start of write_space().
    void commit(std::size_t n) noexcept;
    // Copies as much of `bytes` as fits into write_space() and commits it; returns how much.
    std::size_t feed(std::span<const std::byte> bytes) noexcept;

    enum class Status : std::uint8_t {
        frame,      // `frame` is valid until the next call to next(), write_space(), commit() or feed()
        need_more,  // no complete frame buffered; read more
        error,      // length 0 or > k_max_frame: close the connection (sticky)
    };
    struct Next {
        Status status = Status::need_more;
        std::span<const std::byte> frame;
    };
    Next next() noexcept;

    bool failed() const noexcept { return m_failed; }
    // Bytes of a partial frame waiting for more input.
    std::size_t buffered() const noexcept { return m_end - m_begin; }

private:
    void compact() noexcept;

    std::unique_ptr<std::byte[]> m_buf;
    std::size_t m_capacity;
    std::size_t m_begin = 0;  // first unconsumed byte
    std::size_t m_end = 0;    // one past the last received byte
    bool m_failed = false;
};

// The 4-byte length prefix for a frame of `len` bytes (len <= Deframer::k_max_frame).
std::array<std::byte, 4> stream_prefix(std::size_t len) noexcept;

}  // namespace sbx::net
