// c-ares resolver for netd. Theory of operation:
//   - One channel, initialised from the configured resolv.conf (ARES_OPT_RESOLVCONF), DNS
//     only (lookups "b": never the hosts file), no search list, our own timeout and tries
//     (explicit options win over the file's "options" line).
//   - lookup() sends one ares_query (class IN, type A or AAAA) with a small heap record as
//     the callback argument (one per lookup; the filter caps lookups in flight).
//   - The poll loop asks fill() for c-ares's sockets and timeout_ms() for its next timeout,
//     then process() calls ares_process_fd for each ready socket (and once with none, which
//     runs the timeouts). Answers are parsed with ares_parse_a/aaaa_reply and their TTLs.

#include "sbx/net/resolver.hpp"

#include "sbx/util/error.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>

namespace sbx::net {

namespace {

constexpr int k_max_answers = 32;
constexpr std::uint32_t k_nodata_ttl_s = 60;  // a NOERROR answer without records has no TTL to copy

ares_channel channel_of(void* p) {
    return static_cast<ares_channel>(p);
}

}  // namespace

struct Resolver::Query {
    Resolver* self = nullptr;
    std::uint32_t token = 0;
    std::uint16_t qtype = 0;
};

Resolver::Resolver(const std::filesystem::path& resolv_conf, ResolverSink& sink) : m_sink(sink) {
    static const int lib = ares_library_init(ARES_LIB_INIT_ALL);
    if (lib != ARES_SUCCESS) {
        throw Error(fmt::format("c-ares: cannot initialise: {}", ares_strerror(lib)));
    }
    if (::access(resolv_conf.c_str(), R_OK) != 0) {
        throw_errno(fmt::format("cannot read the resolver configuration {}", resolv_conf.string()), errno);
    }
    std::string path = resolv_conf.string();
    std::string lookups = "b";
    ares_options opts{};
    opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    opts.timeout = k_timeout_ms;
    opts.tries = k_tries;
    opts.lookups = lookups.data();
    opts.resolvconf_path = path.data();
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS | ARES_OPT_RESOLVCONF;
    ares_channel ch = nullptr;
    int rc = ares_init_options(&ch, &opts, mask);
    if (rc != ARES_SUCCESS) {
        throw Error(fmt::format("c-ares: cannot start a resolver on {}: {}", path, ares_strerror(rc)),
                    {"check that the file is a readable resolv.conf with nameserver lines"});
    }
    m_channel = ch;
}

Resolver::~Resolver() {
    if (m_channel) {
        // Pending callbacks run with ARES_EDESTRUCTION and free their records.
        ares_destroy(channel_of(m_channel));
    }
}

std::string Resolver::servers_text() const {
    ares_addr_port_node* servers = nullptr;
    std::string out;
    if (ares_get_servers_ports(channel_of(m_channel), &servers) != ARES_SUCCESS) {
        return "(unknown)";
    }
    for (auto* s = servers; s; s = s->next) {
        char buf[INET6_ADDRSTRLEN] = {};
        ::inet_ntop(s->family, &s->addr, buf, sizeof buf);
        if (!out.empty()) {
            out += ", ";
        }
        out += s->family == AF_INET6 ? fmt::format("[{}]:{}", buf, s->udp_port ? s->udp_port : 53)
                                     : fmt::format("{}:{}", buf, s->udp_port ? s->udp_port : 53);
    }
    ares_free_data(servers);
    return out.empty() ? "(none)" : out;
}

void Resolver::lookup(std::uint32_t token, std::string_view name, std::uint16_t qtype) {
    auto* q = new Query{this, token, qtype};
    std::string n(name);
    ++m_in_flight;
    ares_query(channel_of(m_channel), n.c_str(), ns_c_in, qtype == 28 ? ns_t_aaaa : ns_t_a,
               &Resolver::on_answer, q);
}

void Resolver::on_answer(void* arg, int status, int, unsigned char* abuf, int alen) {
    auto* q = static_cast<Query*>(arg);
    Resolver* self = q->self;
    std::uint32_t token = q->token;
    std::uint16_t qtype = q->qtype;
    delete q;
    --self->m_in_flight;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        return;
    }
    if (status == ARES_ENOTFOUND) {
        self->m_sink.failed(token, true);
        return;
    }
    if (status == ARES_ENODATA) {
        self->m_sink.resolved(token, {}, k_nodata_ttl_s);
        return;
    }
    if (status != ARES_SUCCESS || !abuf || alen <= 0) {
        self->m_sink.failed(token, false);
        return;
    }
    std::array<IpAddr, k_max_answers> addrs;
    int n = k_max_answers;
    std::uint32_t ttl = 0;
    int rc;
    if (qtype == 28) {
        std::array<ares_addr6ttl, k_max_answers> v6{};
        rc = ares_parse_aaaa_reply(abuf, alen, nullptr, v6.data(), &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n; ++i) {
            auto& a = v6[static_cast<std::size_t>(i)];
            std::array<std::uint8_t, 16> b{};
            std::memcpy(b.data(), &a.ip6addr, 16);
            addrs[static_cast<std::size_t>(i)] = IpAddr::v6(b);
            auto t = static_cast<std::uint32_t>(a.ttl < 0 ? 0 : a.ttl);
            ttl = i == 0 ? t : std::min(ttl, t);
        }
    } else {
        std::array<ares_addrttl, k_max_answers> v4{};
        rc = ares_parse_a_reply(abuf, alen, nullptr, v4.data(), &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n; ++i) {
            auto& a = v4[static_cast<std::size_t>(i)];
            addrs[static_cast<std::size_t>(i)] = IpAddr::v4(ntohl(a.ipaddr.s_addr));
            auto t = static_cast<std::uint32_t>(a.ttl < 0 ? 0 : a.ttl);
            ttl = i == 0 ? t : std::min(ttl, t);
        }
    }
    if (rc == ARES_ENODATA) {
        self->m_sink.resolved(token, {}, k_nodata_ttl_s);
        return;
    }
    if (rc != ARES_SUCCESS || n < 0) {
        self->m_sink.failed(token, false);
        return;
    }
    self->m_sink.resolved(token, std::span<const IpAddr>(addrs.data(), static_cast<std::size_t>(n)), ttl);
}

