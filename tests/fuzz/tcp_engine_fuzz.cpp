// libFuzzer: the TCP flow engine's state machine (tcp_engine.cpp), driven by sequences of
// guest segments, raw frames, host socket actions, clock steps and back-pressure, against
// real sockets on the loopback: a listener the guest connects to (10.0.2.2 and fec0::2 are
// 127.0.0.1 and ::1) and the engine's own forward (127.0.0.1:<kernel port> -> guest port 22)
// that host clients connect to.
//
// Input format. Byte 0 sets up the engine: bits 0-1 the flow capacity (1, 2, 4, 8); bit 2 the
// discard-buffer path (use_peek_offset(false)); bits 3-4 the MTU (65520, 1500, 1280, 65520);
// bit 5: the guest's MAC is not known at first (else set_macs() at once). Either way it is
// learnt as netd learns it: from each guest frame, before the engine sees the frame. Bit 6:
// a stream hook terminates the flows to the closed port, and an echo handler sends back what
// the guest sends them, as far as both sides take it, on each op 10 (stream_hook.hpp); bit 7:
// the handler accepts a new flow only on the next op 10, not at once. Then at
// most k_max_ops ops, each a byte (kind = byte % 13) and its arguments, until the input ends
// (missing bytes read as 0):
//    0 guest segment  [tuple][flags][dseq][dack][window:2][optlen][opt...][paylen][payload...]
//        tuple: bit 0 IPv6; bits 1-2 the guest port (40000, 40001, 40002, 22); bits 3-4 the
//        destination (the listener, forward client 0 or 1, a closed port). dseq/dack: a signed
//        byte, or 0x80 then a 32-bit delta; seq = the engine's last ACK on the tuple + dseq,
//        ack = the engine's last seq + its length (SYN/FIN count one) + dack, read back from
//        the last frame the queue saw on the tuple. optlen % 41 option bytes, zero-padded to
//        a multiple of 4. paylen < 0xc0: that many payload bytes; else (paylen - 0xbf) * 1000
//        bytes (up to 64000: enough to fill the host socket), the first 16 from the input and
//        repeated.
//    1 raw frame      [len:2][bytes]: if it parses as TCP, its destination becomes 10.0.2.2
//        (fec0::2) and one of our ports (dport % 4, as a tuple's destination), the rest kept
//        as it is, and it goes to the engine (which so never dials anything else)
//    2 accept         makes the listener's connections usable by ops 3-7
//    3 host write     [sock][n]: (n + 1) * 16 bytes of a per-socket pattern
//    4 host shutdown  [sock]: shutdown(SHUT_WR)
//    5 host reset     [sock]: close with SO_LINGER 0
//    6 host close     [sock]: close
//    7 host read      [sock]: reads what the socket holds (so the engine's send() fits again)
//    8 client connect [slot]: a new host client of the forward in slot % 2 (the old one reset)
//    9 clock          [b]: now += (b & 63) * {1, 50, 1000, 10000}[b >> 6] ms, then timers()
//   10 process()      then resume(); the echo handler moves what it can
//   11 queue room     [n:2]: the output queue's free tail becomes min(n * 5, capacity) bytes
//   12 guest frame    one that is not TCP: the guest's MAC is learnt
// [sock] picks one of the usable host sockets (accepted, or a client) modulo their number.
//
// Invariants (abort on violation): every record the engine writes has a consistent length
// prefix and holds one well-formed TCP/IP frame with valid IPv4 and TCP checksums (computed
// here, not by frame.cpp), exactly as long as its headers say, addressed from the MAC netd
// uses to the guest's, for one of the fixed tuples (or answering a raw frame); the records
// fill exactly the bytes and frame count advance() names, inside the tail they were given
// (ASan poisons the rest of the queue); open_flows() <= capacity(); HostFlows hears once of
// each forward's start and once of its end. Per flow whose host socket is known: the payload
// byte at sequence ISN + 1 + k is the k-th byte the host wrote (and nothing beyond what it
// wrote is sent); a FIN comes only once the host shut down or closed, right after its last
// byte.
//
// Between inputs. One engine per setup is kept from input to input (netd's MACs cannot be
// forgotten: an engine whose MACs came late is made again). After each input every host
// socket is closed with a RST, so that the engine resets its flows (and no TIME_WAIT entry
// is left on either side), then time jumps past every timer; an engine that still holds a
// flow is dropped. A connection to the listener is accepted in the op that opened it (on the
// loopback the handshake is over when connect() returns), so each accepted socket is known
// to be its tuple's; op 2 only makes them usable.

#include "sbx/net/deframer.hpp"
#include "sbx/net/engine_io.hpp"
#include "sbx/net/frame.hpp"
#include "sbx/net/netd_config.hpp"
#include "sbx/net/stream_hook.hpp"
#include "sbx/net/tcp_engine.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sanitizer/asan_interface.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <vector>

using namespace sbx::net;

namespace {

constexpr std::size_t k_max_ops = 64;
constexpr std::size_t k_queue_capacity = 320 * 1024;
constexpr std::size_t k_max_payload = 64000;  // (0xff - 0xbf) * 1000, within an IP packet
constexpr std::size_t k_max_raw = 2048;
constexpr std::size_t k_max_entries = 64;
constexpr std::size_t k_max_sockets = 128;
constexpr int k_host_rcvbuf = 4096;
constexpr int k_host_mss = 536;
constexpr std::array<std::uint16_t, 4> k_guest_ports = {40000, 40001, 40002, 22};
constexpr std::array<std::uint8_t, 6> k_guest_mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr std::array<std::uint8_t, 6> k_slirp_mac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
constexpr std::array<std::uint8_t, 16> k_guest6 = {0xfe, 0xc0, 0, 0,    0,    0,    0,    0,
                                                   0x50, 0x54, 0, 0xff, 0xfe, 0x12, 0x34, 0x56};

// TCP_ENGINE_FUZZ_TRACE=1 prints each op and frame (for reading a crash input);
// TCP_ENGINE_FUZZ_STATS=1 prints the harness's counters every 20000 inputs.
const bool k_trace = std::getenv("TCP_ENGINE_FUZZ_TRACE") != nullptr;
const bool k_stats = std::getenv("TCP_ENGINE_FUZZ_STATS") != nullptr;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "tcp_engine_fuzz: invariant violated: %s\n", what);
    std::abort();
}

