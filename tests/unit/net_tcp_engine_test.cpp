// The TCP flow engine's spliced flows and forwards against real host sockets on 127.0.0.1,
// driven by the test guest of net_tcp_guest.hpp. Each data test runs twice: with SO_PEEK_OFF
// and with the discard-buffer path that kernels before 6.9 take.

#include "net_tcp_guest.hpp"

#include "sbx/net/deframer.hpp"
#include "sbx/net/tcp_engine.hpp"
#include "sbx/util/error.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>

namespace sbx::test {
namespace {

using net::Bytes;
using net::Millis;
using net::Packet;
using net::TcpEngine;

TEST_P(TcpEngineTest, CarriesBothWaysAndClosesCleanly) {
    int host = connect_guest();
    ASSERT_GE(host, 0);
    EXPECT_EQ(engine->open_flows(), 1u);

    // Guest -> host: 200 000 bytes in 40 000-byte segments, each ACKed for what was written.
    Frame up = pattern(200000, 1);
    for (std::size_t off = 0; off < up.size(); off += 40000) {
        send(k_ack | k_psh, std::span(up).subspan(off, 40000));
        pump([&] { return !got.empty(); });
        ASSERT_FALSE(got.empty());
        Seg s = got.back();
        got.clear();
        EXPECT_EQ(s.p.tcp_ack, seq) << "the ACK covers what the socket took";
        EXPECT_GT(s.window, 0);
    }
    Frame read_back(up.size());
    std::size_t have = 0;
    while (have < up.size()) {
        ssize_t n = ::recv(host, read_back.data() + have, up.size() - have, 0);
        ASSERT_GT(n, 0);
        have += static_cast<std::size_t>(n);
    }
    EXPECT_EQ(read_back, up);

    // Host -> guest: 3 MiB, then the host closes: all of it arrives in order, then a FIN.
    Frame down = pattern(3u << 20, 2);
    std::size_t sent = 0;
    Frame data;
    while (sent < down.size()) {
        ssize_t n = ::send(host, down.data() + sent, down.size() - sent, MSG_DONTWAIT);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
        }
        Frame part = receive(1);
        data.insert(data.end(), part.begin(), part.end());
    }
    ::shutdown(host, SHUT_WR);
    Frame rest = receive(down.size() - data.size(), true);
    data.insert(data.end(), rest.begin(), rest.end());
    EXPECT_EQ(data.size(), down.size());
    EXPECT_TRUE(data == down) << "the bytes differ";

    // The guest closes too: its FIN is acknowledged, the host reads EOF, and the flow is gone.
    got.clear();
    send(k_fin | k_ack);
    pump([&] { return engine->open_flows() == 0; });
    EXPECT_EQ(engine->open_flows(), 0u);
    pump([&] { return !got.empty(); }, 500);
    ASSERT_FALSE(got.empty()) << "the guest's FIN was never acknowledged";
    EXPECT_EQ(got.back().p.tcp_ack, seq);
    char c;
    EXPECT_EQ(::recv(host, &c, 1, 0), 0);
    ::close(host);
}

TEST_P(TcpEngineTest, RetransmitsWhatTheGuestDidNotAcknowledge) {
    int host = connect_guest();
    ASSERT_GE(host, 0);
    Frame down = pattern(5000, 3);
    ASSERT_EQ(::send(host, down.data(), down.size(), 0), 5000);
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    Seg first = got.front();
    got.clear();
    EXPECT_EQ(first.p.tcp_seq, ack);
    EXPECT_EQ(first.payload, down);
    // No ACK: after the retransmission timeout the same bytes come again, from the socket.
    pump([&] { return !got.empty(); }, static_cast<int>(TcpEngine::k_rto_ms) + 1500);
    ASSERT_FALSE(got.empty()) << "nothing was retransmitted";
    EXPECT_EQ(got.front().p.tcp_seq, first.p.tcp_seq);
    EXPECT_EQ(got.front().payload, down);
    EXPECT_EQ(engine->stats().retransmits, 1u);
    ::close(host);
}

TEST_P(TcpEngineTest, DataBeyondTheNextByteIsNotWrittenAndGetsADuplicateAck) {
    int host = connect_guest();
    ASSERT_GE(host, 0);
    std::uint32_t expected = seq;
    seq += 1000;  // a gap of 1000 bytes
    Frame later = pattern(500, 4);
    send(k_ack, later);
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back().p.tcp_ack, expected);
    EXPECT_EQ(engine->stats().out_of_window, 1u);
    char c;
    EXPECT_LT(::recv(host, &c, 1, MSG_DONTWAIT), 0) << "out-of-order bytes reached the host";
    ::close(host);
}

