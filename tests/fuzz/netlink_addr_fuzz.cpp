// libFuzzer: the netlink address parser, and the followed host-address set it drives. The
// first byte chooses when a dump is running (bit 0: one starts with sequence 1 before the
// input) and whether notifications were lost (bit 1); the rest is one netlink datagram.

#include "sbx/net/filter.hpp"
#include "sbx/net/netlink_addr.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

using namespace sbx::net;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    Bytes datagram = std::as_bytes(std::span(data + 1, size - 1));
    std::vector<AddressMessage> out;
    AddressParse r = parse_address_messages(datagram, out);
    if (r.messages != out.size() || r.messages * 16 > datagram.size()) {
        std::abort();  // every message takes at least a header
    }
    static Filter filter(Policy{}, GuestNet{}, [] {
        Limits l;
        l.flows = 64;  // an added address walks the flow table: keep it small
        l.pins = 64;
        return l;
    }());
    HostAddresses set(filter);
    filter.set_host_addresses({});
    if (data[0] & 1) {
        set.dump_started(1);
    }
    if (data[0] & 2) {
        set.lost();
    }
    for (const AddressMessage& m : out) {
        IpAddr changed;
        (void)set.apply(m, changed);
    }
    auto s = filter.host_addresses();
    if (s.size() > set.size() || set.size() > HostAddresses::k_max_addresses ||
        !std::is_sorted(s.begin(), s.end()) || std::adjacent_find(s.begin(), s.end()) != s.end()) {
        std::abort();
    }
    for (const IpAddr& a : s) {
        if (!filter.host_address_needed(a)) {
            std::abort();
        }
    }
    return 0;
}
