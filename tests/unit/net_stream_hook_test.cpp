// The TCP engine's per-flow stream hook (stream_hook.hpp) with the trivial handler the hook is
// built around: an echo that terminates the flows to one port and sends back what the guest
// sends, as far as both sides take it. The test guest of net_tcp_guest.hpp drives the engine;
// the terminated flows' port has no listener, so a host connect would be refused and show.

#include "net_tcp_guest.hpp"

#include "sbx/net/stream_hook.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <span>

namespace sbx::test {
namespace {

// The handler: terminates flows to `port`, echoes, or (reading = false) holds what the guest
// sends; produce() writes bytes of its own toward the guest instead.
class EchoHandler final : public net::StreamHook {
public:
    ~EchoHandler() { close_stream(); }

    Route route(const net::FlowKey& k) noexcept override {
        ++routed;
        return k.dport == port ? Route::terminate : Route::splice;
    }

    void attach(const net::FlowKey& k, net::StreamId i, int f) noexcept override {
        ++attached;
        key = k;
        id = i;
        close_stream();
        fd = f;
        guest_eof = false;
        if (accept_on_attach) {
            accepted = engine->accept_stream(i, now_ms());
        }
    }

    // One turn: echo what the guest sent, as far as the stream takes it.
    void step() {
        while (fd >= 0) {
            if (!pending.empty()) {
                ssize_t n = ::send(fd, pending.data(), pending.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n <= 0) {
                    return;  // the guest's side is full
                }
                echoed += static_cast<std::size_t>(n);
                pending.erase(pending.begin(), pending.begin() + n);
                continue;
            }
            if (!reading || guest_eof) {
                return;
            }
            std::array<std::byte, 65536> buf;
            ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (n == 0) {
                guest_eof = true;
                ::shutdown(fd, SHUT_WR);  // the guest's FIN, passed back
                return;
            }
            if (n < 0) {
                return;
            }
            pending.assign(buf.begin(), buf.begin() + n);
        }
    }

    // Writes `data` from `offset` on until the stream is full; returns the bytes taken.
    std::size_t produce(const Frame& data, std::size_t offset) {
        ssize_t n = ::send(fd, data.data() + offset, data.size() - offset, MSG_DONTWAIT | MSG_NOSIGNAL);
        return n > 0 ? static_cast<std::size_t>(n) : 0;
    }

    void close_stream() {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }

    TcpEngine* engine = nullptr;
    std::uint16_t port = 0;
    bool accept_on_attach = true;
    bool accepted = false;
    bool reading = true;
    bool guest_eof = false;
    int routed = 0, attached = 0;
    int fd = -1;
    net::StreamId id{};
    net::FlowKey key{};
    std::size_t echoed = 0;
    Frame pending;
};

// Up to `n` bytes from `fd`, waiting at most 5 s for each part (never forever).
Frame read_exactly(int fd, std::size_t n) {
    Frame out(n);
    std::size_t have = 0;
    while (have < n) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) {
            break;
        }
        ssize_t r = ::recv(fd, out.data() + have, n - have, MSG_DONTWAIT);
        if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
            break;
        }
        have += r > 0 ? static_cast<std::size_t>(r) : 0;
    }
    out.resize(have);
    return out;
}