void check(bool ok, const char* what) {
    if (!ok) {
        fail(what);
    }
}

// The Internet checksum, independently of frame.cpp: the folded ones' complement sum.
std::uint32_t sum_words(const std::uint8_t* p, std::size_t n, std::uint32_t acc) {
    for (std::size_t i = 0; i + 1 < n; i += 2) {
        acc += static_cast<std::uint32_t>((p[i] << 8) | p[i + 1]);
    }
    if ((n & 1) != 0) {
        acc += static_cast<std::uint32_t>(p[n - 1] << 8);
    }
    return acc;
}
std::uint16_t fold(std::uint32_t acc) {
    while ((acc >> 16) != 0) {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    return static_cast<std::uint16_t>(acc);
}

// The bytes a host socket writes: a function of the socket (salt) and the stream offset.
std::uint8_t pattern(std::uint32_t salt, std::uint64_t off) {
    auto x = static_cast<std::uint32_t>(off * 0x9e3779b1u) ^ (salt * 0x85ebca77u) ^
             static_cast<std::uint32_t>(off >> 32);
    x ^= x >> 15;
    x *= 0x2c1b3c6du;
    x ^= x >> 12;
    return static_cast<std::uint8_t>(x);
}

// A small receive buffer and MSS for a host socket (accepted sockets inherit the listener's):
// the engine's socket toward it then keeps a small send buffer, which the guest fills within
// a few of its segments (without them, 4 MiB: more than an input carries).
void small_buffers(int fd) {
    int rcvbuf = k_host_rcvbuf;
    int mss = k_host_mss;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    ::setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss);
}

int closing_reset(int fd) {
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    return ::close(fd);
}

// A host socket the harness holds: accepted on the listener, or a client of the forward.
struct HostSocket {
    int fd = -1;
    std::uint32_t salt = 0;
    std::uint64_t written = 0;  // bytes the kernel took, in order
    bool usable = false;        // ops 3-7 may pick it
    bool ended = false;         // shut down or closed: the stream is complete
};

// What the harness knows of one 4-tuple (guest address:port, host alias:port).
struct Entry {
    bool v6 = false;
    std::uint16_t guest_port = 0, remote_port = 0;
    bool seen = false;               // a frame of the engine's on this tuple
    std::uint32_t last_ack = 0;      // its ack field
    std::uint32_t last_seq_end = 0;  // its seq + payload + SYN + FIN
    bool isn_known = false;
    std::uint32_t isn = 0;
    bool fin_seen = false;
    bool trusted = true;  // false: the host socket may not be this flow's (no payload checks)
    int sock = -1;        // index in Harness::sockets, -1: none known
    // The guest's side: its ISN (the SYN that opened the flow, or the SYN-ACK the engine took)
    // and the furthest its segments reached since, relative to ISN + 1 (SYN/FIN count one).
    bool guest_isn_known = false;
    std::uint32_t guest_isn = 0;
    std::int64_t guest_end = 0;
    bool syn_ack_pending = false;  // a guest SYN-ACK is being delivered
    std::uint32_t syn_ack_seq = 0;
};

struct RawTuple {
    bool v6 = false;
    IpAddr src, dst;
    std::uint16_t sport = 0, dport = 0;
};

struct Harness;

// The handler of setup bit 6: echoes on the terminated flows. At the end of an input it
// resets what it still holds, as end() resets every host socket.
class EchoHook final : public StreamHook {
public:
    TcpEngine* engine = nullptr;
    std::uint16_t port = 0;
    bool accept_later = false;

    Route route(const FlowKey& k) noexcept override { return k.dport == port ? Route::terminate : Route::splice; }

    void attach(const FlowKey&, StreamId id, int fd) noexcept override {
        if (streams.size() >= k_max_streams) {
            ::close(fd);  // a hang-up before the accept: the guest gets a RST
            return;
        }
        streams.push_back(Stream{id, fd, !accept_later, {}, 0});
        if (!accept_later) {
            engine->accept_stream(id, now);
        }
    }

    void step(Millis at) noexcept {
        now = at;
        for (auto& st : streams) {
            if (!st.accepted) {
                st.accepted = true;
                engine->accept_stream(st.id, now);
            }
            for (int round = 0; round < 4 && st.fd >= 0; ++round) {
                if (st.pending == 0) {
                    ssize_t n = ::recv(st.fd, st.buf.data(), st.buf.size(), MSG_DONTWAIT);
                    if (n == 0) {
                        ::shutdown(st.fd, SHUT_WR);  // the guest's FIN, passed back
                    }
                    if (n <= 0) {
                        break;
                    }
                    st.pending = static_cast<std::size_t>(n);
                }
                ssize_t w = ::send(st.fd, st.buf.data(), st.pending, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w <= 0) {
                    break;
                }
                std::memmove(st.buf.data(), st.buf.data() + w, st.pending - static_cast<std::size_t>(w));
                st.pending -= static_cast<std::size_t>(w);
            }
        }
    }

    void end() noexcept {
        for (auto& st : streams) {
            engine->reset_stream(st.id);  // false for a flow already gone
            ::close(st.fd);
        }
        streams.clear();
    }

private:
    static constexpr std::size_t k_max_streams = 16;
    struct Stream {
        StreamId id;
        int fd = -1;
        bool accepted = false;
        std::array<std::byte, 4096> buf;
        std::size_t pending = 0;
    };
    std::vector<Stream> streams;
    Millis now = 0;
};

