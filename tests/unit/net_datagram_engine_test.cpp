// The datagram engine against real host sockets on 127.0.0.1 and ::1 (the guest's 10.0.2.2
// and fec0::2): a test "guest" drives it with crafted UDP datagrams and echo requests and
// checks every frame it gets back (addresses, ports, checksums computed independently in
// net_frames.hpp).

#include "net_engine_fakes.hpp"
#include "net_frames.hpp"

#include "sbx/net/datagram_engine.hpp"
#include "sbx/net/deframer.hpp"
#include "sbx/util/error.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace sbx::test {
namespace {

using net::Bytes;
using net::DatagramEngine;
using net::Millis;
using net::Packet;

// A UDP socket on the loopback with a kernel-chosen port (or `port`).
struct Udp {
    int fd = -1;
    std::uint16_t port = 0;
    bool v6 = false;
    explicit Udp(bool ipv6 = false, std::uint16_t want = 0) : v6(ipv6) {
        fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_storage s{};
        socklen_t len = 0;
        if (v6) {
            auto* a = reinterpret_cast<sockaddr_in6*>(&s);
            a->sin6_family = AF_INET6;
            a->sin6_addr = in6addr_loopback;
            a->sin6_port = htons(want);
            len = sizeof *a;
        } else {
            auto* a = reinterpret_cast<sockaddr_in*>(&s);
            a->sin_family = AF_INET;
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a->sin_port = htons(want);
            len = sizeof *a;
        }
        if (::bind(fd, reinterpret_cast<sockaddr*>(&s), len) != 0) {
            ::close(fd);
            fd = -1;
            return;
        }
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len);
        port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&s)->sin6_port : reinterpret_cast<sockaddr_in*>(&s)->sin_port);
    }
    ~Udp() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    Udp(const Udp&) = delete;
    Udp& operator=(const Udp&) = delete;

    // One datagram and who sent it; nothing within `ms`.
    std::optional<Frame> receive(sockaddr_storage* from = nullptr, int ms = 2000) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, ms) != 1) {
            return std::nullopt;
        }
        Frame buf(70000);
        sockaddr_storage s{};
        socklen_t len = sizeof s;
        ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&s), &len);
        if (n < 0) {
            return std::nullopt;
        }
        buf.resize(static_cast<std::size_t>(n));
        if (from != nullptr) {
            *from = s;
        }
        return buf;
    }
    void send_to(const sockaddr_storage& to, const Frame& data) {
        socklen_t len = to.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
        ASSERT_EQ(::sendto(fd, data.data(), data.size(), 0, reinterpret_cast<const sockaddr*>(&to), len),
                  static_cast<ssize_t>(data.size()));
    }
    void send_to_port(std::uint16_t to_port, const Frame& data) {
        sockaddr_storage s{};
        auto* a = reinterpret_cast<sockaddr_in*>(&s);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons(to_port);
        send_to(s, data);
    }
};

std::uint16_t port_of(const sockaddr_storage& s) {
    return ntohs(s.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(s).sin6_port
                                         : reinterpret_cast<const sockaddr_in&>(s).sin_port);
}

Frame bytes(std::string_view s) {
    Frame f;
    for (char c : s) {
        f.push_back(static_cast<std::byte>(c));
    }
    return f;
}

// A frame from the engine, checked and taken apart.
struct Got {
    Packet p;
    Frame payload;  // UDP payload, or the whole ICMP message
};

Got check(const Frame& f) {
    Got g;
    g.p = net::parse_packet(f);
    EXPECT_EQ(g.p.kind, Packet::Kind::ip);
    if (g.p.kind != Packet::Kind::ip) {
        return g;
    }
    auto l4 = std::span(f).subspan(g.p.l4_offset, g.p.l4_len);
    if (g.p.protocol == net::k_ipproto_icmp) {
        EXPECT_EQ(inet_checksum(Frame(l4.begin(), l4.end())), 0) << "bad ICMP checksum";
    } else {
        EXPECT_EQ(verify_transport(g.p.src, g.p.dst, g.p.protocol, l4), 0) << "bad transport checksum";
    }
    if (!g.p.v6) {
        EXPECT_EQ(inet_checksum(Frame(f.begin() + 14, f.begin() + 34)), 0) << "bad IPv4 header checksum";
    }
    for (std::size_t i = 0; i < 6; ++i) {
        EXPECT_EQ(std::to_integer<std::uint8_t>(f[i]), k_guest_mac[i]) << "frame not addressed to the guest";
        EXPECT_EQ(std::to_integer<std::uint8_t>(f[6 + i]), k_slirp_mac[i]) << "frame not from the guest's gateway";
    }
    if (g.p.protocol == net::k_ipproto_udp) {
        g.payload.assign(f.begin() + g.p.udp_payload_offset, f.begin() + g.p.udp_payload_offset + g.p.udp_payload_len);
    } else {
        g.payload.assign(l4.begin(), l4.end());
    }
    return g;
}