TEST_P(TcpEngineTest, AGuestResetResetsTheHostSocket) {
    int host = connect_guest();
    ASSERT_GE(host, 0);
    send(k_rst | k_ack);
    EXPECT_EQ(engine->open_flows(), 0u);
    char c;
    pollfd p{host, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 3000), 1);
    EXPECT_LT(::recv(host, &c, 1, 0), 0);
    EXPECT_EQ(errno, ECONNRESET);
    EXPECT_EQ(engine->stats().guest_resets, 1u);
    ::close(host);
}

TEST_P(TcpEngineTest, AHostResetReachesTheGuest) {
    int host = connect_guest();
    ASSERT_GE(host, 0);
    linger l{1, 0};
    ::setsockopt(host, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(host);
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    EXPECT_NE(got.back().p.tcp_flags & k_rst, 0);
    EXPECT_EQ(engine->open_flows(), 0u);
}

TEST_P(TcpEngineTest, ARefusedConnectIsARst) {
    int holder = -1;
    dport = closed_port(holder);
    send(k_syn, {}, true);
    EXPECT_TRUE(owned);
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front().p.tcp_flags, k_rst | k_ack);
    EXPECT_EQ(got.front().p.tcp_ack, seq);
    EXPECT_EQ(engine->open_flows(), 0u);
    EXPECT_EQ(engine->stats().connect_failed, 1u);
    ::close(holder);
}

TEST_P(TcpEngineTest, SynRetransmissionsAreNotDialledTwice) {
    dport = listener.port;
    send(k_syn, {}, true);
    seq -= 1;
    send(k_syn, {}, true);  // the same SYN again
    pump([&] { return !got.empty(); });
    EXPECT_EQ(engine->open_flows(), 1u);
    int first = listener.accept_one();
    EXPECT_GE(first, 0);
    pollfd p{listener.fd, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 200), 0) << "a second host connection was opened";
    ::close(first);
}

TEST_P(TcpEngineTest, AFullTableRefusesNewFlowsAndKeepsTheOpenOne) {
    engine = std::make_unique<TcpEngine>(net, 1, queue, nullptr, 7);
    engine->use_peek_offset(GetParam());
    int host = connect_guest();
    ASSERT_GE(host, 0);
    std::uint16_t first_port = sport;
    sport = 40001;
    send(k_syn, {}, true);
    EXPECT_TRUE(owned);
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    EXPECT_NE(got.front().p.tcp_flags & k_rst, 0);
    EXPECT_EQ(engine->stats().table_full, 1u);
    EXPECT_EQ(engine->open_flows(), 1u);
    sport = first_port;
    ::close(host);
}

TEST_P(TcpEngineTest, SegmentsOfUnknownFlowsAreNotTheEngines) {
    dport = listener.port;
    send(k_ack);
    EXPECT_FALSE(owned);
    send(k_syn | k_ack);
    EXPECT_FALSE(owned) << "an answer to a SYN the engine never sent";
    EXPECT_EQ(engine->open_flows(), 0u);
}

TEST_P(TcpEngineTest, AGuestThatStopsReadingHoldsTheHostBack) {
    int host = connect_guest();
    ASSERT_GE(host, 0);
    window = 0;  // the guest's window closes
    send(k_ack);
    ::fcntl(host, F_SETFL, O_NONBLOCK);
    Frame block = pattern(1u << 16, 5);
    std::size_t sent = 0;
    for (int i = 0; i < 2000; ++i) {
        ssize_t n = ::send(host, block.data(), block.size(), MSG_DONTWAIT);
        if (n <= 0) {
            break;
        }
        sent += static_cast<std::size_t>(n);
    }
    pump([] { return false; }, 300);
    std::size_t delivered = 0;
    for (auto& s : got) {
        delivered += s.payload.size();
    }
    EXPECT_EQ(delivered, 0u) << "bytes beyond a zero window";
    EXPECT_LT(sent, std::size_t{64} << 20) << "the host side should stall, not the engine buffer";
    ::close(host);
}

TEST_P(TcpEngineTest, AZeroWindowProbeOrKeepaliveGetsOurAck) {
    int host = connect_guest();
    ASSERT_GE(host, 0);
    got.clear();
    seq -= 1;  // one byte before the next expected: what Linux sends for either
    send(k_ack);
    seq += 1;
    pump([&] { return !got.empty(); }, 1000);
    ASSERT_FALSE(got.empty()) << "the probe went unanswered";
    EXPECT_EQ(got.front().p.tcp_flags, k_ack);
    EXPECT_EQ(got.front().p.tcp_ack, seq);
    ::close(host);
}