// netd's output queue: hands out the end of one exactly-sized allocation (the rest poisoned),
// parses and checks every record written there, then drops it.
class CheckingQueue final : public GuestQueue {
public:
    explicit CheckingQueue(Harness& h) : m_h(h), m_buf(new std::byte[k_queue_capacity]) {
        set_room(k_queue_capacity);
    }
    MutBytes tail_space() noexcept override {
        return MutBytes(m_buf.get() + k_queue_capacity - m_room, m_room);
    }
    void advance(std::size_t bytes, std::size_t frames) noexcept override;
    void set_room(std::size_t room) {
        m_room = std::min(room, k_queue_capacity);
        ASAN_UNPOISON_MEMORY_REGION(m_buf.get(), k_queue_capacity);
        ASAN_POISON_MEMORY_REGION(m_buf.get(), k_queue_capacity - m_room);
    }

private:
    Harness& m_h;
    std::unique_ptr<std::byte[]> m_buf;
    std::size_t m_room = 0;
};

class FlowLog final : public HostFlows {
public:
    explicit FlowLog(Harness& h) : m_h(h) { open.reserve(16); }  // capacity is at most 8
    void host_opened(const FlowKey& k) noexcept override;
    void host_closed(const FlowKey& k) noexcept override;
    std::vector<FlowKey> open;

private:
    Harness& m_h;
};

// An engine kept from one input to the next, one per setup (capacity, MTU, whether the MACs
// come late).
struct EngineSlot {
    GuestNet net;
    std::unique_ptr<TcpEngine> engine;
    std::uint16_t forward_port = 0;
    bool macs_set = false;
    MacAddr guest_mac{};  // the last set_macs()
};

struct Harness {
    GuestNet net;
    IpAddr guest6 = IpAddr::v6(k_guest6);
    int listener4 = -1, listener6 = -1, closed_holder = -1;
    std::uint16_t listen_port4 = 0, listen_port6 = 0, closed_port = 0;
    CheckingQueue queue{*this};
    FlowLog log{*this};
    EchoHook echo;
    std::array<EngineSlot, 32> pool;
    EngineSlot* slot = nullptr;
    TcpEngine* engine = nullptr;
    bool macs_late = false;
    Millis now = 0;
    bool raw_delivered = false;  // frames may carry other MACs
    bool mapping_lost = false;   // an accepted socket could not be tied to its flow
    std::uint32_t next_salt = 1;
    std::vector<HostSocket> sockets;
    std::vector<Entry> entries;
    std::vector<RawTuple> raw_tuples;
    std::vector<std::uint16_t> client_ports;  // every forward client of this input
    std::array<int, 2> client_sock{-1, -1};   // index in sockets
    std::array<std::uint16_t, 2> client_port{0, 0};
    struct Counters {
        std::uint64_t inputs = 0, engines_made = 0, engines_dropped = 0, mapping_lost = 0;
        std::uint64_t frames = 0, data_frames_checked = 0, bytes_checked = 0, fins_checked = 0;
    } counters;

