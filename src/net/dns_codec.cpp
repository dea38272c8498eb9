// DNS query parsing and response writing; the shape rules are in dns_codec.hpp.

#include "sbx/net/dns_codec.hpp"

#include <algorithm>

namespace sbx::net {

namespace {

constexpr std::uint16_t k_flag_qr = 0x8000;
constexpr std::uint16_t k_flag_rd = 0x0100;
constexpr std::uint16_t k_flag_ra = 0x0080;

// The label bytes a hostname may use; '_' for service names (_acme-challenge, SRV-style).
char name_char(std::uint8_t c) {
    if (c >= 'A' && c <= 'Z') {
        return static_cast<char>(c - 'A' + 'a');
    }
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
        return static_cast<char>(c);
    }
    return 0;
}

}  // namespace

DnsQueryParse parse_dns_query(Bytes msg) noexcept {
    DnsQueryParse r;
    if (msg.size() < k_dns_header) {
        return r;
    }
    const std::byte* h = msg.data();
    std::uint16_t flags = load_be16(h + 2);
    if ((flags & k_flag_qr) != 0) {
        return r;  // a response sent to the resolver: never answer it (no reflection loops)
    }
    r.query.id = load_be16(h);
    r.query.rd = (flags & k_flag_rd) != 0;
    if (((flags >> 11) & 0x0f) != 0) {
        r.status = DnsQueryStatus::notimp;
        return r;
    }
    r.status = DnsQueryStatus::formerr;
    std::uint16_t qd = load_be16(h + 4);
    std::uint16_t an = load_be16(h + 6);
    std::uint16_t ns = load_be16(h + 8);
    std::uint16_t ar = load_be16(h + 10);
    if (qd != 1 || an != 0 || ns != 0 || ar > 1) {
        return r;
    }
    std::size_t pos = k_dns_header;
    std::size_t text = 0;
    auto& q = r.query;
    for (;;) {
        if (pos >= msg.size()) {
            return r;
        }
        std::size_t len = load_u8(h + pos);
        if (len == 0) {
            ++pos;
            break;
        }
        if (len > k_dns_max_label) {
            return r;  // compression pointers (0xC0) and the reserved 0x40/0x80 forms land here
        }
        std::size_t need = text == 0 ? len : text + 1 + len;
        if (need > k_dns_max_name || pos + 1 + len > msg.size()) {
            return r;
        }
        if (text != 0) {
            q.name[text++] = '.';
        }
        for (std::size_t i = 0; i < len; ++i) {
            char c = name_char(load_u8(h + pos + 1 + i));
            if (c == 0) {
                return r;
            }
            q.name[text++] = c;
        }
        pos += 1 + len;
    }
    if (pos + 4 > msg.size()) {
        return r;
    }
    q.name[text] = '\0';
    q.name_len = text;
    q.qtype = load_be16(h + pos);
    q.qclass = load_be16(h + pos + 2);
    q.question = msg.subspan(k_dns_header, pos + 4 - k_dns_header);
    r.status = DnsQueryStatus::ok;
    return r;
}

std::size_t write_dns_response(MutBytes out, const DnsResponse& r) noexcept {
    std::size_t family_len = r.qtype == k_dns_type_a ? 4 : 16;
    std::size_t count = 0;
    if (r.rcode == dns_rcode::noerror && !r.question.empty() &&
        (r.qtype == k_dns_type_a || r.qtype == k_dns_type_aaaa)) {
        for (const auto& a : r.addrs) {
            if (a.is_v4() == (r.qtype == k_dns_type_a) && count < k_dns_max_answers) {
                ++count;
            }
        }
    }
    std::size_t size = k_dns_header + r.question.size() + count * (12 + family_len);
    if (out.size() < size || r.question.size() > k_dns_max_question) {
        return 0;
    }
    std::byte* p = out.data();
    store_be16(p, r.id);
    std::uint16_t flags = static_cast<std::uint16_t>(k_flag_qr | k_flag_ra | (r.rd ? k_flag_rd : 0) |
                                                     (r.rcode & 0x0f));
    store_be16(p + 2, flags);
    store_be16(p + 4, r.question.empty() ? 0 : 1);
    store_be16(p + 6, static_cast<std::uint16_t>(count));
    store_be16(p + 8, 0);
    store_be16(p + 10, 0);
    std::size_t pos = k_dns_header;
    if (!r.question.empty()) {
        std::memcpy(p + pos, r.question.data(), r.question.size());
        pos += r.question.size();
    }
    std::size_t written = 0;
    for (const auto& a : r.addrs) {
        if (written == count) {
            break;
        }
        if (a.is_v4() != (r.qtype == k_dns_type_a)) {
            continue;
        }
        store_be16(p + pos, 0xC000 | k_dns_header);  // the name: a pointer to the question
        store_be16(p + pos + 2, r.qtype);
        store_be16(p + pos + 4, k_dns_class_in);
        store_be32(p + pos + 6, r.ttl);
        store_be16(p + pos + 10, static_cast<std::uint16_t>(family_len));
        std::memcpy(p + pos + 12, a.bytes.data() + (16 - family_len), family_len);
        pos += 12 + family_len;
        ++written;
    }
    return pos;
}

