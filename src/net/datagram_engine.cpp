// The datagram engine: UDP and ICMP echo.
//
// Theory of operation. There is no stack here: the host kernel's sockets do all of it, in
// passt's model of one host socket per guest flow.
//
//   UDP, guest -> host: a datagram the Filter allowed is keyed by (guest address, guest port,
//   destination address, destination port). The first one opens a non-blocking UDP socket
//   connect()ed to the destination (10.0.2.2 and fec0::2 mean the host's loopback); every
//   datagram on the key is one send(). A connected socket receives only from its peer, so
//   nothing from a third party ever reaches the guest through it.
//
//   UDP, host -> guest: the socket is read with one recv() per datagram straight into a QEMU
//   stream record in netd's output queue, at the payload's place; the Ethernet, IP and UDP
//   headers are then written in front of it (from the destination to the guest, with the
//   MACs of the guest's first frame). A datagram bigger than the guest's MTU allows
//   (MSG_TRUNC tells) is dropped and counted: netd does not fragment. When the queue's tail
//   cannot hold a maximal datagram the read is a MSG_PEEK first: a datagram that does not
//   fit stays in the socket and the flow waits for resume(). ECONNREFUSED (the peer's port
//   unreachable) is counted and becomes an ICMP port unreachable to the guest.
//
//   UDP forwards ([[forward]] proto = "udp"): one unconnected socket bound to
//   127.0.0.1:host_port. A datagram from a host peer 127.0.0.1:P becomes a frame from
//   10.0.2.2:P to the guest's guest_port, and a flow (guest:guest_port <-> 10.0.2.2:P) that
//   HostFlows::host_opened() reports to the Filter; the guest's datagrams on that tuple go
//   back with sendto(peer) on the forward's socket. IPv4 only, as libslirp's forwards.
//
//   ICMP echo: one unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP / IPPROTO_ICMPV6) per
//   (guest address, destination, echo identifier). The guest's ICMP header and payload are
//   sent as written; the kernel sets its own identifier and checksum, so a reply gets the
//   guest's identifier back and a new checksum. Without ping sockets (net.ipv4.ping_group_range
//   excludes netd's group) echo requests are dropped and counted.
//
//   Timers: a flow is freed (socket closed, host_closed() for a forward's) once idle, in
//   either direction, for k_udp_idle_ms (UDP) or k_icmp_idle_ms (echo). timers() walks the
//   open flows every k_scan_ms, so a flow lives at most k_scan_ms beyond its timeout.
//
// Limits: `capacity` flows, fixed; a datagram for a new flow when all are taken is dropped
// and counted (open flows are unaffected). At most k_max_datagrams_per_read datagrams per
// socket per turn; a socket with more waits for resume() (fairness between flows).
//
// Memory: `capacity` Flow entries and an open-addressed index of 2 * capacity slots (power of
// two, linear probing from a seeded hash of the packed 5-tuple, backward-shift deletion),
// allocated at construction; frames are built in place in netd's output queue, so the
// per-datagram path allocates nothing. Every guest length is checked against the frame
// before it is used.

#include "sbx/net/datagram_engine.hpp"

#include "sbx/net/craft.hpp"
#include "sbx/net/deframer.hpp"
#include "sbx/net/filter.hpp"
#include "sbx/util/error.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

