// netd's event loop. Theory of operation:
//
//   One thread, one poll() per turn over: a signalfd (SIGTERM/SIGINT/SIGHUP: clean exit), the
//   listening socket until QEMU connects and then QEMU's socket, c-ares's sockets, the two
//   flow engines' epoll descriptors (every host socket of every flow and forward is in one of
//   them) and the netlink socket that follows the host's own addresses (host_watch.hpp:
//   opened and first read before the sandbox, which allows no new netlink socket; changes are
//   applied to the Filter before the turn's guest frames, and lost notifications are read
//   again with a dump over the same socket). The poll timeout is the nearest of the engines'
//   next timer scans, c-ares's timeout and the 1 s housekeeping tick.
//
//   Guest -> host: bulk reads (up to k_reads_per_turn per turn) into the Deframer's buffer
//   (k_in_buffer bytes); every complete frame goes to Filter::on_guest_frame. A frame that
//   passes goes to the TCP engine (tcp_engine.hpp: connections the guest opens and the
//   guest's side of forwards), the datagram engine (datagram_engine.hpp: UDP, ICMP echo) or,
//   for ARP and IPv6 neighbour solicitation, to neighbour.hpp, which answers for the
//   addresses netd stands for; anything else that passes (router solicitations, MLD) has
//   nobody to answer it. A frame the Filter refuses goes back as its reply (RST, ICMP
//   unreachable, DNS answer), nowhere (drop), or to the resolver (dns_lookup; the answer
//   frame comes back through Filter::complete_dns/fail_dns when c-ares finishes). A corrupt
//   length prefix ends the connection and netd (exit 1): the stream cannot be
//   resynchronised.
//
//   Host -> guest: the output queue, one contiguous buffer of k_out_buffer bytes holding
//   [length][frame] records. The engines write their records into the queue's free tail
//   themselves (GuestQueue), reading socket bytes straight into place, and wait (resume())
//   when the tail is too short; netd's own frames (replies, DNS answers, neighbour answers)
//   are copied in. It is flushed with non-blocking send() at the end of each turn (and
//   early when it passes k_flush_early). When QEMU does not drain its socket, nothing more
//   is read from the host sockets (the kernel's buffers hold it, and TCP peers are slowed by
//   their windows); a netd frame that does not fit is dropped and counted. netd never
//   blocks on QEMU and never grows the queue.
//
//   Every k_tick_ms: decisions drained from the filter are appended to the decision log and,
//   when any counter changed, the stats file is rewritten in place.
//
//   No allocation per frame: the input buffer, output queue, pollfd vector (reserved) and
//   decision array are sized at start-up. Only a change of the host's addresses allocates
//   (rare, host-driven; at most HostAddresses::k_max_addresses, 4096, are followed).

#include "sbx/net/netd.hpp"

#include "sbx/net/craft.hpp"
#include "sbx/net/datagram_engine.hpp"
#include "sbx/net/deframer.hpp"
#include "sbx/net/engine_io.hpp"
#include "sbx/net/filter.hpp"
#include "sbx/net/host_watch.hpp"
#include "sbx/net/neighbour.hpp"
#include "sbx/net/net_log.hpp"
#include "sbx/net/resolver.hpp"
#include "sbx/net/sandbox.hpp"
#include "sbx/net/tcp_engine.hpp"
#include "sbx/util/error.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

namespace sbx::net {

namespace {

constexpr std::size_t k_in_buffer = 1u << 20;      // deframer buffer: bulk reads up to ~1 MiB
constexpr std::size_t k_out_buffer = 4u << 20;     // output queue toward QEMU
constexpr std::size_t k_flush_early = 256u << 10;  // flush mid-turn once this much is queued
constexpr int k_reads_per_turn = 16;               // then let the host sockets and c-ares run
constexpr std::uint64_t k_tick_ms = 1000;
constexpr std::uint8_t k_neighbour_solicitation = 135;  // ICMPv6 type: neighbour.hpp answers it
constexpr int k_socket_buffer = 4 << 20;  // asked of the kernel for QEMU's socket
constexpr std::size_t k_own_descriptors = 256;  // netd's own: QEMU, logs, resolver, forwards, epoll

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return m_fd; }
    void reset(int fd = -1) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = fd;
    }