std::optional<std::size_t> read_dns_name(Bytes msg, std::size_t offset, std::string& out) {
    out.clear();
    std::size_t pos = offset;
    std::optional<std::size_t> end;
    std::size_t hops = 0;
    for (;;) {
        if (pos >= msg.size()) {
            return std::nullopt;
        }
        std::size_t len = load_u8(msg.data() + pos);
        if ((len & 0xC0) == 0xC0) {
            if (pos + 2 > msg.size() || ++hops > k_dns_max_pointer_hops) {
                return std::nullopt;
            }
            std::size_t target = load_be16(msg.data() + pos) & 0x3fffu;
            if (target >= pos) {
                return std::nullopt;  // only backwards: a forward or self pointer can loop
            }
            if (!end) {
                end = pos + 2;
            }
            pos = target;
            continue;
        }
        if (len > k_dns_max_label) {
            return std::nullopt;
        }
        if (len == 0) {
            return end ? *end : pos + 1;
        }
        if (pos + 1 + len > msg.size() || out.size() + len + 1 > k_dns_max_name + 1) {
            return std::nullopt;
        }
        if (!out.empty()) {
            out += '.';
        }
        for (std::size_t i = 0; i < len; ++i) {
            auto c = static_cast<char>(load_u8(msg.data() + pos + 1 + i));
            out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        }
        pos += 1 + len;
    }
}

std::optional<DnsResponseView> parse_dns_response(Bytes msg) {
    if (msg.size() < k_dns_header) {
        return std::nullopt;
    }
    DnsResponseView v;
    const std::byte* h = msg.data();
    v.id = load_be16(h);
    std::uint16_t flags = load_be16(h + 2);
    v.qr = (flags & k_flag_qr) != 0;
    v.rd = (flags & k_flag_rd) != 0;
    v.ra = (flags & k_flag_ra) != 0;
    v.rcode = static_cast<std::uint8_t>(flags & 0x0f);
    v.qdcount = load_be16(h + 4);
    std::uint16_t an = load_be16(h + 6);
    if (v.qdcount > 1) {
        return std::nullopt;
    }
    std::size_t pos = k_dns_header;
    if (v.qdcount == 1) {
        auto next = read_dns_name(msg, pos, v.qname);
        if (!next || *next + 4 > msg.size()) {
            return std::nullopt;
        }
        v.qtype = load_be16(h + *next);
        pos = *next + 4;
    }
    std::string owner;
    for (std::uint16_t i = 0; i < an; ++i) {
        auto next = read_dns_name(msg, pos, owner);
        if (!next || *next + 10 > msg.size()) {
            return std::nullopt;
        }
        std::uint16_t type = load_be16(h + *next);
        std::uint32_t ttl = load_be32(h + *next + 4);
        std::size_t rdlen = load_be16(h + *next + 8);
        std::size_t rdata = *next + 10;
        if (rdata + rdlen > msg.size()) {
            return std::nullopt;
        }
        if ((type == k_dns_type_a && rdlen == 4) || (type == k_dns_type_aaaa && rdlen == 16)) {
            DnsAnswerRecord rec;
            rec.type = type;
            rec.ttl = ttl;
            if (type == k_dns_type_a) {
                rec.addr = IpAddr::v4(load_be32(h + rdata));
            } else {
                std::array<std::uint8_t, 16> b{};
                std::memcpy(b.data(), h + rdata, 16);
                rec.addr = IpAddr::v6(b);
            }
            v.answers.push_back(rec);
        }
        pos = rdata + rdlen;
    }
    return v;
}

}  // namespace sbx::net
