// The host's own addresses: the netlink parser on synthetic datagrams (well-formed, truncated,
// malformed), the followed set (HostAddresses) and the Filter's set it drives.

#include "net_frames.hpp"
#include "sbx/net/filter.hpp"
#include "sbx/net/netlink_addr.hpp"

#include <gtest/gtest.h>

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstring>

using namespace sbx::net;
using namespace sbx::test;

namespace {

using Kind = AddressMessage::Kind;
using Change = HostAddresses::Change;

const IpAddr k_guest = ip("10.0.2.15");

template <class T>
void append(Frame& f, const T& v) {
    auto p = reinterpret_cast<const std::byte*>(&v);
    f.insert(f.end(), p, p + sizeof v);
}

void pad4(Frame& f) {
    while (f.size() % 4 != 0) {
        f.push_back(std::byte{0});
    }
}

// One rtattr with `payload`, padded.
Frame attr(std::uint16_t type, const Frame& payload) {
    Frame f;
    rtattr a{};
    a.rta_len = static_cast<unsigned short>(sizeof a + payload.size());
    a.rta_type = type;
    append(f, a);
    f.insert(f.end(), payload.begin(), payload.end());
    pad4(f);
    return f;
}

Frame addr_bytes(const IpAddr& a) {
    Frame f;
    if (a.is_v4()) {
        f.assign(reinterpret_cast<const std::byte*>(a.bytes.data()) + 12,
                 reinterpret_cast<const std::byte*>(a.bytes.data()) + 16);
    } else {
        f.assign(reinterpret_cast<const std::byte*>(a.bytes.data()),
                 reinterpret_cast<const std::byte*>(a.bytes.data()) + 16);
    }
    return f;
}

Frame ifaddr(std::uint8_t family, std::uint32_t ifindex, std::initializer_list<Frame> attrs) {
    Frame f;
    ifaddrmsg m{};
    m.ifa_family = family;
    m.ifa_prefixlen = family == AF_INET ? 24 : 64;
    m.ifa_index = ifindex;
    append(f, m);
    pad4(f);
    for (const auto& a : attrs) {
        f.insert(f.end(), a.begin(), a.end());
    }
    return f;
}

Frame nlmsg(std::uint16_t type, const Frame& body, std::uint32_t seq = 0, std::uint16_t flags = 0) {
    Frame f;
    nlmsghdr h{};
    h.nlmsg_len = static_cast<std::uint32_t>(sizeof h + body.size());
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    append(f, h);
    f.insert(f.end(), body.begin(), body.end());
    pad4(f);
    return f;
}

// A RTM_NEWADDR/RTM_DELADDR as the kernel writes it: IFA_ADDRESS, and IFA_LOCAL for IPv4.
Frame addr_msg(std::uint16_t type, const IpAddr& a, std::uint32_t ifindex = 2, std::uint32_t seq = 0,
               std::uint16_t flags = 0) {
    if (a.is_v4()) {
        return nlmsg(
            type,
            ifaddr(AF_INET, ifindex, {attr(IFA_ADDRESS, addr_bytes(a)), attr(IFA_LOCAL, addr_bytes(a))}), seq,
            flags);
    }
    return nlmsg(type, ifaddr(AF_INET6, ifindex, {attr(IFA_ADDRESS, addr_bytes(a))}), seq, flags);
}

Frame done_msg(std::uint32_t seq) {
    Frame body;
    append(body, 0);
    return nlmsg(NLMSG_DONE, body, seq, NLM_F_MULTI);
}

// NLMSG_ERROR carrying `code` as the kernel's field (a negative errno).
Frame raw_error_msg(std::uint32_t seq, int code) {
    Frame body;
    nlmsgerr e{};
    e.error = code;
    append(body, e);
    return nlmsg(NLMSG_ERROR, body, seq);
}

Frame error_msg(std::uint32_t seq, int err) {
    return raw_error_msg(seq, -err);
}

Frame cat(std::initializer_list<Frame> parts) {
    Frame f;
    for (const auto& p : parts) {
        f.insert(f.end(), p.begin(), p.end());
    }
    return f;
}

std::vector<AddressMessage> parse(const Frame& d, AddressParse* r = nullptr) {
    std::vector<AddressMessage> out;
    auto res = parse_address_messages(d, out);
    EXPECT_EQ(res.messages, out.size());
    if (r) {
        *r = res;
    }
    return out;
}

// Feeds a datagram to the set; returns the changes.
std::vector<Change> feed(HostAddresses& h, const Frame& d) {
    std::vector<Change> out;
    for (const auto& m : parse(d)) {
        IpAddr a;
        out.push_back(h.apply(m, a));
    }
    return out;
}

Filter open_filter() {
    Policy p;
    p.mode = Mode::open;
    Limits l;
    l.hash_seed = 42;
    return Filter(p, GuestNet{}, l);
}

std::vector<IpAddr> set_of(const Filter& f) {
    auto s = f.host_addresses();
    return {s.begin(), s.end()};
}

}  // namespace