namespace sbx::net {

namespace {

constexpr std::size_t k_eth = EthernetView::k_size;
constexpr std::size_t k_udp_hdr = 8;
constexpr std::size_t k_icmp_hdr = 8;
constexpr int k_epoll_batch = 256;
constexpr std::uint64_t k_forward_tag = 1ull << 63;  // epoll data: a forward's socket, not a flow

// libslirp's and QEMU's defaults, used until the guest has sent a frame (a forward's first
// datagram may come before that).
constexpr MacAddr k_default_guest_mac = {std::byte{0x52}, std::byte{0x54}, std::byte{0x00},
                                         std::byte{0x12}, std::byte{0x34}, std::byte{0x56}};
constexpr MacAddr k_default_our_mac = {std::byte{0x52}, std::byte{0x55}, std::byte{0x0a},
                                       std::byte{0x00}, std::byte{0x02}, std::byte{0x02}};

bool is_group(const MacAddr& m) noexcept {
    return (std::to_integer<unsigned>(m[0]) & 1u) != 0;
}

constexpr std::size_t ip_len(bool v6) noexcept {
    return v6 ? 40 : 20;
}

enum class Kind : std::uint8_t { free, udp, forward, echo };

struct Flow {
    PackedFlowKey key{};
    std::uint32_t hash = 0;
    int fd = -1;  // udp, echo: the flow's socket; forward: -1 (the forward's socket is used)
    Kind kind = Kind::free;
    bool v6 = false;          // frames toward the guest are IPv6
    bool waiting_room = false;  // on the resume list (kept across reuse: the list holds the slot once)
    std::uint16_t forward = 0;  // forward: index into Impl::forwards
    std::uint16_t guest_port = 0, remote_port = 0;  // echo: the guest's identifier, 0
    std::uint32_t generation = 0;
    std::uint32_t pos = 0;  // in Impl::active
    IpAddr guest_ip, remote_ip;
    MacAddr guest_mac{}, our_mac{};
    sockaddr_in peer{};  // forward: the host peer
    Millis last_active = 0;
};

struct Forward {
    int fd = -1;
    std::uint16_t host_port = 0, guest_port = 0;
    bool waiting_room = false;
};

FlowKey key_of(std::uint8_t protocol, const IpAddr& guest, std::uint16_t guest_port, const IpAddr& remote,
               std::uint16_t remote_port) noexcept {
    return FlowKey{guest, remote, guest_port, remote_port, protocol};
}

// One datagram out of the socket after a MSG_PEEK took a copy.
void discard(int fd) noexcept {
    std::byte b;
    ssize_t n = ::recv(fd, &b, 0, MSG_DONTWAIT | MSG_TRUNC);
    (void)n;
}

}  // namespace

struct DatagramEngine::Impl {
    GuestNet net;
    GuestQueue& out;
    HostFlows* host_flows;
    std::vector<Flow> flows;
    std::vector<std::uint32_t> free_list;
    std::vector<std::int32_t> index;  // flow number or -1
    std::size_t index_mask = 0;
    std::uint64_t seed = 0;
    std::vector<std::uint32_t> active;    // open flows, in no order
    std::vector<std::uint32_t> waiting;   // flow numbers; flows.size() + i for forward i
    std::vector<std::uint32_t> resuming;  // resume()'s copy of `waiting`
    std::vector<Forward> forwards;
    MacAddr guest_mac = k_default_guest_mac;  // learnt from the guest's frames
    MacAddr our_mac = k_default_our_mac;
    Millis next_scan = 0;
    int epfd = -1;
    std::size_t open = 0;
    DatagramEngineStats stats;

    Impl(const GuestNet& n, std::size_t capacity, GuestQueue& q, HostFlows* hf, std::uint64_t hash_seed)
        : net(n), out(q), host_flows(hf) {
        capacity = std::clamp<std::size_t>(capacity, 1, 1u << 30);
        flows.resize(capacity);
        free_list.reserve(capacity);
        for (std::size_t i = capacity; i > 0; --i) {
            free_list.push_back(static_cast<std::uint32_t>(i - 1));
        }
        std::size_t slots = 1;
        while (slots < capacity * 2) {
            slots <<= 1;
        }
        index.assign(slots, -1);
        index_mask = slots - 1;
        seed = hash_seed != 0 ? hash_seed : (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
        active.reserve(capacity);
        waiting.reserve(capacity);
        resuming.reserve(capacity);
        epfd = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0) {
            throw_errno("netd: epoll_create1", errno);
        }
    }

    ~Impl() {
        for (auto& f : flows) {
            if (f.fd >= 0) {
                ::close(f.fd);
            }
        }
        for (auto& fw : forwards) {
            ::close(fw.fd);
        }
        ::close(epfd);
    }

    // --- the index ----------------------------------------------------------------------

    std::uint32_t hash(const PackedFlowKey& k) const noexcept {
        const std::uint64_t s = seed;
        std::uint64_t h = ((k.w0 ^ s) * 0x9e3779b97f4a7c15ull) + ((k.w1 ^ s) * 0xc2b2ae3d27d4eb4full) +
                          ((k.w2 ^ s) * 0x165667b19e3779f9ull) + ((k.w3 ^ s) * 0xd6e8feb86659fd93ull) +
                          ((k.w4 ^ s) * 0xff51afd7ed558ccdull);
        h ^= h >> 32;
        h *= 0xd6e8feb86659fd93ull;
        return static_cast<std::uint32_t>(h >> 32);
    }