// What a handler dials: a connected TCP socket to 127.0.0.1:port, or -1.
int dial(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

class StreamHookTest : public TcpEngineTest {
protected:
    void SetUp() override {
        TcpEngineTest::SetUp();
        hook.engine = engine.get();
        hook.port = closed_port(holder);
        engine->set_stream_hook(&hook);
        on_turn = [this] { hook.step(); };
    }
    void TearDown() override { ::close(holder); }

    // The guest's handshake to the terminated port: SYN, the engine's SYN-ACK, our ACK.
    void handshake() {
        dport = hook.port;
        send(k_syn, {}, true);
        ASSERT_TRUE(owned);
        pump([&] { return !got.empty(); });
        ASSERT_FALSE(got.empty()) << "no SYN-ACK";
        Seg s = got.front();
        got.pop_front();
        ASSERT_EQ(s.p.tcp_flags, k_syn | k_ack);
        EXPECT_EQ(s.p.tcp_ack, seq);
        ack = s.p.tcp_seq + 1;
        peer_window = s.window;
        send(k_ack);
    }

    // The guest sends `up` (in segments within the engine's window, again from the first
    // byte not acknowledged) and takes what comes back, ACKing it, until `down_bytes` came
    // (and a FIN, with `expect_fin`) or `ms` pass. Returns what came back.
    Frame exchange(const Frame& up, std::size_t down_bytes, bool expect_fin = false, int ms = 10000) {
        const std::uint32_t base = seq;
        std::size_t acked = 0;
        Frame down;
        pump([&] {
            bool answer = false;
            while (!got.empty()) {
                Seg s = got.front();
                got.pop_front();
                if ((s.p.tcp_flags & k_rst) != 0) {
                    ADD_FAILURE() << "a RST from the engine";
                    reset_seen = true;
                    continue;
                }
                std::uint32_t taken = s.p.tcp_ack - base;
                if (taken <= up.size() && taken > acked) {
                    acked = taken;
                }
                peer_window = static_cast<std::uint32_t>(s.window) << TcpEngine::k_our_wscale;
                if (!s.payload.empty() || (s.p.tcp_flags & k_fin) != 0) {
                    if (s.p.tcp_seq != ack) {
                        ++gaps;  // a real guest drops it and ACKs what it has
                    } else {
                        down.insert(down.end(), s.payload.begin(), s.payload.end());
                        ack += static_cast<std::uint32_t>(s.payload.size());
                        if ((s.p.tcp_flags & k_fin) != 0) {
                            fin_seen = true;
                            ack += 1;
                        }
                    }
                    answer = true;
                }
            }
            seq = base + static_cast<std::uint32_t>(acked);  // again from what was taken
            if (acked < up.size() && peer_window > 0) {
                std::size_t len = std::min<std::size_t>({up.size() - acked, 16384, peer_window});
                send(k_ack | k_psh, std::span(up).subspan(acked, len));
                answer = false;  // the segment carries our ACK
            }
            if (answer) {
                send(k_ack);
            }
            taken_up = acked;
            return reset_seen || (acked == up.size() && down.size() >= down_bytes && (!expect_fin || fin_seen));
        }, ms);
        return down;
    }

    EchoHandler hook;
    int holder = -1;
    std::uint32_t peer_window = 0;
    std::size_t taken_up = 0;
    std::size_t gaps = 0;  // segments not at the next expected byte
    bool fin_seen = false, reset_seen = false;
};

TEST_P(StreamHookTest, ATerminatedFlowReachesTheHandlerAndNoHostSocket) {
    handshake();
    EXPECT_EQ(hook.routed, 1);
    ASSERT_EQ(hook.attached, 1);
    EXPECT_TRUE(hook.accepted);
    EXPECT_EQ(hook.key.src, guest);
    EXPECT_EQ(hook.key.dst, net.host);
    EXPECT_EQ(hook.key.sport, sport);
    EXPECT_EQ(hook.key.dport, hook.port);
    EXPECT_EQ(hook.key.protocol, net::k_ipproto_tcp);
    EXPECT_EQ(engine->stats().terminated, 1u);
    EXPECT_EQ(engine->stats().connect_failed, 0u) << "a host connect was tried";

    // 1 MiB each way through the echo, in order, then the guest's FIN comes back as a FIN.
    Frame up = pattern(1u << 20, 11);
    Frame down = exchange(up, up.size());
    EXPECT_EQ(taken_up, up.size());
    EXPECT_EQ(down.size(), up.size());
    EXPECT_TRUE(down == up) << "the echo differs";
    EXPECT_EQ(gaps, 0u) << "a gap or a resend in the stream";
    send(k_fin | k_ack);
    Frame rest = exchange({}, 0, true);
    EXPECT_TRUE(rest.empty());
    EXPECT_TRUE(fin_seen) << "the handler's shutdown did not become a FIN";
    pump([&] { return engine->open_flows() == 0; });
    EXPECT_EQ(engine->open_flows(), 0u) << "the flow outlived both FINs";
}

TEST_P(StreamHookTest, FlowsTheHookSplicesGoToTheHost) {
    dport = listener.port;
    send(k_syn, {}, true);
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front().p.tcp_flags, k_syn | k_ack);
    EXPECT_EQ(hook.routed, 1);
    EXPECT_EQ(hook.attached, 0);
    int host = listener.accept_one();
    EXPECT_GE(host, 0) << "the spliced flow did not reach the host";
    ::close(host);
}