// --- the parser -------------------------------------------------------------------------------

TEST(NetlinkAddr, ParsesSeveralMessagesOfBothFamiliesInOneDatagram) {
    // Point-to-point IPv4: IFA_LOCAL is ours, IFA_ADDRESS the peer's.
    Frame ptp = nlmsg(RTM_NEWADDR, ifaddr(AF_INET, 7,
                                          {attr(IFA_ADDRESS, addr_bytes(ip("10.8.0.1"))),
                                           attr(IFA_LOCAL, addr_bytes(ip("10.8.0.2"))),
                                           attr(IFA_LABEL, Frame(5, std::byte{'t'}))}));
    auto ms =
        parse(cat({addr_msg(RTM_NEWADDR, ip("192.168.1.20"), 2), addr_msg(RTM_NEWADDR, ip("2001:db8::20"), 3),
                   ptp, addr_msg(RTM_DELADDR, ip("192.168.1.21"), 2)}));
    ASSERT_EQ(ms.size(), 4u);
    EXPECT_EQ(ms[0].kind, Kind::added);
    EXPECT_EQ(ms[0].addr, ip("192.168.1.20"));
    EXPECT_EQ(ms[0].ifindex, 2u);
    EXPECT_EQ(ms[1].kind, Kind::added);
    EXPECT_EQ(ms[1].addr, ip("2001:db8::20"));
    EXPECT_EQ(ms[1].ifindex, 3u);
    EXPECT_EQ(ms[2].addr, ip("10.8.0.2"));
    EXPECT_EQ(ms[2].ifindex, 7u);
    EXPECT_EQ(ms[3].kind, Kind::removed);
    EXPECT_EQ(ms[3].addr, ip("192.168.1.21"));
}

TEST(NetlinkAddr, DumpPartsDoneAndErrors) {
    auto ms = parse(cat({addr_msg(RTM_NEWADDR, ip("192.0.2.2"), 2, 9, NLM_F_MULTI | NLM_F_DUMP_INTR),
                         done_msg(9), error_msg(10, EBUSY), error_msg(11, 0)}));
    ASSERT_EQ(ms.size(), 3u) << "an acknowledgement (error 0) is no message";
    EXPECT_EQ(ms[0].seq, 9u);
    EXPECT_TRUE(ms[0].interrupted);
    EXPECT_EQ(ms[1].kind, Kind::done);
    EXPECT_EQ(ms[1].seq, 9u);
    EXPECT_EQ(ms[2].kind, Kind::error);
    EXPECT_EQ(ms[2].seq, 10u);
    EXPECT_EQ(ms[2].error, EBUSY);
}

TEST(NetlinkAddr, IgnoresOtherTypesAndFamilies) {
    Frame link = nlmsg(RTM_NEWLINK, Frame(16, std::byte{0}));
    Frame other = nlmsg(RTM_NEWADDR, ifaddr(AF_PACKET, 2, {attr(IFA_ADDRESS, Frame(6, std::byte{1}))}));
    AddressParse r;
    auto ms = parse(cat({link, other, addr_msg(RTM_NEWADDR, ip("192.0.2.2"))}), &r);
    ASSERT_EQ(ms.size(), 1u);
    EXPECT_EQ(ms[0].addr, ip("192.0.2.2"));
    EXPECT_EQ(r.malformed, 0u);
}