    Flow* find(const FlowKey& k) noexcept {
        PackedFlowKey key = PackedFlowKey::of(k);
        std::uint32_t h = hash(key);
        for (std::size_t i = h & index_mask;; i = (i + 1) & index_mask) {
            std::int32_t n = index[i];
            if (n < 0) {
                return nullptr;
            }
            Flow& f = flows[static_cast<std::size_t>(n)];
            if (f.hash == h && f.key == key) {
                return &f;
            }
        }
    }

    void index_insert(const Flow& f, std::uint32_t n) noexcept {
        std::size_t i = f.hash & index_mask;
        while (index[i] >= 0) {
            i = (i + 1) & index_mask;
        }
        index[i] = static_cast<std::int32_t>(n);
    }

    void index_remove(std::uint32_t n) noexcept {
        std::size_t i = flows[n].hash & index_mask;
        while (index[i] >= 0 && static_cast<std::uint32_t>(index[i]) != n) {
            i = (i + 1) & index_mask;
        }
        if (index[i] < 0) {
            return;
        }
        // Backward-shift deletion: pull later members of the cluster into the hole when their
        // home slot does not lie cyclically in (hole, j].
        std::size_t hole = i;
        for (std::size_t j = (i + 1) & index_mask; index[j] >= 0; j = (j + 1) & index_mask) {
            std::size_t home = flows[static_cast<std::size_t>(index[j])].hash & index_mask;
            bool stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (!stays) {
                index[hole] = index[j];
                hole = j;
            }
        }
        index[hole] = -1;
    }

    std::uint32_t number(const Flow& f) const noexcept { return static_cast<std::uint32_t>(&f - flows.data()); }

    FlowKey flow_key(const Flow& f) const noexcept {
        std::uint8_t protocol = f.kind == Kind::echo ? (f.v6 ? k_ipproto_icmpv6 : k_ipproto_icmp) : k_ipproto_udp;
        return key_of(protocol, f.guest_ip, f.guest_port, f.remote_ip, f.remote_port);
    }

    // --- flow life ------------------------------------------------------------------------

    // A slot for a new flow on `key`, indexed and active; nullptr when the table is full.
    Flow* allocate(const FlowKey& key, Kind kind, bool v6, Millis now) noexcept {
        if (free_list.empty()) {
            ++stats.table_full;
            return nullptr;
        }
        std::uint32_t n = free_list.back();
        free_list.pop_back();
        Flow& f = flows[n];
        std::uint32_t gen = f.generation;
        bool waiting_room = f.waiting_room;
        f = Flow{};
        f.generation = gen;
        f.waiting_room = waiting_room;
        f.kind = kind;
        f.v6 = v6;
        f.key = PackedFlowKey::of(key);
        f.hash = hash(f.key);
        f.guest_ip = key.src;
        f.remote_ip = key.dst;
        f.guest_port = key.sport;
        f.remote_port = key.dport;
        f.guest_mac = guest_mac;
        f.our_mac = our_mac;
        f.last_active = now;
        index_insert(f, n);
        f.pos = static_cast<std::uint32_t>(active.size());
        active.push_back(n);
        ++open;
        ++stats.opened;
        return &f;
    }

    void release(Flow& f) noexcept {
        std::uint32_t n = number(f);
        if (f.fd >= 0) {
            ::close(f.fd);  // also leaves the epoll set
        }
        if (f.kind == Kind::forward && host_flows != nullptr) {
            host_flows->host_closed(flow_key(f));
        }
        index_remove(n);
        std::uint32_t last = active.back();
        active[f.pos] = last;
        flows[last].pos = f.pos;
        active.pop_back();
        std::uint32_t gen = f.generation + 1;
        bool waiting_room = f.waiting_room;
        f = Flow{};
        f.generation = gen;
        f.waiting_room = waiting_room;
        free_list.push_back(n);
        --open;
    }