TEST_P(TcpEngineTest, AWindowTooSmallForASegmentIsUpdatedOnceTheHostReads) {
    int host = connect_guest();
    ASSERT_GE(host, 0);
    int small = 16384;
    ::setsockopt(host, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    // The guest sends within the window until it cannot take a full segment; the host reads
    // nothing meanwhile.
    Frame block = pattern(65480, 21);
    std::uint32_t last_window = 0xffffffffu;
    for (int i = 0; i < 400 && last_window >= 65480u; ++i) {
        send(k_ack | k_psh, block);
        pump([&] { return !got.empty(); });
        ASSERT_FALSE(got.empty());
        Seg s = got.back();
        got.clear();
        seq = s.p.tcp_ack;  // again from what the socket took
        last_window = static_cast<std::uint32_t>(s.window) << TcpEngine::k_our_wscale;
    }
    ASSERT_LT(last_window, 65480u) << "the host socket never filled";
    // The host drains its socket: an update comes without the guest sending anything.
    ::fcntl(host, F_SETFL, O_NONBLOCK);
    std::uint32_t update = 0;
    pump([&] {
        Frame sink(1u << 20);
        while (::recv(host, sink.data(), sink.size(), 0) > 0) {
        }
        for (auto& s : got) {
            update = std::max(update, static_cast<std::uint32_t>(s.window) << TcpEngine::k_our_wscale);
        }
        got.clear();
        return update >= 65480u;
    }, 5000);
    EXPECT_GE(update, 65480u) << "no window update: the guest would wait on its persist timer";
    ::close(host);
}

int connect_client(std::uint16_t port, std::uint16_t& client_port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);  // the backlog takes it
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    client_port = ntohs(a.sin_port);
    return fd;
}

class TcpForwardTest : public TcpEngineTest {
protected:
    void SetUp() override {
        engine = std::make_unique<TcpEngine>(net, 64, queue, &log, 7);
        engine->use_peek_offset(GetParam());
        forward_port = engine->add_forward(net::HostForward{0, 22, net::Proto::tcp});
        ASSERT_NE(forward_port, 0);
    }

    void set_macs() {
        net::MacAddr g{}, o{};
        for (std::size_t i = 0; i < 6; ++i) {
            g[i] = std::byte{k_guest_mac[i]};
            o[i] = std::byte{k_slirp_mac[i]};
        }
        engine->set_macs(g, o);
    }

    // The engine's SYN into the guest's port 22, checked; the test's guest takes its sequence.
    void expect_syn(std::uint16_t client_port, int ms = 3000) {
        pump([&] { return !got.empty(); }, ms);
        ASSERT_FALSE(got.empty()) << "no SYN toward the guest";
        Seg s = got.front();
        got.pop_front();
        EXPECT_EQ(s.p.tcp_flags, k_syn);
        EXPECT_EQ(s.p.src, net.host) << "from the host alias";
        EXPECT_EQ(s.p.dst, net.guest);
        EXPECT_EQ(s.p.sport, client_port);
        EXPECT_EQ(s.p.dport, 22);
        ASSERT_EQ(s.options.size(), 8u);
        EXPECT_EQ(get16(s.options, 2), 65480) << "MSS from the MTU";
        EXPECT_EQ(get8(s.options, 5), 3) << "window scaling offered";
        EXPECT_EQ(get8(s.options, 7), TcpEngine::k_our_wscale);
        sport = 22;
        dport = client_port;
        ack = s.p.tcp_seq + 1;
    }

    HostFlows log;
    std::uint16_t forward_port = 0;
};

