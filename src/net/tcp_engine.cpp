// The TCP flow engine.
//
// Theory of operation. A guest SYN that the Filter allowed opens a non-blocking host socket
// and connect()s it to the destination (10.0.2.2 and fec0::2 mean the host's loopback; the
// Filter only lets through the ports `host_ports` names). Nothing is sent to the guest until
// the connect completes: then a SYN-ACK, or a RST when the connect failed or timed out. The
// guest's SYN retransmissions meanwhile are ignored (never dialled twice).
//
//   Guest -> host: a segment at the next expected byte (rcv_nxt) is written with one
//   non-blocking send(); the guest is ACKed for what the kernel took, and nothing more (one
//   ACK per batch of segments, flush_acks(), unless a write fell short or a gap showed). There
//   is no reassembly queue: a segment beyond rcv_nxt gets a duplicate ACK and the guest sends
//   again; one before rcv_nxt is trimmed. The window announced is the free space of the
//   socket's send buffer (SO_MEMINFO: the buffer less the memory queued, as the kernel
//   counts before it takes a write), so a guest that respects it is rarely cut short. When the buffer fills, EPOLLOUT is armed and
//   a window update goes out once it drains.
//
//   Host -> guest: the socket is read with MSG_PEEK, from the first byte the guest has not
//   been sent (SO_PEEK_OFF where the kernel has it for TCP, Linux 6.9 and later; otherwise a
//   discard buffer takes the bytes already in flight), straight into QEMU stream records in
//   netd's output queue, up to the guest's window. Bytes leave the socket (recv MSG_TRUNC)
//   only when the guest ACKs them: the kernel buffer is the retransmit buffer. A
//   retransmission rewinds snd_nxt to snd_una and peeks again. The peer's FIN (EPOLLRDHUP)
//   becomes a FIN to the guest after the last byte; the guest's FIN becomes shutdown(SHUT_WR)
//   (half-close both ways). A guest RST closes the socket with SO_LINGER 0 (a RST to the
//   peer); a host error or reset becomes a RST to the guest.
//
//   Forwards (host -> guest): a listening socket on 127.0.0.1 per forward. An accepted
//   connection becomes a flow in state syn_to_guest: a SYN goes to the guest's port from
//   10.0.2.2:<the client's port> (the Filter hears of it through HostFlows, so the guest's
//   answers pass), and the guest's SYN-ACK makes it established; from there it is a flow
//   like any other. A client that leaves first, or a guest that never answers, ends it
//   (a RST to whichever side knows of it).
//
//   Terminated flows (stream_hook.hpp): when the StreamHook routes a new connection to a
//   handler, the flow's socket is the engine's end of an AF_UNIX socketpair instead of a host
//   socket, and everything above holds unchanged (MSG_PEEK with SO_PEEK_OFF, which AF_UNIX
//   has; the window from SO_MEMINFO; acknowledged bytes read into the discard
//   buffer, as AF_UNIX has no MSG_TRUNC discard). Such a flow waits in `connecting` without
//   a timer of its own until the handler accepts it (the SYN-ACK) or resets it; after the
//   connect timeout it is refused like a host connect that never finished. splice_stream()
//   swaps the pair for a host socket once nothing is in between, and the flow goes on as a
//   spliced one.
//
//   States: connecting (host connect in flight, or the handler not yet answered) -> syn_sent (SYN-ACK sent, waiting for the
//   guest's ACK) -> established; for a forward, syn_to_guest (SYN sent, waiting for the
//   guest's SYN-ACK) -> established; a flow is freed when both FINs are sent and acknowledged,
//   on a RST either way, or on a timeout. Timers, one per flow, checked by timers():
//   connecting: k_connect_timeout_ms; syn_sent/syn_to_guest/established with unacknowledged
//   data or FIN:
//   retransmission after k_rto_ms, doubling per retry, RST both ways after k_max_retries.
//   Idle established connections have no timer: SO_KEEPALIVE on the host socket finds a
//   dead peer, and the guest's own stack its own.
//
//   We announce MSS = MTU - 40 (IPv4) or - 60 (IPv6), window scaling (k_our_wscale) when the
//   guest offers it, and no SACK or timestamps; frames toward the guest carry no options but
//   on the SYN-ACK.
//
// Memory: `capacity` fixed Flow entries and an open-addressed index of 2 * capacity slots
// (power of two, linear probing, backward-shift deletion), all allocated at construction;
// frames are built in place in netd's output queue, so the per-frame path allocates nothing.
// The discard buffer of the pre-6.9 path is one fixed buffer of k_discard bytes.

#include "sbx/net/tcp_engine.hpp"

#include "sbx/net/craft.hpp"
#include "sbx/net/deframer.hpp"
#include "sbx/util/error.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