    // Puts a socket on the resume list once.
    void wait_for_room(Flow& f) noexcept {
        if (!f.waiting_room) {
            f.waiting_room = true;
            waiting.push_back(number(f));
        }
    }
    void wait_for_room(std::size_t forward) noexcept {
        Forward& fw = forwards[forward];
        if (!fw.waiting_room) {
            fw.waiting_room = true;
            waiting.push_back(static_cast<std::uint32_t>(flows.size() + forward));
        }
    }

    bool watch(int fd, std::uint64_t data) noexcept {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;
        ev.data.u64 = data;
        return ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
    }

    // A flow with its own socket connect()ed to the destination; nullptr when it cannot be.
    Flow* open_socket_flow(const FlowKey& key, Kind kind, bool v6, Millis now) noexcept {
        if (free_list.empty()) {
            ++stats.table_full;
            return nullptr;
        }
        const SocketAddress addr = host_socket_address(net, key.dst, kind == Kind::echo ? 0 : key.dport);
        int protocol = 0;
        if (kind == Kind::echo) {
            protocol = addr.v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
        }
        int fd = ::socket(addr.v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
        if (fd < 0) {
            bool no_ping = kind == Kind::echo && (errno == EACCES || errno == EPERM || errno == EPROTONOSUPPORT ||
                                                  errno == EAFNOSUPPORT);
            ++(no_ping ? stats.ping_unavailable : stats.socket_failed);
            return nullptr;
        }
        if (::connect(fd, addr.get(), addr.len) != 0) {
            ::close(fd);
            ++stats.socket_failed;
            return nullptr;
        }
        Flow* f = allocate(key, kind, v6, now);  // not full: checked above
        f->fd = fd;
        if (!watch(fd, (std::uint64_t{f->generation} << 32) | number(*f))) {
            ++stats.socket_failed;
            release(*f);
            return nullptr;
        }
        return f;
    }

    // --- frames toward the guest ----------------------------------------------------------

    // The largest transport segment (header included) toward the guest: the MTU, and what
    // the IP length field can say.
    std::size_t max_l4(bool v6) const noexcept {
        std::size_t mtu = std::min<std::size_t>(net.mtu, 65535);
        std::size_t l4 = mtu > ip_len(v6) ? mtu - ip_len(v6) : 0;
        if (!v6) {
            l4 = std::min<std::size_t>(l4, 65535 - 20);
        }
        return std::max<std::size_t>(l4, k_udp_hdr);
    }

    // An IP header (no options; IPv4 with DF) at `o`.
    static void write_ip(std::byte* o, bool v6, const IpAddr& src, const IpAddr& dst, std::uint8_t protocol,
                         std::size_t l4_len) noexcept {
        if (v6) {
            store_be32(o, 0x60000000u);
            store_be16(o + 4, static_cast<std::uint16_t>(l4_len));
            store_u8(o + 6, protocol);
            store_u8(o + 7, k_crafted_ttl);
            std::memcpy(o + 8, src.bytes.data(), 16);
            std::memcpy(o + 24, dst.bytes.data(), 16);
            return;
        }
        store_u8(o, 0x45);
        store_u8(o + 1, 0);
        store_be16(o + 2, static_cast<std::uint16_t>(20 + l4_len));
        store_be16(o + 4, 0);
        store_be16(o + 6, 0x4000);
        store_u8(o + 8, k_crafted_ttl);
        store_u8(o + 9, protocol);
        store_be16(o + 10, 0);
        std::memcpy(o + 12, src.bytes.data() + 12, 4);
        std::memcpy(o + 16, dst.bytes.data() + 12, 4);
        store_be16(o + 10, ipv4_header_checksum(Bytes(o, 20)));
    }

    // Ethernet and IP headers from the flow's remote to the guest; returns the transport header.
    static std::byte* write_headers(std::byte* o, const Flow& f, std::uint8_t protocol, std::size_t l4_len) noexcept {
        std::memcpy(o, f.guest_mac.data(), 6);
        std::memcpy(o + 6, f.our_mac.data(), 6);
        store_be16(o + 12, f.v6 ? k_ethertype_ipv6 : k_ethertype_ipv4);
        write_ip(o + k_eth, f.v6, f.remote_ip, f.guest_ip, protocol, l4_len);
        return o + k_eth + ip_len(f.v6);
    }

    // Finishes the record at `rec` whose payload (`len` bytes) is in place; queues it.
    void emit_udp(std::byte* rec, const Flow& f, std::size_t len) noexcept {
        std::size_t l4_len = k_udp_hdr + len;
        std::byte* u = write_headers(rec + Deframer::k_header, f, k_ipproto_udp, l4_len);
        store_be16(u, f.remote_port);
        store_be16(u + 2, f.guest_port);
        store_be16(u + 4, static_cast<std::uint16_t>(l4_len));
        store_be16(u + 6, 0);
        std::uint16_t csum = transport_checksum(f.remote_ip, f.guest_ip, k_ipproto_udp, Bytes(u, l4_len), f.v6);
        store_be16(u + 6, csum == 0 ? 0xffff : csum);  // 0 would mean "no checksum" (and is invalid in IPv6)
        queue(rec, k_eth + ip_len(f.v6) + l4_len);
    }

    void queue(std::byte* rec, std::size_t frame_len) noexcept {
        auto prefix = stream_prefix(frame_len);
        std::memcpy(rec, prefix.data(), prefix.size());
        out.advance(Deframer::k_header + frame_len, 1);
        ++stats.to_guest;
    }

    // An echo reply at `m` (`len` bytes, as the ping socket gave it) for the guest: its
    // identifier back, and a new checksum. False when it is not an echo reply.
    static bool restore_echo(const Flow& f, std::byte* m, std::size_t len) noexcept {
        if (len < k_icmp_hdr || load_u8(m) != (f.v6 ? 129 : 0)) {
            return false;
        }
        store_be16(m + 4, f.guest_port);
        store_be16(m + 2, 0);
        std::uint16_t csum = f.v6 ? transport_checksum(f.remote_ip, f.guest_ip, k_ipproto_icmpv6, Bytes(m, len), true)
                                  : checksum_fold(checksum_partial(Bytes(m, len)));
        store_be16(m + 2, csum);
        return true;
    }

    // ICMP port unreachable from the flow's remote, quoting the guest's IP and UDP headers
    // (rebuilt: the datagram itself is gone), so the guest's socket gets ECONNREFUSED.
    void port_unreachable(const Flow& f) noexcept {
        const std::size_t ip = ip_len(f.v6);
        const std::size_t l4_len = k_icmp_hdr + ip + k_udp_hdr;
        const std::size_t frame_len = k_eth + ip + l4_len;
        MutBytes tail = out.tail_space();
        if (tail.size() < Deframer::k_header + frame_len) {
            return;  // errors are best effort
        }
        std::byte* rec = tail.data();
        std::uint8_t protocol = f.v6 ? k_ipproto_icmpv6 : k_ipproto_icmp;
        std::byte* m = write_headers(rec + Deframer::k_header, f, protocol, l4_len);
        store_u8(m, f.v6 ? 1 : 3);      // destination unreachable
        store_u8(m + 1, f.v6 ? 4 : 3);  // port unreachable
        store_be16(m + 2, 0);
        store_be32(m + 4, 0);
        std::byte* q = m + k_icmp_hdr;
        write_ip(q, f.v6, f.guest_ip, f.remote_ip, k_ipproto_udp, k_udp_hdr);
        store_be16(q + ip, f.guest_port);
        store_be16(q + ip + 2, f.remote_port);
        store_be16(q + ip + 4, k_udp_hdr);
        store_be16(q + ip + 6, 0);
        std::uint16_t csum = f.v6 ? transport_checksum(f.remote_ip, f.guest_ip, protocol, Bytes(m, l4_len), true)
                                  : checksum_fold(checksum_partial(Bytes(m, l4_len)));
        store_be16(m + 2, csum);
        queue(rec, frame_len);
    }

    // --- reading sockets ----------------------------------------------------------------

    // Reads a flow's socket into the queue: at most k_max_datagrams_per_read datagrams.
    void read_flow(Flow& f, Millis now) noexcept {
        const bool echo = f.kind == Kind::echo;
        // A ping socket gives the ICMP header with the payload: it is read into place too.
        const std::size_t hdr = k_eth + ip_len(f.v6) + (echo ? 0 : k_udp_hdr);
        const std::size_t max_payload = max_l4(f.v6) - (echo ? 0 : k_udp_hdr);
        for (std::size_t i = 0; i < k_max_datagrams_per_read; ++i) {
            MutBytes tail = out.tail_space();
            if (tail.size() < Deframer::k_header + hdr + (echo ? k_icmp_hdr : 0)) {
                wait_for_room(f);
                return;
            }
            std::byte* rec = tail.data();
            std::byte* payload = rec + Deframer::k_header + hdr;
            std::size_t room = std::min(tail.size() - Deframer::k_header - hdr, max_payload);
            bool peek = room < max_payload;
            ssize_t got = ::recv(f.fd, payload, room, MSG_DONTWAIT | MSG_TRUNC | (peek ? MSG_PEEK : 0));
            if (got < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return;
                }
                if (errno == EINTR) {
                    continue;
                }
                ++stats.host_errors;  // the error is consumed: more datagrams may follow
                if (errno == ECONNREFUSED && !echo) {
                    port_unreachable(f);
                }
                continue;
            }
            auto len = static_cast<std::size_t>(got);
            if (len > max_payload) {
                ++stats.oversize;
                if (peek) {
                    discard(f.fd);
                }
                continue;
            }
            if (len > room) {
                wait_for_room(f);  // it stays in the socket until the queue has room
                return;
            }
            if (peek) {
                discard(f.fd);
            }
            f.last_active = now;
            if (echo) {
                if (restore_echo(f, payload, len)) {
                    std::uint8_t protocol = f.v6 ? k_ipproto_icmpv6 : k_ipproto_icmp;
                    write_headers(rec + Deframer::k_header, f, protocol, len);
                    queue(rec, hdr + len);
                }
                continue;
            }
            emit_udp(rec, f, len);
        }
        wait_for_room(f);  // more may wait: the next turn goes on (fairness)
    }

