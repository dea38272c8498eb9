#include "net_frames.hpp"
#include "sbx/net/dns_codec.hpp"

#include <gtest/gtest.h>

#include <deque>

using namespace sbx::net;
using namespace sbx::test;

namespace {

// The parse keeps views into the message: keep every parsed message alive for the test.
DnsQueryParse parse(const Frame& f) {
    static std::deque<Frame> kept;
    kept.push_back(f);
    return parse_dns_query(kept.back());
}

std::vector<std::byte> respond(const DnsQuery& q, std::uint8_t rcode, std::vector<IpAddr> addrs, std::uint32_t ttl) {
    std::vector<std::byte> out(1024);
    DnsResponse r;
    r.id = q.id;
    r.rd = q.rd;
    r.question = q.question;
    r.rcode = rcode;
    r.qtype = q.qtype;
    r.addrs = addrs;
    r.ttl = ttl;
    out.resize(write_dns_response(out, r));
    return out;
}

}  // namespace

TEST(NetDns, ParsesAQuery) {
    Frame q = dns_query(0xbeef, "WWW.Example.COM", k_dns_type_aaaa, true);
    auto r = parse(q);
    ASSERT_EQ(r.status, DnsQueryStatus::ok);
    EXPECT_EQ(r.query.id, 0xbeef);
    EXPECT_TRUE(r.query.rd);
    EXPECT_EQ(r.query.qtype, k_dns_type_aaaa);
    EXPECT_EQ(r.query.qclass, k_dns_class_in);
    EXPECT_EQ(r.query.name_view(), "www.example.com");
    EXPECT_EQ(r.query.question.size(), 17u + 4u);
}

TEST(NetDns, RoundTripAWithPointer) {
    auto r = parse(dns_query(7, "api.github.com", k_dns_type_a));
    ASSERT_EQ(r.status, DnsQueryStatus::ok);
    std::vector<IpAddr> addrs = {ip("140.82.112.5"), ip("2001:db8::1"), ip("140.82.112.6")};
    auto msg = respond(r.query, dns_rcode::noerror, addrs, 300);
    ASSERT_FALSE(msg.empty());
    EXPECT_LT(msg.size(), k_dns_max_reply);
    auto v = parse_dns_response(msg);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->id, 7);
    EXPECT_TRUE(v->qr);
    EXPECT_TRUE(v->rd);
    EXPECT_TRUE(v->ra);
    EXPECT_EQ(v->rcode, dns_rcode::noerror);
    EXPECT_EQ(v->qname, "api.github.com");
    ASSERT_EQ(v->answers.size(), 2u);  // the IPv6 address is not an A record
    EXPECT_EQ(v->answers[0].addr, ip("140.82.112.5"));
    EXPECT_EQ(v->answers[1].addr, ip("140.82.112.6"));
    EXPECT_EQ(v->answers[0].ttl, 300u);
    // Each answer's owner is a pointer to offset 12 (the question).
    EXPECT_EQ(get16(msg, 12 + r.query.question.size()), 0xC00C);
}

TEST(NetDns, RoundTripAaaaCappedAndUnder512) {
    std::string name(63, 'a');
    name += "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." + std::string(61, 'd');
    ASSERT_EQ(name.size(), 253u);
    auto r = parse(dns_query(9, name, k_dns_type_aaaa));
    ASSERT_EQ(r.status, DnsQueryStatus::ok);
    std::vector<IpAddr> addrs;
    for (int i = 0; i < 20; ++i) {
        auto a = ip("2001:db8::1");
        a.bytes[15] = static_cast<std::uint8_t>(i);
        addrs.push_back(a);
    }
    auto msg = respond(r.query, dns_rcode::noerror, addrs, 60);
    EXPECT_LE(msg.size(), k_dns_max_reply);
    auto v = parse_dns_response(msg);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->qname, name);
    EXPECT_EQ(v->answers.size(), k_dns_max_answers);
}

TEST(NetDns, ErrorResponses) {
    auto r = parse(dns_query(3, "nope.example", k_dns_type_a));
    ASSERT_EQ(r.status, DnsQueryStatus::ok);
    for (std::uint8_t rcode : {dns_rcode::nxdomain, dns_rcode::servfail, dns_rcode::refused}) {
        auto v = parse_dns_response(respond(r.query, rcode, {ip("1.2.3.4")}, 5));
        ASSERT_TRUE(v);
        EXPECT_EQ(v->rcode, rcode);
        EXPECT_EQ(v->qdcount, 1);
        EXPECT_TRUE(v->answers.empty());
    }
    // NODATA: NOERROR without answers.
    auto nodata = parse_dns_response(respond(r.query, dns_rcode::noerror, {}, 5));
    ASSERT_TRUE(nodata);
    EXPECT_EQ(nodata->rcode, dns_rcode::noerror);
    EXPECT_TRUE(nodata->answers.empty());
    // FORMERR carries no question.
    std::vector<std::byte> out(64);
    DnsResponse fe;
    fe.id = 0x4444;
    fe.rcode = dns_rcode::formerr;
    out.resize(write_dns_response(out, fe));
    auto v = parse_dns_response(out);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->id, 0x4444);
    EXPECT_EQ(v->qdcount, 0);
    EXPECT_EQ(v->rcode, dns_rcode::formerr);
}