TEST_P(StreamHookTest, AHandlerThatStopsReadingClosesTheGuestsWindow) {
    hook.reading = false;
    handshake();
    Frame up = pattern(8u << 20, 12);
    exchange(up, 0, false, 1500);
    std::size_t held = taken_up;
    EXPECT_GT(held, 0u);
    EXPECT_LT(held, up.size()) << "8 MiB went into a handler that reads nothing";
    EXPECT_LT(held, std::size_t{2} << 20) << "more than the stream's socket buffers held";
    EXPECT_LT(peer_window, 65536u) << "the window stayed open";

    // The handler reads again: the window opens, and every byte comes back in order.
    hook.reading = true;
    Frame rest(up.begin() + static_cast<std::ptrdiff_t>(held), up.end());
    Frame down = exchange(rest, up.size(), false, 30000);
    EXPECT_EQ(taken_up, rest.size());
    EXPECT_TRUE(down == up) << "bytes lost or reordered across the stall";
}

TEST_P(StreamHookTest, AGuestThatStopsReadingStallsTheHandler) {
    hook.reading = false;
    handshake();
    Frame data = pattern(8u << 20, 13);
    std::size_t written = 0;
    for (int i = 0; i < 50; ++i) {  // the guest reads nothing and ACKs nothing
        written += hook.produce(data, written);
        pump([] { return false; }, 10);
    }
    std::size_t delivered = 0;
    for (auto& s : got) {
        delivered += s.payload.size();
    }
    EXPECT_GT(written, 0u);
    EXPECT_LT(written, std::size_t{4} << 20) << "the handler's writes did not stall";
    EXPECT_LE(delivered, written);
    got.clear();

    // The guest reads and ACKs from the first byte: everything arrives, as written.
    // Nothing was acknowledged: the engine sends again from here (dup ACKs or its timer).
    Frame down;
    const std::size_t total = data.size();
    pump([&] {
        if (written < total) {
            written += hook.produce(data, written);
        }
        Frame part = exchange({}, 1, false, 50);
        down.insert(down.end(), part.begin(), part.end());
        return down.size() >= total;
    }, 30000);
    EXPECT_TRUE(down == data) << "the bytes differ";
}

TEST_P(StreamHookTest, AHandlerDecidesWhenTheGuestIsAnswered) {
    hook.accept_on_attach = false;
    dport = hook.port;
    send(k_syn, {}, true);
    pump([] { return false; }, 200);
    ASSERT_EQ(hook.attached, 1);
    EXPECT_TRUE(got.empty()) << "the guest was answered before the handler accepted";
    net::StreamId first = hook.id;
    ASSERT_TRUE(engine->accept_stream(first, now_ms()));
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front().p.tcp_flags, k_syn | k_ack);
    EXPECT_FALSE(engine->accept_stream(first, now_ms())) << "accepted twice";
    got.clear();

    // A second connection the handler refuses: a RST for the guest's SYN.
    sport = 40001;
    seq = 0x20000000u;
    send(k_syn, {}, true);
    ASSERT_EQ(hook.attached, 2);
    ASSERT_TRUE(engine->reset_stream(hook.id));
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.front().p.tcp_flags, k_rst | k_ack);
    EXPECT_EQ(got.front().p.tcp_ack, seq);
    EXPECT_EQ(engine->open_flows(), 1u);
    EXPECT_FALSE(engine->reset_stream(hook.id)) << "a stale id still named a flow";
    EXPECT_FALSE(engine->accept_stream(hook.id, now_ms()));
}

TEST_P(StreamHookTest, AGuestResetIsAHangupForTheHandler) {
    handshake();
    send(k_rst | k_ack);
    EXPECT_EQ(engine->open_flows(), 0u);
    pollfd p{hook.fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 2000), 1);
    EXPECT_NE(p.revents & POLLHUP, 0) << "no hangup on the handler's end";
    char c = 'x';
    EXPECT_LT(::send(hook.fd, &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL), 0);
    EXPECT_EQ(errno, EPIPE);
}