class DatagramEngineTest : public ::testing::Test {
protected:
    void make(std::size_t flows = 64) { engine = std::make_unique<DatagramEngine>(net, flows, queue, &recorder, 7); }
    void SetUp() override { make(); }

    bool send(const Frame& f, Millis at = 0) {
        Packet p = net::parse_packet(f);
        EXPECT_EQ(p.kind, Packet::Kind::ip);
        return engine->guest_datagram(f, p, at != 0 ? at : now_ms());
    }
    bool send_udp(std::uint16_t sport, std::uint16_t dport, const Frame& payload, Millis at = 0) {
        return send(udp_frame(guest, net.host, sport, dport, payload), at);
    }

    // Runs the engine until `done` holds or `ms` pass.
    void pump(const std::function<bool()>& done, int ms = 2000) {
        auto until = now_ms() + static_cast<Millis>(ms);
        while (!done() && now_ms() < until) {
            pollfd p{engine->fd(), POLLIN, 0};
            ::poll(&p, 1, 10);
            engine->process(now_ms());
            engine->resume(now_ms());
            for (auto& f : queue.take()) {
                got.push_back(check(f));
            }
        }
    }
    void pump_for(int ms) {
        pump([] { return false; }, ms);
    }

    // Echo through a ping socket; skipped where ping sockets are not allowed for our group.
    void echo_round_trip(const Frame& request, bool v6, const net::IpAddr& from) {
        ASSERT_TRUE(send(request));
        if (engine->stats().ping_unavailable > 0) {
            GTEST_SKIP() << "skipped: ping sockets are not allowed here (net.ipv4.ping_group_range)";
        }
        pump([&] { return !got.empty(); });
        ASSERT_EQ(got.size(), 1u);
        const Got& g = got[0];
        EXPECT_EQ(g.p.protocol, v6 ? net::k_ipproto_icmpv6 : net::k_ipproto_icmp);
        EXPECT_EQ(g.p.icmp_type, v6 ? 129 : 0);
        EXPECT_EQ(g.p.sport, 0x1234) << "the guest's identifier is restored";
        EXPECT_EQ(g.p.src, from);
        EXPECT_EQ(g.p.dst, v6 ? guest6 : guest);
        ASSERT_EQ(g.payload.size(), 8u + 16u);
        EXPECT_EQ(get16(g.payload, 6), 9) << "the sequence number";
        for (std::size_t i = 0; i < 16; ++i) {
            EXPECT_EQ(get8(g.payload, 8 + i), i);
        }
    }

    net::GuestNet net;
    Queue queue;
    HostFlows recorder;
    std::unique_ptr<DatagramEngine> engine;
    net::IpAddr guest = net.guest;
    net::IpAddr guest6 = ip("fec0::5054:ff:fe12:3456");
    std::vector<Got> got;
};

