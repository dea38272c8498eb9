// Google Benchmark for the egress filter's hot path (targets: <= 50 ns per frame on a
// flow-table hit, <= 1 us per new-flow decision with 10 000 rules, small tables).
// Built as sbx_filter_bench in Release/RelWithDebInfo builds only; not a ctest test.
//
//   cmake --preset release && cmake --build --preset release --target sbx_filter_bench
//   build/release/tests/sbx_filter_bench
//
// Every Filter here has the same 10 000 rules (big_policy). What each benchmark times:
//   BM_FlowTableHit        one frame of an established flow: parse, flow-table hit, verdict
//                          (Arg: 1 flow in the table, or 10 000 flows visited in turn)
//   BM_NewFlowDecision     the first frame (SYN) of a new flow: parse, miss, policy, insert
//   BM_DnsQueryAnswer      a query for an allowed name, then its answer (filter, pin, frame)
//   BM_DnsQueryNxdomain    a query for a name no rule lists (answered at once)
//   BM_MatcherBuild        compiling the 10 000 rules (once, at netd's start)
//   BM_TableMemory         a Filter with 10 000 pins and 10 000 flows: tables and RSS
//   BM_FlowTableMemory, BM_PinTableMemory: each table alone, 10 000 entries, default capacity
// tests/bench/run_all.sh runs it with --benchmark_out (JSON) and plots it.

#include "net_frames.hpp"
#include "sbx/net/filter.hpp"
#include "sbx/net/flow_table.hpp"
#include "sbx/net/matcher.hpp"
#include "sbx/net/pin_table.hpp"

#include <benchmark/benchmark.h>

#include <fstream>
#include <malloc.h>
#include <string>
#include <unistd.h>

using namespace sbx::net;
using namespace sbx::test;

namespace {

const IpAddr k_guest = ip("10.0.2.15");
const IpAddr k_dns = ip("10.0.2.3");

// 10 000 rules: 4 000 exact names, 4 000 wildcards, 2 000 CIDRs of assorted lengths.
Policy big_policy() {
    Policy p;
    for (int i = 0; i < 4000; ++i) {
        Rule r;
        r.kind = Rule::Kind::name;
        r.name = "host" + std::to_string(i) + ".example.org";
        r.ports = {443, 8443};
        p.rules.push_back(r);
        r.kind = Rule::Kind::suffix;
        r.name = "zone" + std::to_string(i) + ".example.net";
        p.rules.push_back(r);
    }
    for (int i = 0; i < 2000; ++i) {
        Rule r;
        r.kind = Rule::Kind::cidr;
        unsigned len = 16 + static_cast<unsigned>(i % 17);  // /16 ... /32
        std::uint32_t base = (0x2D000000u + static_cast<std::uint32_t>(i) * 0x10000u) & ~((1u << (32 - len)) - 1);
        if (len == 32) {
            base = 0x2D000000u + static_cast<std::uint32_t>(i) * 0x10000u;
        }
        r.cidr = Cidr{IpAddr::v4(base), static_cast<std::uint8_t>(96 + len)};
        r.ports = {22};
        p.rules.push_back(r);
    }
    return p;
}

Limits bench_limits() {
    Limits l;
    l.hash_seed = 1;
    l.dns_per_second = 1'000'000'000;
    l.replies_per_second = 1'000'000'000;
    return l;
}

// Resolves `name` to `addr` through the filter (pins it).
void pin(Filter& f, const std::string& name, const IpAddr& addr, Millis now) {
    auto r = f.on_guest_frame(udp_frame(k_guest, k_dns, 33000, 53, dns_query(1, name, 1)), now);
    if (r.kind == GuestFrameResult::Kind::dns_lookup) {
        std::array<IpAddr, 1> a = {addr};
        f.complete_dns(r.lookup.token, a, 3600, now);
    }
}

std::size_t rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

void set_port(Frame& f, std::size_t at, std::uint16_t port) {
    f[at] = static_cast<std::byte>(port >> 8);
    f[at + 1] = static_cast<std::byte>(port & 0xff);
}

// One TCP data segment of an established, allowed flow: parse + flow-table hit + verdict.
// Arg 1: the same flow every time (its slot stays in L1). Arg 10000: 10 000 established flows,
// visited in turn (the source port changes every frame), so the slot is rarely in L1.
void BM_FlowTableHit(benchmark::State& state) {
    Filter f(big_policy(), GuestNet{}, bench_limits());
    IpAddr dst = ip("198.51.100.7");
    pin(f, "host17.example.org", dst, 0);
    const auto flows = static_cast<std::uint32_t>(state.range(0));
    Frame seg = tcp_frame(k_guest, dst, 40000, 443, k_ack | k_psh, 1, 1, 1400);
    for (std::uint32_t i = 0; i < flows; ++i) {
        Frame syn = tcp_frame(k_guest, dst, static_cast<std::uint16_t>(20000 + i), 443);
        set_port(seg, 34, static_cast<std::uint16_t>(20000 + i));
        if (f.on_guest_frame(syn, 1).kind != GuestFrameResult::Kind::pass ||
            f.on_guest_frame(seg, 1).kind != GuestFrameResult::Kind::pass) {
            state.SkipWithError("flow not allowed");
            return;
        }
    }
    Millis now = 2;
    std::uint32_t n = 0;
    for (auto _ : state) {
        if (flows > 1) {
            set_port(seg, 34, static_cast<std::uint16_t>(20000 + n));
            n = n + 1 == flows ? 0 : n + 1;
        }
        auto r = f.on_guest_frame(seg, now);
        benchmark::DoNotOptimize(r);
    }
    if (f.counters().flows_allowed != flows || f.tables().flows != flows) {
        state.SkipWithError("a frame was decided again: not a flow-table hit");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * seg.size()));
    state.SetLabel(flows == 1 ? "1 flow" : std::to_string(flows) + " flows in turn");
}
BENCHMARK(BM_FlowTableHit)->Arg(1)->Arg(10000);

