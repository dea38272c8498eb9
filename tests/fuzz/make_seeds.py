#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/). Run it again
after changing it; crash inputs found later are added beside these by hand (named crash-*)."""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_MAC = bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56])
SLIRP_MAC = bytes([0x52, 0x55, 0x0A, 0, 2, 2])


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def v4(a):
    return bytes(int(x) for x in a.split("."))


def v6(a):
    import ipaddress
    return ipaddress.IPv6Address(a).packed


def eth(etype, payload):
    return SLIRP_MAC + GUEST_MAC + struct.pack("!H", etype) + payload


def ipv4(src, dst, proto, l4, flags_frag=0, options=b""):
    hl = 20 + len(options)
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | hl // 4, 0, hl + len(l4), 0x1234, flags_frag, 64, proto, 0,
                    v4(src), v4(dst)) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return eth(0x0800, h + l4)


def ipv6(src, dst, nh, payload):
    return eth(0x86DD, struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64, v6(src), v6(dst)) + payload)


def tcp(sport, dport, flags, seq=1000, ack=0, data=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data


def udp(sport, dport, data):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def dns_query(qid, name, qtype, edns=False):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    return q


def dns_response_with_pointers():
    q = struct.pack("!HHHHHH", 7, 0x8180, 1, 2, 0, 0)
    q += b"\x06github\x03com\x00" + struct.pack("!HH", 1, 1)
    q += b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([140, 82, 121, 4])
    q += b"\x03www\xc0\x0c" + struct.pack("!HHIH", 28, 1, 60, 16) + v6("2001:db8::1")
    return q


def frames():
    g, r, d = "10.0.2.15", "93.184.216.34", "10.0.2.3"
    g6, r6 = "fec0::5054:ff:fe12:3456", "2606:2800:220:1:248:1893:25c8:1946"
    return {
        "tcp_syn_v4": ipv4(g, r, 6, tcp(40000, 443, 0x02)),
        "tcp_ack_data_v4": ipv4(g, r, 6, tcp(40000, 443, 0x18, 1001, 5555, b"GET / HTTP/1.1\r\n")),
        "udp_dns_v4": ipv4(g, d, 17, udp(33000, 53, dns_query(0x1234, "github.com", 1))),
        "udp_dns_other_v4": ipv4(g, "8.8.8.8", 17, udp(33000, 53, dns_query(1, "evil.example", 1))),
        "icmp_echo_v4": ipv4(g, r, 1, struct.pack("!BBHHH", 8, 0, 0, 7, 1) + bytes(16)),
        "ipv4_options": ipv4(g, r, 17, udp(5000, 9999, b"x" * 5), options=b"\x01" * 8),
        "ipv4_fragment": ipv4(g, r, 17, udp(5000, 9999, b"x" * 8), flags_frag=0x2000),
        "host_loopback_v4": ipv4(g, "10.0.2.2", 6, tcp(40000, 5432, 0x02)),
        "tcp_syn_v6": ipv6(g6, r6, 6, tcp(40000, 443, 0x02)),
        "udp_dns_v6": ipv6(g6, "fec0::3", 17, udp(33000, 53, dns_query(5, "api.github.com", 28, True))),
        "ipv6_ext_headers": ipv6(g6, r6, 0, bytes([60, 0, 1, 4, 0, 0, 0, 0]) + bytes([17, 0, 1, 4, 0, 0, 0, 0]) +
                                 udp(1, 2, b"abc")),
        "ipv6_fragment": ipv6(g6, r6, 44, bytes([17, 0, 0, 1, 0, 0, 0xab, 0xcd]) + udp(1, 2, b"abc")),
        "icmpv6_ns": ipv6("fe80::1", "ff02::1:ff00:2", 58, bytes([135, 0, 0, 0, 0, 0, 0, 0]) + v6("fec0::2")),
        "icmpv6_echo": ipv6(g6, r6, 58, bytes([128, 0, 0, 0, 0, 7, 0, 1]) + bytes(8)),
        "arp": eth(0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, GUEST_MAC, v4(g), bytes(6),
                                       v4("10.0.2.2"))),
        "vlan": eth(0x8100, bytes(46)),
    }


def tcp_engine_seeds():
    """Op sequences for tcp_engine_fuzz (the format is described at the top of the .cpp)."""
    syn_opts = bytes([2, 4, 0x05, 0xB4, 1, 3, 3, 7])  # MSS 1460, NOP, window scale 7

    def seg(tuple_, flags, dseq=0, dack=0, window=0xFFFF, opts=b"", data=b"", big=0):
        assert len(data) < 0xC0 and big <= 64
        payload = bytes([0xBF + big]) + b"0123456789abcdef" if big else bytes([len(data)]) + data
        return (bytes([0, tuple_, flags, dseq & 0xFF, dack & 0xFF]) + struct.pack("!H", window) +
                bytes([len(opts)]) + opts + payload)

    process, accept = bytes([10]), bytes([2])

    def raw(frame):
        return bytes([1]) + struct.pack("!H", len(frame)) + frame

    def clock(b):
        return bytes([9, b])

    def write(sock, n16):
        return bytes([3, sock, n16 - 1])

    SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08
    v4_listener, v6_listener, forward0 = 0, 1, 0b01110  # bits: v6, guest port, destination
    handshake = seg(v4_listener, SYN, opts=syn_opts) + process + seg(v4_listener, ACK)
    return {
        "handshake_data_fin": bytes([0x03]) + handshake + seg(v4_listener, ACK | PSH, data=b"hello") + accept +
        write(0, 4) + process + seg(v4_listener, ACK) + bytes([4, 0]) + process + seg(v4_listener, FIN | ACK) +
        process + bytes([7, 0]),
        "handshake_v6_discard_path": bytes([0x07]) + seg(v6_listener, SYN, opts=syn_opts) + process +
        seg(v6_listener, ACK) + accept + write(0, 100) + process + clock(0x82) + seg(v6_listener, ACK, dack=-1) +
        process,
        "forward_syn_ack": bytes([0x03]) + bytes([8, 0]) + write(0, 2) + process +
        seg(forward0, SYN | ACK, opts=syn_opts) + process + seg(forward0, ACK | PSH, data=b"SSH-2.0-x\r\n") +
        write(0, 8) + process + seg(forward0, ACK) + bytes([6, 0]) + process + seg(forward0, FIN | ACK) + process,
        "guest_rst": bytes([0x03]) + handshake + seg(v4_listener, RST) + process,
        "host_rst_backpressure": bytes([0x0B]) + handshake + accept + bytes([11, 0, 40]) + write(0, 200) + process +
        bytes([11, 0xFF, 0xFF]) + process + seg(v4_listener, ACK, window=0) + write(0, 16) + process +
        bytes([11, 0, 0]) + bytes([5, 0]) + process + bytes([11, 0xFF, 0xFF]) + clock(0x81) + process,
        "forward_timeout": bytes([0x21]) + bytes([8, 1]) + process + clock(0xC5) + bytes([12]) + clock(0x82) +
        clock(0xC7) + clock(0xFF) + clock(0xFF),
        "raw_v4_options_v6_ext": bytes([0x03]) +
        raw(ipv4("10.0.2.15", "10.0.2.2", 6, tcp(40000, 0, SYN), options=b"\x01" * 4)) + process +
        seg(v4_listener, ACK) + raw(ipv6("fec0::5054:ff:fe12:3456", "fec0::2", 60, bytes([6, 0, 1, 4, 0, 0, 0, 0]) +
                                         tcp(40001, 0, SYN))) + process + accept + write(0, 1) + process,
        "guest_fills_host": bytes([0x03]) + handshake + accept + seg(v4_listener, ACK, big=64) * 30 +
        bytes([7, 0]) * 8 + process + seg(v4_listener, ACK, big=64) + bytes([7, 0]) * 8 + process,
        "table_full": bytes([0x00]) + seg(v4_listener, SYN) + seg(0b010, SYN) + seg(0b11000, SYN) + process +
        clock(0xBF),
    }


def netlink_seeds():
    """Datagrams of a NETLINK_ROUTE socket (host byte order, little-endian here), after the
    fuzz target's mode byte."""
    RTM_NEWADDR, RTM_DELADDR, NLMSG_DONE, NLMSG_ERROR = 20, 21, 3, 2
    IFA_ADDRESS, IFA_LOCAL = 1, 2

    def pad(b):
        return b + bytes(-len(b) % 4)

    def attr(t, payload):
        return pad(struct.pack("<HH", 4 + len(payload), t) + payload)

    def msg(t, body, seq=0, flags=0):
        return pad(struct.pack("<IHHII", 16 + len(body), t, flags, seq, 0) + body)

    def addr(t, family, a, ifindex=2, seq=0, flags=0):
        raw = v4(a) if family == 2 else v6(a)
        body = struct.pack("<BBBBI", family, 24 if family == 2 else 64, 0, 0, ifindex)
        body += attr(IFA_ADDRESS, raw) + (attr(IFA_LOCAL, raw) if family == 2 else b"")
        return msg(t, body, seq, flags)

    return {
        "notifications": b"\x00" + addr(RTM_NEWADDR, 2, "192.0.2.77") + addr(RTM_NEWADDR, 10, "2001:db8::77")
        + addr(RTM_DELADDR, 2, "192.0.2.77"),
        "dump": b"\x01" + addr(RTM_NEWADDR, 2, "192.0.2.2", 2, 1, 2) + addr(RTM_NEWADDR, 2, "127.0.0.1", 1, 1, 2)
        + msg(NLMSG_DONE, struct.pack("<i", 0), 1, 2),
        "dump_error": b"\x03" + msg(NLMSG_ERROR, struct.pack("<i", -16) + bytes(16), 1),
    }