TEST(NetlinkAddr, TruncatedDatagramsKeepWhatFits) {
    Frame good = addr_msg(RTM_NEWADDR, ip("192.0.2.2"));
    Frame second = addr_msg(RTM_NEWADDR, ip("192.0.2.3"));
    Frame d = cat({good, second});
    // Every cut of the second message: the first still counts, the rest is malformed.
    for (std::size_t cut = good.size() + 1; cut < d.size(); ++cut) {
        AddressParse r;
        auto ms = parse(Frame(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(cut)), &r);
        ASSERT_EQ(ms.size(), 1u) << cut;
        EXPECT_EQ(ms[0].addr, ip("192.0.2.2"));
        EXPECT_EQ(r.malformed, 1u) << cut;
    }
    // Shorter than a header, and empty.
    AddressParse r;
    EXPECT_TRUE(parse(Frame(good.begin(), good.begin() + 10), &r).empty());
    EXPECT_EQ(r.malformed, 1u);
    EXPECT_TRUE(parse(Frame{}, &r).empty());
    EXPECT_EQ(r.malformed, 0u);
}

TEST(NetlinkAddr, MalformedMessagesAreSkippedNeverTrusted) {
    const Frame v4 = addr_bytes(ip("192.0.2.9"));
    const Frame next = addr_msg(RTM_NEWADDR, ip("192.0.2.2"));
    auto raw_len = [](Frame f, std::uint32_t len) {
        std::memcpy(f.data(), &len, sizeof len);
        return f;
    };
    auto attr_len = [](Frame a, std::uint16_t len) {
        std::memcpy(a.data(), &len, sizeof len);
        return a;
    };
    struct Case {
        const char* what;
        Frame msg;
        bool next_parsed;  // whether the following message is still read
    };
    const Case cases[] = {
        {"no ifaddrmsg", nlmsg(RTM_NEWADDR, Frame(4, std::byte{0})), true},
        {"no address attribute", nlmsg(RTM_NEWADDR, ifaddr(AF_INET, 2, {})), true},
        {"IPv4 address of 16 bytes", nlmsg(RTM_NEWADDR, ifaddr(AF_INET, 2, {attr(IFA_LOCAL, Frame(16))})),
         true},
        {"IPv6 address of 4 bytes", nlmsg(RTM_DELADDR, ifaddr(AF_INET6, 2, {attr(IFA_ADDRESS, v4)})), true},
        {"attribute past the message",
         nlmsg(RTM_NEWADDR, ifaddr(AF_INET, 2, {attr_len(attr(IFA_LOCAL, v4), 200)})), true},
        {"attribute length under its header",
         nlmsg(RTM_NEWADDR, ifaddr(AF_INET, 2, {attr_len(attr(IFA_LOCAL, v4), 2)})), true},
        {"error without its code", nlmsg(NLMSG_ERROR, Frame(2, std::byte{0})), true},
        {"error code no errno can be (INT_MIN, found by the fuzzer)", raw_error_msg(1, INT_MIN), true},
        {"positive error code", raw_error_msg(1, 5), true},
        {"length under the header", raw_len(addr_msg(RTM_NEWADDR, ip("192.0.2.9")), 8), false},
        {"length past the datagram", raw_len(addr_msg(RTM_NEWADDR, ip("192.0.2.9")), 4096), false},
    };
    for (const auto& c : cases) {
        AddressParse r;
        auto ms = parse(cat({c.msg, next}), &r);
        EXPECT_EQ(r.malformed, 1u) << c.what;
        for (const auto& m : ms) {
            EXPECT_NE(m.addr, ip("192.0.2.9")) << c.what;
        }
        EXPECT_EQ(ms.size(), c.next_parsed ? 1u : 0u) << c.what;
    }
}

TEST(NetlinkAddr, DumpRequest) {
    std::array<std::byte, 64> buf{};
    std::size_t n = write_address_dump_request(buf, 77);
    ASSERT_EQ(n, NLMSG_LENGTH(sizeof(ifaddrmsg)));
    nlmsghdr h{};
    std::memcpy(&h, buf.data(), sizeof h);
    EXPECT_EQ(h.nlmsg_len, n);
    EXPECT_EQ(h.nlmsg_type, RTM_GETADDR);
    EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
    EXPECT_EQ(h.nlmsg_seq, 77u);
    EXPECT_EQ(write_address_dump_request(std::span(buf).first(8), 1), 0u);
}