TEST_F(DatagramEngineTest, CarriesADatagramAndItsReplyOverIpv4) {
    Udp server;
    ASSERT_GE(server.fd, 0);
    ASSERT_TRUE(send_udp(40000, server.port, bytes("ping")));
    sockaddr_storage from{};
    auto data = server.receive(&from);
    ASSERT_TRUE(data);
    EXPECT_EQ(*data, bytes("ping"));
    EXPECT_EQ(engine->open_flows(), 1u);

    server.send_to(from, bytes("pong!"));
    pump([&] { return !got.empty(); });
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].p.protocol, net::k_ipproto_udp);
    EXPECT_EQ(got[0].p.src, net.host);
    EXPECT_EQ(got[0].p.dst, guest);
    EXPECT_EQ(got[0].p.sport, server.port);
    EXPECT_EQ(got[0].p.dport, 40000);
    EXPECT_EQ(got[0].payload, bytes("pong!"));

    // The same tuple reuses the flow (and its host port).
    ASSERT_TRUE(send_udp(40000, server.port, bytes("again")));
    sockaddr_storage from2{};
    ASSERT_TRUE(server.receive(&from2));
    EXPECT_EQ(port_of(from2), port_of(from));
    EXPECT_EQ(engine->open_flows(), 1u);
    EXPECT_EQ(engine->stats().opened, 1u);
    EXPECT_EQ(engine->stats().from_guest, 2u);
    EXPECT_EQ(engine->stats().to_guest, 1u);
}

TEST_F(DatagramEngineTest, CarriesADatagramAndItsReplyOverIpv6) {
    Udp server(true);
    if (server.fd < 0) {
        GTEST_SKIP() << "skipped: cannot bind a UDP socket to ::1 (no IPv6 loopback)";
    }
    ASSERT_TRUE(send(udp_frame(guest6, net.host6, 40001, server.port, bytes("ping6"))));
    sockaddr_storage from{};
    auto data = server.receive(&from);
    ASSERT_TRUE(data);
    EXPECT_EQ(*data, bytes("ping6"));
    server.send_to(from, bytes("pong6"));
    pump([&] { return !got.empty(); });
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(got[0].p.v6);
    EXPECT_EQ(got[0].p.src, net.host6);
    EXPECT_EQ(got[0].p.dst, guest6);
    EXPECT_EQ(got[0].p.sport, server.port);
    EXPECT_EQ(got[0].p.dport, 40001);
    EXPECT_EQ(got[0].payload, bytes("pong6"));
}

TEST_F(DatagramEngineTest, AStrangerCannotReachTheGuestThroughAFlowSocket) {
    Udp server;
    Udp stranger;
    ASSERT_TRUE(send_udp(40002, server.port, bytes("hi")));
    sockaddr_storage flow_addr{};
    ASSERT_TRUE(server.receive(&flow_addr));
    stranger.send_to(flow_addr, bytes("intruder"));
    pump_for(200);
    EXPECT_TRUE(got.empty()) << "a datagram from a third socket reached the guest";
    server.send_to(flow_addr, bytes("peer"));
    pump([&] { return !got.empty(); });
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload, bytes("peer"));
}

TEST_F(DatagramEngineTest, IdleFlowsExpire) {
    Udp server;
    Millis t0 = now_ms();
    ASSERT_TRUE(send_udp(40003, server.port, bytes("x"), t0));
    ASSERT_TRUE(server.receive());
    engine->timers(t0 + 1000);
    EXPECT_EQ(engine->open_flows(), 1u);
    ASSERT_TRUE(engine->next_deadline());
    engine->timers(t0 + DatagramEngine::k_udp_idle_ms - 1);
    EXPECT_EQ(engine->open_flows(), 1u) << "expired early";
    engine->timers(t0 + DatagramEngine::k_udp_idle_ms + DatagramEngine::k_scan_ms);
    EXPECT_EQ(engine->open_flows(), 0u);
    EXPECT_EQ(engine->stats().expired, 1u);
    EXPECT_FALSE(engine->next_deadline());
    // A new datagram on the tuple opens a new flow.
    ASSERT_TRUE(send_udp(40003, server.port, bytes("y")));
    ASSERT_TRUE(server.receive());
    EXPECT_EQ(engine->stats().opened, 2u);
}

TEST_F(DatagramEngineTest, AFullTableDropsAndCounts) {
    make(2);
    Udp server;
    ASSERT_TRUE(send_udp(41000, server.port, bytes("1")));
    ASSERT_TRUE(send_udp(41001, server.port, bytes("2")));
    ASSERT_TRUE(send_udp(41002, server.port, bytes("3")));
    EXPECT_EQ(engine->open_flows(), 2u);
    EXPECT_EQ(engine->stats().table_full, 1u);
    ASSERT_TRUE(server.receive());
    ASSERT_TRUE(server.receive());
    EXPECT_FALSE(server.receive(nullptr, 100)) << "the third flow's datagram went out";
    // Open flows still work.
    ASSERT_TRUE(send_udp(41000, server.port, bytes("1b")));
    EXPECT_TRUE(server.receive());
}