TEST_P(TcpForwardTest, CarriesAHostConnectionIntoTheGuestAndTellsTheFilter) {
    set_macs();
    std::uint16_t client_port = 0;
    int client = connect_client(forward_port, client_port);
    // The client speaks first, before the guest has answered: its bytes wait in the socket.
    Frame hello = pattern(3000, 6);
    ASSERT_EQ(::send(client, hello.data(), hello.size(), 0), 3000);
    expect_syn(client_port);
    ASSERT_EQ(log.opened.size(), 1u);
    EXPECT_EQ(log.opened[0], (net::FlowKey{net.guest, net.host, 22, client_port, net::k_ipproto_tcp}));
    EXPECT_EQ(engine->stats().forwarded, 1u);

    send(k_syn | k_ack, {}, true);  // the guest's SYN-ACK
    EXPECT_TRUE(owned);
    Frame first = receive(hello.size());
    EXPECT_EQ(first, hello) << "what the client sent before the guest answered";

    Frame reply = pattern(100000, 7);
    for (std::size_t off = 0; off < reply.size(); off += 20000) {
        send(k_ack | k_psh, std::span(reply).subspan(off, 20000));
    }
    Frame read_back(reply.size());
    std::size_t have = 0;
    while (have < reply.size()) {
        pump([] { return false; }, 20);
        ssize_t n = ::recv(client, read_back.data() + have, reply.size() - have, MSG_DONTWAIT);
        if (n > 0) {
            have += static_cast<std::size_t>(n);
        }
    }
    EXPECT_EQ(read_back, reply);

    // The client closes: a FIN reaches the guest; the guest closes: the flow ends and the
    // Filter hears of it.
    ::shutdown(client, SHUT_WR);
    got.clear();
    receive(0, true);
    send(k_fin | k_ack);
    pump([&] { return engine->open_flows() == 0; });
    EXPECT_EQ(engine->open_flows(), 0u);
    ASSERT_EQ(log.closed.size(), 1u);
    EXPECT_EQ(log.closed[0], log.opened[0]);
    char c;
    EXPECT_EQ(::recv(client, &c, 1, 0), 0);
    ::close(client);
}

TEST_P(TcpForwardTest, TheSynWaitsUntilTheGuestsMacIsKnown) {
    std::uint16_t client_port = 0;
    int client = connect_client(forward_port, client_port);
    pump([&] { return engine->stats().forwarded == 1; });
    pump([] { return false; }, 200);
    EXPECT_TRUE(got.empty()) << "a frame to an unknown MAC";
    set_macs();
    expect_syn(client_port, static_cast<int>(TcpEngine::k_rto_ms) * 3 + 1000);
    ::close(client);
}

// Found by tcp_engine_fuzz: before our SYN went out (the guest's MAC unknown) the flow has no
// MACs, and a guest segment on its tuple got a RST from and to 00:00:00:00:00:00.
TEST_P(TcpForwardTest, AStrayAckBeforeOurSynIsIgnored) {
    std::uint16_t client_port = 0;
    int client = connect_client(forward_port, client_port);
    pump([&] { return engine->stats().forwarded == 1; });
    sport = 22;
    dport = client_port;
    ack = 12345;
    send(k_ack | k_psh, pattern(10, 8));
    EXPECT_TRUE(owned);
    pump([] { return false; }, 100);
    EXPECT_TRUE(got.empty()) << "a frame before the guest's MAC was known";
    set_macs();
    expect_syn(client_port, static_cast<int>(TcpEngine::k_rto_ms) * 3 + 1000);
    ::close(client);
}

TEST_P(TcpForwardTest, AGuestPortThatRefusesResetsTheClient) {
    set_macs();
    std::uint16_t client_port = 0;
    int client = connect_client(forward_port, client_port);
    expect_syn(client_port);
    seq = 0;
    send(k_rst | k_ack);  // the guest's kernel: nothing listens on 22
    EXPECT_TRUE(owned);
    EXPECT_EQ(engine->open_flows(), 0u);
    EXPECT_EQ(log.closed.size(), 1u);
    pollfd p{client, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 3000), 1);
    char c;
    EXPECT_LT(::recv(client, &c, 1, 0), 0);
    EXPECT_EQ(errno, ECONNRESET);
    ::close(client);
}

TEST_P(TcpForwardTest, AClientThatLeavesFirstIsAResetToTheGuest) {
    set_macs();
    std::uint16_t client_port = 0;
    int client = connect_client(forward_port, client_port);
    expect_syn(client_port);
    linger l{1, 0};
    ::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(client);
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front().p.tcp_flags, k_rst);
    EXPECT_EQ(got.front().p.tcp_seq, ack) << "at the guest's next expected byte";
    EXPECT_EQ(engine->open_flows(), 0u);
    EXPECT_EQ(log.closed.size(), 1u);
}

TEST_P(TcpForwardTest, APortInUseIsAnErrorNamingIt) {
    try {
        engine->add_forward(net::HostForward{forward_port, 80, net::Proto::tcp});
        FAIL() << "a second listener on the same port";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(std::to_string(forward_port)), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(PeekPaths, TcpForwardTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "PeekOffset" : "DiscardBuffer"; });

INSTANTIATE_TEST_SUITE_P(PeekPaths, TcpEngineTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "PeekOffset" : "DiscardBuffer"; });

}  // namespace
}  // namespace sbx::test