    // Reads a forward's socket: each datagram from a host peer goes to the guest's port,
    // from 10.0.2.2 and the peer's port, on that peer's flow (opened on its first datagram).
    void read_forward(std::size_t idx, Millis now) noexcept {
        const Forward& fw = forwards[idx];
        const std::size_t hdr = k_eth + 20 + k_udp_hdr;
        const std::size_t max_payload = max_l4(false) - k_udp_hdr;
        for (std::size_t i = 0; i < k_max_datagrams_per_read; ++i) {
            MutBytes tail = out.tail_space();
            if (tail.size() < Deframer::k_header + hdr) {
                wait_for_room(idx);
                return;
            }
            std::byte* rec = tail.data();
            std::size_t room = std::min(tail.size() - Deframer::k_header - hdr, max_payload);
            bool peek = room < max_payload;
            sockaddr_in peer{};
            iovec iov{rec + Deframer::k_header + hdr, room};
            msghdr msg{};
            msg.msg_name = &peer;
            msg.msg_namelen = sizeof peer;
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            ssize_t got = ::recvmsg(fw.fd, &msg, MSG_DONTWAIT | MSG_TRUNC | (peek ? MSG_PEEK : 0));
            if (got < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    return;
                }
                if (errno != EINTR) {
                    ++stats.host_errors;
                }
                continue;
            }
            auto len = static_cast<std::size_t>(got);
            if (len > max_payload) {
                ++stats.oversize;
                if (peek) {
                    discard(fw.fd);
                }
                continue;
            }
            if (len > room) {
                wait_for_room(idx);
                return;
            }
            if (peek) {
                discard(fw.fd);
            }
            if (msg.msg_namelen < sizeof peer || peer.sin_family != AF_INET) {
                continue;
            }
            FlowKey key = key_of(k_ipproto_udp, net.guest, fw.guest_port, net.host, ntohs(peer.sin_port));
            Flow* f = find(key);
            if (f == nullptr) {
                f = allocate(key, Kind::forward, false, now);
                if (f == nullptr) {
                    continue;  // counted
                }
                f->forward = static_cast<std::uint16_t>(idx);
                f->peer = peer;
                if (host_flows != nullptr) {
                    host_flows->host_opened(key);
                }
            } else if (f->kind == Kind::forward &&
                       (f->forward != idx || f->peer.sin_addr.s_addr != peer.sin_addr.s_addr)) {
                ++stats.host_errors;  // another 127.x peer on the same port: one tuple, one peer
                continue;
            }
            f->last_active = now;
            emit_udp(rec, *f, len);
        }
        wait_for_room(idx);
    }