void Resolver::fill(std::vector<pollfd>& fds, std::size_t& first, std::size_t& count) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(channel_of(m_channel), socks, ARES_GETSOCK_MAXNUM);
    first = fds.size();
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        short events = 0;
        if (ARES_GETSOCK_READABLE(bits, i)) {
            events = static_cast<short>(events | POLLIN);
        }
        if (ARES_GETSOCK_WRITABLE(bits, i)) {
            events = static_cast<short>(events | POLLOUT);
        }
        if (events) {
            fds.push_back(pollfd{socks[i], events, 0});
        }
    }
    count = fds.size() - first;
}

std::optional<int> Resolver::timeout_ms() const {
    timeval tv{};
    if (!ares_timeout(channel_of(m_channel), nullptr, &tv)) {
        return std::nullopt;
    }
    return static_cast<int>(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

void Resolver::process(const std::vector<pollfd>& fds, std::size_t first, std::size_t count) {
    bool any = false;
    for (std::size_t i = first; i < first + count && i < fds.size(); ++i) {
        const auto& p = fds[i];
        if (p.revents == 0) {
            continue;
        }
        any = true;
        bool readable = (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
        bool writable = (p.revents & POLLOUT) != 0;
        ares_process_fd(channel_of(m_channel), readable ? p.fd : ARES_SOCKET_BAD,
                        writable ? p.fd : ARES_SOCKET_BAD);
    }
    if (!any && m_in_flight > 0) {
        ares_process_fd(channel_of(m_channel), ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
    }
}

}  // namespace sbx::net
