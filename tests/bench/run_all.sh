#!/usr/bin/env bash
# Every benchmark of docs/performance.md in one run, with its data files and plots (root;
# about 20 minutes on 2 CPUs under TCG):
#
#   sudo tests/bench/run_all.sh
#
# In order: the filter's hot path (sbx_filter_bench), the network (net_bench.sh), netd's memory
# with 10 000 rules and 10 000 connections at sbx's MTU and at 1500 (netd_rss.sh), boot to
# SSH-ready against the bare QEMU floor (boot_floor.sh), shares (share_bench.sh). Then the
# targets table (bench_targets.dat). Everything goes to OUT_DIR:
#   filter_bench.dat/.png, net_bench.dat/_rounds.dat/.png, netd_rss.dat, netd_rss_mtu1500.dat,
#   netd_rss.png, boot_bench.dat/_runs.dat/.png, share_bench.dat/.png, bench_targets.dat
#
#   OUT_DIR    default docs
#   BUILD_DIR  default build/release, configured and built first (NO_BUILD=1: as it is)
#   SBX_HOME   images and VMs of the benchmarks (default build/benchhome: apart from yours;
#              the images debian-12 and debian-12-generic are built there on first use)
#   ONLY       a subset, e.g. "filter boot" (of: filter net rss boot share); ONLY=none only
#              rebuilds bench_targets.dat from the data files in OUT_DIR
#   NET_ROUNDS, NET_SECONDS (3, 5), BOOT_REPEAT (5), SHARE_ROUNDS (3)
#
# The packages are in scripts/install-deps.sh (iperf3, slirp4netns, passt, dnsmasq-base,
# nginx-light, gnuplot-nox, jq, libbenchmark-dev, QEMU, virtiofsd). The VMs run under
# whatever accelerator sbx picks (TCG where KVM is missing or unusable).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
out=$(mkdir -p "${OUT_DIR:-docs}" && cd "${OUT_DIR:-docs}" && pwd)
build=$(realpath -m "${BUILD_DIR:-build/release}")
export SBX_HOME=${SBX_HOME:-$repo/build/benchhome}
only=${ONLY:-filter net rss boot share}
bench=$repo/tests/bench

die() { echo "run_all: $*" >&2; exit 1; }
log() { echo "run_all: $(date +%H:%M:%S) $*" >&2; }
want() { [[ " $only " == *" $1 "* ]]; }

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces for net_bench.sh and netd_rss.sh)"
for p in gnuplot jq cmake; do
    command -v "$p" >/dev/null || die "$p is not installed (scripts/install-deps.sh installs it)"
done
if [[ ${NO_BUILD:-0} != 1 && $only != none ]]; then
    [[ $build == "$repo/build/release" ]] || die "BUILD_DIR other than build/release: build it yourself and set NO_BUILD=1"
    log "building (release preset)"
    cmake --preset release >/dev/null
    cmake --build --preset release --target sbx sbx_filter_bench frame_relay conn_rate conn_hold net_probe >/dev/null
fi
export SBX_BIN=$build/sbx
mkdir -p "$SBX_HOME"
t_start=$(date +%s)
log "load $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; results in $out; SBX_HOME=$SBX_HOME"