private:
    int m_fd = -1;
};

// Whether this host lets netd open unprivileged ICMP sockets (net.ipv4.ping_group_range).
bool ping_sockets_work() {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (fd < 0) {
        return false;
    }
    ::close(fd);
    return true;
}

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

class Netd final : public ResolverSink, public GuestQueue, public HostFlows {
public:
    explicit Netd(NetdConfig config);
    int run();

    void resolved(std::uint32_t token, std::span<const IpAddr> addrs, std::uint32_t ttl_s) noexcept override;
    void failed(std::uint32_t token, bool nxdomain) noexcept override;
    MutBytes tail_space() noexcept override;
    void advance(std::size_t bytes, std::size_t frames) noexcept override;
    void host_opened(const FlowKey& key) noexcept override { m_filter.host_opened(key, m_now); }
    void host_closed(const FlowKey& key) noexcept override { m_filter.host_closed(key); }

private:
    void listen_socket();
    void accept_qemu();
    bool read_guest();  // false: the connection is over
    void handle_guest_frame(std::span<const std::byte> frame) noexcept;
    void enqueue(std::span<const std::byte> frame) noexcept;
    void flush() noexcept;
    void tick(bool force) noexcept;
    int poll_timeout() const;

    std::filesystem::path m_socket;
    DecisionLog m_log;
    StatsFile m_stats;
    DeniedFile m_denied;
    std::uint64_t m_denied_written = 0;  // Filter::denied_changes() at the last write
    Filter m_filter;
    std::unique_ptr<TcpEngine> m_tcp;
    std::unique_ptr<DatagramEngine> m_dgram;
    std::unique_ptr<Resolver> m_resolver;
    std::unique_ptr<HostAddressWatch> m_host;
    Deframer m_in{k_in_buffer};
    std::unique_ptr<std::byte[]> m_out;
    std::size_t m_out_head = 0, m_out_tail = 0;
    Fd m_listen, m_qemu, m_signals;
    std::vector<pollfd> m_fds;
    std::vector<Decision> m_decisions;
    RuntimeCounters m_runtime;
    Counters m_last_counters{};
    RuntimeCounters m_last_runtime{};
    bool m_stats_written = false;
    std::uint64_t m_now = 0;
    std::uint64_t m_next_tick = 0;
    bool m_qemu_gone = false;
    bool m_stream_error = false;
    MacAddr m_guest_mac{};
    GuestNet m_net;
    std::array<std::byte, k_max_crafted_frame> m_scratch{};
};

