// IpAddr and Cidr: one 128-bit form for both families (IPv4 stored IPv4-mapped).

#include "sbx/net/policy.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace sbx::net {

namespace {

constexpr std::uint8_t k_v4_prefix_offset = 96;

bool mapped_prefix(const std::array<std::uint8_t, 16>& b) {
    for (std::size_t i = 0; i < 10; ++i) {
        if (b[i] != 0) {
            return false;
        }
    }
    return b[10] == 0xff && b[11] == 0xff;
}

// Keeps the first `prefix` bits of `a`, zeroes the rest.
IpAddr masked(const IpAddr& a, std::uint8_t prefix) {
    IpAddr out = a;
    for (std::size_t i = 0; i < 16; ++i) {
        std::size_t bit = i * 8;
        if (bit >= prefix) {
            out.bytes[i] = 0;
        } else if (bit + 8 > prefix) {
            auto keep = static_cast<unsigned>(prefix - bit);
            out.bytes[i] = static_cast<std::uint8_t>(out.bytes[i] & (0xffu << (8 - keep)));
        }
    }
    return out;
}

}  // namespace

IpAddr IpAddr::v6(const std::array<std::uint8_t, 16>& b) {
    IpAddr a;
    a.bytes = b;
    return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    if (text.empty() || text.size() > 45) {
        return std::nullopt;
    }
    char buf[46] = {};
    std::memcpy(buf, text.data(), text.size());
    if (text.find(':') == std::string_view::npos) {
        in_addr v4{};
        if (::inet_pton(AF_INET, buf, &v4) != 1) {
            return std::nullopt;
        }
        return IpAddr::v4(ntohl(v4.s_addr));
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, buf, &v6) != 1) {
        return std::nullopt;
    }
    IpAddr a;
    std::memcpy(a.bytes.data(), &v6, 16);
    return a;
}

bool IpAddr::is_v4() const {
    return mapped_prefix(bytes);
}

std::uint32_t IpAddr::v4_host_order() const {
    return (std::uint32_t{bytes[12]} << 24) | (std::uint32_t{bytes[13]} << 16) |
           (std::uint32_t{bytes[14]} << 8) | std::uint32_t{bytes[15]};
}

std::string IpAddr::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (is_v4()) {
        ::inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
    } else {
        ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    }
    return buf;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    auto addr_text = text.substr(0, slash);
    auto len_text = text.substr(slash + 1);
    if (len_text.empty() || len_text.size() > 3) {
        return std::nullopt;
    }
    unsigned len = 0;
    for (char c : len_text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        len = len * 10 + static_cast<unsigned>(c - '0');
    }
    auto addr = IpAddr::parse(addr_text);
    if (!addr) {
        return std::nullopt;
    }
    bool v6_text = addr_text.find(':') != std::string_view::npos;
    unsigned prefix = 0;
    if (v6_text) {
        if (len > 128) {
            return std::nullopt;
        }
        prefix = len;
    } else {
        if (len > 32) {
            return std::nullopt;
        }
        prefix = len + k_v4_prefix_offset;
    }
    Cidr c;
    c.prefix = static_cast<std::uint8_t>(prefix);
    c.base = masked(*addr, c.prefix);
    if (c.base != *addr) {
        return std::nullopt;  // host bits set: a typo more often than an intent
    }
    return c;
}

bool Cidr::contains(const IpAddr& a) const {
    return masked(a, prefix) == base;
}

std::string Cidr::to_string() const {
    if (base.is_v4() && prefix >= k_v4_prefix_offset) {
        return base.to_string() + "/" + std::to_string(prefix - k_v4_prefix_offset);
    }
    return base.to_string() + "/" + std::to_string(prefix);
}

}  // namespace sbx::net