TEST_F(DatagramEngineTest, DropsRepliesLargerThanTheGuestMtu) {
    net.mtu = 1500;
    make();
    Udp server;
    ASSERT_TRUE(send_udp(40004, server.port, bytes("x")));
    sockaddr_storage from{};
    ASSERT_TRUE(server.receive(&from));
    server.send_to(from, Frame(1473, std::byte{1}));  // 1500 - 20 - 8 + 1
    server.send_to(from, Frame(1472, std::byte{2}));
    pump([&] { return !got.empty(); });
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload.size(), 1472u);
    EXPECT_EQ(got[0].p.l3_total_len, 1500u);
    EXPECT_EQ(engine->stats().oversize, 1u);
}

TEST_F(DatagramEngineTest, WaitsForQueueRoomWithoutLosingDatagrams) {
    Udp server;
    ASSERT_TRUE(send_udp(40005, server.port, bytes("x")));
    sockaddr_storage from{};
    ASSERT_TRUE(server.receive(&from));

    queue.limit(0);
    server.send_to(from, bytes("first"));
    pump_for(100);
    EXPECT_TRUE(got.empty());
    ASSERT_TRUE(engine->next_deadline());
    EXPECT_EQ(*engine->next_deadline(), 0u) << "a waiting flow asks for resume()";

    // A short tail: the small datagram fits (the MSG_PEEK path), the large one waits.
    queue.limit(4 + 14 + 20 + 8 + 100);
    server.send_to(from, Frame(500, std::byte{3}));
    pump([&] { return !got.empty(); }, 500);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload, bytes("first"));
    pump_for(100);
    EXPECT_EQ(got.size(), 1u);

    queue.limit(1u << 20);
    pump([&] { return got.size() == 2; });
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].payload, Frame(500, std::byte{3}));
    EXPECT_EQ(engine->stats().oversize, 0u);
}

TEST_F(DatagramEngineTest, ReadsAtMostABatchPerTurnAndResumes) {
    Udp server;
    ASSERT_TRUE(send_udp(40006, server.port, bytes("x")));
    sockaddr_storage from{};
    ASSERT_TRUE(server.receive(&from));
    const std::size_t n = DatagramEngine::k_max_datagrams_per_read + 8;
    for (std::size_t i = 0; i < n; ++i) {
        server.send_to(from, Frame(10, static_cast<std::byte>(i)));
    }
    pollfd p{engine->fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    engine->process(now_ms());
    EXPECT_EQ(queue.take().size(), DatagramEngine::k_max_datagrams_per_read);
    EXPECT_EQ(engine->next_deadline(), std::optional<Millis>(0));
    engine->resume(now_ms());
    EXPECT_EQ(queue.take().size(), 8u);
}

TEST_F(DatagramEngineTest, PortUnreachableBecomesAnIcmpError) {
    std::uint16_t port = 0;
    {
        Udp gone;
        port = gone.port;
    }
    ASSERT_TRUE(send_udp(40007, port, bytes("anyone?")));
    pump([&] { return !got.empty(); });
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].p.protocol, net::k_ipproto_icmp);
    EXPECT_EQ(got[0].p.icmp_type, 3);
    EXPECT_EQ(got[0].p.icmp_code, 3);
    EXPECT_EQ(got[0].p.src, net.host);
    // The quote names the guest's datagram: its addresses and ports.
    const Frame& m = got[0].payload;
    ASSERT_GE(m.size(), 8u + 28u);
    EXPECT_EQ(get16(m, 8 + 20), 40007);
    EXPECT_EQ(get16(m, 8 + 22), port);
    EXPECT_EQ(engine->stats().host_errors, 1u);
}