    Harness() {
        listener4 = listen_on(false, listen_port4);
        listener6 = listen_on(true, listen_port6);
        closed_holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(closed_holder, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(closed_holder, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            fail("cannot bind the closed port");
        }
        closed_port = ntohs(a.sin_port);
        echo.port = closed_port;
        sockets.reserve(k_max_sockets);
        entries.reserve(k_max_entries);
        raw_tuples.reserve(k_max_ops);
        client_ports.reserve(k_max_ops);
    }

    static int listen_on(bool v6, std::uint16_t& port) {
        int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_storage st{};
        socklen_t len = 0;
        if (v6) {
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_addr = in6addr_loopback;
            std::memcpy(&st, &a, sizeof a);
            len = sizeof a;
        } else {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            std::memcpy(&st, &a, sizeof a);
            len = sizeof a;
        }
        if (fd >= 0) {
            small_buffers(fd);
        }
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&st), len) != 0 || ::listen(fd, 128) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&st), &len) != 0) {
            if (v6) {
                if (fd >= 0) {
                    ::close(fd);
                }
                port = 0;  // no IPv6 loopback: the v6 tuples meet refused connects
                return -1;
            }
            fail("cannot listen on 127.0.0.1");
        }
        port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&st)->sin6_port)
                  : ntohs(reinterpret_cast<sockaddr_in*>(&st)->sin_port);
        return fd;
    }

    MacAddr mac(const std::array<std::uint8_t, 6>& m) const {
        MacAddr out{};
        for (std::size_t i = 0; i < 6; ++i) {
            out[i] = std::byte{m[i]};
        }
        return out;
    }

    const IpAddr& guest_ip(bool v6) const { return v6 ? guest6 : net.guest; }
    const IpAddr& host_ip(bool v6) const { return v6 ? net.host6 : net.host; }
    std::uint16_t listen_port(bool v6) const { return v6 ? listen_port6 : listen_port4; }

    // --- one input ----------------------------------------------------------------------

    void begin(std::uint8_t setup) {
        static constexpr std::array<std::size_t, 4> k_caps = {1, 2, 4, 8};
        static constexpr std::array<std::uint32_t, 4> k_mtus = {65520, 1500, 1280, 65520};
        macs_late = (setup & 0x20) != 0;
        slot = &pool[(setup & 3u) | ((setup >> 3) & 3u) << 2 | (macs_late ? 16u : 0u)];
        net = GuestNet{};
        net.mtu = k_mtus[(setup >> 3) & 3];
        if (slot->engine == nullptr) {
            slot->net = net;
            slot->engine = std::make_unique<TcpEngine>(net, k_caps[setup & 3], queue, &log, 7);
            slot->forward_port = slot->engine->add_forward(HostForward{0, 22, Proto::tcp});
            slot->macs_set = false;
            ++counters.engines_made;
        }
        engine = slot->engine.get();
        engine->use_peek_offset((setup & 4) == 0);
        echo.engine = engine;
        echo.accept_later = (setup & 0x80) != 0;
        engine->set_stream_hook((setup & 0x40) != 0 ? &echo : nullptr);
        if (!macs_late && !slot->macs_set) {
            set_macs(mac(k_guest_mac));
        }
        now += 1'000'000;  // past every timer the last input left (none should be left)
        raw_delivered = false;
        mapping_lost = false;
        next_salt = 1;
        queue.set_room(k_queue_capacity);
        ++counters.inputs;
    }

    // Brings the engine back to no flows: every host socket reset (the engine sees the error
    // and resets its flow), then time past every timer; an engine that still holds a flow,
    // or whose MACs came late this time, is dropped.
    void end() {
        queue.set_room(k_queue_capacity);
        echo.end();
        drain_listeners(false);
        for (auto& s : sockets) {
            if (s.fd >= 0) {
                closing_reset(s.fd);
                s.fd = -1;
                s.ended = true;
            }
        }
        // Twice at least: a client reset in the forward's backlog is accepted, then reset.
        for (int i = 0; i < 8 && (i < 2 || engine->open_flows() > 0); ++i) {
            engine->process(now);
            engine->resume(now);
        }
        for (int i = 0; i < 12 && engine->open_flows() > 0; ++i) {
            now += 200'000;
            engine->timers(now);
            engine->process(now);
        }
        engine->resume(now);  // empties the engine's list of flows waiting for room
        counters.mapping_lost += mapping_lost ? 1 : 0;
        if (engine->open_flows() > 0 || !log.open.empty() || (macs_late && slot->macs_set)) {
            counters.engines_dropped += engine->open_flows() > 0 ? 1 : 0;
            slot->engine.reset();
            log.open.clear();
        } else if (slot->macs_set && slot->guest_mac != mac(k_guest_mac)) {
            set_macs(mac(k_guest_mac));  // a raw frame's source MAC: netd would have learnt it
        }
        for (auto& s : sockets) {
            if (s.fd >= 0) {
                closing_reset(s.fd);
            }
        }
        engine = nullptr;
        sockets.clear();
        entries.clear();
        raw_tuples.clear();
        client_ports.clear();
        client_sock = {-1, -1};
        client_port = {0, 0};
    }

    void set_macs(const MacAddr& guest) {
        engine->set_macs(guest, mac(k_slirp_mac));
        slot->macs_set = true;
        slot->guest_mac = guest;
    }

    int add_socket(int fd, bool usable) {
        if (sockets.size() >= k_max_sockets) {
            closing_reset(fd);
            return -1;
        }
        HostSocket s;
        s.fd = fd;
        s.salt = next_salt++;
        s.usable = usable;
        sockets.push_back(s);
        return static_cast<int>(sockets.size() - 1);
    }

    Entry* find_entry(bool v6, std::uint16_t guest_port, std::uint16_t remote_port) {
        for (auto& e : entries) {
            if (e.v6 == v6 && e.guest_port == guest_port && e.remote_port == remote_port) {
                return &e;
            }
        }
        return nullptr;
    }

    Entry* entry(bool v6, std::uint16_t guest_port, std::uint16_t remote_port) {
        if (Entry* e = find_entry(v6, guest_port, remote_port)) {
            return e;
        }
        if (entries.size() >= k_max_entries) {
            return nullptr;
        }
        Entry e;
        e.v6 = v6;
        e.guest_port = guest_port;
        e.remote_port = remote_port;
        entries.push_back(e);
        return &entries.back();
    }

    // The entry a guest-side packet belongs to: from our guest address to the host alias.
    Entry* entry_of_guest_packet(const Packet& p) {
        if (p.src != guest_ip(p.v6) || p.dst != host_ip(p.v6)) {
            return nullptr;
        }
        return entry(p.v6, p.sport, p.dport);
    }

    // Accepts what waits on the listeners and holds it. Returns the connection when exactly
    // one waited and on `want_v6`'s listener (-1 otherwise); `count`: how many waited.
    int drain_listeners(bool want_v6, int* count = nullptr) {
        int one = -1;
        int n = 0;
        for (int l : {listener4, listener6}) {
            if (l < 0) {
                continue;
            }
            for (;;) {
                int fd = ::accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    break;
                }
                int idx = add_socket(fd, false);
                ++n;
                one = (l == listener6) == want_v6 ? idx : -1;
            }
        }
        if (count != nullptr) {
            *count = n;
        }
        return n == 1 ? one : -1;
    }

    // Delivers a guest frame to the engine; ties a connection it opened to its host socket.
    void deliver(Bytes frame, const Packet& p) {
        // As netd does: the guest's MAC is learnt from what it sends, before the engine sees it.
        if (auto eth = EthernetView::of(frame); eth && (!slot->macs_set || eth->src() != slot->guest_mac)) {
            set_macs(eth->src());
        }
        Entry* e = entry_of_guest_packet(p);
        bool syn = (p.tcp_flags & k_tcp_syn) != 0;
        if (e != nullptr) {
            // Before the engine answers: how far this segment reaches in the guest's stream.
            if (e->guest_isn_known) {
                auto start = static_cast<std::int32_t>(p.tcp_seq - (e->guest_isn + 1));
                std::int64_t end = std::int64_t{start} + p.tcp_payload_len + (syn ? 1 : 0) +
                                   ((p.tcp_flags & k_tcp_fin) != 0 ? 1 : 0);
                e->guest_end = std::max(e->guest_end, end);
            }
            e->syn_ack_pending = syn && (p.tcp_flags & k_tcp_ack) != 0;
            e->syn_ack_seq = p.tcp_seq;
        }
        std::size_t before = engine->open_flows();
        (void)engine->guest_segment(frame, p, now);
        if (e != nullptr) {
            e->syn_ack_pending = false;
        }
        if (engine->open_flows() <= before) {
            return;
        }
        // A new flow on p's tuple: the engine connect()ed; on the loopback the handshake is
        // done before connect() returns, so the connection waits on the listener now.
        if (e != nullptr) {
            e->guest_isn_known = true;
            e->guest_isn = p.tcp_seq;
            e->guest_end = 0;
        }
        bool to_listener = p.dst == host_ip(p.v6) && p.dport == listen_port(p.v6) && listen_port(p.v6) != 0;
        if (e != nullptr) {
            e->isn_known = false;
            e->fin_seen = false;
            e->sock = -1;
        }
        if (!to_listener) {
            return;
        }
        int idx = drain_listeners(p.v6);
        if (idx < 0) {
            mapping_lost = true;  // none, or more than one: which is whose?
            return;
        }
        if (e != nullptr) {
            e->sock = idx;
        }  // else a raw frame's own tuple: the connection is held, tied to nothing
    }

    // --- checks of what the engine writes -------------------------------------------------

    bool known_remote_port(std::uint16_t port) const {
        if (port == 0) {
            return false;
        }
        if (port == listen_port4 || port == listen_port6 || port == closed_port) {
            return true;
        }
        for (auto p : client_ports) {
            if (p == port) {
                return true;
            }
        }
        return false;
    }

    bool answers_raw(const Packet& p) const {
        for (auto& r : raw_tuples) {
            if (r.v6 == p.v6 && r.src == p.dst && r.dst == p.src && r.sport == p.dport &&
                r.dport == p.sport) {
                return true;
            }
        }
        return false;
    }

    void check_frame(Bytes frame) {
        const auto* b = reinterpret_cast<const std::uint8_t*>(frame.data());
        ++counters.frames;
        Packet p = parse_packet(frame);
        check(p.kind == Packet::Kind::ip && p.protocol == k_ipproto_tcp, "a frame that is not TCP/IP");
        check(p.l3_offset == 14 && p.l3_offset + p.l3_total_len == frame.size(), "IP length != frame length");
        check(p.l4_offset + p.l4_len == frame.size(), "TCP length != frame length");
        std::size_t l4 = p.l4_offset;
        if (p.v6) {
            check(p.l3_header_len == 40 && b[20] == k_ipproto_tcp, "IPv6 extension headers");
        } else {
            check((b[14] & 0x0f) == 5, "IPv4 options");
            check(fold(sum_words(b + 14, 20, 0)) == 0xffff, "bad IPv4 header checksum");
        }
        // The TCP checksum with the pseudo-header.
        std::uint32_t acc = 0;
        if (p.v6) {
            acc = sum_words(b + 22, 32, 0);
            acc += static_cast<std::uint32_t>(p.l4_len >> 16) + (p.l4_len & 0xffff) + k_ipproto_tcp;
        } else {
            acc = sum_words(b + 26, 8, 0);
            acc += k_ipproto_tcp + p.l4_len;
        }
        acc = sum_words(b + l4, p.l4_len, acc);
        check(fold(acc) == 0xffff, "bad TCP checksum");
        std::size_t thl = (b[l4 + 12] >> 4) * 4u;
        std::uint8_t flags = b[l4 + 13];
        check(thl >= 20 && thl <= p.l4_len, "TCP header length");
        check((flags & ~(k_tcp_fin | k_tcp_syn | k_tcp_rst | k_tcp_psh | k_tcp_ack)) == 0,
              "unexpected TCP flags");
        bool syn = (flags & k_tcp_syn) != 0;
        bool rst = (flags & k_tcp_rst) != 0;
        bool fin = (flags & k_tcp_fin) != 0;
        std::size_t payload = p.l4_len - thl;
        if (k_trace) {
            std::fprintf(stderr, "  engine: %s :%u -> :%u flags %02x seq %u ack %u win %u len %zu\n",
                         p.v6 ? "v6" : "v4", p.sport, p.dport, flags, p.tcp_seq, p.tcp_ack,
                         (b[l4 + 14] << 8) | b[l4 + 15], payload);
        }
        check(thl == (syn ? 28u : 20u), "options on a segment other than a SYN");
        check(!(syn && (rst || fin)), "SYN with RST or FIN");
        check(payload == 0 || (!syn && !rst && (flags & k_tcp_ack) != 0),
              "payload on a SYN, RST or without ACK");
        check(payload <= net.mtu - (p.v6 ? 60u : 40u), "payload beyond the MSS");
        if (!raw_delivered) {
            check(
                std::memcmp(b, k_guest_mac.data(), 6) == 0 && std::memcmp(b + 6, k_slirp_mac.data(), 6) == 0,
                "Ethernet addresses");
        }
        // Addressed to one of our tuples, or answering a raw frame.
        bool fixed = p.dst == guest_ip(p.v6) && p.src == host_ip(p.v6) && known_remote_port(p.sport);
        bool guest_port_ok = false;
        for (auto g : k_guest_ports) {
            guest_port_ok = guest_port_ok || g == p.dport;
        }
        if (!(fixed && guest_port_ok) && !answers_raw(p)) {
            fail("a frame for a tuple the guest never used");
        }
        Entry* e = fixed ? entry(p.v6, p.dport, p.sport) : nullptr;
        if (e == nullptr) {
            return;
        }
        e->seen = true;
        e->last_ack = p.tcp_ack;
        e->last_seq_end = p.tcp_seq + static_cast<std::uint32_t>(payload) + (syn ? 1u : 0u) + (fin ? 1u : 0u);
        if (rst) {
            return;
        }
        if ((flags & k_tcp_ack) != 0) {
            if (e->syn_ack_pending && !syn && p.tcp_ack == e->syn_ack_seq + 1) {
                e->guest_isn_known = true;  // the engine took the guest's SYN-ACK (a forward)
                e->guest_isn = e->syn_ack_seq;
                e->guest_end = 0;
            }
            if (e->guest_isn_known) {
                auto acked = static_cast<std::int32_t>(p.tcp_ack - (e->guest_isn + 1));
                check(acked <= e->guest_end, "an ACK for bytes the guest never sent");
            }
        }
        if (syn) {
            if (e->isn_known && e->isn != p.tcp_seq) {
                e->trusted = false;  // a new flow we did not see open: the socket may be another's
            }
            e->isn_known = true;
            e->isn = p.tcp_seq;
            return;
        }
        if (!e->isn_known || !e->trusted || e->sock < 0 || mapping_lost) {
            return;
        }
        const HostSocket& s = sockets[static_cast<std::size_t>(e->sock)];
        auto off = static_cast<std::int32_t>(p.tcp_seq - (e->isn + 1));
        check(off >= 0, "a segment before the flow's first byte");
        auto end = static_cast<std::uint64_t>(off) + payload;
        if (payload > 0) {
            check(end <= s.written, "bytes the host never wrote");
        } else {
            check(end <= s.written + (e->fin_seen ? 1u : 0u), "a sequence number beyond what the host wrote");
        }
        counters.data_frames_checked += payload > 0 ? 1 : 0;
        counters.bytes_checked += payload;
        counters.fins_checked += fin ? 1 : 0;
        for (std::size_t i = 0; i < payload; ++i) {
            if (b[l4 + thl + i] != pattern(s.salt, static_cast<std::uint64_t>(off) + i)) {
                fail("payload differs from what the host wrote");
            }
        }
        if (fin) {
            check(s.ended, "a FIN the host never sent");
            check(end == s.written, "a FIN not right after the host's last byte");
            e->fin_seen = true;
        }
    }

    void check_records(Bytes area, std::size_t frames) {
        std::size_t pos = 0, n = 0;
        while (pos < area.size()) {
            check(area.size() - pos >= Deframer::k_header, "a torn length prefix");
            std::size_t len = load_be32(area.data() + pos);
            check(len >= 54 && len <= area.size() - pos - Deframer::k_header,
                  "a length prefix beyond the record");
            check_frame(area.subspan(pos + Deframer::k_header, len));
            pos += Deframer::k_header + len;
            ++n;
        }
        check(n == frames, "advance() frame count");
    }

    // --- ops ------------------------------------------------------------------------------

    HostSocket* pick_socket(std::uint8_t b) {
        int usable = 0;
        for (auto& s : sockets) {
            usable += s.usable && s.fd >= 0 ? 1 : 0;
        }
        if (usable == 0) {
            return nullptr;
        }
        int k = b % usable;
        for (auto& s : sockets) {
            if (s.usable && s.fd >= 0 && k-- == 0) {
                return &s;
            }
        }
        return nullptr;
    }

    void host_write(HostSocket& s, std::size_t n) {
        std::array<std::uint8_t, 4096> buf;
        n = std::min(n, buf.size());
        for (std::size_t i = 0; i < n; ++i) {
            buf[i] = pattern(s.salt, s.written + i);
        }
        ssize_t got = ::send(s.fd, buf.data(), n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (got > 0 && !s.ended) {
            s.written += static_cast<std::uint64_t>(got);
        }
    }

    void host_read(HostSocket& s) {
        std::array<std::byte, 16384> buf;
        for (int i = 0; i < 64; ++i) {
            if (::recv(s.fd, buf.data(), buf.size(), MSG_DONTWAIT) <= 0) {
                return;
            }
        }
    }

    void connect_client(std::size_t which) {
        if (client_sock[which] >= 0) {
            HostSocket& old = sockets[static_cast<std::size_t>(client_sock[which])];
            if (old.fd >= 0) {
                closing_reset(old.fd);
                old.fd = -1;
                old.ended = true;
            }
            client_sock[which] = -1;
        }
        if (client_ports.size() >= client_ports.capacity()) {
            return;
        }
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        small_buffers(fd);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(this->slot->forward_port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd < 0) {
            return;
        }
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
            ::close(fd);
            return;
        }
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        std::uint16_t port = ntohs(a.sin_port);
        int idx = add_socket(fd, true);
        if (idx < 0) {
            return;
        }
        bool reused = known_remote_port(port);
        client_ports.push_back(port);
        client_sock[which] = idx;
        client_port[which] = port;
        // The forward's tuple: the engine opens it once it accepts (process()).
        Entry* e = entry(false, 22, port);
        if (e != nullptr) {
            e->guest_isn_known = false;
            e->isn_known = false;
            e->fin_seen = false;
            e->sock = idx;
            e->trusted = e->trusted && !reused;  // an old flow on a reused port may still talk
        }
    }

    std::uint16_t remote_port_of(std::uint8_t dest, bool v6) const {
        switch (dest) {
            case 0:
                return listen_port(v6) != 0 ? listen_port(v6) : closed_port;
            case 1:
            case 2:
                return client_port[dest - 1u] != 0 ? client_port[dest - 1u] : closed_port;
            default:
                return closed_port;
        }
    }

    // A guest segment on a fixed tuple (op 0), built in `buf`.
    void guest_segment(std::uint8_t tuple, std::uint8_t flags, std::uint32_t dseq, std::uint32_t dack,
                       std::uint16_t window, Bytes options, Bytes payload) {
        bool v6 = (tuple & 1) != 0;
        std::uint16_t sport = k_guest_ports[(tuple >> 1) & 3];
        std::uint16_t dport = remote_port_of(static_cast<std::uint8_t>((tuple >> 3) & 3), v6);
        Entry* e = entry(v6, sport, dport);
        std::uint32_t seq_base = 0x10000000u + (std::uint32_t{tuple} << 20), ack_base = 0;
        if (e != nullptr && e->seen) {
            seq_base = e->last_ack;
            ack_base = e->last_seq_end;
        }
        static std::array<std::uint8_t, 14 + 40 + 60 + k_max_payload> buf;
        std::size_t opt_len = (options.size() + 3) & ~std::size_t{3};
        std::size_t l3 = v6 ? 40 : 20;
        std::size_t l4_len = 20 + opt_len + payload.size();
        std::size_t size = 14 + l3 + l4_len;
        std::uint8_t* o = buf.data();
        std::memset(o, 0, 14 + l3 + 20 + opt_len);
        std::memcpy(o, k_slirp_mac.data(), 6);
        std::memcpy(o + 6, k_guest_mac.data(), 6);
        auto put16 = [](std::uint8_t* p, std::size_t v) {
            p[0] = static_cast<std::uint8_t>(v >> 8);
            p[1] = static_cast<std::uint8_t>(v);
        };
        auto put32 = [&](std::uint8_t* p, std::uint32_t v) {
            put16(p, v >> 16);
            put16(p + 2, v & 0xffff);
        };
        put16(o + 12, v6 ? k_ethertype_ipv6 : k_ethertype_ipv4);
        std::uint8_t* ip = o + 14;
        const IpAddr& src = guest_ip(v6);
        const IpAddr& dst = host_ip(v6);
        if (v6) {
            put32(ip, 0x60000000u);
            put16(ip + 4, l4_len);
            ip[6] = k_ipproto_tcp;
            ip[7] = 64;
            std::memcpy(ip + 8, src.bytes.data(), 16);
            std::memcpy(ip + 24, dst.bytes.data(), 16);
        } else {
            ip[0] = 0x45;
            put16(ip + 2, 20 + l4_len);
            put16(ip + 6, 0x4000);
            ip[8] = 64;
            ip[9] = k_ipproto_tcp;
            std::memcpy(ip + 12, src.bytes.data() + 12, 4);
            std::memcpy(ip + 16, dst.bytes.data() + 12, 4);
            put16(ip + 10, static_cast<std::uint16_t>(~fold(sum_words(ip, 20, 0))));
        }
        std::uint8_t* t = ip + l3;
        put16(t, sport);
        put16(t + 2, dport);
        put32(t + 4, seq_base + dseq);
        put32(t + 8, ack_base + dack);
        t[12] = static_cast<std::uint8_t>(((20 + opt_len) / 4) << 4);
        t[13] = flags;
        put16(t + 14, window);
        std::memcpy(t + 20, options.data(), options.size());
        std::memcpy(t + 20 + opt_len, payload.data(), payload.size());
        std::uint32_t acc =
            v6 ? sum_words(ip + 8, 32, 0) + static_cast<std::uint32_t>(l4_len) + k_ipproto_tcp
               : sum_words(ip + 12, 8, 0) + k_ipproto_tcp + static_cast<std::uint32_t>(l4_len);
        acc = sum_words(t, l4_len, acc);
        put16(t + 16, static_cast<std::uint16_t>(~fold(acc)));
        Bytes frame(reinterpret_cast<const std::byte*>(o), size);
        Packet p = parse_packet(frame);
        check(p.kind == Packet::Kind::ip, "the harness built a frame parse_packet rejects");
        if (k_trace) {
            std::fprintf(stderr, "  guest: %s :%u -> :%u flags %02x seq %u ack %u win %u opt %zu len %zu\n",
                         v6 ? "v6" : "v4", sport, dport, flags, p.tcp_seq, p.tcp_ack, window, options.size(),
                         payload.size());
        }
        deliver(frame, p);
    }

    // A raw frame (op 1): as it is, but for its destination, made one of ours.
    void raw_frame(MutBytes frame) {
        Packet p = parse_packet(frame);
        if (p.kind != Packet::Kind::ip || p.protocol != k_ipproto_tcp) {
            return;
        }
        std::byte* dst = frame.data() + p.l3_offset + (p.v6 ? 24 : 16);
        if (p.v6) {
            std::memcpy(dst, net.host6.bytes.data(), 16);
        } else {
            std::memcpy(dst, net.host.bytes.data() + 12, 4);
        }
        std::array<std::uint16_t, 4> ports = {remote_port_of(0, p.v6), remote_port_of(1, p.v6),
                                              remote_port_of(2, p.v6), closed_port};
        store_be16(frame.data() + p.l4_offset + 2, ports[p.dport % 4u]);
        p = parse_packet(frame);
        check(p.kind == Packet::Kind::ip && p.dst == host_ip(p.v6),
              "a raw frame did not keep its new address");
        raw_delivered = true;
        if (raw_tuples.size() < raw_tuples.capacity()) {
            raw_tuples.push_back(RawTuple{p.v6, p.src, p.dst, p.sport, p.dport});
        }
        deliver(frame, p);
    }
};

