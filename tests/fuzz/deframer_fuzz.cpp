// libFuzzer: the QEMU stream deframer, fed the input in chunks whose sizes come from the input.

#include "sbx/net/deframer.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static sbx::net::Deframer* d = nullptr;
    delete d;
    d = new sbx::net::Deframer(0);  // the minimum capacity: compaction happens often
    if (size == 0) {
        return 0;
    }
    // The first byte picks the chunk size pattern; the rest is the stream.
    std::size_t step = 1 + data[0] * 97u;
    auto stream = std::as_bytes(std::span(data + 1, size - 1));
    std::size_t off = 0;
    std::size_t frames = 0;
    while (off < stream.size() && !d->failed()) {
        std::size_t n = std::min(step, stream.size() - off);
        std::size_t took = d->feed(stream.subspan(off, n));
        off += took;
        for (;;) {
            auto next = d->next();
            if (next.status != sbx::net::Deframer::Status::frame) {
                break;
            }
            if (next.frame.empty() || next.frame.size() > sbx::net::Deframer::k_max_frame) {
                std::abort();
            }
            volatile std::byte sink = next.frame[next.frame.size() - 1];
            (void)sink;
            ++frames;
        }
        if (took == 0 && !d->failed()) {
            std::abort();  // a stall: room must always exist after next() returned need_more
        }
        step = step * 3 % 70001 + 1;
    }
    if (!d->failed() && d->buffered() > sbx::net::Deframer::k_max_frame + sbx::net::Deframer::k_header) {
        std::abort();
    }
    return 0;
}
