#pragma once
// The TCP engine's tests' "guest" (net_tcp_engine_test.cpp, net_stream_hook_test.cpp): it
// drives a TcpEngine with crafted segments from 10.0.2.15 and checks every frame it gets back
// (checksums computed independently in net_frames.hpp, sequence numbers, windows, flags),
// against real host sockets on 127.0.0.1 (the guest's 10.0.2.2). The fixture's parameter
// picks SO_PEEK_OFF (true) or the discard-buffer path of kernels before 6.9 (false).

#include "net_engine_fakes.hpp"
#include "net_frames.hpp"

#include "sbx/net/tcp_engine.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <memory>
#include <span>

namespace sbx::test {

using net::Millis;
using net::Packet;
using net::TcpEngine;

// A listening socket on 127.0.0.1 with a kernel-chosen port.
struct Listener {
    int fd = -1;
    std::uint16_t port = 0;
    Listener() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(fd, 16), 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~Listener() { ::close(fd); }
    int accept_one() {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) {
            return -1;
        }
        return ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    }
};

// A port nothing listens on (bound, never listened: connect() is refused).
inline std::uint16_t closed_port(int& holder) {
    holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
}

// A TCP segment from the guest with options (MSS, window scale) and payload bytes.
inline Frame guest_segment(const net::IpAddr& src, const net::IpAddr& dst, std::uint16_t sport, std::uint16_t dport,
                    std::uint8_t flags, std::uint32_t seq, std::uint32_t ack, std::uint16_t window,
                    std::span<const std::byte> payload = {}, bool syn_options = false) {
    Frame t;
    put16(t, sport);
    put16(t, dport);
    put32(t, seq);
    put32(t, ack);
    put8(t, static_cast<std::uint8_t>((syn_options ? 8 : 5) << 4));
    put8(t, flags);
    put16(t, window);
    put16(t, 0);
    put16(t, 0);
    if (syn_options) {
        put8(t, 2), put8(t, 4), put16(t, 65480);  // MSS
        put8(t, 1), put8(t, 3), put8(t, 3), put8(t, 7);  // NOP, window scale 7
        put8(t, 1), put8(t, 1), put8(t, 1), put8(t, 0);  // padding, end
    }
    t.insert(t.end(), payload.begin(), payload.end());
    std::uint16_t c = verify_transport(src, dst, 6, t);
    t[16] = static_cast<std::byte>(c >> 8);
    t[17] = static_cast<std::byte>(c & 0xff);
    return ip_frame(src, dst, 6, t);
}

// A frame from the engine, checked and taken apart.
struct Seg {
    Packet p;
    std::uint16_t window = 0;
    Frame payload;
    Frame options;
};

inline Seg check(const Frame& f) {
    Seg s;
    s.p = net::parse_packet(f);
    EXPECT_EQ(s.p.kind, Packet::Kind::ip);
    EXPECT_EQ(s.p.protocol, net::k_ipproto_tcp);
    auto l4 = std::span(f).subspan(s.p.l4_offset, s.p.l4_len);
    EXPECT_EQ(verify_transport(s.p.src, s.p.dst, 6, l4), 0) << "bad TCP checksum";
    if (!s.p.v6) {
        EXPECT_EQ(inet_checksum(Frame(f.begin() + 14, f.begin() + 34)), 0) << "bad IPv4 header checksum";
    }
    for (std::size_t i = 0; i < 6; ++i) {
        EXPECT_EQ(std::to_integer<std::uint8_t>(f[i]), k_guest_mac[i]) << "frame not addressed to the guest";
    }
    s.window = get16(l4, 14);
    std::size_t thl = (get8(l4, 12) >> 4) * 4u;
    s.options.assign(l4.begin() + 20, l4.begin() + static_cast<std::ptrdiff_t>(thl));
    s.payload.assign(l4.begin() + static_cast<std::ptrdiff_t>(thl), l4.end());
    return s;
}