TEST(NetDns, TooSmallBufferWritesNothing) {
    auto r = parse(dns_query(3, "a.example", k_dns_type_a));
    std::vector<std::byte> out(20);
    DnsResponse resp;
    resp.question = r.query.question;
    EXPECT_EQ(write_dns_response(out, resp), 0u);
}

TEST(NetDns, MalformedQueries) {
    EXPECT_EQ(parse(Frame(11)).status, DnsQueryStatus::ignore);
    Frame response = dns_query(1, "a.b", 1);
    response[2] = std::byte{0x81};  // QR set
    EXPECT_EQ(parse(response).status, DnsQueryStatus::ignore);
    Frame opcode = dns_query(1, "a.b", 1);
    opcode[2] = std::byte{0x28};  // opcode 5 (UPDATE)
    EXPECT_EQ(parse(opcode).status, DnsQueryStatus::notimp);
    Frame two = dns_query(1, "a.b", 1);
    two[5] = std::byte{2};
    EXPECT_EQ(parse(two).status, DnsQueryStatus::formerr);
    Frame answers = dns_query(1, "a.b", 1);
    answers[7] = std::byte{1};
    EXPECT_EQ(parse(answers).status, DnsQueryStatus::formerr);
    Frame truncated = dns_query(1, "example.com", 1);
    for (std::size_t n = 12; n < truncated.size(); ++n) {
        EXPECT_EQ(parse(Frame(truncated.begin(), truncated.begin() + static_cast<std::ptrdiff_t>(n))).status,
                  DnsQueryStatus::formerr)
            << n;
    }
    // Characters outside hostnames.
    EXPECT_EQ(parse(dns_query(1, "a b.example", 1)).status, DnsQueryStatus::formerr);
    EXPECT_EQ(parse(dns_query(1, "*.example", 1)).status, DnsQueryStatus::formerr);
    Frame nul = dns_query(1, "ab.example", 1);
    nul[13] = std::byte{0};
    EXPECT_EQ(parse(nul).status, DnsQueryStatus::formerr);
    EXPECT_EQ(parse(dns_query(1, "_acme-challenge.example", 16)).status, DnsQueryStatus::ok);
}

TEST(NetDns, LongNamesAndLabels) {
    EXPECT_EQ(parse(dns_query(1, std::string(63, 'x') + ".com", 1)).status, DnsQueryStatus::ok);
    EXPECT_EQ(parse(dns_query(1, std::string(64, 'x') + ".com", 1)).status, DnsQueryStatus::formerr);
    std::string n253 = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                       std::string(61, 'd');
    EXPECT_EQ(parse(dns_query(1, n253, 1)).status, DnsQueryStatus::ok);
    EXPECT_EQ(parse(dns_query(1, n253 + "e", 1)).status, DnsQueryStatus::formerr);
    std::string many;
    for (int i = 0; i < 130; ++i) {
        many += "a.";
    }
    many += "com";
    EXPECT_EQ(parse(dns_query(1, many, 1)).status, DnsQueryStatus::formerr);
}

TEST(NetDns, CompressionPointersRejectedInQueries) {
    Frame q;
    put16(q, 1);
    put16(q, 0x0100);
    put16(q, 1);
    put16(q, 0);
    put16(q, 0);
    put16(q, 0);
    put8(q, 0xC0);
    put8(q, 12);  // points at itself
    put16(q, 1);
    put16(q, 1);
    EXPECT_EQ(parse(q).status, DnsQueryStatus::formerr);
}

TEST(NetDns, PointerLoopsEndInResponses) {
    // A response whose question name points at itself, and one with a two-pointer cycle.
    Frame self;
    put16(self, 1);
    put16(self, 0x8180);
    put16(self, 1);
    put16(self, 0);
    put16(self, 0);
    put16(self, 0);
    put8(self, 0xC0);
    put8(self, 12);
    put16(self, 1);
    put16(self, 1);
    EXPECT_FALSE(parse_dns_response(self));

    Frame cycle;
    put16(cycle, 1);
    put16(cycle, 0x8180);
    put16(cycle, 1);
    put16(cycle, 0);
    put16(cycle, 0);
    put16(cycle, 0);
    put8(cycle, 1);
    put8(cycle, 'a');
    put8(cycle, 0xC0);
    put8(cycle, 16);  // forward: to the pointer below
    put8(cycle, 0xC0);
    put8(cycle, 12);  // back to the start
    put16(cycle, 1);
    put16(cycle, 1);
    EXPECT_FALSE(parse_dns_response(cycle));

    std::string out;
    Frame ok;
    put8(ok, 3);
    for (char c : std::string("com")) put8(ok, static_cast<std::uint8_t>(c));
    put8(ok, 0);
    put8(ok, 7);
    for (char c : std::string("example")) put8(ok, static_cast<std::uint8_t>(c));
    put8(ok, 0xC0);
    put8(ok, 0);
    auto end = read_dns_name(ok, 5, out);
    ASSERT_TRUE(end);
    EXPECT_EQ(*end, ok.size());
    EXPECT_EQ(out, "example.com");
}