# ---- 1. the filter's hot path ----
if want filter; then
    log "filter_bench"
    json=$(mktemp)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    "$build/tests/sbx_filter_bench" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
        --benchmark_out="$json" --benchmark_out_format=json >/dev/null
    # CPU time (this thread's): on a busy machine wall time also counts the time other
    # processes had the CPU.
    {
        echo "# sbx_filter_bench, 5 repetitions, median; $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $load"
        echo "# what cpu_ns real_ns target_ns (index 0: per operation; index 1: memory, MiB)"
        jq -r '
            def short: {"BM_FlowTableHit/1": "hit:1-flow", "BM_FlowTableHit/10000": "hit:10k-flows",
                        "BM_NewFlowDecision/0": "new-flow:name", "BM_NewFlowDecision/1": "new-flow:CIDR",
                        "BM_NewFlowDecision/2": "new-flow:denied", "BM_DnsQueryAnswer": "DNS:query+answer",
                        "BM_DnsQueryNxdomain": "DNS:NXDOMAIN"}[.];
            def target: if startswith("BM_FlowTableHit") then 50 elif startswith("BM_NewFlowDecision") then 1000 else "nan" end;
            .benchmarks[] | select(.aggregate_name == "median") | select(.run_name | short != null)
            | "\(.run_name | short) \(.cpu_time | . * 10 | round / 10) \(.real_time | . * 10 | round / 10) \(.run_name | target)"' "$json"
        printf '\n\n# what MiB\n'
        jq -r '
            .benchmarks[] | select(.aggregate_name == "median")
            | if .run_name == "BM_TableMemory/iterations:1" then
                "filter:tables \(.tables_MiB)", "filter:RSS-growth \(.rss_growth_MiB)"
              elif .run_name == "BM_FlowTableMemory/iterations:1" then "flow-table:10k \(.rss_growth_MiB)"
              elif .run_name == "BM_PinTableMemory/iterations:1" then "pin-table:10k \(.rss_growth_MiB)"
              elif .run_name == "BM_MatcherBuild" then "matcher:10k-rules \(.matcher_MiB)"
              else empty end' "$json" | awk '{ printf "%s %.2f\n", $1, $2 }'
    } >"$out/filter_bench.dat"
    jq -r '.benchmarks[] | select(.aggregate_name == "median") | select(.run_name == "BM_MatcherBuild")
        | "# compiling 10 000 rules: \(.cpu_time | . * 100 | round / 100) \(.time_unit) CPU"' "$json" >>"$out/filter_bench.dat"
    rm -f "$json"
    gnuplot <<EOF
set terminal pngcairo size 1100,420 font "sans,10"
set output "$out/filter_bench.png"
set termoption noenhanced
set multiplot layout 1,2 title "sbx egress filter, 10 000 rules (sbx_filter_bench, median of 5; $(nproc) CPUs, load $load)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set xtics rotate by -30 nomirror
set key top left
set logscale y
set yrange [10:5000]
set ylabel "ns per operation"
set title "per frame / per decision"
plot "$out/filter_bench.dat" index 0 using 2:xtic(1) title "CPU time", \
     "" index 0 using 3 title "wall time", \
     "" index 0 using 4 title "target" lc rgb "#c33" fs solid 0.25
unset logscale y
set yrange [0:*]
set ylabel "MiB"
set title "memory"
plot "$out/filter_bench.dat" index 1 using 2:xtic(1) title "MiB" lc rgb "#4a7"
unset multiplot
EOF
fi

# ---- 2. the network ----
if want net; then
    log "net_bench (${NET_ROUNDS:-3} rounds of ${NET_SECONDS:-5} s)"
    BUILD_DIR=$build OUT_DIR=$out bash "$bench/net_bench.sh" "${NET_ROUNDS:-3}" "${NET_SECONDS:-5}"
fi

# ---- 3. netd's memory: 10 000 rules, pins and connections ----
if want rss; then
    log "netd_rss (MTU 65520, then 1500)"
    BUILD_DIR=$build OUT=$out/netd_rss.dat bash "$bench/netd_rss.sh" 10000
    BUILD_DIR=$build OUT=$out/netd_rss_mtu1500.dat MTU=1500 bash "$bench/netd_rss.sh" 10000
    gnuplot <<EOF
set terminal pngcairo size 900,420 font "sans,10"
set output "$out/netd_rss.png"
set termoption noenhanced
set title "netd VmRSS with 10 000 rules: 10 000 names resolved, then 10 000 TCP connections open, then closed"
set style data histograms
set style histogram clustered gap 2
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set logscale y
set yrange [4:2048]
set ylabel "MiB (log scale)"
set key top left
plot "$out/netd_rss.dat" using (\$2/1024):xtic(1) title "MTU 65520 (sbx)", \
     "$out/netd_rss_mtu1500.dat" using (\$2/1024) title "MTU 1500", \
     32 with lines lc rgb "#c33" lw 2 title "target 32 MiB"
