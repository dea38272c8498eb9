#pragma once
// netd's host-side resolver: c-ares (Debian's 1.18) on a given resolv.conf, asynchronous, driven
// from netd's poll loop. It resolves only what it is handed: netd hands it the names the
// filter allowed (Filter's DnsLookup), never anything straight from the guest.
//
// One query per lookup (A or AAAA, class IN, no search list, no hosts file), bounded by
// k_timeout_ms per try and k_tries tries; the TTL is the smallest of the answer's records.

#include "sbx/net/policy.hpp"

#include <poll.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace sbx::net {

// Receives lookup outcomes, from inside Resolver::process().
class ResolverSink {
public:
    // The name exists: its addresses (possibly none for this type) and TTL in seconds.
    virtual void resolved(std::uint32_t token, std::span<const IpAddr> addrs,
                          std::uint32_t ttl_s) noexcept = 0;
    // nxdomain: the name does not exist; otherwise the upstream failed or timed out.
    virtual void failed(std::uint32_t token, bool nxdomain) noexcept = 0;

protected:
    ~ResolverSink() = default;
};

class Resolver {
public:
    static constexpr int k_timeout_ms = 2000;
    static constexpr int k_tries = 2;

    // Reads the nameservers from resolv_conf. Throws sbx::Error naming the file when c-ares
    // cannot start or the file names no server.
    Resolver(const std::filesystem::path& resolv_conf, ResolverSink& sink);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // Starts an A (qtype 1) or AAAA (qtype 28) query; the outcome arrives through the sink.
    void lookup(std::uint32_t token, std::string_view name, std::uint16_t qtype);

    // Appends c-ares's descriptors to `fds`; the deadline of its next timeout, if any.
    void fill(std::vector<pollfd>& fds, std::size_t& first, std::size_t& count);
    std::optional<int> timeout_ms() const;
    // Processes the revents of fds[first, first + count) and expired timeouts.
    void process(const std::vector<pollfd>& fds, std::size_t first, std::size_t count);

    std::size_t in_flight() const noexcept { return m_in_flight; }
    // "198.51.100.53:53, ..." for the startup line.
    std::string servers_text() const;

private:
    struct Query;
    static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

    void* m_channel = nullptr;  // ares_channel
    ResolverSink& m_sink;
    std::size_t m_in_flight = 0;
};

}  // namespace sbx::net