namespace sbx::net {

namespace {

constexpr std::size_t k_eth = EthernetView::k_size;
constexpr std::size_t k_tcp_hdr = 20;
constexpr std::size_t k_syn_options = 8;                // MSS (4), NOP, window scale (3)
constexpr std::size_t k_discard = 16u << 20;             // the pre-6.9 path's in-flight bytes
constexpr std::uint32_t k_max_guest_window = 16u << 20;  // what we keep in flight at most
constexpr std::uint32_t k_default_guest_mss = 536;       // RFC 9293 when the SYN names none
constexpr int k_epoll_batch = 256;
constexpr std::uint8_t k_no_wscale = 0xff;

// The Internet checksum of `data` as a big-endian 16-bit-word sum (not folded, not inverted),
// eight bytes per step: the ones' complement sum does not depend on byte order, so native
// loads are summed and the result is byte-swapped once (RFC 1071 2(B)).
std::uint32_t sum_be(Bytes data) noexcept {
    std::uint64_t acc = 0;
    const std::byte* p = data.data();
    std::size_t n = data.size();
    while (n >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        acc += w & 0xffffffffu;
        acc += w >> 32;
        p += 8;
        n -= 8;
    }
    if (n >= 4) {
        std::uint32_t w;
        std::memcpy(&w, p, 4);
        acc += w;
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        std::uint16_t w;
        std::memcpy(&w, p, 2);
        acc += w;
        p += 2;
        n -= 2;
    }
    if (n == 1) {
        std::uint8_t b = static_cast<std::uint8_t>(*p);
        std::uint16_t w = 0;
        std::memcpy(&w, &b, 1);  // the byte first, then a zero byte: as in memory
        acc += w;
    }
    while ((acc >> 16) != 0) {
        acc = (acc & 0xffffu) + (acc >> 16);
    }
    auto s = static_cast<std::uint16_t>(acc);
    if constexpr (std::endian::native == std::endian::little) {
        s = static_cast<std::uint16_t>((s >> 8) | (s << 8));
    }
    return s;
}

bool seq_lt(std::uint32_t a, std::uint32_t b) noexcept {
    return static_cast<std::int32_t>(a - b) < 0;
}
bool seq_le(std::uint32_t a, std::uint32_t b) noexcept {
    return static_cast<std::int32_t>(a - b) <= 0;
}

enum class State : std::uint8_t { free, connecting, syn_sent, syn_to_guest, established };

struct Flow {
    int fd = -1;
    State state = State::free;
    bool v6 = false;
    bool guest_fin = false;      // the guest's FIN was taken (host write side shut down)
    bool host_eof = false;       // the peer's FIN was seen
    bool fin_sent = false;       // our FIN to the guest is in flight or acknowledged
    bool fin_ever = false;       // a FIN went out once, at fin_seq
    bool guest_blocked = false;  // the socket's send buffer was full or our window 0: EPOLLOUT armed
    bool waiting_room = false;   // on the resume list
    bool peek_offset = false;    // SO_PEEK_OFF works on this socket
    bool inbound = false;        // a forward's connection: the host opened it
    bool syn_sent_once = false;  // (inbound) our SYN reached the queue at least once
    bool stream = false;         // terminated: fd is the engine's end of the handler's socketpair
    bool ack_due = false;        // the guest's data awaits our ACK (flush_acks)
    bool in_acks = false;        // on Impl::acks
    std::uint8_t guest_wscale = k_no_wscale;  // the guest's shift, k_no_wscale: no scaling
    std::uint8_t retries = 0;
    std::uint8_t dup_acks = 0;
    std::uint16_t guest_port = 0, remote_port = 0;
    std::uint32_t generation = 0;
    std::uint32_t pos = 0;  // in Impl::active
    std::uint32_t fin_seq = 0;
    IpAddr guest_ip, remote_ip;
    MacAddr guest_mac{}, our_mac{};
    std::uint32_t iss = 0;      // our initial sequence number
    std::uint32_t snd_una = 0;  // oldest byte sent to the guest and not acknowledged
    std::uint32_t snd_nxt = 0;  // next byte to send to the guest
    std::uint32_t snd_max = 0;  // highest snd_nxt so far (ACKs up to it are honoured)
    std::uint32_t rcv_nxt = 0;  // next byte expected from the guest
    std::uint32_t guest_wnd = 0;
    std::uint32_t mss = k_default_guest_mss;  // most payload per frame toward the guest
    Millis deadline = 0;  // 0: no timer
};

// The 4-tuple as seen from the guest.
struct Key {
    IpAddr guest_ip, remote_ip;
    std::uint16_t guest_port = 0, remote_port = 0;
};

}  // namespace

struct TcpEngine::Impl {
    GuestNet net;
    GuestQueue& out;
    HostFlows* host_flows = nullptr;
    StreamHook* hook = nullptr;
    struct Listener {
        int fd = -1;
        std::uint16_t guest_port = 0;
    };
    std::vector<Listener> listeners;  // reserved to k_max_forwards
    MacAddr guest_mac{}, our_mac{};   // for frames the engine originates (set_macs)
    bool macs_known = false;
    std::uint32_t logged_failures = 0;
    std::vector<Flow> flows;
    std::vector<std::uint32_t> free_list;
    std::vector<std::int32_t> index;  // flow number or -1
    std::size_t index_mask = 0;
    std::uint64_t seed = 0;
    std::vector<std::uint32_t> active;   // open flows, in no order (timers walk only these)
    std::vector<std::uint32_t> waiting;  // flows that stopped for want of queue space
    std::vector<std::uint32_t> resuming;  // resume()'s copy of `waiting`
    std::vector<std::uint32_t> acks;      // flows with an ACK deferred (defer_ack)
    Millis next_scan = 0;
    std::unique_ptr<std::byte[]> discard;
    std::array<std::byte, k_max_crafted_frame> scratch{};
    int epfd = -1;
    bool try_peek_offset = true;
    std::size_t open = 0;
    TcpEngineStats stats;
    std::mt19937 rng{std::random_device{}()};

    Impl(const GuestNet& n, std::size_t capacity, GuestQueue& q, HostFlows* hf, std::uint64_t hash_seed)
        : net(n), out(q), host_flows(hf) {
        listeners.reserve(k_max_forwards);
        capacity = std::max<std::size_t>(capacity, 1);
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
        acks.reserve(capacity);
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
        for (auto& l : listeners) {
            ::close(l.fd);
        }
        ::close(epfd);
    }

    // --- the index ----------------------------------------------------------------------

    std::size_t hash(const Key& k) const noexcept {
        std::uint64_t h = seed;
        auto mix = [&h](std::uint64_t v) {
            h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
            h *= 0xff51afd7ed558ccdull;
            h ^= h >> 33;
        };
        std::uint64_t w[4];
        std::memcpy(w, k.guest_ip.bytes.data(), 16);
        std::memcpy(w + 2, k.remote_ip.bytes.data(), 16);
        for (auto v : w) {
            mix(v);
        }
        mix(std::uint64_t{k.guest_port} << 16 | k.remote_port);
        return static_cast<std::size_t>(h) & index_mask;
    }

    static bool matches(const Flow& f, const Key& k) noexcept {
        return f.guest_port == k.guest_port && f.remote_port == k.remote_port && f.guest_ip == k.guest_ip &&
               f.remote_ip == k.remote_ip;
    }

    static Key key_of(const Flow& f) noexcept { return {f.guest_ip, f.remote_ip, f.guest_port, f.remote_port}; }
    // The Filter's key: as the guest sends.
    static FlowKey flow_key(const Flow& f) noexcept {
        return FlowKey{f.guest_ip, f.remote_ip, f.guest_port, f.remote_port, k_ipproto_tcp};
    }

    Flow* find(const Key& k) noexcept {
        for (std::size_t i = hash(k);; i = (i + 1) & index_mask) {
            std::int32_t n = index[i];
            if (n < 0) {
                return nullptr;
            }
            if (matches(flows[static_cast<std::size_t>(n)], k)) {
                return &flows[static_cast<std::size_t>(n)];
            }
        }
    }

    void index_insert(const Key& k, std::uint32_t n) noexcept {
        std::size_t i = hash(k);
        while (index[i] >= 0) {
            i = (i + 1) & index_mask;
        }
        index[i] = static_cast<std::int32_t>(n);
    }

    void index_remove(const Key& k) noexcept {
        std::size_t i = hash(k);
        while (index[i] >= 0 && !matches(flows[static_cast<std::size_t>(index[i])], k)) {
            i = (i + 1) & index_mask;
        }
        if (index[i] < 0) {
            return;
        }
        // Backward-shift deletion: pull later members of the cluster into the hole when their
        // home slot does not lie cyclically in (hole, j].
        std::size_t hole = i;
        for (std::size_t j = (i + 1) & index_mask; index[j] >= 0; j = (j + 1) & index_mask) {
            std::size_t home = hash(key_of(flows[static_cast<std::size_t>(index[j])]));
            bool stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (!stays) {
                index[hole] = index[j];
                hole = j;
            }
        }
        index[hole] = -1;
    }

    std::uint32_t number(const Flow& f) const noexcept { return static_cast<std::uint32_t>(&f - flows.data()); }

    // --- frames ---------------------------------------------------------------------------

    std::size_t header_len(const Flow& f, std::size_t options = 0) const noexcept {
        return k_eth + (f.v6 ? 40 : 20) + k_tcp_hdr + options;
    }