    // --- guest datagrams ----------------------------------------------------------------

    // The MACs for flows the host opens: the guest's unicast address and the one it sends to.
    void learn_macs(Bytes frame, Flow* f) noexcept {
        auto eth = EthernetView::of(frame);
        if (!eth) {
            return;
        }
        MacAddr src = eth->src();
        MacAddr dst = eth->dst();
        if (!is_group(src)) {
            guest_mac = src;
        }
        if (!is_group(dst)) {
            our_mac = dst;
        }
        if (f != nullptr) {
            f->guest_mac = guest_mac;
            f->our_mac = our_mac;
        }
    }

    void send_datagram(Flow& f, Bytes payload) noexcept {
        ssize_t n = 0;
        do {
            if (f.kind == Kind::forward) {
                n = ::sendto(forwards[f.forward].fd, payload.data(), payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&f.peer), sizeof f.peer);
            } else {
                n = ::send(f.fd, payload.data(), payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            }
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            ++stats.send_errors;  // UDP is lossy: the guest's application retries
            return;
        }
        ++stats.from_guest;
    }

    bool udp(Bytes frame, const Packet& p, Millis now) noexcept {
        if (p.l4_len < k_udp_hdr || p.udp_payload_offset < p.l4_offset + k_udp_hdr ||
            std::size_t{p.udp_payload_offset} + p.udp_payload_len > frame.size()) {
            return false;
        }
        FlowKey key = key_of(k_ipproto_udp, p.src, p.sport, p.dst, p.dport);
        Flow* f = find(key);
        if (f == nullptr) {
            f = open_socket_flow(key, Kind::udp, p.v6, now);
            if (f == nullptr) {
                return true;  // counted
            }
        }
        learn_macs(frame, f);
        f->last_active = now;
        send_datagram(*f, frame.subspan(p.udp_payload_offset, p.udp_payload_len));
        return true;
    }