// --- the followed set -------------------------------------------------------------------------

TEST(HostAddresses, FollowsAdditionsAndRemovals) {
    Filter f = open_filter();
    HostAddresses h(f);
    EXPECT_EQ(
        feed(h, cat({addr_msg(RTM_NEWADDR, ip("192.168.1.20")), addr_msg(RTM_NEWADDR, ip("2001:db8::20"))})),
        (std::vector{Change::closed, Change::closed}));
    EXPECT_EQ(set_of(f), (std::vector{ip("192.168.1.20"), ip("2001:db8::20")}));
    // A repeated notification (a lifetime update) changes nothing.
    EXPECT_EQ(feed(h, addr_msg(RTM_NEWADDR, ip("192.168.1.20"))), std::vector{Change::none});
    EXPECT_EQ(feed(h, addr_msg(RTM_DELADDR, ip("192.168.1.20"))), std::vector{Change::reopened});
    EXPECT_EQ(set_of(f), std::vector{ip("2001:db8::20")});
    EXPECT_EQ(feed(h, addr_msg(RTM_DELADDR, ip("192.168.1.20"))), std::vector{Change::none});
    EXPECT_EQ(h.size(), 1u);
}

TEST(HostAddresses, AnAddressOnTwoInterfacesStaysUntilBothLoseIt) {
    Filter f = open_filter();
    HostAddresses h(f);
    feed(h, cat({addr_msg(RTM_NEWADDR, ip("10.1.1.1"), 2), addr_msg(RTM_NEWADDR, ip("10.1.1.1"), 3)}));
    EXPECT_EQ(h.size(), 2u);
    EXPECT_EQ(feed(h, addr_msg(RTM_DELADDR, ip("10.1.1.1"), 2)), std::vector{Change::none});
    EXPECT_EQ(set_of(f), std::vector{ip("10.1.1.1")});
    EXPECT_EQ(feed(h, addr_msg(RTM_DELADDR, ip("10.1.1.1"), 3)), std::vector{Change::reopened});
    EXPECT_TRUE(set_of(f).empty());
}

// Loopback and the guest network are closed as the host's loopback, IPv6 link-local cannot
// be reached (no scope id): not kept. IPv4 link-local is (a narrow cidr rule opens it).
TEST(HostAddresses, SkipsWhatIsClosedOtherwise) {
    Filter f = open_filter();
    HostAddresses h(f);
    feed(h, cat({addr_msg(RTM_NEWADDR, ip("127.0.0.1"), 1), addr_msg(RTM_NEWADDR, ip("::1"), 1),
                 addr_msg(RTM_NEWADDR, ip("fe80::1"), 2), addr_msg(RTM_NEWADDR, ip("10.0.2.7"), 2),
                 addr_msg(RTM_NEWADDR, ip("169.254.3.4"), 2)}));
    EXPECT_EQ(set_of(f), std::vector{ip("169.254.3.4")});
    EXPECT_EQ(h.size(), 1u);
    EXPECT_EQ(f.add_host_address(ip("127.0.0.53")), HostAddressAdd::not_needed);
}

// A dump re-reads the whole set: what it does not list is gone, unless a notification added
// it meanwhile; notifications during the dump apply at once.
TEST(HostAddresses, ADumpReplacesTheSet) {
    Filter f = open_filter();
    HostAddresses h(f);
    feed(h, cat({addr_msg(RTM_NEWADDR, ip("192.0.2.2")), addr_msg(RTM_NEWADDR, ip("192.0.2.3")),
                 addr_msg(RTM_NEWADDR, ip("192.0.2.4"))}));
    h.lost();
    EXPECT_TRUE(h.want_dump());
    h.dump_started(5);
    EXPECT_FALSE(h.want_dump());
    EXPECT_EQ(feed(h, cat({addr_msg(RTM_NEWADDR, ip("192.0.2.2"), 2, 5, NLM_F_MULTI),
                           addr_msg(RTM_NEWADDR, ip("192.0.2.9"), 2, 5, NLM_F_MULTI)})),
              (std::vector{Change::none, Change::closed}));
    // Notifications while it runs: one more address, and one of the dump's removed.
    feed(h, cat({addr_msg(RTM_NEWADDR, ip("192.0.2.10")), addr_msg(RTM_DELADDR, ip("192.0.2.9"))}));
    EXPECT_EQ(feed(h, done_msg(4)), std::vector{Change::none}) << "another request's DONE";
    EXPECT_TRUE(h.dumping());
    EXPECT_EQ(feed(h, done_msg(5)), std::vector{Change::dump_done});
    EXPECT_FALSE(h.dumping());
    EXPECT_FALSE(h.want_dump());
    EXPECT_EQ(set_of(f), (std::vector{ip("192.0.2.2"), ip("192.0.2.10")}));
}