TEST_F(DatagramEngineTest, ForwardsHostDatagramsToTheGuestAndBack) {
    std::uint16_t port = 0;
    {
        Udp probe;
        port = probe.port;
    }
    engine->add_forward(net::HostForward{port, 5353, net::Proto::udp});
    Udp client;
    client.send_to_port(port, bytes("query"));
    pump([&] { return !got.empty(); });
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].p.src, net.host);
    EXPECT_EQ(got[0].p.dst, net.guest);
    EXPECT_EQ(got[0].p.sport, client.port);
    EXPECT_EQ(got[0].p.dport, 5353);
    EXPECT_EQ(got[0].payload, bytes("query"));
    net::FlowKey key{net.guest, net.host, 5353, client.port, net::k_ipproto_udp};
    ASSERT_EQ(recorder.opened.size(), 1u);
    EXPECT_EQ(recorder.opened[0], key);

    Millis t = now_ms();
    ASSERT_TRUE(send(udp_frame(net.guest, net.host, 5353, client.port, bytes("answer")), t));
    sockaddr_storage from{};
    auto reply = client.receive(&from);
    ASSERT_TRUE(reply);
    EXPECT_EQ(*reply, bytes("answer"));
    EXPECT_EQ(port_of(from), port);
    EXPECT_EQ(engine->open_flows(), 1u);

    // A second datagram from the peer stays on the flow.
    client.send_to_port(port, bytes("more"));
    pump([&] { return got.size() == 2; });
    EXPECT_EQ(recorder.opened.size(), 1u);

    engine->timers(now_ms() + DatagramEngine::k_udp_idle_ms + DatagramEngine::k_scan_ms);
    EXPECT_EQ(engine->open_flows(), 0u);
    ASSERT_EQ(recorder.closed.size(), 1u);
    EXPECT_EQ(recorder.closed[0], key);
}

TEST_F(DatagramEngineTest, AForwardTupleBelongsToItsFirstPeer) {
    std::uint16_t port = 0;
    {
        Udp probe;
        port = probe.port;
    }
    engine->add_forward(net::HostForward{port, 5353, net::Proto::udp});
    Udp client;
    client.send_to_port(port, bytes("first"));
    pump([&] { return !got.empty(); });
    ASSERT_EQ(got.size(), 1u);

    // Another loopback address with the same port maps to the same 10.0.2.2 tuple: dropped.
    int other = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000002);
    a.sin_port = htons(client.port);
    if (::bind(other, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(other);
        GTEST_SKIP() << "skipped: cannot bind 127.0.0.2";
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    ASSERT_EQ(::sendto(other, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 1);
    pump_for(100);
    EXPECT_EQ(got.size(), 1u);
    EXPECT_EQ(engine->stats().host_errors, 1u);
    ::close(other);

    // The guest's reply still goes to the first peer.
    ASSERT_TRUE(send(udp_frame(net.guest, net.host, 5353, client.port, bytes("back"))));
    auto reply = client.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(*reply, bytes("back"));
}

TEST_F(DatagramEngineTest, PortUnreachableOverIpv6) {
    std::uint16_t port = 0;
    {
        Udp gone(true);
        if (gone.fd < 0) {
            GTEST_SKIP() << "skipped: cannot bind a UDP socket to ::1 (no IPv6 loopback)";
        }
        port = gone.port;
    }
    ASSERT_TRUE(send(udp_frame(guest6, net.host6, 40009, port, bytes("anyone?"))));
    pump([&] { return !got.empty(); });
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].p.protocol, net::k_ipproto_icmpv6);
    EXPECT_EQ(got[0].p.icmp_type, 1);
    EXPECT_EQ(got[0].p.icmp_code, 4);
    EXPECT_EQ(got[0].p.src, net.host6);
    EXPECT_EQ(got[0].p.dst, guest6);
    ASSERT_GE(got[0].payload.size(), 8u + 48u);
    EXPECT_EQ(get16(got[0].payload, 8 + 40), 40009);
    EXPECT_EQ(get16(got[0].payload, 8 + 42), port);
}

TEST_F(DatagramEngineTest, AForwardOnAPortInUseThrowsNamingIt) {
    Udp holder;
    ASSERT_GE(holder.fd, 0);
    try {
        engine->add_forward(net::HostForward{holder.port, 53, net::Proto::udp});
        FAIL() << "no error";
    } catch (const Error& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("127.0.0.1:" + std::to_string(holder.port)), std::string::npos) << what;
        EXPECT_NE(what.find("in use"), std::string::npos) << what;
        ASSERT_FALSE(e.hints().empty());
        EXPECT_NE(e.hints()[0].find(std::to_string(holder.port)), std::string::npos);
    }
    EXPECT_THROW(engine->add_forward(net::HostForward{holder.port, 22, net::Proto::tcp}), Error);
}