    bool echo(Bytes frame, const Packet& p, Millis now) noexcept {
        if (p.l4_len < k_icmp_hdr) {
            return false;
        }
        std::uint8_t protocol = p.v6 ? k_ipproto_icmpv6 : k_ipproto_icmp;
        FlowKey key = key_of(protocol, p.src, p.sport, p.dst, 0);
        Flow* f = find(key);
        if (f == nullptr) {
            f = open_socket_flow(key, Kind::echo, p.v6, now);
            if (f == nullptr) {
                return true;  // counted
            }
        }
        learn_macs(frame, f);
        f->last_active = now;
        send_datagram(*f, frame.subspan(p.l4_offset, p.l4_len));
        return true;
    }
};

DatagramEngine::DatagramEngine(const GuestNet& net, std::size_t flows, GuestQueue& out, HostFlows* host_flows,
                               std::uint64_t hash_seed)
    : m_impl(std::make_unique<Impl>(net, flows, out, host_flows, hash_seed)) {}

DatagramEngine::~DatagramEngine() = default;

void DatagramEngine::add_forward(const HostForward& f) {
    Impl& m = *m_impl;
    auto fail = [&](std::string_view why) {
        return Error(fmt::format("cannot forward 127.0.0.1:{} ({}) to the guest's port {}: {}", f.host_port,
                                 to_string(f.proto), f.guest_port, why),
                     {fmt::format("find what listens there with: ss -ltnup 'sport = :{}'", f.host_port),
                      "or choose another host port in the profile's [[forward]] / [ssh] section"});
    };
    if (f.proto != Proto::udp) {
        throw fail("the datagram engine carries UDP forwards only");
    }
    if (m.forwards.size() >= 0xffff) {
        throw fail("too many forwards");
    }
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw fail(std::strerror(errno));
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(f.host_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        int err = errno;
        ::close(fd);
        throw fail(err == EADDRINUSE ? "the port is in use" : std::strerror(err));
    }
    std::size_t idx = m.forwards.size();
    if (!m.watch(fd, k_forward_tag | idx)) {
        int err = errno;
        ::close(fd);
        throw fail(std::strerror(err));
    }
    m.forwards.push_back(Forward{fd, f.host_port, f.guest_port, false});
    // The resume lists hold every flow and every forward at most once: no allocation later.
    m.waiting.reserve(m.flows.size() + m.forwards.size());
    m.resuming.reserve(m.flows.size() + m.forwards.size());
}

