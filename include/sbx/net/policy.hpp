#pragma once
// The compiled egress policy netd enforces: plain data, built from a profile's [network]
// section by the launch plan and handed to netd in its config file. `net` never includes
// `profile`.

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::net {

// An IPv4 or IPv6 address. IPv4 is stored in its IPv4-mapped form (::ffff:a.b.c.d), so one
// type, one table and one comparison serve both families.
struct IpAddr {
    std::array<std::uint8_t, 16> bytes{};

    static IpAddr v4(std::uint32_t host_order) noexcept {  // inline: every IPv4 frame makes two
        IpAddr a;
        a.bytes[10] = 0xff;
        a.bytes[11] = 0xff;
        a.bytes[12] = static_cast<std::uint8_t>(host_order >> 24);
        a.bytes[13] = static_cast<std::uint8_t>(host_order >> 16);
        a.bytes[14] = static_cast<std::uint8_t>(host_order >> 8);
        a.bytes[15] = static_cast<std::uint8_t>(host_order);
        return a;
    }
    static IpAddr v6(const std::array<std::uint8_t, 16>& b);
    // "10.0.2.15", "2001:db8::1"; nothing for anything else.
    static std::optional<IpAddr> parse(std::string_view text);
    bool is_v4() const;
    std::uint32_t v4_host_order() const;  // only when is_v4()
    std::string to_string() const;
    auto operator<=>(const IpAddr&) const = default;
};

struct Cidr {
    IpAddr base;           // host bits zero
    std::uint8_t prefix = 0;  // over the 128-bit form: an IPv4 /20 is stored as /116
    // "140.82.112.0/20", "2001:db8::/32"; nothing when malformed or host bits are set.
    static std::optional<Cidr> parse(std::string_view text);
    bool contains(const IpAddr& a) const;
    std::string to_string() const;  // as written by a person (IPv4 prefix shown as /20)
};

enum class Proto : std::uint8_t { tcp = 1, udp = 2, icmp = 4 };

struct Rule {
    enum class Kind : std::uint8_t { name, suffix, cidr };
    Kind kind = Kind::name;
    std::string name;                   // Kind::name: "github.com"; Kind::suffix: "example.com" for "*.example.com"
    Cidr cidr;                          // Kind::cidr
    std::vector<std::uint16_t> ports;   // sorted, unique; empty only for icmp-only rules
    std::uint8_t protos = static_cast<std::uint8_t>(Proto::tcp);  // bit set of Proto
    bool allow_private = false;         // answers in private ranges are not rebinding for this rule
    std::string source;                 // as the profile wrote it, for logs
};

enum class Mode : std::uint8_t { allowlist, none, open };

struct Policy {
    Mode mode = Mode::allowlist;
    bool learn = false;                      // allow everything, record what the allowlist would deny
    std::vector<Rule> rules;
    std::vector<std::uint16_t> host_ports;   // TCP ports on the host's loopback the guest may reach
};

// The guest-side network, as netd serves it and the guest image configures it (the
// addresses are QEMU user networking's, which libslirp made the usual ones).
struct GuestNet {
    IpAddr guest = IpAddr::v4(0x0A00020F);      // 10.0.2.15
    IpAddr host = IpAddr::v4(0x0A000202);       // 10.0.2.2: the guest's name for the host's loopback
    IpAddr dns = IpAddr::v4(0x0A000203);        // 10.0.2.3: netd's own resolver
    Cidr network = {IpAddr::v4(0x0A000200), 96 + 24};
    // IPv6: prefix fec0::/64, host fec0::2, resolver fec0::3.
    IpAddr guest6_prefix = IpAddr::v6({0xfe, 0xc0});
    IpAddr guest6 = IpAddr::v6({0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15});  // the image sets it
    IpAddr host6 = IpAddr::v6({0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2});
    IpAddr dns6 = IpAddr::v6({0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3});
    std::uint32_t mtu = 65520;
};

}  // namespace sbx::net
