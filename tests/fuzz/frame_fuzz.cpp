// libFuzzer: the frame parser, and the crafted replies to whatever it accepts (which must
// themselves parse, with consistent addresses).

#include "sbx/net/craft.hpp"
#include "sbx/net/frame.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

using namespace sbx::net;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Bytes frame = std::as_bytes(std::span(data, size));
    Packet p = parse_packet(frame);
    if (p.kind != Packet::Kind::ip) {
        return 0;
    }
    if (p.l4_offset + p.l4_len > size || p.l3_offset + p.l3_total_len > size) {
        std::abort();
    }
    static std::array<std::byte, k_max_crafted_frame> out;
    std::size_t n = 0;
    if (p.protocol == k_ipproto_tcp) {
        n = craft_tcp_reset(out, frame, p);
    } else {
        n = craft_icmp_prohibited(out, frame, p);
    }
    if (n == 0) {
        return 0;
    }
    Packet r = parse_packet(Bytes(out.data(), n));
    if (r.kind != Packet::Kind::ip || r.src != p.dst || r.dst != p.src || r.v6 != p.v6) {
        std::abort();
    }
    Bytes l4(out.data() + r.l4_offset, r.l4_len);
    std::uint16_t check = r.protocol == k_ipproto_icmp ? checksum_fold(checksum_partial(l4))
                                                       : transport_checksum(r.src, r.dst, r.protocol, l4, r.v6);
    if (check != 0) {
        std::abort();
    }
    return 0;
}