    // The window we announce, unscaled: what the socket's send buffer can still take, read
    // in one SO_MEMINFO call. For TCP that is the send buffer less the memory its queue holds
    // (the kernel's own test before it takes a write; the queue's skbs carry little overhead
    // beyond their payload, since small writes are appended to the tail skb). An AF_UNIX
    // stream (a terminated flow) queues one skb per write and charges its full size: half the
    // free space, as overhead for short writes.
    std::uint32_t our_window(const Flow& f) const noexcept {
        if (f.guest_fin || f.fd < 0) {
            return 0;
        }
        std::array<std::uint32_t, SK_MEMINFO_VARS> mem{};
        socklen_t len = sizeof mem;
        if (::getsockopt(f.fd, SOL_SOCKET, SO_MEMINFO, mem.data(), &len) != 0 || len < sizeof mem) {
            return 0;
        }
        long sndbuf = mem[SK_MEMINFO_SNDBUF];
        long room = f.stream ? (sndbuf - static_cast<long>(mem[SK_MEMINFO_WMEM_ALLOC])) / 2
                             : sndbuf - static_cast<long>(mem[SK_MEMINFO_WMEM_QUEUED]);
        return room > 0 ? static_cast<std::uint32_t>(room) : 0;
    }

    std::uint16_t window_field(const Flow& f, std::uint32_t window) const noexcept {
        std::uint32_t shift = f.guest_wscale == k_no_wscale ? 0 : k_our_wscale;
        return static_cast<std::uint16_t>(std::min<std::uint32_t>(window >> shift, 0xffff));
    }

    // The window field of a frame to the guest. A window that cannot take a full segment
    // arms EPOLLOUT (unless `watch` is false: the update EPOLLOUT itself sent), so that an
    // update goes out once the socket has room: the guest sends nothing into a window that
    // small (RFC 9293 3.8.6.2.1) and probes it only on its backed-off persist timer.
    std::uint16_t announce(Flow& f, bool watch = true) noexcept {
        std::uint32_t window = our_window(f);
        std::uint16_t field = window_field(f, window);
        if (watch && window < f.mss && !f.guest_blocked && !f.guest_fin && f.fd >= 0 &&
            f.state == State::established) {
            f.guest_blocked = true;
            arm(f, k_read_events | EPOLLOUT);
        }
        return field;
    }

    // Writes Ethernet, IP and TCP headers in front of `payload` bytes already at
    // o + header_len(f, options); returns the frame size.
    std::size_t write_headers(std::byte* o, const Flow& f, std::uint32_t seq, std::uint8_t flags,
                              std::size_t payload, std::size_t options, std::uint16_t window) const noexcept {
        std::memcpy(o, f.guest_mac.data(), 6);
        std::memcpy(o + 6, f.our_mac.data(), 6);
        store_be16(o + 12, f.v6 ? k_ethertype_ipv6 : k_ethertype_ipv4);
        std::byte* ip = o + k_eth;
        std::size_t l4_len = k_tcp_hdr + options + payload;
        std::byte* t = nullptr;
        if (f.v6) {
            store_be32(ip, 0x60000000u);
            store_be16(ip + 4, static_cast<std::uint16_t>(l4_len));
            store_u8(ip + 6, k_ipproto_tcp);
            store_u8(ip + 7, k_crafted_ttl);
            std::memcpy(ip + 8, f.remote_ip.bytes.data(), 16);
            std::memcpy(ip + 24, f.guest_ip.bytes.data(), 16);
            t = ip + 40;
        } else {
            store_u8(ip, 0x45);
            store_u8(ip + 1, 0);
            store_be16(ip + 2, static_cast<std::uint16_t>(20 + l4_len));
            store_be16(ip + 4, 0);
            store_be16(ip + 6, 0x4000);  // DF
            store_u8(ip + 8, k_crafted_ttl);
            store_u8(ip + 9, k_ipproto_tcp);
            store_be16(ip + 10, 0);
            std::memcpy(ip + 12, f.remote_ip.bytes.data() + 12, 4);
            std::memcpy(ip + 16, f.guest_ip.bytes.data() + 12, 4);
            store_be16(ip + 10, ipv4_header_checksum(Bytes(ip, 20)));
            t = ip + 20;
        }
        store_be16(t, f.remote_port);
        store_be16(t + 2, f.guest_port);
        store_be32(t + 4, seq);
        store_be32(t + 8, f.rcv_nxt);
        store_u8(t + 12, static_cast<std::uint8_t>(((k_tcp_hdr + options) / 4) << 4));
        store_u8(t + 13, flags);
        store_be16(t + 14, window);
        store_be16(t + 16, 0);
        store_be16(t + 18, 0);
        // The pseudo-header and the TCP header with the slow helper, the payload fast.
        std::uint32_t sum = 0;
        if (f.v6) {
            sum = checksum_partial(Bytes(ip + 8, 32), sum);
            std::byte tail[8];
            store_be32(tail, static_cast<std::uint32_t>(l4_len));
            store_be32(tail + 4, k_ipproto_tcp);
            sum = checksum_partial(Bytes(tail, 8), sum);
        } else {
            sum = checksum_partial(Bytes(ip + 12, 8), sum);
            std::byte tail[4];
            store_u8(tail, 0);
            store_u8(tail + 1, k_ipproto_tcp);
            store_be16(tail + 2, static_cast<std::uint16_t>(l4_len));
            sum = checksum_partial(Bytes(tail, 4), sum);
        }
        sum = checksum_partial(Bytes(t, k_tcp_hdr + options), sum);
        // Headers are even-sized, so the payload's words line up with the segment's.
        sum += sum_be(Bytes(t + k_tcp_hdr + options, payload));
        store_be16(t + 16, checksum_fold(sum));
        return header_len(f, options) + payload;
    }

    // A frame without payload (ACK, FIN, RST, SYN-ACK). False when the queue has no room.
    bool send_control(Flow& f, std::uint8_t flags, std::uint32_t seq, bool watch = true) noexcept {
        bool syn = (flags & k_tcp_syn) != 0;
        std::size_t options = syn ? k_syn_options : 0;
        std::size_t size = header_len(f, options);
        MutBytes tail = out.tail_space();
        if (tail.size() < Deframer::k_header + size) {
            return false;
        }
        std::byte* o = tail.data() + Deframer::k_header;
        if (syn) {
            std::byte* opt = o + header_len(f);
            store_u8(opt, 2);
            store_u8(opt + 1, 4);
            store_be16(opt + 2, static_cast<std::uint16_t>(net.mtu - (f.v6 ? 60 : 40)));
            store_u8(opt + 4, 1);  // NOP
            if (f.guest_wscale != k_no_wscale || f.state == State::syn_to_guest) {
                store_u8(opt + 5, 3);
                store_u8(opt + 6, 3);
                store_u8(opt + 7, k_our_wscale);
            } else {
                store_u8(opt + 5, 1);
                store_u8(opt + 6, 1);
                store_u8(opt + 7, 1);
            }
        }
        std::uint16_t window = 0;
        if (syn) {
            window = static_cast<std::uint16_t>(std::min<std::uint32_t>(our_window(f), 0xffff));
        } else if ((flags & k_tcp_rst) == 0) {
            window = announce(f, watch);
        }
        write_headers(o, f, seq, flags, 0, options, window);
        if ((flags & k_tcp_ack) != 0) {
            f.ack_due = false;
        }
        auto prefix = stream_prefix(size);
        std::memcpy(tail.data(), prefix.data(), prefix.size());
        out.advance(Deframer::k_header + size, 1);
        return true;
    }

    void send_ack(Flow& f) noexcept { send_control(f, k_tcp_ack, f.snd_nxt); }

    // --- flow life ------------------------------------------------------------------------

    void arm(Flow& f, std::uint32_t events) noexcept {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = (std::uint64_t{f.generation} << 32) | number(f);
        ::epoll_ctl(epfd, EPOLL_CTL_MOD, f.fd, &ev);
    }