Harness* g_harness = nullptr;

void CheckingQueue::advance(std::size_t bytes, std::size_t frames) noexcept {
    check(bytes <= m_room, "advance() beyond the tail");
    std::byte* start = m_buf.get() + k_queue_capacity - m_room;
    m_h.check_records(Bytes(start, bytes), frames);
    std::memset(start, 0, bytes);  // stale records cannot pass for new ones
    m_room -= bytes;
    ASAN_POISON_MEMORY_REGION(start, bytes);
}

void FlowLog::host_opened(const FlowKey& k) noexcept {
    check(k.src == m_h.net.guest && k.dst == m_h.net.host && k.sport == 22 && k.protocol == k_ipproto_tcp,
          "host_opened() for a tuple other than the forward's");
    bool client = false;
    for (auto p : m_h.client_ports) {
        client = client || p == k.dport;
    }
    check(client, "host_opened() for a port no client has");
    for (auto& o : open) {
        check(!(o == k), "host_opened() twice");
    }
    check(open.size() < m_h.engine->capacity(), "more host flows than the capacity");
    open.push_back(k);
}

void FlowLog::host_closed(const FlowKey& k) noexcept {
    for (std::size_t i = 0; i < open.size(); ++i) {
        if (open[i] == k) {
            open[i] = open.back();
            open.pop_back();
            return;
        }
    }
    fail("host_closed() for a flow never opened");
}