// The first packet of a new flow with 10 000 rules: pinned name, CIDR, and denied raw IP.
void BM_NewFlowDecision(benchmark::State& state) {
    Limits l = bench_limits();
    auto f = std::make_unique<Filter>(big_policy(), GuestNet{}, l);
    const int kind = static_cast<int>(state.range(0));
    IpAddr dst = kind == 0 ? ip("198.51.100.7") : kind == 1 ? ip("45.3.0.9") : ip("203.0.113.99");
    std::uint16_t dport = kind == 1 ? 22 : 443;
    pin(*f, "a.b.zone3999.example.net", dst, 0);
    Frame syn = tcp_frame(k_guest, dst, 1024, dport);
    std::uint32_t n = 0;
    for (auto _ : state) {
        // A fresh 5-tuple every time: the source port and the low bits of the source address.
        ++n;
        set_port(syn, 34, static_cast<std::uint16_t>(1024 + n % 60000));
        syn[29] = static_cast<std::byte>(n / 60000);
        auto r = f->on_guest_frame(syn, 1);
        benchmark::DoNotOptimize(r);
        if ((n & 0x3fff) == 0) {  // a fresh table before it fills: no evictions measured
            state.PauseTiming();
            f = std::make_unique<Filter>(big_policy(), GuestNet{}, l);
            pin(*f, "a.b.zone3999.example.net", dst, 0);
            state.ResumeTiming();
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.SetLabel(kind == 0 ? "pinned name, allowed" : kind == 1 ? "CIDR, allowed" : "raw IP, denied + RST");
}
BENCHMARK(BM_NewFlowDecision)->Arg(0)->Arg(1)->Arg(2);

// A DNS query: parse, policy, pending lookup, then the answer (rebinding check, pin, frame).
void BM_DnsQueryAnswer(benchmark::State& state) {
    Filter f(big_policy(), GuestNet{}, bench_limits());
    Frame q = udp_frame(k_guest, k_dns, 33000, 53, dns_query(7, "cdn.zone1234.example.net", 1));
    std::array<IpAddr, 2> addrs = {ip("198.51.100.8"), ip("198.51.100.9")};
    Millis now = 0;
    for (auto _ : state) {
        auto r = f.on_guest_frame(q, ++now);
        auto out = f.complete_dns(r.lookup.token, addrs, 300, now);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_DnsQueryAnswer);

void BM_DnsQueryNxdomain(benchmark::State& state) {
    Filter f(big_policy(), GuestNet{}, bench_limits());
    Frame q = udp_frame(k_guest, k_dns, 33000, 53, dns_query(7, "exfil.attacker.example", 1));
    Millis now = 0;
    for (auto _ : state) {
        auto r = f.on_guest_frame(q, ++now);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_DnsQueryNxdomain);

// Memory with 10 000 rules, 10 000 pinned addresses and 10 000 flows (the default limits).
void BM_TableMemory(benchmark::State& state) {
    for (auto _ : state) {
        std::size_t before = rss_bytes();
        auto f = std::make_unique<Filter>(big_policy(), GuestNet{}, bench_limits());
        for (std::uint32_t i = 0; i < 10000; ++i) {
            pin(*f, "host" + std::to_string(i % 4000) + ".example.org", IpAddr::v4(0xC6000000u + i), 0);
        }
        for (std::uint32_t i = 0; i < 10000; ++i) {
            Frame syn = tcp_frame(k_guest, IpAddr::v4(0xC6000000u + i), static_cast<std::uint16_t>(1024 + i), 443);
            f->on_guest_frame(syn, 1);
        }
        std::size_t after = rss_bytes();
        auto t = f->tables();
        state.counters["flows"] = static_cast<double>(t.flows);
        state.counters["pins"] = static_cast<double>(t.pins);
        state.counters["tables_MiB"] = static_cast<double>(t.memory_bytes) / (1 << 20);
        state.counters["rss_growth_MiB"] = static_cast<double>(after - before) / (1 << 20);
        state.counters["rss_total_MiB"] = static_cast<double>(after) / (1 << 20);
    }
}
BENCHMARK(BM_TableMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

// Compiling 10 000 rules into the matcher's index (netd does it once at start) and its size.
void BM_MatcherBuild(benchmark::State& state) {
    Policy p = big_policy();
    std::size_t bytes = 0;
    for (auto _ : state) {
        PolicyMatcher m(p.rules);
        bytes = m.memory_bytes();
        benchmark::DoNotOptimize(bytes);
    }
    state.counters["rules"] = static_cast<double>(p.rules.size());
    state.counters["matcher_MiB"] = static_cast<double>(bytes) / (1 << 20);
}
BENCHMARK(BM_MatcherBuild)->Unit(benchmark::kMillisecond);

// The flow table alone (default capacity 16384) holding 10 000 flows: its size and RSS growth.
void BM_FlowTableMemory(benchmark::State& state) {
    for (auto _ : state) {
        std::size_t before = rss_bytes();
        auto t = std::make_unique<FlowTable>(Limits{}.flows, 1);
        for (std::uint32_t i = 0; i < 10000; ++i) {
            FlowKey k{k_guest, IpAddr::v4(0xC6000000u + i), static_cast<std::uint16_t>(1024 + i), 443, 6};
            t->insert(k, 0, 0, 1);
        }
        std::size_t after = rss_bytes();
        state.counters["entries"] = static_cast<double>(t->size());
        state.counters["entry_bytes"] = static_cast<double>(sizeof(FlowEntry));
        state.counters["table_MiB"] = static_cast<double>(t->memory_bytes()) / (1 << 20);
        state.counters["rss_growth_MiB"] = static_cast<double>(after - before) / (1 << 20);
    }
}
BENCHMARK(BM_FlowTableMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

// The pin table alone (default capacity 16384) holding 10 000 pins of names ~20 bytes long.
void BM_PinTableMemory(benchmark::State& state) {
    for (auto _ : state) {
        std::size_t before = rss_bytes();
        auto t = std::make_unique<PinTable>(Limits{}.pins, 1);
        for (std::uint32_t i = 0; i < 10000; ++i) {
            t->pin(IpAddr::v4(0xC6000000u + i), "host" + std::to_string(i) + ".example.org", 3'600'000, 1);
        }
        std::size_t after = rss_bytes();
        state.counters["entries"] = static_cast<double>(t->size());
        state.counters["table_MiB"] = static_cast<double>(t->memory_bytes()) / (1 << 20);
        state.counters["rss_growth_MiB"] = static_cast<double>(after - before) / (1 << 20);
    }
}
BENCHMARK(BM_PinTableMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

// netd's allocator settings (run_netd): a fixed mmap threshold, so every table is a mapping of
// its own and the RSS growth figures above count its pages and nothing a freed one left.
int main(int argc, char** argv) {
    ::mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    ::mallopt(M_TRIM_THRESHOLD, 1 << 20);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