    static constexpr std::uint32_t k_read_events = EPOLLIN | EPOLLRDHUP | EPOLLET;

    void release(Flow& f, bool reset_host) noexcept {
        if (f.inbound && host_flows != nullptr) {
            host_flows->host_closed(flow_key(f));
        }
        if (f.fd >= 0) {
            if (reset_host) {
                linger l{1, 0};
                ::setsockopt(f.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            }
            ::close(f.fd);  // also leaves the epoll set
        }
        index_remove(key_of(f));
        std::uint32_t last = active.back();
        active[f.pos] = last;
        flows[last].pos = f.pos;
        active.pop_back();
        std::uint32_t gen = f.generation + 1;
        f = Flow{};
        f.generation = gen;
        free_list.push_back(number(f));
        --open;
    }

    // A RST to the guest and the socket closed with a RST to the peer.
    void reset_both(Flow& f) noexcept {
        if (f.state == State::connecting) {
            send_control(f, k_tcp_rst | k_tcp_ack, 0);
        } else if (f.state == State::syn_to_guest) {
            if (f.syn_sent_once) {
                send_control(f, k_tcp_rst, f.snd_nxt);  // the guest's SYN-ACK, if any, acked iss + 1
            }
        } else {
            send_control(f, k_tcp_rst | k_tcp_ack, f.snd_nxt);
        }
        release(f, true);
    }

    void maybe_finish(Flow& f) noexcept {
        if (f.guest_fin && f.fin_sent && f.snd_una == f.snd_nxt) {
            release(f, false);
        }
    }

    // The SYN's MSS and window scale options (bounds-checked; garbage ends the walk).
    static void read_syn_options(Bytes options, Flow& f) noexcept {
        std::size_t i = 0;
        while (i < options.size()) {
            std::uint8_t kind = load_u8(options.data() + i);
            if (kind == 0) {
                break;
            }
            if (kind == 1) {
                ++i;
                continue;
            }
            if (i + 1 >= options.size()) {
                break;
            }
            std::uint8_t len = load_u8(options.data() + i + 1);
            if (len < 2 || i + len > options.size()) {
                break;
            }
            if (kind == 2 && len == 4) {
                std::uint16_t mss = load_be16(options.data() + i + 2);
                if (mss >= 64) {
                    f.mss = mss;
                }
            } else if (kind == 3 && len == 3) {
                f.guest_wscale = std::min<std::uint8_t>(load_u8(options.data() + i + 2), 14);
            }
            i += len;
        }
    }

    bool refuse(Bytes frame, const Packet& p) noexcept {
        std::size_t n = craft_tcp_reset(scratch, frame, p);
        MutBytes tail = out.tail_space();
        if (n > 0 && tail.size() >= Deframer::k_header + n) {
            auto prefix = stream_prefix(n);
            std::memcpy(tail.data(), prefix.data(), prefix.size());
            std::memcpy(tail.data() + Deframer::k_header, scratch.data(), n);
            out.advance(Deframer::k_header + n, 1);
        }
        return true;
    }

    bool open_flow(Bytes frame, const Packet& p, Bytes tcp, Millis now) noexcept {
        if (free_list.empty()) {
            ++stats.table_full;
            return refuse(frame, p);
        }
        if (hook != nullptr && hook->route(FlowKey{p.src, p.dst, p.sport, p.dport, k_ipproto_tcp}) ==
                                   StreamHook::Route::terminate) {
            return open_stream(frame, p, tcp, now);
        }
        const SocketAddress addr = host_socket_address(net, p.dst, p.dport);
        int fd = ::socket(addr.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            ++stats.connect_failed;
            return refuse(frame, p);
        }
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bool peek_offset = set_peek_offset(fd);
        int rc = ::connect(fd, addr.get(), addr.len);
        if (rc != 0 && errno != EINPROGRESS) {
            log_connect_failure(p.dst, p.dport, errno);
            ::close(fd);
            ++stats.connect_failed;
            return refuse(frame, p);
        }
        Flow& f = take_slot(fd, frame, p, tcp, now);
        f.peek_offset = peek_offset;
        if (!watch(f, EPOLLOUT | k_read_events)) {
            ++stats.connect_failed;
            refuse(frame, p);
            release(f, true);
        }
        return true;
    }

    // A connection the hook terminates: the handler gets its end of a socketpair, and the
    // guest's SYN waits for the handler's accept_stream() or reset_stream().
    bool open_stream(Bytes frame, const Packet& p, Bytes tcp, Millis now) noexcept {
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
            ++stats.connect_failed;
            return refuse(frame, p);
        }
        Flow& f = take_slot(pair[0], frame, p, tcp, now);
        f.stream = true;
        f.peek_offset = set_peek_offset(pair[0]);
        if (!watch(f, k_read_events)) {
            ::close(pair[1]);
            ++stats.connect_failed;
            refuse(frame, p);
            release(f, true);
            return true;
        }
        ++stats.terminated;
        hook->attach(flow_key(f), StreamId{number(f), f.generation}, pair[1]);  // may end the flow
        return true;
    }

    bool set_peek_offset(int fd) const noexcept {
        if (!try_peek_offset) {
            return false;
        }
        int zero = 0;
        return ::setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) == 0;
    }

    // A free slot made the flow of the guest's SYN `p` on socket `fd`, indexed and active,
    // in state connecting with the connect timer running.
    Flow& take_slot(int fd, Bytes frame, const Packet& p, Bytes tcp, Millis now) noexcept {
        std::uint32_t n = free_list.back();
        free_list.pop_back();
        Flow& f = flows[n];
        std::uint32_t gen = f.generation;
        f = Flow{};
        f.generation = gen;
        f.fd = fd;
        f.state = State::connecting;
        f.v6 = p.v6;
        f.guest_ip = p.src;
        f.remote_ip = p.dst;
        f.guest_port = p.sport;
        f.remote_port = p.dport;
        auto eth = EthernetView::of(frame);
        f.guest_mac = eth->src();
        f.our_mac = eth->dst();
        f.rcv_nxt = p.tcp_seq + 1;
        std::size_t thl = (load_u8(tcp.data() + 12) >> 4) * 4u;
        read_syn_options(tcp.subspan(k_tcp_hdr, thl - k_tcp_hdr), f);
        f.mss = std::min<std::uint32_t>(f.mss, net.mtu - (f.v6 ? 60 : 40));
        f.guest_wnd = load_be16(tcp.data() + 14);  // a SYN's window is never scaled
        f.iss = static_cast<std::uint32_t>(rng());
        f.snd_una = f.snd_nxt = f.snd_max = f.iss;
        f.deadline = now + k_connect_timeout_ms;
        index_insert(key_of(f), n);
        f.pos = static_cast<std::uint32_t>(active.size());
        active.push_back(n);
        ++open;
        return f;
    }

    bool watch(Flow& f, std::uint32_t events) noexcept {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = (std::uint64_t{f.generation} << 32) | number(f);
        return ::epoll_ctl(epfd, EPOLL_CTL_ADD, f.fd, &ev) == 0;
    }

    Flow* stream_flow(StreamId id) noexcept {
        if (id.slot >= flows.size()) {
            return nullptr;
        }
        Flow& f = flows[id.slot];
        return f.state != State::free && f.generation == id.generation && f.stream ? &f : nullptr;
    }