// Reads the input front to back; past its end every read is 0.
class Reader {
public:
    Reader(const std::uint8_t* d, std::size_t n) : m_d(d), m_n(n) {}
    bool empty() const { return m_pos >= m_n; }
    std::uint8_t u8() { return m_pos < m_n ? m_d[m_pos++] : 0; }
    std::uint16_t u16() { return static_cast<std::uint16_t>((u8() << 8) | u8()); }
    std::uint32_t u32() { return (std::uint32_t{u16()} << 16) | u16(); }
    std::uint32_t delta() {
        std::uint8_t d = u8();
        return d == 0x80 ? u32() : static_cast<std::uint32_t>(static_cast<std::int8_t>(d));
    }
    // n bytes from the input, zero-filled past its end, into `out`.
    Bytes bytes(std::size_t n, std::byte* out) {
        std::size_t have = std::min(n, m_n - std::min(m_pos, m_n));
        if (have > 0) {
            std::memcpy(out, m_d + m_pos, have);
        }
        std::memset(out + have, 0, n - have);
        m_pos += have;
        return Bytes(out, n);
    }

private:
    const std::uint8_t* m_d;
    std::size_t m_n;
    std::size_t m_pos = 0;
};

void run(Harness& h, Reader& in) {
    static std::array<std::byte, 40> options;
    static std::array<std::byte, k_max_raw> raw;
    static std::array<std::byte, k_max_payload> payload;
    for (std::size_t op = 0; op < k_max_ops && !in.empty(); ++op) {
        std::uint8_t kind = in.u8() % 13;
        if (k_trace) {
            std::fprintf(stderr, "op %zu: kind %u (now %llu, open %zu)\n", op, kind,
                         static_cast<unsigned long long>(h.now), h.engine->open_flows());
        }
        switch (kind) {
            case 0: {
                std::uint8_t tuple = in.u8();
                std::uint8_t flags = in.u8();
                std::uint32_t dseq = in.delta();
                std::uint32_t dack = in.delta();
                std::uint16_t window = in.u16();
                Bytes opt = in.bytes(in.u8() % 41u, options.data());
                std::uint8_t pl = in.u8();
                Bytes data;
                if (pl < 0xc0) {
                    data = in.bytes(pl, payload.data());
                } else {
                    std::size_t len = (pl - 0xbfu) * 1000u;
                    in.bytes(16, payload.data());
                    for (std::size_t i = 16; i < len; ++i) {
                        payload[i] = payload[i % 16];
                    }
                    data = Bytes(payload.data(), len);
                }
                h.guest_segment(tuple, flags, dseq, dack, window, opt, data);
                break;
            }
            case 1: {
                std::size_t len = in.bytes(std::min<std::size_t>(in.u16(), k_max_raw), raw.data()).size();
                h.raw_frame(MutBytes(raw.data(), len));
                break;
            }
            case 2: {
                int count = 0;
                h.drain_listeners(false, &count);
                if (count > 0) {
                    h.mapping_lost = true;  // a connection accepted late: whose is it?
                }
                for (auto& s : h.sockets) {
                    s.usable = true;
                }
                break;
            }
            case 3:
                if (HostSocket* s = h.pick_socket(in.u8())) {
                    h.host_write(*s, (std::size_t{in.u8()} + 1) * 16);
                }
                break;
            case 4:
                if (HostSocket* s = h.pick_socket(in.u8())) {
                    ::shutdown(s->fd, SHUT_WR);
                    s->ended = true;
                }
                break;
            case 5:
            case 6:
                if (HostSocket* s = h.pick_socket(in.u8())) {
                    if (kind == 5) {
                        closing_reset(s->fd);
                    } else {
                        ::close(s->fd);
                    }
                    s->fd = -1;
                    s->ended = true;
                }
                break;
            case 7:
                if (HostSocket* s = h.pick_socket(in.u8())) {
                    h.host_read(*s);
                }
                break;
            case 8:
                h.connect_client(in.u8() % 2u);
                break;
            case 9: {
                static constexpr std::array<Millis, 4> k_scale = {1, 50, 1000, 10000};
                std::uint8_t b = in.u8();
                h.now += (b & 63u) * k_scale[b >> 6];
                h.engine->timers(h.now);
                break;
            }
            case 10:
                h.engine->process(h.now);
                h.engine->resume(h.now);
                h.echo.step(h.now);
                break;
            case 11:
                h.queue.set_room(std::size_t{in.u16()} * 5);
                break;
            case 12:
                if (!h.slot->macs_set) {
                    h.set_macs(h.mac(k_guest_mac));  // the guest's first frame was not TCP
                }
                break;
        }
        check(h.engine->open_flows() <= h.engine->capacity(), "open_flows() beyond the capacity");
    }
}

}  // namespace