// The policy moves into the Filter, which keeps only its compiled form: with 10 000 rules a
// copy of the rule list costs megabytes.
Netd::Netd(NetdConfig config)
    : m_socket(config.socket),
      m_log(config.decision_log.empty() ? DecisionLog{} : DecisionLog(config.decision_log)),
      m_stats(config.stats.empty() ? StatsFile{} : StatsFile(config.stats)),
      m_denied(config.denied.empty() ? DeniedFile{} : DeniedFile(config.denied)),
      m_filter(std::move(config.policy), config.guest, config.limits),
      m_out(new std::byte[k_out_buffer]),
      m_decisions(config.limits.decisions),
      m_net(config.guest) {
    m_now = monotonic_ms();
    m_host = std::make_unique<HostAddressWatch>(m_filter);
    std::fprintf(stderr, "netd: %zu host interface addresses closed to the guest (followed as they change)\n",
                 m_filter.host_addresses().size());
    m_tcp = std::make_unique<TcpEngine>(config.guest, config.limits.flows, *this, this);
    m_dgram = std::make_unique<DatagramEngine>(config.guest, config.limits.flows, *this, this);
    for (const auto& f : config.forwards) {
        if (f.proto == Proto::tcp) {
            m_tcp->add_forward(f);
        } else {
            m_dgram->add_forward(f);
        }
    }
    m_resolver = std::make_unique<Resolver>(config.resolv_conf, *this);
    m_fds.reserve(4096);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    ::sigprocmask(SIG_BLOCK, &mask, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    m_signals.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    if (m_signals.get() < 0) {
        throw_errno("netd: signalfd", errno);
    }
    listen_socket();
}

// Listens on a temporary name, then renames it into place: the configured path appears
// only once netd can serve it (netd_socket_ready()).
void Netd::listen_socket() {
    const std::string path = m_socket.string();
    std::string tmp = (m_socket.parent_path() / fmt::format(".netd{}.sock", ::getpid())).string();
    if (tmp.size() > 107) {
        tmp = path;  // no room for a temporary name: bind in place
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        throw_errno(fmt::format("cannot remove the stale socket {}", path), errno);
    }
    ::unlink(tmp.c_str());
    m_listen.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (m_listen.get() < 0) {
        throw_errno("netd: socket", errno);
    }
    auto addr = unix_address(tmp);
    mode_t old = ::umask(077);
    int rc = ::bind(m_listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::umask(old);
    if (rc != 0) {
        throw_errno(fmt::format("cannot listen on {}", tmp), err);
    }
    if (::listen(m_listen.get(), 1) != 0) {
        throw_errno(fmt::format("cannot listen on {}", tmp), errno);
    }
    if (tmp != path && ::rename(tmp.c_str(), path.c_str()) != 0) {
        err = errno;
        ::unlink(tmp.c_str());
        throw_errno(fmt::format("cannot rename {} to {}", tmp, path), err);
    }
}

void Netd::accept_qemu() {
    int fd = ::accept4(m_listen.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        return;  // EAGAIN, or the client gave up: keep listening
    }
    m_qemu.reset(fd);
    m_listen.reset();  // exactly one client: later connections are refused
    int size = k_socket_buffer;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    std::fprintf(stderr, "netd: guest connected\n");
}

bool Netd::read_guest() {
    for (int i = 0; i < k_reads_per_turn; ++i) {
        auto space = m_in.write_space();
        if (space.empty()) {
            return !m_in.failed();
        }
        ssize_t n = ::read(m_qemu.get(), space.data(), space.size());
        if (n == 0) {
            return false;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        m_in.commit(static_cast<std::size_t>(n));
        m_now = monotonic_ms();
        for (;;) {
            auto next = m_in.next();
            if (next.status == Deframer::Status::frame) {
                handle_guest_frame(next.frame);
                continue;
            }
            if (next.status == Deframer::Status::error) {
                ++m_runtime.stream_errors;
                m_stream_error = true;
                return false;
            }
            break;
        }
        m_tcp->flush_acks();  // one ACK per flow for what this read brought
        if (static_cast<std::size_t>(n) < space.size()) {
            break;  // drained for now
        }
        if (m_out_tail - m_out_head >= k_flush_early) {
            flush();
        }
    }
    return true;
}

void Netd::handle_guest_frame(std::span<const std::byte> frame) noexcept {
    auto r = m_filter.on_guest_frame(frame, m_now);
    switch (r.kind) {
        case GuestFrameResult::Kind::pass: {
            // The guest's MAC is learnt from what it sends: the engines address the
            // frames it originates (a forward's SYN) to it.
            if (MacAddr mac{}; guest_mac_of(frame, mac) && mac != m_guest_mac) {
                m_guest_mac = mac;
                m_tcp->set_macs(m_guest_mac, k_netd_mac);
                m_dgram->set_macs(m_guest_mac, k_netd_mac);
            }
            Packet p = parse_packet(frame);
            if (p.kind == Packet::Kind::ip && p.protocol == k_ipproto_tcp) {
                m_tcp->guest_segment(frame, p, m_now);  // not the engine's: a stray segment, dropped
            } else if (p.kind == Packet::Kind::ip &&
                       (p.protocol == k_ipproto_udp || p.protocol == k_ipproto_icmp ||
                        (p.protocol == k_ipproto_icmpv6 && p.icmp_type != k_neighbour_solicitation))) {
                m_dgram->guest_datagram(frame, p, m_now);
            } else if (std::size_t n = answer_neighbour(m_scratch, frame, m_net, m_net.guest6); n > 0) {
                enqueue(Bytes(m_scratch.data(), n));
            }
            break;
        }
        case GuestFrameResult::Kind::drop:
            break;
        case GuestFrameResult::Kind::reply:
            enqueue(r.reply);
            break;
        case GuestFrameResult::Kind::dns_lookup:
            try {
                m_resolver->lookup(r.lookup.token, r.lookup.name, r.lookup.qtype);
            } catch (...) {
                auto f = m_filter.fail_dns(r.lookup.token, false, m_now);
                enqueue(f);
            }
            break;
    }
}

void Netd::resolved(std::uint32_t token, std::span<const IpAddr> addrs, std::uint32_t ttl_s) noexcept {
    enqueue(m_filter.complete_dns(token, addrs, ttl_s, m_now));
}

void Netd::failed(std::uint32_t token, bool nxdomain) noexcept {
    enqueue(m_filter.fail_dns(token, nxdomain, m_now));
}

void Netd::enqueue(std::span<const std::byte> frame) noexcept {
    if (frame.empty()) {
        return;
    }
    if (m_qemu.get() < 0 || frame.size() > Deframer::k_max_frame) {
        ++m_runtime.out_dropped;
        return;
    }
    std::size_t need = Deframer::k_header + frame.size();
    if (m_out_tail + need > k_out_buffer && m_out_head > 0) {
        std::memmove(m_out.get(), m_out.get() + m_out_head, m_out_tail - m_out_head);
        m_out_tail -= m_out_head;
        m_out_head = 0;
    }
    if (m_out_tail + need > k_out_buffer) {
        ++m_runtime.out_dropped;
        return;
    }
    auto prefix = stream_prefix(frame.size());
    std::memcpy(m_out.get() + m_out_tail, prefix.data(), prefix.size());
    std::memcpy(m_out.get() + m_out_tail + prefix.size(), frame.data(), frame.size());
    m_out_tail += need;
}

MutBytes Netd::tail_space() noexcept {
    if (m_qemu.get() < 0) {
        return {};
    }
    if (m_out_head > 0 && m_out_head == m_out_tail) {
        m_out_head = m_out_tail = 0;
    } else if (m_out_head > 0 && k_out_buffer - m_out_tail < k_out_buffer / 4) {
        std::memmove(m_out.get(), m_out.get() + m_out_head, m_out_tail - m_out_head);
        m_out_tail -= m_out_head;
        m_out_head = 0;
    }
    return MutBytes(m_out.get() + m_out_tail, k_out_buffer - m_out_tail);
}

void Netd::advance(std::size_t bytes, std::size_t frames) noexcept {
    m_out_tail += bytes;
    m_filter.count_host_frames(frames, bytes - frames * Deframer::k_header);
}

void Netd::flush() noexcept {
    while (m_out_head < m_out_tail && m_qemu.get() >= 0) {
        ssize_t n = ::send(m_qemu.get(), m_out.get() + m_out_head, m_out_tail - m_out_head,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            m_out_head += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        m_qemu_gone = true;  // EPIPE, ECONNRESET: QEMU went away
        return;
    }
    if (m_out_head == m_out_tail) {
        m_out_head = m_out_tail = 0;
    }
}

void Netd::tick(bool force) noexcept {
    if (!force && m_now < m_next_tick) {
        return;
    }
    m_next_tick = m_now + k_tick_ms;
    m_host->tick();
    auto wall = wall_ms();
    for (;;) {
        std::size_t n = m_filter.drain_decisions(m_decisions);
        if (n == 0) {
            break;
        }
        m_log.append(std::span<const Decision>(m_decisions.data(), n), m_now, wall);
        if (n < m_decisions.size()) {
            break;
        }
    }
    const TcpEngineStats& t = m_tcp->stats();
    m_runtime.tcp_open = m_tcp->open_flows();
    m_runtime.tcp_failed = t.connect_failed + t.table_full + t.forward_refused;
    m_runtime.tcp_resets = t.guest_resets + t.host_resets + t.timeouts;
    m_runtime.tcp_retransmits = t.retransmits;
    const DatagramEngineStats& d = m_dgram->stats();
    m_runtime.datagram_open = m_dgram->open_flows();
    m_runtime.datagram_dropped = d.table_full + d.socket_failed + d.send_errors + d.ping_unavailable + d.oversize;
    m_runtime.dns_in_flight = m_resolver->in_flight();
    const Counters& c = m_filter.counters();
    bool changed = std::memcmp(&c, &m_last_counters, sizeof c) != 0 ||
                   std::memcmp(&m_runtime, &m_last_runtime, sizeof m_runtime) != 0;
    if (changed || !m_stats_written) {
        m_stats.write(c, m_runtime, wall);
        if (m_filter.denied_changes() != m_denied_written) {
            m_denied.write(m_filter.denied_destinations(), c.denied_unlisted, m_now, wall);
            m_denied_written = m_filter.denied_changes();
        }
        m_last_counters = c;
        m_last_runtime = m_runtime;
        m_stats_written = true;
    }
}

int Netd::poll_timeout() const {
    std::uint64_t timeout = k_tick_ms;
    if (m_next_tick > m_now) {
        timeout = std::min<std::uint64_t>(timeout, m_next_tick - m_now);
    } else {
        timeout = 0;
    }
    for (auto t : {m_tcp->next_deadline(), m_dgram->next_deadline()}) {
        if (t) {
            timeout = std::min<std::uint64_t>(timeout, *t > m_now ? *t - m_now : 0);
        }
    }
    if (auto t = m_resolver->timeout_ms()) {
        timeout = std::min<std::uint64_t>(timeout, static_cast<std::uint64_t>(std::max(*t, 0)));
    }
    return static_cast<int>(timeout);
}

int Netd::run() {
    m_now = monotonic_ms();
    tick(true);
    for (;;) {
        m_fds.clear();
        m_fds.push_back(pollfd{m_signals.get(), POLLIN, 0});
        if (m_qemu.get() >= 0) {
            short ev = POLLIN;
            if (m_out_tail > m_out_head) {
                ev = static_cast<short>(ev | POLLOUT);
            }
            m_fds.push_back(pollfd{m_qemu.get(), ev, 0});
        } else {
            m_fds.push_back(pollfd{m_listen.get(), POLLIN, 0});
        }
        const std::size_t tcp_slot = m_fds.size();
        m_fds.push_back(pollfd{m_tcp->fd(), POLLIN, 0});
        m_fds.push_back(pollfd{m_dgram->fd(), POLLIN, 0});
        const std::size_t host_slot = m_fds.size();
        m_fds.push_back(pollfd{m_host->fd(), POLLIN, 0});
        std::size_t ares_first = 0, ares_count = 0;
        m_resolver->fill(m_fds, ares_first, ares_count);

        int rc = ::poll(m_fds.data(), m_fds.size(), poll_timeout());
        if (rc < 0) {
            for (auto& p : m_fds) {
                p.revents = 0;
            }
        }
        m_now = monotonic_ms();

        if (m_fds[0].revents & POLLIN) {
            signalfd_siginfo si{};
            if (::read(m_signals.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
                std::fprintf(stderr, "netd: signal %u, stopping\n", si.ssi_signo);
                tick(true);
                return 0;
            }
        }
        // Before the guest's frames: one to an address the host just gained is decided with
        // the new set.
        if (m_fds[host_slot].revents & (POLLIN | POLLERR)) {
            m_host->process();
        }
        short qrev = m_fds[1].revents;
        if (m_qemu.get() < 0) {
            if (qrev & POLLIN) {
                accept_qemu();
            }
        } else {
            if (qrev & (POLLIN | POLLHUP | POLLERR)) {
                if (!read_guest()) {
                    m_qemu_gone = true;
                }
            }
        }
        m_resolver->process(m_fds, ares_first, ares_count);
        m_now = monotonic_ms();
        if (m_fds[tcp_slot].revents & POLLIN) {
            m_tcp->process(m_now);
        }
        if (m_fds[tcp_slot + 1].revents & POLLIN) {
            m_dgram->process(m_now);
        }
        m_tcp->timers(m_now);
        m_dgram->timers(m_now);
        flush();
        m_tcp->resume(m_now);
        m_dgram->resume(m_now);
        tick(false);
        if (m_stream_error) {
            tick(true);
            std::fprintf(stderr,
                         "netd: the guest stream is corrupt (a length prefix no frame can have); "
                         "closing it\n");
            return 1;
        }
        if (m_qemu_gone) {
            tick(true);
            std::fprintf(stderr, "netd: the guest disconnected, exiting\n");
            return 0;
        }
    }
}

std::string policy_summary(const NetdConfig& c) {
    std::string mode = c.policy.mode == Mode::allowlist ? "allowlist"
                       : c.policy.mode == Mode::open    ? "open"
                                                        : "none";
    std::string fw;
    for (const auto& f : c.forwards) {
        fw += fmt::format("{}127.0.0.1:{}->{}/{}", fw.empty() ? "" : ", ", f.host_port, f.guest_port,
                          to_string(f.proto));
    }
    return fmt::format("policy {} ({} rules, {} host ports{}), forwards: {}", mode, c.policy.rules.size(),
                       c.policy.host_ports.size(), c.policy.learn ? ", learn mode" : "",
                       fw.empty() ? "none" : fw);
}

// Every flow is a host socket (a terminated TCP flow a socketpair, two). The two engines'
// tables bound how many a guest holds, each to the flow table's size; the descriptor limit
// is set to both tables' worth plus room for netd's own descriptors, within the hard limit
// (the usual soft limit of 1024 would let a guest open only ~1000 connections). A table that
// fills first refuses new flows with a RST; a descriptor limit reached first refuses them the
// same way (socket() fails).
void set_descriptor_limit(std::size_t flows) {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return;
    }
    rlim_t want = 2 * static_cast<rlim_t>(flows) + k_own_descriptors;
    if (lim.rlim_max != RLIM_INFINITY && want > lim.rlim_max) {
        want = lim.rlim_max;
    }
    if (want != lim.rlim_cur) {
        const rlim_t before = lim.rlim_cur;
        lim.rlim_cur = want;
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            std::fprintf(stderr, "netd: cannot set the descriptor limit to %llu: %s\n",
                         static_cast<unsigned long long>(want), std::strerror(errno));
            lim.rlim_cur = before;
        }
    }
    std::fprintf(stderr, "netd: at most %llu descriptors (guest connections and netd's own)\n",
                 static_cast<unsigned long long>(lim.rlim_cur));
}

}  // namespace

int run_netd(NetdConfig config) {
    set_descriptor_limit(config.limits.flows);
    const std::string summary = policy_summary(config);
    Netd netd(std::move(config));
    // Reading the config (its JSON tree, the rule list) left freed heap behind: give it back.
    ::malloc_trim(0);
    std::fprintf(stderr, "netd: %s\n", summary.c_str());
    // Everything that needs root is done: the forwards are bound (any port), the socket, the
    // log and the stats file are open (written through those descriptors, never reopened).
    if (auto root = drop_root(); root.dropped) {
        std::fprintf(stderr, "netd: dropped root: uid %u, gid %u, no capabilities%s\n",
                     static_cast<unsigned>(root.uid), static_cast<unsigned>(root.gid),
                     root.bounding_cleared ? "" : " (the bounding set is kept: no CAP_SETPCAP)");
    }
    // Asked as the group netd runs as from here on.
    if (!ping_sockets_work()) {
        std::fprintf(stderr,
                     "netd: ICMP echo (ping) is off: this host's net.ipv4.ping_group_range does not include "
                     "netd's group %u; allowed echo requests are dropped\n",
                     static_cast<unsigned>(::getgid()));
    }
    auto sandbox = enter_sandbox();
    std::fprintf(stderr, "netd: sandboxed (no new privileges, seccomp allowlist of %zu rules)\n",
                 sandbox.allowed_syscalls);
    std::fprintf(stdout, "%.*s\n", static_cast<int>(k_netd_ready_line.size()), k_netd_ready_line.data());
    std::fflush(stdout);
    return netd.run();
}

std::vector<std::string> netd_argv(const std::filesystem::path& sbx_exe,
                                   const std::filesystem::path& config) {
    return {sbx_exe.string(), "_netd", "--config", config.string()};
}

bool netd_socket_ready(const std::filesystem::path& socket) {
    struct stat st {};
    return ::lstat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace sbx::net
