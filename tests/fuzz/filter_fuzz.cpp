// libFuzzer: the whole Filter on a sequence of guest frames taken from the input
// ([u8 flags][u16 length][frame]...), with DNS lookups completed from the input's bytes; a
// frame with flag 0x80 stands for an engine's forward opening (or, with bit 0, ending) on
// its tuple instead.

#include "sbx/net/filter.hpp"
#include "sbx/net/frame.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

using namespace sbx::net;

namespace {

Policy make_policy(std::uint8_t mode) {
    Policy p;
    p.mode = mode % 3 == 0 ? Mode::allowlist : (mode % 3 == 1 ? Mode::open : Mode::none);
    p.learn = (mode & 4) != 0;
    Rule r;
    r.kind = Rule::Kind::name;
    r.name = "github.com";
    r.ports = {22, 443};
    p.rules.push_back(r);
    r.kind = Rule::Kind::suffix;
    r.name = "example.com";
    r.protos = 3;
    r.ports = {53, 443};
    r.allow_private = true;
    p.rules.push_back(r);
    Rule c;
    c.kind = Rule::Kind::cidr;
    c.cidr = *Cidr::parse("140.82.112.0/20");
    c.ports = {22};
    c.protos = 7;
    p.rules.push_back(c);
    p.host_ports = {5432};
    return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    Limits l;
    l.flows = 32;
    l.pins = 16;
    l.pending_dns = 4;
    l.decisions = 8;
    l.dns_per_second = 5;
    l.replies_per_second = 5;
    l.hash_seed = 7;
    Filter f(make_policy(data[0]), GuestNet{}, l);
    std::size_t off = 1;
    Millis now = 0;
    std::vector<Decision> decisions(4);
    while (off + 3 <= size) {
        std::uint8_t flags = data[off];
        std::size_t len = (std::size_t{data[off + 1]} << 8) | data[off + 2];
        off += 3;
        len = std::min(len, size - off);
        auto frame = std::as_bytes(std::span(data + off, len));
        off += len;
        now += flags & 0x3f;
        if ((flags & 0x80) != 0) {
            // An engine's forward opening or ending on the frame's tuple.
            Packet p = parse_packet(frame);
            if (p.kind == Packet::Kind::ip) {
                FlowKey key{p.src, p.dst, p.sport, p.dport, p.protocol};
                if ((flags & 1) != 0) {
                    f.host_closed(key);
                } else {
                    f.host_opened(key, now);
                }
            }
            continue;
        }
        auto r = f.on_guest_frame(frame, now);
        if (r.kind == GuestFrameResult::Kind::reply && r.reply.empty()) {
            std::abort();
        }
        if (r.kind == GuestFrameResult::Kind::dns_lookup) {
            if (r.lookup.name.size() > 253) {
                std::abort();
            }
            if ((flags & 0x40) != 0) {
                (void)f.fail_dns(r.lookup.token, (flags & 1) != 0, now);
            } else {
                // Answer with addresses made of the frame's first bytes (any class, any family).
                IpAddr addrs[3];
                for (std::size_t i = 0; i < 3; ++i) {
                    std::array<std::uint8_t, 16> b{};
                    for (std::size_t k = 0; k < 16 && i * 5 + k < len; ++k) {
                        b[k] = static_cast<std::uint8_t>(frame[i * 5 + k]);
                    }
                    addrs[i] = (i % 2 == 0) ? IpAddr::v4((std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                                                         (std::uint32_t{b[2]} << 8) | b[3])
                                            : IpAddr::v6(b);
                }
                auto out = f.complete_dns(r.lookup.token, addrs, flags, now);
                if (out.empty()) {
                    std::abort();
                }
            }
        }
        (void)f.drain_decisions(decisions);
    }
    return 0;
}