EOF
fi

# ---- 4. boot ----
if want boot; then
    log "boot_floor (${BOOT_REPEAT:-5} of each)"
    OUT_DIR=$out bash "$bench/boot_floor.sh" "$repo/profiles/work.toml" "${BOOT_REPEAT:-5}"
fi

# ---- 5. shares ----
if want share; then
    log "share_bench (${SHARE_ROUNDS:-3} rounds)"
    OUT_DIR=$out bash "$bench/share_bench.sh" "${SHARE_ROUNDS:-3}"
fi

# ---- the targets ----
targets=$out/bench_targets.dat
val() { # FILE AWK-PROGRAM: one value or nan
    [[ -f $1 ]] && awk "$2" "$1" | head -n 1 | grep . || echo nan
}
hit1=$(val "$out/filter_bench.dat" '$1 == "hit:1-flow" { print $2 }')
hit10k=$(val "$out/filter_bench.dat" '$1 == "hit:10k-flows" { print $2 }')
newflow=$(val "$out/filter_bench.dat" '$1 ~ /^new-flow:/ { if ($2 > m) m = $2 } END { if (m) print m }')
rss_closed=$(val "$out/netd_rss.dat" '$1 == "closed" { printf "%.1f\n", $2 / 1024 }')
rss_open=$(val "$out/netd_rss.dat" '$1 == "open" { printf "%.1f\n", $2 / 1024 }')
boot_sbx=$(val "$out/boot_bench.dat" '$1 == "sbx" { print $2 }')
boot_bare=$(val "$out/boot_bench.dat" '$1 == "bare" { print $2 }')
net() { # CONFIG COLUMN
    val "$out/net_bench.dat" "\$1 == \"$1\" { print \$$2 }"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.3f\n", a / b }'; }
up_bess=$(ratio "$(net netd-allow1000 2)" "$(net slirp-bess 2)")
down_bess=$(ratio "$(net netd-allow1000 5)" "$(net slirp-bess 5)")
down_passt=$(ratio "$(net netd-allow1000 5)" "$(net passt 5)")
conn_bess=$(ratio "$(net netd-allow1000 8)" "$(net slirp-bess 8)")
boot_ratio=$(ratio "$boot_sbx" "$boot_bare")
{
    echo "# tests/bench/run_all.sh: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(($(date +%s) - t_start)) s"
    echo "# target measured limit better unit met"
    row() { # NAME VALUE LIMIT higher|lower UNIT
        awk -v n="$1" -v v="$2" -v l="$3" -v b="$4" -v u="$5" 'BEGIN {
            if (v == "nan") m = "-"; else if (b == "lower") m = (v + 0 <= l + 0) ? "met" : "missed"; else m = (v + 0 >= l + 0) ? "met" : "missed"
            printf "%-32s %10s %8s %-6s %-8s %s\n", n, v, l, b, u, m }'
    }
    row flow_hit_1_flow_cpu "$hit1" 50 lower ns
    row flow_hit_10k_flows_cpu "$hit10k" 50 lower ns
    row new_flow_10k_rules_cpu_worst "$newflow" 1000 lower ns
    row netd_rss_10k_rules_flows_closed "$rss_closed" 32 lower MiB
    row netd_rss_10k_connections_open "$rss_open" 32 lower MiB
    row boot_sbx_over_bare "$boot_ratio" 1.1 lower x
    row boot_sbx_tcg "$boot_sbx" 8000 lower ms
    row net_upload_vs_slirp_bess "$up_bess" 1.5 higher x
    row net_download_vs_slirp_bess "$down_bess" 1.5 higher x
    row net_download_vs_passt "$down_passt" 1.0 higher x
    row net_conn_rate_vs_slirp_bess "$conn_bess" 1.0 higher x
} >"$targets"
echo
sed 's/^/  /' "$targets"
log "done in $(($(date +%s) - t_start)) s; data and plots in $out"