def write(target, name, data):
    path = os.path.join(HERE, "corpus", target)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


def main():
    fr = frames()
    for name, data in fr.items():
        write("frame", name, data)
    write("dns", "query_a", dns_query(0x1234, "github.com", 1))
    write("dns", "query_aaaa_edns", dns_query(9, "raw.githubusercontent.com", 28, True))
    write("dns", "query_txt", dns_query(3, "_acme-challenge.example.com", 16))
    write("dns", "query_long", dns_query(4, ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]), 1))
    write("dns", "response_pointers", dns_response_with_pointers())
    stream = b"".join(struct.pack("!I", len(f)) + f for f in fr.values())
    write("deframer", "frames", b"\x05" + stream)
    write("deframer", "one_byte_steps", b"\x00" + stream[:400])
    write("deframer", "oversize", b"\x01" + struct.pack("!I", 70000) + bytes(64))

    def seq(mode, items):
        out = bytes([mode])
        for flags, f in items:
            out += bytes([flags]) + struct.pack("!H", len(f)) + f
        return out

    order = ["udp_dns_v4", "tcp_syn_v4", "tcp_ack_data_v4", "udp_dns_other_v4", "icmp_echo_v4",
             "host_loopback_v4", "udp_dns_v6", "tcp_syn_v6", "ipv4_fragment", "arp", "icmpv6_ns"]
    write("filter", "allowlist", seq(0, [(5, fr[n]) for n in order]))
    write("filter", "learn", seq(4, [(5, fr[n]) for n in order]))
    write("filter", "open", seq(1, [(5, fr[n]) for n in order]))
    write("filter", "host_forward", seq(0, [(0x85, ipv4("10.0.2.2", "10.0.2.15", 6, tcp(45000, 22, 0x02))),
                                            (1, ipv4("10.0.2.15", "10.0.2.2", 6, tcp(22, 45000, 0x12)))]))
    for name, data in tcp_engine_seeds().items():
        write("tcp_engine", name, data)
    for name, data in netlink_seeds().items():
        write("netlink_addr", name, data)
    write("filter", "dns_fail", seq(0, [(0x41, fr["udp_dns_v4"]), (0x40, fr["udp_dns_v6"])]))


if __name__ == "__main__":
    main()
