#pragma once
// The DNS wire format, as much as netd's resolver needs: parse one guest query, write the
// answer. Queries are held to a strict shape: QR=0, exactly one question, no answer or
// authority records, at most one additional record (EDNS OPT, ignored), a QNAME of labels
// 1..63 bytes of [A-Za-z0-9_-] (lowercased), at most 253 characters written out, and no
// compression pointers (a query has nothing to point at). Responses echo the ID, RD and the
// question, set RA, and put at most k_dns_max_answers A/AAAA records behind a compression
// pointer to the question, so a reply is always under 512 bytes and never truncated.
// parse_dns_response() reads answers back (tests, fuzzing); it follows compression pointers
// only backwards and at most k_dns_max_pointer_hops times, so pointer loops end.

#include "sbx/net/frame.hpp"
#include "sbx/net/policy.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::net {

inline constexpr std::size_t k_dns_header = 12;
inline constexpr std::size_t k_dns_max_label = 63;
inline constexpr std::size_t k_dns_max_name = 253;         // as text, without the trailing dot
inline constexpr std::size_t k_dns_max_question = 255 + 4;  // wire name + QTYPE + QCLASS
inline constexpr std::size_t k_dns_max_answers = 8;
inline constexpr std::size_t k_dns_max_reply = 512;
inline constexpr std::size_t k_dns_max_pointer_hops = 16;

inline constexpr std::uint16_t k_dns_type_a = 1;
inline constexpr std::uint16_t k_dns_type_aaaa = 28;
inline constexpr std::uint16_t k_dns_class_in = 1;

namespace dns_rcode {
inline constexpr std::uint8_t noerror = 0;
inline constexpr std::uint8_t formerr = 1;
inline constexpr std::uint8_t servfail = 2;
inline constexpr std::uint8_t nxdomain = 3;
inline constexpr std::uint8_t notimp = 4;
inline constexpr std::uint8_t refused = 5;
}  // namespace dns_rcode

struct DnsQuery {
    std::uint16_t id = 0;
    bool rd = false;
    std::uint16_t qtype = 0;
    std::uint16_t qclass = 0;
    Bytes question;                  // the question's wire bytes, inside the parsed message
    std::array<char, k_dns_max_name + 1> name{};  // lowercase, no trailing dot, NUL-terminated
    std::size_t name_len = 0;
    std::string_view name_view() const noexcept { return {name.data(), name_len}; }
};

enum class DnsQueryStatus : std::uint8_t {
    ok,
    formerr,  // answerable: id and rd are set, the question is not usable
    notimp,   // an opcode other than QUERY: id and rd are set
    ignore,   // not a query at all (too short for a header, or QR=1): drop
};

struct DnsQueryParse {
    DnsQueryStatus status = DnsQueryStatus::ignore;
    DnsQuery query;
};

DnsQueryParse parse_dns_query(Bytes msg) noexcept;

struct DnsResponse {
    std::uint16_t id = 0;
    bool rd = false;
    Bytes question;                 // echoed; empty for FORMERR/NOTIMP (QDCOUNT 0)
    std::uint8_t rcode = dns_rcode::noerror;
    std::uint16_t qtype = 0;        // answers are written for A (IPv4 addrs) or AAAA (IPv6 addrs)
    std::span<const IpAddr> addrs;  // of qtype's family; at most k_dns_max_answers are written
    std::uint32_t ttl = 0;
};

// Writes the response into `out`; returns its size, 0 when `out` is too small.
std::size_t write_dns_response(MutBytes out, const DnsResponse& r) noexcept;

struct DnsAnswerRecord {
    std::uint16_t type = 0;
    std::uint32_t ttl = 0;
    IpAddr addr;
};

struct DnsResponseView {
    std::uint16_t id = 0;
    bool qr = false, rd = false, ra = false;
    std::uint8_t rcode = 0;
    std::uint16_t qdcount = 0;
    std::string qname;
    std::uint16_t qtype = 0;
    std::vector<DnsAnswerRecord> answers;  // A and AAAA records; others are skipped
};

// Reads a name at `offset` of `msg` (following compression pointers) into `out` as lowercase
// text; returns the offset just past the name in the original position, nothing when the
// name is malformed, too long, or its pointers loop or point forward.
std::optional<std::size_t> read_dns_name(Bytes msg, std::size_t offset, std::string& out);

// A response, read for tests and tools (allocates; not for the hot path).
std::optional<DnsResponseView> parse_dns_response(Bytes msg);

}  // namespace sbx::net
