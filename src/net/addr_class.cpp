// Address classification by fixed prefix tables. See addr_class.hpp for why each range is here.

#include "sbx/net/addr_class.hpp"

namespace sbx::net {

namespace {

struct V4Range {
    std::uint32_t base;
    unsigned prefix;
    std::uint32_t cls;
};

constexpr V4Range k_v4_ranges[] = {
    {0x00000000, 8, addr_class::unspecified},    // 0.0.0.0/8: "this network", connect() means localhost
    {0x0A000000, 8, addr_class::private_net},    // 10/8
    {0x64400000, 10, addr_class::cgnat},         // 100.64/10
    {0x7F000000, 8, addr_class::loopback},       // 127/8
    {0xA9FE0000, 16, addr_class::link_local},    // 169.254/16
    {0xAC100000, 12, addr_class::private_net},   // 172.16/12
    {0xC0A80000, 16, addr_class::private_net},   // 192.168/16
    {0xE0000000, 4, addr_class::multicast},      // 224/4
    {0xF0000000, 4, addr_class::reserved},       // 240/4
    {0xA9FEA9FE, 32, addr_class::metadata},      // 169.254.169.254: AWS, GCP, Azure, OpenStack
    {0xA83F8110, 32, addr_class::metadata},      // 168.63.129.16: Azure wire server
    {0x646464C8, 32, addr_class::metadata},      // 100.100.100.200: Alibaba Cloud
    {0xFFFFFFFF, 32, addr_class::broadcast},     // limited broadcast
};

bool in_v4(std::uint32_t a, std::uint32_t base, unsigned prefix) {
    std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    return (a & mask) == base;
}

std::uint32_t load_v4(const IpAddr& a, std::size_t at) {
    return (std::uint32_t{a.bytes[at]} << 24) | (std::uint32_t{a.bytes[at + 1]} << 16) |
           (std::uint32_t{a.bytes[at + 2]} << 8) | std::uint32_t{a.bytes[at + 3]};
}

bool zero(const IpAddr& a, std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
        if (a.bytes[i] != 0) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::uint32_t classify_v4(std::uint32_t v4) noexcept {
    std::uint32_t cls = 0;
    for (const auto& r : k_v4_ranges) {
        if (in_v4(v4, r.base, r.prefix)) {
            cls |= r.cls;
        }
    }
    return cls;
}

std::optional<std::uint32_t> embedded_v4(const IpAddr& a) noexcept {
    const auto& b = a.bytes;
    if (a.is_v4()) {
        return std::nullopt;
    }
    if (zero(a, 0, 12)) {
        // v4-compatible ::a.b.c.d; :: and ::1 are IPv6's own unspecified and loopback.
        std::uint32_t v4 = load_v4(a, 12);
        if (v4 <= 1) {
            return std::nullopt;
        }
        return v4;
    }
    if (zero(a, 0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0) {
        return load_v4(a, 12);  // SIIT IPv4-translated ::ffff:0:a.b.c.d
    }
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(a, 4, 12)) {
        return load_v4(a, 12);  // NAT64 well-known prefix 64:ff9b::/96
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        return load_v4(a, 2);  // 6to4 2002:AABB:CCDD::/48
    }
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) {
        return ~load_v4(a, 12);  // Teredo: the client's address, bit-inverted
    }
    return std::nullopt;
}

std::uint32_t classify(const IpAddr& a) noexcept {
    if (a.is_v4()) {
        return classify_v4(a.v4_host_order());
    }
    const auto& b = a.bytes;
    std::uint32_t cls = 0;
    if (zero(a, 0, 15)) {
        if (b[15] == 0) {
            return addr_class::unspecified;
        }
        if (b[15] == 1) {
            return addr_class::loopback;
        }
    }
    if (b[0] == 0xff) {
        cls |= addr_class::multicast;
    }
    if ((b[0] & 0xfe) == 0xfc) {
        cls |= addr_class::private_net;  // unique local fc00::/7
        static constexpr std::uint8_t k_ec2[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0,
                                                   0,    0,    0,    0,    0, 0, 0x02, 0x54};
        bool ec2 = true;
        for (std::size_t i = 0; i < 16; ++i) {
            ec2 = ec2 && b[i] == k_ec2[i];
        }
        if (ec2) {
            cls |= addr_class::metadata;  // fd00:ec2::254, AWS IMDS over IPv6
        }
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
        cls |= addr_class::link_local;
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) {
        cls |= addr_class::site_local;
    }
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0x00 && b[5] == 0x01) {
        cls |= addr_class::private_net;  // local-use NAT64 64:ff9b:1::/48: translated inside a site
    }
    if (auto v4 = embedded_v4(a)) {
        cls |= addr_class::embeds_v4 | classify_v4(*v4);
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) {
            cls |= classify_v4(load_v4(a, 4));  // Teredo also names its server
        }
    }
    return cls;
}

std::string describe_classes(std::uint32_t classes) {
    static constexpr struct {
        std::uint32_t bit;
        const char* name;
    } k_names[] = {
        {addr_class::loopback, "loopback"},     {addr_class::private_net, "private"},
        {addr_class::link_local, "link-local"}, {addr_class::cgnat, "cgnat"},
        {addr_class::multicast, "multicast"},   {addr_class::unspecified, "unspecified"},
        {addr_class::broadcast, "broadcast"},   {addr_class::metadata, "metadata"},
        {addr_class::reserved, "reserved"},     {addr_class::site_local, "site-local"},
        {addr_class::embeds_v4, "embeds-v4"},
    };
    std::string out;
    for (const auto& n : k_names) {
        if ((classes & n.bit) != 0) {
            if (!out.empty()) {
                out += ',';
            }
            out += n.name;
        }
    }
    return out.empty() ? "public" : out;
}

}  // namespace sbx::net