TEST(HostAddresses, AnInterruptedOrFailedDumpIsRetried) {
    Filter f = open_filter();
    HostAddresses h(f);
    feed(h, addr_msg(RTM_NEWADDR, ip("192.0.2.2")));
    h.dump_started(1);
    feed(h, cat({addr_msg(RTM_NEWADDR, ip("192.0.2.2"), 2, 1, NLM_F_MULTI | NLM_F_DUMP_INTR), done_msg(1)}));
    EXPECT_TRUE(h.want_dump()) << "the kernel said the set changed while it was listed";
    h.dump_started(2);
    EXPECT_EQ(feed(h, error_msg(2, ENOMEM)), std::vector{Change::dump_failed});
    EXPECT_FALSE(h.dumping());
    EXPECT_EQ(set_of(f), std::vector{ip("192.0.2.2")}) << "a failed dump keeps the set";
}

TEST(HostAddresses, BeyondTheBoundNewAddressesAreRefusedAndRoomIsRefilled) {
    Filter f = open_filter();
    HostAddresses h(f);
    for (std::size_t i = 0; i < HostAddresses::k_max_addresses; ++i) {
        feed(h, addr_msg(RTM_NEWADDR, IpAddr::v4(0x0b000000u + static_cast<std::uint32_t>(i))));
    }
    EXPECT_EQ(h.size(), HostAddresses::k_max_addresses);
    EXPECT_EQ(feed(h, addr_msg(RTM_NEWADDR, ip("192.0.2.2"))), std::vector{Change::full});
    EXPECT_EQ(f.host_addresses().size(), HostAddresses::k_max_addresses);
    EXPECT_FALSE(h.want_dump());
    // A removal makes room: the refused address is listed again.
    EXPECT_EQ(feed(h, addr_msg(RTM_DELADDR, ip("11.0.0.0"))), std::vector{Change::reopened});
    EXPECT_TRUE(h.want_dump());
}

// --- the Filter's set ----------------------------------------------------------------------

// An address the host gains closes the flows already allowed to it: a connected UDP socket
// of the datagram engine would otherwise reach the host's service until decided again.
TEST(HostAddresses, ANewHostAddressClosesCachedFlows) {
    Filter f = open_filter();
    const IpAddr peer = ip("192.0.2.77");
    using FKind = GuestFrameResult::Kind;
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, peer, 40000, 5000), 0).kind, FKind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, peer, 40001, 80), 0).kind, FKind::pass);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, peer, 40001, 80, k_ack, 1001, 1), 0).kind, FKind::pass);
    EXPECT_EQ(f.add_host_address(peer), HostAddressAdd::closed);
    EXPECT_EQ(f.add_host_address(peer), HostAddressAdd::already_closed);
    EXPECT_EQ(f.on_guest_frame(udp_frame(k_guest, peer, 40000, 5000), 1).kind, FKind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, peer, 40001, 80, k_ack, 1001, 1), 1).kind, FKind::reply);
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, peer, 40002, 80), 1).kind, FKind::reply);
    // Removed: new flows are the policy's again (whoever holds it now is not the host).
    EXPECT_TRUE(f.remove_host_address(peer));
    EXPECT_FALSE(f.remove_host_address(peer));
    EXPECT_EQ(f.on_guest_frame(tcp_frame(k_guest, peer, 40003, 80), 2).kind, FKind::pass);
    Decision ds[16];
    std::size_t n = f.drain_decisions(ds);
    ASSERT_GE(n, 2u);
    EXPECT_EQ(ds[n - 2].reason, Reason::host_address);
    EXPECT_EQ(ds[n - 1].reason, Reason::open_policy);
}