inline Frame pattern(std::size_t n, std::uint32_t salt) {
    Frame out(n);
    std::uint32_t x = salt * 2654435761u + 1;
    for (auto& b : out) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        b = static_cast<std::byte>(x);
    }
    return out;
}

// The test's guest: one connection from 10.0.2.15:40000 to 10.0.2.2:port.
class TcpEngineTest : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        engine = std::make_unique<TcpEngine>(net, 64, queue, nullptr, 7);
        engine->use_peek_offset(GetParam());
    }

    void send(std::uint8_t flags, std::span<const std::byte> payload = {}, bool syn_options = false) {
        Frame f = guest_segment(guest, net.host, sport, dport, flags, seq, ack, window, payload, syn_options);
        Packet p = net::parse_packet(f);
        ASSERT_EQ(p.kind, Packet::Kind::ip);
        owned = engine->guest_segment(f, p, now_ms());
        seq += static_cast<std::uint32_t>(payload.size()) + ((flags & (k_syn | k_fin)) != 0 ? 1 : 0);
    }

    // Runs the engine's events and timers until `done` holds or `ms` pass.
    void pump(const std::function<bool()>& done, int ms = 3000) {
        auto until = now_ms() + static_cast<Millis>(ms);
        while (!done() && now_ms() < until) {
            pollfd p{engine->fd(), POLLIN, 0};
            ::poll(&p, 1, 10);
            engine->process(now_ms());
            engine->resume(now_ms());
            engine->timers(now_ms());
            if (on_turn) {
                on_turn();
            }
            for (auto& f : queue.take()) {
                got.push_back(check(f));
            }
        }
    }

    // Handshake to 127.0.0.1:listener.port; returns the accepted host socket.
    int connect_guest() {
        dport = listener.port;
        send(k_syn, {}, true);
        EXPECT_TRUE(owned);
        pump([&] { return !got.empty(); });
        if (got.empty()) {
            ADD_FAILURE() << "no SYN-ACK";
            return -1;
        }
        Seg s = got.front();
        got.pop_front();
        EXPECT_EQ(s.p.tcp_flags, k_syn | k_ack);
        EXPECT_EQ(s.p.tcp_ack, seq);
        EXPECT_EQ(s.options.size(), 8u);
        EXPECT_EQ(get16(s.options, 2), 65480) << "MSS from the MTU";
        EXPECT_EQ(get8(s.options, 7), TcpEngine::k_our_wscale);
        ack = s.p.tcp_seq + 1;
        send(k_ack);
        int fd = listener.accept_one();
        EXPECT_GE(fd, 0);
        return fd;
    }

    // Reads segments until `bytes` arrived in order (ACKing each), or a FIN.
    Frame receive(std::size_t bytes, bool expect_fin = false) {
        Frame data;
        bool fin = false;
        pump([&] {
            while (!got.empty()) {
                Seg s = got.front();
                got.pop_front();
                EXPECT_EQ(s.p.tcp_seq, ack) << "a gap or a resend in the stream";
                if (s.p.tcp_seq != ack) {
                    continue;
                }
                data.insert(data.end(), s.payload.begin(), s.payload.end());
                ack += static_cast<std::uint32_t>(s.payload.size());
                if ((s.p.tcp_flags & k_fin) != 0) {
                    fin = true;
                    ack += 1;
                }
                send(k_ack);
            }
            return data.size() >= bytes && (!expect_fin || fin);
        }, 10000);
        EXPECT_EQ(fin, expect_fin);
        return data;
    }

    net::GuestNet net;
    Queue queue;
    std::unique_ptr<TcpEngine> engine;
    Listener listener;
    net::IpAddr guest = net.guest;
    std::uint16_t sport = 40000, dport = 0;
    std::uint32_t seq = 0x10000000u, ack = 0;
    std::uint16_t window = 0xffff;  // scaled by 7: 8 MiB
    bool owned = false;
    std::deque<Seg> got;
    std::function<void()> on_turn;  // also run on every turn of pump()
};

}  // namespace sbx::test