TEST_F(DatagramEngineTest, EchoToTheHostGetsAReplyWithTheGuestsIdentifier) {
    echo_round_trip(icmp_echo(guest, net.host, 0x1234, 9), false, net.host);
}

TEST_F(DatagramEngineTest, Echo6ToTheHostGetsAReplyWithTheGuestsIdentifier) {
    echo_round_trip(icmp_echo(guest6, net.host6, 0x1234, 9), true, net.host6);
}

TEST_F(DatagramEngineTest, EchoFlowsExpireAfterTheirTimeout) {
    Millis t0 = now_ms();
    ASSERT_TRUE(send(icmp_echo(guest, net.host, 0x4321, 1), t0));
    if (engine->stats().ping_unavailable > 0) {
        GTEST_SKIP() << "skipped: ping sockets are not allowed here (net.ipv4.ping_group_range)";
    }
    EXPECT_EQ(engine->open_flows(), 1u);
    engine->timers(t0 + DatagramEngine::k_icmp_idle_ms + DatagramEngine::k_scan_ms);
    EXPECT_EQ(engine->open_flows(), 0u);
}

TEST_F(DatagramEngineTest, OtherIcmpIsNotTheEngines) {
    EXPECT_FALSE(send(icmp6_message(guest6, net.host6, 135)));  // neighbour solicitation
    Frame reply = icmp_echo(guest, net.host, 1, 1);
    reply[14 + 20] = std::byte{0};  // an echo reply, not a request
    EXPECT_FALSE(send(reply));
    EXPECT_FALSE(send(tcp_frame(guest, net.host, 1000, 80)));
    EXPECT_EQ(engine->open_flows(), 0u);
}

TEST_F(DatagramEngineTest, MalformedInputIsRefusedWithoutHarm) {
    Udp server;
    Frame good = udp_frame(guest, net.host, 40008, server.port, Frame(64, std::byte{7}));
    Packet p = net::parse_packet(good);
    ASSERT_EQ(p.kind, Packet::Kind::ip);
    Millis now = now_ms();
    // Every truncation, parsed honestly and with the stale Packet of the whole frame.
    for (std::size_t n = 0; n < good.size(); ++n) {
        Bytes cut(good.data(), n);
        Packet q = net::parse_packet(cut);
        engine->guest_datagram(cut, q, now);
        EXPECT_FALSE(engine->guest_datagram(cut, p, now)) << n;
    }
    // Lengths that point past the frame.
    Packet lie = p;
    lie.udp_payload_len = 60000;
    EXPECT_FALSE(engine->guest_datagram(good, lie, now));
    lie = p;
    lie.l4_len = 7;
    EXPECT_FALSE(engine->guest_datagram(good, lie, now));
    lie = p;
    lie.udp_payload_offset = 0;
    EXPECT_FALSE(engine->guest_datagram(good, lie, now));
    Frame echo = icmp_echo(guest, net.host, 1, 1);
    Packet e = net::parse_packet(echo);
    e.l4_len = 4;
    EXPECT_FALSE(engine->guest_datagram(echo, e, now));
    Packet none{};
    EXPECT_FALSE(engine->guest_datagram(Bytes{}, none, now));
    // Random lengths and contents (the addresses and ports stay: junk only goes to `server`).
    std::uint32_t x = 12345;
    const std::size_t mutable_at[] = {14, 15, 16, 17, 38, 39, 40, 41, 42, 50, 60};
    for (int round = 0; round < 2000; ++round) {
        Frame junk = good;
        for (int k = 0; k < 4; ++k) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            junk[mutable_at[x % std::size(mutable_at)]] = static_cast<std::byte>(x >> 8);
        }
        Packet j = net::parse_packet(junk);
        engine->guest_datagram(junk, j, now);
    }
    pump_for(50);
    SUCCEED();
}

}  // namespace
}  // namespace sbx::test
