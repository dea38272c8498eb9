#pragma once
// The host's interface addresses as the kernel reports them on a NETLINK_ROUTE socket, and
// their mirror in the Filter (which closes them to the guest, reason host_address).
//
// parse_address_messages() reads one datagram: RTM_NEWADDR/RTM_DELADDR (multicast
// notifications and the parts of a RTM_GETADDR dump look alike), NLMSG_DONE and NLMSG_ERROR.
// Every length is checked before it is used (a message's own length, its ifaddrmsg, each
// attribute); fields are read with memcpy. A message header that does not fit ends the
// datagram; a message whose body or attributes do not fit is skipped; both are counted.
//
// HostAddresses keeps the (interface, address) pairs the kernel has reported, so that an
// address held by two interfaces stays closed until both lost it, and turns each change into a
// Filter::add_host_address/remove_host_address. A dump (at start, and after the kernel dropped
// notifications: ENOBUFS) re-reads the whole set: what it does not list, and no notification
// added meanwhile, is removed when it ends. Pure: the socket is netd's (host_watch.hpp).

#include "sbx/net/frame.hpp"
#include "sbx/net/policy.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sbx::net {

class Filter;

struct AddressMessage {
    enum class Kind : std::uint8_t { added, removed, done, error };
    Kind kind = Kind::added;
    IpAddr addr;                // added, removed
    std::uint32_t ifindex = 0;  // added, removed
    std::uint32_t seq = 0;      // nlmsg_seq: a dump's parts, DONE and ERROR carry the request's
    bool interrupted = false;   // NLM_F_DUMP_INTR: the set changed while the dump ran
    int error = 0;              // error: the errno the kernel answered (positive)
};

struct AddressParse {
    std::size_t messages = 0;   // AddressMessages appended
    std::size_t malformed = 0;  // messages skipped, or the rest of the datagram
};

// Appends the address messages of one datagram to `out`; other message types are ignored.
// An IPv4 message's address is IFA_LOCAL (IFA_ADDRESS is the peer on point-to-point links),
// an IPv6 one's IFA_ADDRESS unless IFA_LOCAL is present.
AddressParse parse_address_messages(Bytes datagram, std::vector<AddressMessage>& out);

// A RTM_GETADDR dump request for every family; returns its size (0 when `out` is too small).
std::size_t write_address_dump_request(MutBytes out, std::uint32_t seq) noexcept;

class HostAddresses {
public:
    // How many (interface, address) pairs are followed. Only the host's administrator adds
    // addresses (the kernel caps SLAAC at 16 per interface), so this is generous: beyond it
    // a new address is not closed to the guest, and apply() says so (netd logs a warning).
    static constexpr std::size_t k_max_addresses = 4096;

    enum class Change : std::uint8_t {
        none,
        closed,       // a new address of the host: closed to the guest from now on
        reopened,     // the host no longer holds it: decided by the policy again
        full,         // not followed: k_max_addresses reached
        dump_done,    // the dump ended: the set is what it listed (and notifications since)
        dump_failed,  // the kernel refused the dump (error): the set is kept as it was
    };

    explicit HostAddresses(Filter& filter) : m_filter(filter) {}

    // A dump with this sequence number was requested: its DONE ends it.
    void dump_started(std::uint32_t seq);
    // The kernel dropped notifications (ENOBUFS) or a datagram was cut: the set may be stale.
    void lost() noexcept { m_want_dump = true; }
    // Whether a dump should be requested now (none running and the set may be stale).
    bool want_dump() const noexcept { return m_want_dump && !m_dumping; }
    bool dumping() const noexcept { return m_dumping; }

    // One message. `changed` is the address a closed/reopened/full change is about.
    Change apply(const AddressMessage& m, IpAddr& changed);

    std::size_t size() const noexcept { return m_pairs.size(); }

private:
    struct Pair {
        IpAddr addr;
        std::uint32_t ifindex = 0;
        auto operator<=>(const Pair&) const = default;
    };
    Change add(const Pair& p, IpAddr& changed);
    Change remove(const Pair& p, IpAddr& changed);
    bool held(const IpAddr& a) const noexcept;  // by any interface

    Filter& m_filter;
    std::vector<Pair> m_pairs;   // sorted by address, then interface
    std::vector<Pair> m_listed;  // while dumping: what the dump and notifications since reported
    std::uint32_t m_dump_seq = 0;
    bool m_dumping = false;
    bool m_want_dump = false;
    bool m_dump_interrupted = false;
    bool m_overflowed = false;  // an address was refused: a removal makes room, so dump again
};

}  // namespace sbx::net
