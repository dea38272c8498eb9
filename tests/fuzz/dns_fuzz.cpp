// libFuzzer: DNS query parsing, response writing and reading (compression pointers included).

#include "sbx/net/dns_codec.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

using namespace sbx::net;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Bytes msg = std::as_bytes(std::span(data, size));
    (void)parse_dns_response(msg);  // the pointer-following reader on hostile bytes
    auto parsed = parse_dns_query(msg);
    if (parsed.status != DnsQueryStatus::ok) {
        return 0;
    }
    const DnsQuery& q = parsed.query;
    if (q.name_len > k_dns_max_name || q.question.size() > k_dns_max_question) {
        std::abort();
    }
    static const std::array<IpAddr, 10> addrs = {
        IpAddr::v4(0x01020304), IpAddr::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}),
        IpAddr::v4(0x05060708), IpAddr::v4(0x090a0b0c), IpAddr::v4(0x0d0e0f10), IpAddr::v4(0x11121314),
        IpAddr::v4(0x15161718), IpAddr::v4(0x191a1b1c), IpAddr::v4(0x1d1e1f20), IpAddr::v4(0x21222324),
    };
    std::array<std::byte, k_dns_max_reply> out{};
    DnsResponse r;
    r.id = q.id;
    r.rd = q.rd;
    r.question = q.question;
    r.qtype = q.qtype == k_dns_type_aaaa ? k_dns_type_aaaa : k_dns_type_a;
    r.addrs = addrs;
    r.ttl = 60;
    std::size_t n = write_dns_response(out, r);
    if (n == 0) {
        std::abort();  // every accepted query must fit its answer in 512 bytes
    }
    auto back = parse_dns_response(Bytes(out.data(), n));
    if (!back || back->id != q.id || back->qname != q.name_view() || back->answers.empty()) {
        std::abort();
    }
    return 0;
}