TEST_P(StreamHookTest, TheHandlerClosingIsItsBytesThenAFin) {
    hook.reading = false;
    handshake();
    Frame bye = pattern(3000, 14);
    ASSERT_EQ(hook.produce(bye, 0), bye.size());
    hook.close_stream();
    Frame down = exchange({}, bye.size(), true);
    EXPECT_TRUE(down == bye);
    EXPECT_TRUE(fin_seen);
    send(k_fin | k_ack);
    pump([&] { return engine->open_flows() == 0; });
    EXPECT_EQ(engine->open_flows(), 0u);
}

// What a TLS gate does: read the start of the stream, dial the destination, pass the start on,
// and let the rest run on the fast path.
TEST_P(StreamHookTest, SpliceHandsTheFlowToAHostSocketTheHandlerDialled) {
    hook.reading = false;
    handshake();
    Frame hello = pattern(1200, 15);
    exchange(hello, 0);
    ASSERT_EQ(taken_up, hello.size());

    int upstream = dial(listener.port);
    ASSERT_GE(upstream, 0);
    EXPECT_FALSE(engine->splice_stream(hook.id, upstream, now_ms())) << "spliced with the hello unread";

    Frame got_hello = read_exactly(hook.fd, hello.size());
    ASSERT_TRUE(got_hello == hello);
    ASSERT_EQ(::send(upstream, got_hello.data(), got_hello.size(), 0), static_cast<ssize_t>(hello.size()));
    ASSERT_TRUE(engine->splice_stream(hook.id, upstream, now_ms()));
    EXPECT_EQ(engine->stats().spliced_later, 1u);
    pollfd p{hook.fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 2000), 1);
    EXPECT_NE(p.revents & POLLHUP, 0) << "the handler's end was not let go";
    hook.close_stream();

    // From here the host socket carries the flow, both ways.
    int host = listener.accept_one();
    ASSERT_GE(host, 0);
    Frame rest = pattern(300000, 16);
    exchange(rest, 0);
    EXPECT_EQ(taken_up, rest.size());
    Frame at_host = read_exactly(host, hello.size() + rest.size());
    ASSERT_EQ(at_host.size(), hello.size() + rest.size());
    EXPECT_TRUE(std::equal(hello.begin(), hello.end(), at_host.begin()));
    EXPECT_TRUE(std::equal(rest.begin(), rest.end(), at_host.begin() + static_cast<std::ptrdiff_t>(hello.size())));
    Frame answer = pattern(200000, 17);
    ASSERT_EQ(::send(host, answer.data(), answer.size(), 0), static_cast<ssize_t>(answer.size()));
    ::shutdown(host, SHUT_WR);
    Frame down = exchange({}, answer.size(), true);
    EXPECT_TRUE(down == answer);
    ::close(host);
}

// What a SOCKS dialer does: hold the guest's SYN, dial, and answer the guest only on success.
TEST_P(StreamHookTest, ASpliceBeforeTheAcceptAnswersTheGuestOnceConnected) {
    hook.accept_on_attach = false;
    dport = hook.port;
    send(k_syn, {}, true);
    ASSERT_EQ(hook.attached, 1);
    int upstream = dial(listener.port);
    ASSERT_GE(upstream, 0);
    ASSERT_TRUE(engine->splice_stream(hook.id, upstream, now_ms()));
    pump([&] { return !got.empty(); });
    ASSERT_FALSE(got.empty());
    Seg s = got.front();
    got.pop_front();
    ASSERT_EQ(s.p.tcp_flags, k_syn | k_ack);
    ack = s.p.tcp_seq + 1;
    peer_window = s.window;
    send(k_ack);
    int host = listener.accept_one();
    ASSERT_GE(host, 0);
    Frame up = pattern(100000, 18);
    exchange(up, 0);
    EXPECT_EQ(taken_up, up.size());
    EXPECT_TRUE(read_exactly(host, up.size()) == up);
    ::close(host);
}

INSTANTIATE_TEST_SUITE_P(PeekPaths, StreamHookTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "PeekOffset" : "DiscardBuffer"; });

}  // namespace
}  // namespace sbx::test
