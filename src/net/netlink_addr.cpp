// The host's addresses from netlink; see netlink_addr.hpp for what is parsed and followed.

#include "sbx/net/netlink_addr.hpp"

#include "sbx/net/filter.hpp"

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

namespace sbx::net {

namespace {

constexpr std::size_t k_header = sizeof(nlmsghdr);
constexpr std::size_t k_ifaddr = NLMSG_ALIGN(sizeof(ifaddrmsg));
constexpr std::size_t k_rta_header = RTA_ALIGN(sizeof(rtattr));

constexpr std::size_t align4(std::size_t n) noexcept {
    return (n + 3) & ~std::size_t{3};
}

template <class T>
T load(const std::byte* p) noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

enum class Body : std::uint8_t { ok, other_family, malformed };

// The body of a RTM_NEWADDR/RTM_DELADDR (after the nlmsghdr).
Body parse_ifaddr(Bytes body, AddressMessage& m) noexcept {
    if (body.size() < k_ifaddr) {
        return Body::malformed;
    }
    auto ifa = load<ifaddrmsg>(body.data());
    std::size_t want = 0;
    if (ifa.ifa_family == AF_INET) {
        want = 4;
    } else if (ifa.ifa_family == AF_INET6) {
        want = 16;
    } else {
        return Body::other_family;  // AF_MCTP, ...: not malformed, not ours
    }
    std::optional<IpAddr> local, address;
    std::size_t off = k_ifaddr;
    while (off + k_rta_header <= body.size()) {
        auto rta = load<rtattr>(body.data() + off);
        std::size_t len = rta.rta_len;
        if (len < sizeof(rtattr) || len > body.size() - off) {
            return Body::malformed;
        }
        if (rta.rta_type == IFA_LOCAL || rta.rta_type == IFA_ADDRESS) {
            if (len - k_rta_header != want) {
                return Body::malformed;
            }
            const std::byte* p = body.data() + off + k_rta_header;
            IpAddr a;
            if (want == 4) {
                std::uint8_t b[4];
                std::memcpy(b, p, 4);
                a = IpAddr::v4((std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                               (std::uint32_t{b[2]} << 8) | b[3]);
            } else {
                std::array<std::uint8_t, 16> b{};
                std::memcpy(b.data(), p, 16);
                a = IpAddr::v6(b);
            }
            (rta.rta_type == IFA_LOCAL ? local : address) = a;
        }
        off += align4(len);
    }
    if (!local && !address) {
        return Body::malformed;
    }
    m.addr = local ? *local : *address;
    m.ifindex = ifa.ifa_index;
    return Body::ok;
}

}  // namespace

AddressParse parse_address_messages(Bytes datagram, std::vector<AddressMessage>& out) {
    AddressParse r;
    std::size_t off = 0;
    while (datagram.size() - off >= k_header) {
        auto h = load<nlmsghdr>(datagram.data() + off);
        std::size_t len = h.nlmsg_len;
        if (len < k_header || len > datagram.size() - off) {
            ++r.malformed;  // no way to find the next message
            return r;
        }
        Bytes body = datagram.subspan(off + k_header, len - k_header);
        AddressMessage m;
        m.seq = h.nlmsg_seq;
        m.interrupted = (h.nlmsg_flags & NLM_F_DUMP_INTR) != 0;
        bool keep = false;
        switch (h.nlmsg_type) {
            case RTM_NEWADDR:
            case RTM_DELADDR:
                m.kind =
                    h.nlmsg_type == RTM_NEWADDR ? AddressMessage::Kind::added : AddressMessage::Kind::removed;
                switch (parse_ifaddr(body, m)) {
                    case Body::ok:
                        keep = true;
                        break;
                    case Body::other_family:
                        break;
                    case Body::malformed:
                        ++r.malformed;
                        break;
                }
                break;
            case NLMSG_DONE:
                m.kind = AddressMessage::Kind::done;
                keep = true;
                break;
            case NLMSG_ERROR: {
                if (body.size() < sizeof(int)) {
                    ++r.malformed;
                    break;
                }
                // A negative errno; 0 is an acknowledgement (never asked for).
                const int code = load<int>(body.data());
                if (code < -4095 || code > 0) {
                    ++r.malformed;
                    break;
                }
                m.kind = AddressMessage::Kind::error;
                m.error = -code;
                keep = m.error != 0;
                break;
            }
            default:
                break;
        }
        if (keep) {
            out.push_back(m);
            ++r.messages;
        }
        off += std::min(align4(len), datagram.size() - off);
    }
    if (off != datagram.size()) {
        ++r.malformed;  // trailing bytes shorter than a header
    }
    return r;
}

std::size_t write_address_dump_request(MutBytes out, std::uint32_t seq) noexcept {
    struct Request {
        nlmsghdr h;
        ifaddrmsg ifa;
    };
    if (out.size() < sizeof(Request)) {
        return 0;
    }
    Request req{};
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = RTM_GETADDR;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = seq;
    req.ifa.ifa_family = AF_UNSPEC;
    std::memcpy(out.data(), &req, sizeof req);
    return sizeof req;
}

// --- HostAddresses --------------------------------------------------------------------------

void HostAddresses::dump_started(std::uint32_t seq) {
    m_dump_seq = seq;
    m_dumping = true;
    m_want_dump = false;
    m_dump_interrupted = false;
    m_listed.clear();
}

bool HostAddresses::held(const IpAddr& a) const noexcept {
    auto it = std::lower_bound(m_pairs.begin(), m_pairs.end(), Pair{a, 0});
    return it != m_pairs.end() && it->addr == a;
}

HostAddresses::Change HostAddresses::add(const Pair& p, IpAddr& changed) {
    auto it = std::lower_bound(m_pairs.begin(), m_pairs.end(), p);
    if (it != m_pairs.end() && *it == p) {
        return Change::none;
    }
    if (!m_filter.host_address_needed(p.addr)) {
        return Change::none;  // loopback, IPv6 link-local: closed otherwise, not counted
    }
    changed = p.addr;
    if (m_pairs.size() >= k_max_addresses) {
        m_overflowed = true;
        return Change::full;
    }
    switch (m_filter.add_host_address(p.addr)) {
        case HostAddressAdd::not_needed:
            return Change::none;
        case HostAddressAdd::already_closed:
            m_pairs.insert(it, p);
            return Change::none;
        case HostAddressAdd::closed:
            m_pairs.insert(it, p);
            return Change::closed;
    }
    return Change::none;
}

HostAddresses::Change HostAddresses::remove(const Pair& p, IpAddr& changed) {
    auto it = std::lower_bound(m_pairs.begin(), m_pairs.end(), p);
    if (it == m_pairs.end() || *it != p) {
        return Change::none;
    }
    m_pairs.erase(it);
    if (held(p.addr)) {
        return Change::none;  // another interface still has it
    }
    m_filter.remove_host_address(p.addr);
    changed = p.addr;
    return Change::reopened;
}

HostAddresses::Change HostAddresses::apply(const AddressMessage& m, IpAddr& changed) {
    const Pair p{m.addr, m.ifindex};
    switch (m.kind) {
        case AddressMessage::Kind::added: {
            if (m_dumping) {
                auto it = std::lower_bound(m_listed.begin(), m_listed.end(), p);
                if (it == m_listed.end() || *it != p) {
                    m_listed.insert(it, p);
                }
                m_dump_interrupted = m_dump_interrupted || (m.interrupted && m.seq == m_dump_seq);
            }
            return add(p, changed);
        }
        case AddressMessage::Kind::removed: {
            if (m_dumping) {
                auto it = std::lower_bound(m_listed.begin(), m_listed.end(), p);
                if (it != m_listed.end() && *it == p) {
                    m_listed.erase(it);
                }
            }
            Change c = remove(p, changed);
            if (c == Change::reopened && m_overflowed) {
                m_want_dump = true;  // room for an address refused earlier
            }
            return c;
        }
        case AddressMessage::Kind::done: {
            if (!m_dumping || m.seq != m_dump_seq) {
                return Change::none;
            }
            m_dumping = false;
            m_dump_interrupted = m_dump_interrupted || m.interrupted;
            // What the dump did not list is gone: removed without a notification we saw.
            std::vector<Pair> stale;
            std::set_difference(m_pairs.begin(), m_pairs.end(), m_listed.begin(), m_listed.end(),
                                std::back_inserter(stale));
            bool removed = false;
            for (const Pair& s : stale) {
                IpAddr ignored;
                removed = remove(s, ignored) == Change::reopened || removed;
            }
            m_listed.clear();
            m_listed.shrink_to_fit();
            if (m_dump_interrupted || (m_overflowed && removed)) {
                m_want_dump = true;
            }
            m_overflowed = m_overflowed && m_pairs.size() >= k_max_addresses;
            return Change::dump_done;
        }
        case AddressMessage::Kind::error:
            if (!m_dumping || m.seq != m_dump_seq) {
                return Change::none;
            }
            m_dumping = false;
            m_listed.clear();
            return Change::dump_failed;
    }
    return Change::none;
}

}  // namespace sbx::net