// Engines are made again and again (one whose MACs came late cannot forget them), and each
// allocates a 16 MiB discard buffer: under ASan that costs ~10 ms of shadow poisoning per
// engine, made and freed. So new[] of exactly that size takes a block the harness keeps
// allocated (ASan still guards its ends); every other new[] is malloc's.
namespace {
constexpr std::size_t k_discard_block = 16u << 20;  // tcp_engine.cpp's k_discard
std::array<void*, 64> g_blocks{};                   // every block made
std::array<void*, 64> g_free_blocks{};
std::size_t g_n_blocks = 0, g_n_free = 0;
}  // namespace

void* operator new[](std::size_t n) {
    if (n == k_discard_block && g_n_free > 0) {
        return g_free_blocks[--g_n_free];
    }
    void* p = std::malloc(n == 0 ? 1 : n);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    if (n == k_discard_block && g_n_blocks < g_blocks.size()) {
        g_blocks[g_n_blocks++] = p;
    }
    return p;
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    return std::malloc(n == 0 ? 1 : n);
}
void operator delete[](void* p) noexcept {
    for (std::size_t i = 0; i < g_n_blocks && p != nullptr; ++i) {
        if (g_blocks[i] == p) {
            g_free_blocks[g_n_free++] = p;
            return;
        }
    }
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    operator delete[](p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    operator delete[](p);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (g_harness == nullptr) {
        g_harness = new Harness;
    }
    if (size == 0) {
        return 0;
    }
    Reader in(data + 1, size - 1);
    g_harness->begin(data[0]);
    run(*g_harness, in);
    g_harness->end();
    const auto& c = g_harness->counters;
    if (k_stats && c.inputs % 20000 == 0) {
        std::fprintf(
            stderr,
            "tcp_engine_fuzz: %llu inputs, %llu engines made (%llu dropped holding flows), %llu inputs "
            "lost a socket mapping; %llu frames, %llu data frames (%llu bytes) and %llu FINs checked\n",
            static_cast<unsigned long long>(c.inputs), static_cast<unsigned long long>(c.engines_made),
            static_cast<unsigned long long>(c.engines_dropped),
            static_cast<unsigned long long>(c.mapping_lost), static_cast<unsigned long long>(c.frames),
            static_cast<unsigned long long>(c.data_frames_checked),
            static_cast<unsigned long long>(c.bytes_checked),
            static_cast<unsigned long long>(c.fins_checked));
    }
    return 0;
}