bool DatagramEngine::guest_datagram(Bytes frame, const Packet& p, Millis now) noexcept {
    Impl& m = *m_impl;
    if (p.kind != Packet::Kind::ip || frame.size() < k_eth || std::size_t{p.l4_offset} + p.l4_len > frame.size()) {
        return false;
    }
    if (p.protocol == k_ipproto_udp) {
        return m.udp(frame, p, now);
    }
    bool echo_request = (!p.v6 && p.protocol == k_ipproto_icmp && p.icmp_type == 8) ||
                        (p.v6 && p.protocol == k_ipproto_icmpv6 && p.icmp_type == 128);
    if (echo_request && p.icmp_code == 0) {
        return m.echo(frame, p, now);
    }
    return false;
}

int DatagramEngine::fd() const noexcept {
    return m_impl->epfd;
}

void DatagramEngine::process(Millis now) noexcept {
    Impl& m = *m_impl;
    std::array<epoll_event, k_epoll_batch> events;
    for (int round = 0; round < 4; ++round) {
        int n = ::epoll_wait(m.epfd, events.data(), k_epoll_batch, 0);
        if (n <= 0) {
            return;
        }
        for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
            std::uint64_t data = events[i].data.u64;
            if ((data & k_forward_tag) != 0) {
                std::size_t idx = static_cast<std::size_t>(data & ~k_forward_tag);
                if (idx < m.forwards.size()) {
                    m.read_forward(idx, now);
                }
                continue;
            }
            auto idx = static_cast<std::uint32_t>(data);
            auto gen = static_cast<std::uint32_t>(data >> 32);
            if (idx >= m.flows.size()) {
                continue;
            }
            Flow& f = m.flows[idx];
            if (f.kind == Kind::free || f.generation != gen || f.fd < 0) {
                continue;  // closed earlier in this batch
            }
            m.read_flow(f, now);
        }
        if (n < k_epoll_batch) {
            return;
        }
    }
}

void DatagramEngine::resume(Millis now) noexcept {
    Impl& m = *m_impl;
    m.resuming.swap(m.waiting);  // both reserved to hold every socket once: no allocation
    for (std::uint32_t n : m.resuming) {
        if (n < m.flows.size()) {
            m.flows[n].waiting_room = false;
        } else {
            m.forwards[n - m.flows.size()].waiting_room = false;
        }
    }
    for (std::uint32_t n : m.resuming) {
        if (n >= m.flows.size()) {
            m.read_forward(n - m.flows.size(), now);
            continue;
        }
        Flow& f = m.flows[n];
        if (f.kind != Kind::free && f.fd >= 0) {
            m.read_flow(f, now);
        }
    }
    m.resuming.clear();
}

void DatagramEngine::timers(Millis now) noexcept {
    Impl& m = *m_impl;
    if (now < m.next_scan) {
        return;
    }
    m.next_scan = now + k_scan_ms;
    for (std::size_t i = m.active.size(); i-- > 0;) {
        Flow& f = m.flows[m.active[i]];  // release() moves the last one here, already seen
        Millis idle = f.kind == Kind::echo ? k_icmp_idle_ms : k_udp_idle_ms;
        if (now >= f.last_active + idle) {
            ++m.stats.expired;
            m.release(f);
        }
    }
}

std::optional<Millis> DatagramEngine::next_deadline() const noexcept {
    if (!m_impl->waiting.empty()) {
        return 0;
    }
    if (m_impl->open == 0) {
        return std::nullopt;
    }
    return m_impl->next_scan;
}

std::size_t DatagramEngine::open_flows() const noexcept {
    return m_impl->open;
}

void DatagramEngine::set_macs(const MacAddr& guest, const MacAddr& ours) noexcept {
    Impl& m = *m_impl;
    m.guest_mac = guest;
    m.our_mac = ours;
    for (std::uint32_t n : m.active) {  // a MAC change is rare: once, when the first frame comes
        m.flows[n].guest_mac = guest;
        m.flows[n].our_mac = ours;
    }
}

std::size_t DatagramEngine::capacity() const noexcept {
    return m_impl->flows.size();
}

const DatagramEngineStats& DatagramEngine::stats() const noexcept {
    return m_impl->stats;
}

}  // namespace sbx::net