    // The handler's splice: `host_fd` replaces the socketpair when nothing is in between.
    bool splice(Flow& f, int host_fd, Millis now) noexcept {
        int unread = 0, unsent = 0, type = 0;
        socklen_t len = sizeof type;
        sockaddr_storage peer{};
        socklen_t peer_len = sizeof peer;
        if (f.host_eof || ::ioctl(f.fd, SIOCOUTQ, &unread) != 0 || unread != 0 ||
            ::ioctl(f.fd, FIONREAD, &unsent) != 0 || unsent != 0 || f.snd_una != f.snd_nxt ||
            ::getsockopt(host_fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
            ::getpeername(host_fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
            return false;
        }
        int flags = ::fcntl(host_fd, F_GETFL);
        if (flags < 0 || ::fcntl(host_fd, F_SETFL, flags | O_NONBLOCK) != 0) {
            return false;
        }
        ::epoll_ctl(epfd, EPOLL_CTL_DEL, f.fd, nullptr);
        int old = f.fd;
        f.fd = host_fd;
        f.stream = false;
        if (!watch(f, f.state == State::connecting ? EPOLLOUT | k_read_events : k_read_events)) {
            f.fd = old;
            f.stream = true;
            watch(f, k_read_events);
            return false;
        }
        ::close(old);
        ::fcntl(host_fd, F_SETFD, FD_CLOEXEC);
        int one = 1;
        ::setsockopt(host_fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        ::setsockopt(host_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        f.peek_offset = set_peek_offset(host_fd);
        ++stats.spliced_later;
        if (f.state == State::connecting) {
            return true;  // EPOLLOUT: connected() sends the SYN-ACK
        }
        if (f.guest_fin) {
            ::shutdown(host_fd, SHUT_WR);
        }
        f.guest_blocked = false;
        send_ack(f);  // the window is the host socket's now
        send_data(f, now);
        if (f.state != State::free) {
            maybe_finish(f);
        }
        return true;
    }

    // Why a connection the policy allowed did not open, on netd's stderr (the instance's
    // supervisor.log): the first k_logged_failures, then only counted.
    void log_connect_failure(const IpAddr& dst, std::uint16_t port, int err) noexcept {
        if (logged_failures >= k_logged_failures) {
            return;
        }
        ++logged_failures;
        try {
            std::fprintf(stderr, "netd: connection to %s port %u failed: %s%s\n", dst.to_string().c_str(),
                         static_cast<unsigned>(port), std::strerror(err),
                         logged_failures == k_logged_failures ? " (further failures are only counted)" : "");
        } catch (...) {
        }
    }

    // --- forwards: connections the host opens into the guest -------------------------------

    void accept_all(Listener& l, Millis now) noexcept {
        for (;;) {
            sockaddr_in peer{};
            socklen_t len = sizeof peer;
            int fd = ::accept4(l.fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) {
                    continue;
                }
                return;  // EAGAIN: all taken; EMFILE and the like: the client waits in the backlog
            }
            Key key{net.guest, net.host, l.guest_port, ntohs(peer.sin_port)};
            if (free_list.empty() || peer.sin_family != AF_INET || find(key) != nullptr) {
                // Table full, or the guest holds a connection on this very tuple: a RST to
                // the client rather than a wait it cannot see the end of.
                ++stats.forward_refused;
                linger lg{1, 0};
                ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
                ::close(fd);
                continue;
            }
            int one = 1;
            ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            bool peek_offset = set_peek_offset(fd);
            std::uint32_t n = free_list.back();
            free_list.pop_back();
            Flow& f = flows[n];
            std::uint32_t gen = f.generation;
            f = Flow{};
            f.generation = gen;
            f.fd = fd;
            f.state = State::syn_to_guest;
            f.inbound = true;
            f.peek_offset = peek_offset;
            f.guest_ip = key.guest_ip;
            f.remote_ip = key.remote_ip;
            f.guest_port = key.guest_port;
            f.remote_port = key.remote_port;
            f.mss = net.mtu - 40;  // until the guest's SYN-ACK names its own
            f.iss = static_cast<std::uint32_t>(rng());
            f.snd_una = f.snd_nxt = f.snd_max = f.iss;
            index_insert(key, n);
            f.pos = static_cast<std::uint32_t>(active.size());
            active.push_back(n);
            ++open;
            epoll_event ev{};
            ev.events = k_read_events;
            ev.data.u64 = (std::uint64_t{f.generation} << 32) | n;
            if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
                ++stats.forward_refused;
                release(f, true);
                continue;
            }
            ++stats.forwarded;
            if (host_flows != nullptr) {
                host_flows->host_opened(flow_key(f));
            }
            send_syn_to_guest(f, now);
        }
    }

    // Our SYN into the guest (again, on the timer). It waits while the guest's MAC is unknown
    // or the queue is full; the retransmission timer tries again either way.
    void send_syn_to_guest(Flow& f, Millis now) noexcept {
        f.deadline = now + (k_rto_ms << f.retries);
        if (!macs_known) {
            return;
        }
        f.guest_mac = guest_mac;
        f.our_mac = our_mac;
        if (send_control(f, k_tcp_syn, f.iss)) {
            f.syn_sent_once = true;
            f.snd_nxt = f.snd_max = f.iss + 1;
        }
    }

    // The guest's SYN-ACK to our SYN.
    void syn_ack_from_guest(Flow& f, Bytes tcp, const Packet& p, Millis now) noexcept {
        f.guest_wscale = k_no_wscale;
        f.mss = k_default_guest_mss;
        std::size_t thl = (load_u8(tcp.data() + 12) >> 4) * 4u;
        if (thl >= k_tcp_hdr && thl <= tcp.size()) {
            read_syn_options(tcp.subspan(k_tcp_hdr, thl - k_tcp_hdr), f);
        }
        f.mss = std::min<std::uint32_t>(f.mss, net.mtu - (f.v6 ? 60 : 40));
        f.guest_wnd = load_be16(tcp.data() + 14);  // a SYN's window is never scaled
        f.rcv_nxt = p.tcp_seq + 1;
        f.state = State::established;
        f.snd_una = f.snd_nxt = f.snd_max = f.iss + 1;
        f.retries = 0;
        f.deadline = 0;
        send_ack(f);
        send_data(f, now);  // what the client sent meanwhile (its EPOLLIN edge is spent)
        if (f.state != State::free) {
            maybe_finish(f);
        }
    }

    // The host connect finished (EPOLLOUT or an error while connecting).
    void connected(Flow& f, Millis now) noexcept {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(f.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        if (err != 0) {
            ++stats.connect_failed;
            log_connect_failure(f.remote_ip, f.remote_port, err);
            send_control(f, k_tcp_rst | k_tcp_ack, 0);
            release(f, false);
            return;
        }
        ++stats.opened;
        f.state = State::syn_sent;
        arm(f, k_read_events);
        send_syn_ack(f, now);
    }

    void send_syn_ack(Flow& f, Millis now) noexcept {
        send_control(f, k_tcp_syn | k_tcp_ack, f.iss);
        f.snd_nxt = f.snd_max = f.iss + 1;
        f.deadline = now + (k_rto_ms << f.retries);
    }

    // Sends what the socket holds beyond snd_nxt, up to the guest's window and the queue's room.
    void send_data(Flow& f, Millis now) noexcept {
        if (f.state != State::established || f.fin_sent) {
            return;
        }
        for (int round = 0; round < 4; ++round) {
            std::uint32_t in_flight = f.snd_nxt - f.snd_una;
            std::uint32_t window = std::min(f.guest_wnd, k_max_guest_window);
            if (in_flight >= window) {
                return;  // the guest's ACK opens it again
            }
            std::uint32_t room = window - in_flight;
            if (!f.peek_offset && in_flight > k_discard) {
                return;
            }
            std::size_t hdr = header_len(f);
            std::size_t record = Deframer::k_header + hdr + f.mss;
            MutBytes tail = out.tail_space();
            std::size_t slots = std::min<std::size_t>(tail.size() / record, k_max_frames_per_read);
            slots = std::min<std::size_t>(slots, (room + f.mss - 1) / f.mss);
            if (slots == 0) {
                wait_for_room(f);
                return;
            }
            std::array<iovec, k_max_frames_per_read + 1> iov;
            std::size_t n_iov = 0;
            if (!f.peek_offset && in_flight > 0) {
                iov[n_iov++] = iovec{discard.get(), in_flight};
            } else if (f.peek_offset) {
                int off = static_cast<int>(in_flight);
                ::setsockopt(f.fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off);
            }
            std::size_t want = 0;
            for (std::size_t i = 0; i < slots; ++i) {
                std::size_t len = std::min<std::size_t>(f.mss, room - want);
                iov[n_iov++] = iovec{tail.data() + i * record + Deframer::k_header + hdr, len};
                want += len;
            }
            msghdr msg{};
            msg.msg_iov = iov.data();
            msg.msg_iovlen = n_iov;
            ssize_t got = ::recvmsg(f.fd, &msg, MSG_PEEK | MSG_DONTWAIT);
            if (got < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    break;
                }
                ++stats.host_resets;
                reset_both(f);
                return;
            }
            std::size_t fresh = static_cast<std::size_t>(got);
            if (!f.peek_offset) {
                fresh = fresh > in_flight ? fresh - in_flight : 0;
            }
            if (got == 0 || (fresh == 0 && f.host_eof)) {
                f.host_eof = true;
                break;
            }
            if (fresh == 0) {
                break;
            }
            std::size_t frames = 0, bytes = 0, left = fresh;
            std::uint16_t window_value = announce(f);
            for (std::size_t i = 0; left > 0; ++i) {
                std::size_t len = std::min<std::size_t>(left, f.mss);
                left -= len;
                std::byte* rec = tail.data() + i * record;
                std::uint8_t flags = k_tcp_ack | (left == 0 ? k_tcp_psh : 0);
                std::size_t size = write_headers(rec + Deframer::k_header, f, f.snd_nxt, flags, len, 0, window_value);
                auto prefix = stream_prefix(size);
                std::memcpy(rec, prefix.data(), prefix.size());
                f.snd_nxt += static_cast<std::uint32_t>(len);
                ++frames;
                bytes = static_cast<std::size_t>(rec - tail.data()) + Deframer::k_header + size;
            }
            out.advance(bytes, frames);
            f.ack_due = false;  // every data frame carries rcv_nxt
            if (seq_lt(f.snd_max, f.snd_nxt)) {
                f.snd_max = f.snd_nxt;
            }
            if (f.deadline == 0) {
                f.deadline = now + (k_rto_ms << f.retries);
            }
            if (fresh < want) {
                break;  // drained for now: the next EPOLLIN edge brings more
            }
            if (round == 3) {
                wait_for_room(f);  // more may wait: continue on the next turn (fairness)
                return;
            }
        }
        if (f.host_eof && !f.fin_sent && socket_drained(f)) {
            if (send_control(f, k_tcp_fin | k_tcp_ack, f.snd_nxt)) {
                f.fin_sent = true;
                f.fin_ever = true;
                f.fin_seq = f.snd_nxt;
                f.snd_nxt += 1;
                if (seq_lt(f.snd_max, f.snd_nxt)) {
                    f.snd_max = f.snd_nxt;
                }
                if (f.deadline == 0) {
                    f.deadline = now + (k_rto_ms << f.retries);
                }
            } else {
                wait_for_room(f);
            }
        }
    }

    // Everything the socket holds has been sent to the guest.
    bool socket_drained(const Flow& f) const noexcept {
        int unread = 0;
        if (::ioctl(f.fd, FIONREAD, &unread) != 0) {
            return true;
        }
        return static_cast<std::uint32_t>(unread) <= f.snd_nxt - f.snd_una;
    }

    void wait_for_room(Flow& f) noexcept {
        if (!f.waiting_room) {
            f.waiting_room = true;
            waiting.push_back(number(f));
        }
    }

    // The guest acknowledged up to `ack`: those bytes leave the socket.
    void take_ack(Flow& f, std::uint32_t ack, std::uint32_t window, std::size_t payload, Millis now) noexcept {
        std::uint32_t old_wnd = f.guest_wnd;
        f.guest_wnd = f.guest_wscale == k_no_wscale ? window : window << f.guest_wscale;
        if (seq_lt(f.snd_max, ack) || seq_lt(ack, f.snd_una)) {
            return;  // acknowledges nothing we sent, or is old
        }
        std::uint32_t acked = ack - f.snd_una;
        if (acked == 0) {
            if (payload == 0 && f.snd_nxt != f.snd_una && f.guest_wnd == old_wnd && ++f.dup_acks == 3) {
                rewind(f, now);
            }
            return;
        }
        std::uint32_t data = acked;
        if (f.fin_ever && seq_le(f.snd_una, f.fin_seq) && seq_lt(f.fin_seq, ack)) {
            data -= 1;          // our FIN is acknowledged too
            f.fin_sent = true;  // (even when a rewind had taken it back)
        }
        if (data > 0) {
            drop(f, data);
        }
        f.snd_una = ack;
        if (seq_lt(f.snd_nxt, ack)) {
            f.snd_nxt = ack;  // frames sent before a rewind arrived after all
        }
        f.retries = 0;
        f.dup_acks = 0;
        f.deadline = f.snd_una != f.snd_nxt ? now + k_rto_ms : 0;
    }

    // Takes `bytes` the guest acknowledged out of the socket.
    void drop(Flow& f, std::uint32_t bytes) noexcept {
        if (!f.stream) {
            ssize_t n = ::recv(f.fd, nullptr, bytes, MSG_TRUNC | MSG_DONTWAIT);
            (void)n;
            return;
        }
        while (bytes > 0) {  // AF_UNIX: no MSG_TRUNC discard, so a read into the discard buffer
            ssize_t n = ::recv(f.fd, discard.get(), std::min<std::size_t>(bytes, k_discard), MSG_DONTWAIT);
            if (n <= 0) {
                return;
            }
            bytes -= static_cast<std::uint32_t>(n);
        }
    }

    void rewind(Flow& f, Millis now) noexcept {
        ++stats.retransmits;
        f.dup_acks = 0;
        if (f.fin_sent && seq_le(f.snd_una, f.fin_seq)) {
            f.fin_sent = false;  // sent again after the data
        }
        f.snd_nxt = f.snd_una;
        f.deadline = now + (k_rto_ms << f.retries);
        send_data(f, now);
    }

    bool segment(Flow& f, Bytes frame, const Packet& p, Millis now) noexcept {
        Bytes tcp = frame.subspan(p.l4_offset, p.l4_len);
        std::uint8_t flags = p.tcp_flags;
        if ((flags & k_tcp_rst) != 0) {
            // Accepted at the next expected byte or within what we announced; else ignored.
            bool ours = f.state == State::syn_to_guest && (flags & k_tcp_ack) != 0 && p.tcp_ack == f.iss + 1;
            if (f.state == State::connecting || ours || (f.state != State::syn_to_guest && p.tcp_seq == f.rcv_nxt) ||
                (seq_le(f.rcv_nxt, p.tcp_seq) && seq_lt(p.tcp_seq, f.rcv_nxt + (1u << 20)))) {
                ++stats.guest_resets;
                release(f, true);
            }
            return true;
        }
        if (f.state == State::connecting) {
            return true;  // SYN retransmissions while the host connect runs
        }
        if (f.state == State::syn_to_guest) {
            if ((flags & (k_tcp_syn | k_tcp_ack)) == (k_tcp_syn | k_tcp_ack) && f.syn_sent_once &&
                p.tcp_ack == f.iss + 1) {
                syn_ack_from_guest(f, tcp, p, now);
            } else if ((flags & k_tcp_ack) != 0 && (flags & k_tcp_syn) == 0 && f.syn_sent_once) {
                // RFC 9293 3.10.7.3: not for our SYN. Before our SYN went out the flow has no
                // MACs yet, and the guest cannot be answering it: nothing.
                send_control(f, k_tcp_rst, p.tcp_ack);
            }
            return true;
        }
        if ((flags & k_tcp_syn) != 0) {
            if (f.state == State::syn_sent && p.tcp_seq + 1 == f.rcv_nxt && (flags & k_tcp_ack) == 0) {
                send_control(f, k_tcp_syn | k_tcp_ack, f.iss);  // our SYN-ACK was lost
            } else {
                send_ack(f);  // a challenge ACK (RFC 5961 4): the guest resets what it no longer has
            }
            return true;
        }
        if ((flags & k_tcp_ack) == 0) {
            return true;
        }
        std::uint32_t window = load_be16(tcp.data() + 14);
        if (f.state == State::syn_sent) {
            if (p.tcp_ack != f.iss + 1) {
                send_control(f, k_tcp_rst, p.tcp_ack);
                return true;
            }
            f.state = State::established;
            f.snd_una = f.iss + 1;
            f.retries = 0;
            f.deadline = 0;
        }
        take_ack(f, p.tcp_ack, window, p.tcp_payload_len, now);
        if (f.fd < 0) {
            return true;
        }
        bool fin = (flags & k_tcp_fin) != 0;
        if (p.tcp_payload_len > 0 || fin) {
            guest_data(f, tcp.subspan(tcp.size() - p.tcp_payload_len), p.tcp_seq, fin);
        } else if (seq_lt(p.tcp_seq, f.rcv_nxt)) {
            send_ack(f);  // a zero-window probe or a keepalive (one byte before rcv_nxt): our window
        }
        if (f.state == State::free) {
            return true;
        }
        send_data(f, now);
        if (f.state != State::free) {
            maybe_finish(f);
        }
        return true;
    }

    void guest_data(Flow& f, Bytes payload, std::uint32_t seq, bool fin) noexcept {
        if (f.guest_fin) {
            send_ack(f);  // a retransmitted FIN or data after it
            return;
        }
        std::int32_t behind = static_cast<std::int32_t>(f.rcv_nxt - seq);
        if (behind < 0) {
            ++stats.out_of_window;
            send_ack(f);  // a gap: the guest sends again from rcv_nxt
            return;
        }
        auto skip = static_cast<std::size_t>(behind);
        if (skip > payload.size() || (skip == payload.size() && !fin)) {
            send_ack(f);  // entirely old
            return;
        }
        Bytes fresh = payload.subspan(skip);
        std::size_t written = 0;
        while (written < fresh.size()) {
            ssize_t n = ::send(f.fd, fresh.data() + written, fresh.size() - written, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                written += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            }
            ++stats.host_resets;
            reset_both(f);
            return;
        }
        f.rcv_nxt += static_cast<std::uint32_t>(written);
        if (written < fresh.size()) {
            if (!f.guest_blocked) {
                f.guest_blocked = true;
                arm(f, k_read_events | EPOLLOUT);
            }
            send_ack(f);  // at once: the window shrank, and the rest must be sent again
            return;
        }
        if (fin) {
            f.rcv_nxt += 1;
            f.guest_fin = true;
            ::shutdown(f.fd, SHUT_WR);
            send_ack(f);  // at once: the flow may be freed before the next flush_acks()
            return;
        }
        defer_ack(f);
    }

    // One ACK for every segment of a batch the guest sent (flush_acks(), once netd has handled
    // what one read from QEMU brought): the guest hears the same, with fewer frames and fewer
    // window reads. A frame that goes out to the guest before it carries the ACK anyway.
    void defer_ack(Flow& f) noexcept {
        f.ack_due = true;
        if (!f.in_acks) {
            f.in_acks = true;
            acks.push_back(number(f));
        }
    }

    void flush_acks() noexcept {
        std::size_t kept = 0;
        for (std::uint32_t n : acks) {
            Flow& f = flows[n];
            if (!f.in_acks) {
                continue;  // freed (and perhaps reused) since: not this entry's flow
            }
            if (f.ack_due && !send_control(f, k_tcp_ack, f.snd_nxt)) {
                acks[kept++] = n;  // no room in the queue: again on the next flush
                continue;
            }
            f.in_acks = false;
        }
        acks.resize(kept);
    }

    void socket_event(Flow& f, std::uint32_t events, Millis now) noexcept {
        if (f.state == State::connecting && f.stream) {
            if ((events & EPOLLHUP) != 0) {  // the handler closed its end without answering
                send_control(f, k_tcp_rst | k_tcp_ack, 0);
                release(f, false);
                return;
            }
            if ((events & EPOLLRDHUP) != 0) {
                f.host_eof = true;  // its FIN follows its bytes once it accepts
            }
            return;  // anything it wrote goes out once it accepts
        }
        if (f.state == State::connecting) {
            if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) {
                connected(f, now);
            }
            return;
        }
        if ((events & EPOLLERR) != 0) {
            ++stats.host_resets;
            reset_both(f);
            return;
        }
        if (f.state == State::syn_to_guest) {
            if ((events & EPOLLHUP) != 0) {
                ++stats.host_resets;  // the client left before the guest answered
                reset_both(f);
            } else if ((events & EPOLLRDHUP) != 0) {
                f.host_eof = true;  // a half-close: its FIN follows its data once established
            }
            return;
        }
        if ((events & (EPOLLRDHUP | EPOLLHUP)) != 0) {
            f.host_eof = true;
        }
        if ((events & EPOLLOUT) != 0 && f.guest_blocked) {
            f.guest_blocked = false;
            arm(f, k_read_events);
            send_control(f, k_tcp_ack, f.snd_nxt, false);  // the window update
        }
        send_data(f, now);
        if (f.state != State::free) {
            maybe_finish(f);
        }
    }

    void expire(Flow& f, Millis now) noexcept {
        if (f.state == State::connecting) {
            ++stats.connect_failed;
            if (!f.stream) {
                log_connect_failure(f.remote_ip, f.remote_port, ETIMEDOUT);
            }
            send_control(f, k_tcp_rst | k_tcp_ack, 0);
            release(f, false);
            return;
        }
        if (f.retries >= k_max_retries) {
            ++stats.timeouts;
            reset_both(f);
            return;
        }
        ++f.retries;
        if (f.state == State::syn_sent) {
            ++stats.retransmits;
            send_syn_ack(f, now);
            return;
        }
        if (f.state == State::syn_to_guest) {
            ++stats.retransmits;
            send_syn_to_guest(f, now);
            return;
        }
        if (f.snd_una == f.snd_nxt && f.snd_una == f.snd_max) {
            f.deadline = 0;
            return;
        }
        rewind(f, now);
    }
};

TcpEngine::TcpEngine(const GuestNet& net, std::size_t flows, GuestQueue& out, HostFlows* host_flows,
                     std::uint64_t hash_seed)
    : m_impl(std::make_unique<Impl>(net, flows, out, host_flows, hash_seed)) {
    m_impl->discard.reset(new std::byte[k_discard]);
}

TcpEngine::~TcpEngine() = default;

std::uint16_t TcpEngine::add_forward(const HostForward& fw) {
    Impl& m = *m_impl;
    if (fw.proto != Proto::tcp) {
        throw Error(fmt::format("the TCP engine cannot forward 127.0.0.1:{} ({})", fw.host_port, to_string(fw.proto)),
                    {"UDP forwards belong to the datagram engine"});
    }
    if (m.listeners.size() >= k_max_forwards) {
        throw Error(fmt::format("cannot forward 127.0.0.1:{}: at most {} TCP forwards", fw.host_port, k_max_forwards),
                    {"remove some [[forward]] entries from the profile"});
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw_errno("netd: socket", errno);
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(fw.host_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd, k_listen_backlog) != 0) {
        int err = errno;
        ::close(fd);
        throw Error(fmt::format("cannot forward 127.0.0.1:{} ({}) to the guest's port {}: {}", fw.host_port,
                                to_string(fw.proto), fw.guest_port,
                                err == EADDRINUSE ? "the port is in use" : std::strerror(err)),
                    {fmt::format("find what listens there with: ss -ltnup 'sport = :{}'", fw.host_port),
                     "or choose another host port in the profile's [[forward]] / [ssh] section"});
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = m.flows.size() + m.listeners.size();  // past the flow numbers: a listener
    if (::epoll_ctl(m.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int err = errno;
        ::close(fd);
        throw_errno("netd: epoll_ctl", err);
    }
    m.listeners.push_back(Impl::Listener{fd, fw.guest_port});
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
}

void TcpEngine::set_stream_hook(StreamHook* hook) noexcept {
    m_impl->hook = hook;
}

bool TcpEngine::accept_stream(StreamId id, Millis now) noexcept {
    Flow* f = m_impl->stream_flow(id);
    if (f == nullptr || f->state != State::connecting) {
        return false;
    }
    m_impl->connected(*f, now);
    return true;
}

bool TcpEngine::reset_stream(StreamId id) noexcept {
    Flow* f = m_impl->stream_flow(id);
    if (f == nullptr) {
        return false;
    }
    m_impl->reset_both(*f);
    return true;
}

bool TcpEngine::splice_stream(StreamId id, int host_fd, Millis now) noexcept {
    Flow* f = m_impl->stream_flow(id);
    return f != nullptr && m_impl->splice(*f, host_fd, now);
}

void TcpEngine::set_macs(const MacAddr& guest, const MacAddr& ours) noexcept {
    m_impl->guest_mac = guest;
    m_impl->our_mac = ours;
    m_impl->macs_known = true;
}

bool TcpEngine::guest_segment(Bytes frame, const Packet& p, Millis now) noexcept {
    Impl& m = *m_impl;
    if (p.kind != Packet::Kind::ip || p.protocol != k_ipproto_tcp || p.l4_len < k_tcp_hdr ||
        frame.size() < p.l4_offset + p.l4_len) {
        return false;
    }
    Flow* f = m.find(Key{p.src, p.dst, p.sport, p.dport});
    if (f != nullptr) {
        return m.segment(*f, frame, p, now);
    }
    if ((p.tcp_flags & (k_tcp_syn | k_tcp_ack | k_tcp_rst | k_tcp_fin)) != k_tcp_syn) {
        return false;
    }
    return m.open_flow(frame, p, frame.subspan(p.l4_offset, p.l4_len), now);
}

int TcpEngine::fd() const noexcept {
    return m_impl->epfd;
}

void TcpEngine::process(Millis now) noexcept {
    Impl& m = *m_impl;
    std::array<epoll_event, k_epoll_batch> events;
    for (int round = 0; round < 4; ++round) {
        int n = ::epoll_wait(m.epfd, events.data(), k_epoll_batch, 0);
        if (n <= 0) {
            return;
        }
        for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
            auto idx = static_cast<std::uint32_t>(events[i].data.u64);
            auto gen = static_cast<std::uint32_t>(events[i].data.u64 >> 32);
            if (idx >= m.flows.size()) {
                std::size_t l = idx - m.flows.size();
                if (gen == 0 && l < m.listeners.size()) {
                    m.accept_all(m.listeners[l], now);
                }
                continue;
            }
            Flow& f = m.flows[idx];
            if (f.state == State::free || f.generation != gen) {
                continue;  // closed earlier in this batch
            }
            m.socket_event(f, events[i].events, now);
        }
        if (n < k_epoll_batch) {
            return;
        }
    }
}

void TcpEngine::flush_acks() noexcept {
    m_impl->flush_acks();
}

void TcpEngine::resume(Millis now) noexcept {
    Impl& m = *m_impl;
    m.flush_acks();
    m.resuming.swap(m.waiting);  // both reserved to capacity: no allocation
    for (std::uint32_t idx : m.resuming) {
        m.flows[idx].waiting_room = false;
    }
    for (std::uint32_t idx : m.resuming) {
        Flow& f = m.flows[idx];
        if (f.state == State::free) {
            continue;
        }
        m.send_data(f, now);
        if (f.state != State::free) {
            m.maybe_finish(f);
        }
    }
    m.resuming.clear();
}

// Deadlines are at least k_rto_ms away when set, so a walk of the open flows every
// k_scan_ms fires each timer at most k_scan_ms late and costs nothing per frame.
void TcpEngine::timers(Millis now) noexcept {
    Impl& m = *m_impl;
    if (now < m.next_scan) {
        return;
    }
    m.next_scan = now + k_scan_ms;
    for (std::size_t i = m.active.size(); i-- > 0;) {
        Flow& f = m.flows[m.active[i]];  // expire() may remove it: the last one moves here, already seen
        if (f.deadline != 0 && f.deadline <= now) {
            m.expire(f, now);
        }
    }
}

std::optional<Millis> TcpEngine::next_deadline() const noexcept {
    if (!m_impl->waiting.empty() || !m_impl->acks.empty()) {
        return 0;
    }
    if (m_impl->open == 0) {
        return std::nullopt;
    }
    return m_impl->next_scan;
}

std::size_t TcpEngine::open_flows() const noexcept {
    return m_impl->open;
}

std::size_t TcpEngine::capacity() const noexcept {
    return m_impl->flows.size();
}

const TcpEngineStats& TcpEngine::stats() const noexcept {
    return m_impl->stats;
}

void TcpEngine::use_peek_offset(bool use) noexcept {
    m_impl->try_peek_offset = use;
}

}  // namespace sbx::net
