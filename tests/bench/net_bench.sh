#!/usr/bin/env bash
# Network throughput and connection rate of sbx's egress filter (`sbx _netd`) and of the
# user-mode stacks it is compared with, measured in one run, configurations alternated round
# by round (the order rotates each round, so drift of a busy machine spreads over all):
#
#   netd-allow1000  sbx _netd, policy allowlist of 1001 name rules: r0..r999.bench.test, then
#                   bench.test (last, so a linear matcher would walk them all)
#   netd-open       sbx _netd, policy "open"
#   slirp-bess      slirp4netns --target-type=bess: libslirp behind a socket, where netd is
#   passt           passt on its unix socket (QEMU stream framing, as QEMU uses it)
#   slirp-tap       slirp4netns on the guest's tap itself (reference: no relay)
#   pasta-tap       pasta on a tap in a namespace it creates (reference: no relay)
#
# The four socket backends are reached through one relay, tests/bench/helpers/frame_relay.cpp,
# standing where QEMU stands. The world is tests/integration/netns_harness.sh: the "guest"
# namespace (tap0, 10.0.2.15), the "host" namespace where the backends run, the "internet"
# namespace with bench.test = 198.51.100.80 (nginx :80, iperf3 :5201) and dnsmasq. Per
# configuration and round: iperf3 upload (guest -> internet), download (iperf3 -R), and
# conn_rate (one connection after another: connect, HTTP GET, read to close). Before each test
# the guest resolves bench.test through the backend's DNS at 10.0.2.3 (netd only lets the guest
# reach addresses it resolved for it); pasta's namespace, which has no resolver of the harness,
# is given the address.
#
# Usage: tests/bench/net_bench.sh [ROUNDS] [SECONDS]      (root; default 3 rounds, 5 s tests)
#   BUILD_DIR  sbx and, under tests/, frame_relay, conn_rate, net_probe  (default: build/release)
#   OUT_DIR    net_bench.dat, net_bench_rounds.dat, net_bench.png  (default: docs)
#   CONFIGS    a subset, e.g. "netd-open passt"  (default: all six)
#   SETTLE     at most this many seconds netd-allow1000 idles after its tests, until the TCP engine has
#              freed the closed connections' sockets, before its RSS is read again (default 40)
#   KEEP=1     keep the run's folder (logs, configs) in /tmp/sbxt-PID
#
# passt and pasta do not run as root (started as root, they switch to "nobody"); they run as
# the system user sbxbench, created when missing and left in place (`userdel sbxbench`). pasta opens /dev/net/tun inside the user
# namespace it creates, so /dev/net/tun is mode 0666 during the run and restored on exit.
# Traffic stays in the namespaces this script creates (and their loopback).
set -euo pipefail

rounds=${1:-3}
secs=${2:-5}
settle=${SETTLE:-40}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$repo/build/release}
out=${OUT_DIR:-$repo/docs}
harness=$repo/tests/integration/netns_harness.sh
all_configs="netd-allow1000 netd-open slirp-bess passt slirp-tap pasta-tap"
configs=${CONFIGS:-$all_configs}
user=sbxbench
target=198.51.100.80 # bench.test
id=sbxt-$$
dir=/tmp/$id
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() { echo "net_bench: $*" >&2; exit 1; }
log() { echo "net_bench: $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, taps)"
[[ $rounds =~ ^[1-9][0-9]*$ && $secs =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [ROUNDS] [SECONDS]"
for p in ip iperf3 slirp4netns passt pasta dnsmasq nginx jq gnuplot setpriv nsenter useradd; do
    command -v "$p" >/dev/null || die "$p is not installed (scripts/install-deps.sh installs it)"
done
# sbx is at the top of the build folder, the test helpers under tests/.
bin() {
    local f
    for f in "$build/$1" "$build/tests/$1"; do
        [[ -x $f ]] && { echo "$f"; return; }
    done
    die "no $1 in $build: cmake --preset release && cmake --build --preset release"
}
sbx=$(bin sbx)
relay=$(bin frame_relay)
conn_rate=$(bin conn_rate)
probe=$(bin net_probe)
for c in $configs; do
    [[ " $all_configs " == *" $c "* ]] || die "unknown configuration $c (one of: $all_configs)"
done

inet=$id-inet host=$id-host guest=$id-guest
started=()     # pids of processes this script started (the harness tracks its own)
tun_mode=""    # /dev/net/tun's mode before the run, when this script changed it
backend_pid="" # the running backend (its RSS is read after its tests)
pasta_ns_pid=""

stop_pids() {
    local p
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
}

cleanup() {
    set +e
    [[ -n $pasta_ns_pid ]] && kill -9 "$pasta_ns_pid" 2>/dev/null
    ((${#started[@]})) && stop_pids "${started[@]}"
    bash "$harness" down "$id" "$dir" >/dev/null 2>&1
    [[ -n $tun_mode ]] && chmod "$tun_mode" /dev/net/tun
    if [[ ${KEEP:-0} == 1 ]]; then log "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the world ----
bash "$harness" sweep
bash "$harness" up "$id" "$dir" "$probe" >/dev/null
for _ in $(seq 50); do
    ip netns exec "$host" "$probe" tcp "$target" 5201 200 >/dev/null 2>&1 && break
    sleep 0.1
done
ip netns exec "$host" "$probe" tcp "$target" 5201 200 >/dev/null || die "no iperf3 server in $inet"

if ! id "$user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
    log "created the system user $user (for passt and pasta; userdel $user removes it)"
fi
if [[ " $configs " == *" pasta-tap "* ]]; then
    tun_mode=$(stat -c %a /dev/net/tun)
    if [[ $tun_mode == 666 ]]; then
        tun_mode=""
    else
        chmod 0666 /dev/net/tun
    fi
fi
mkdir -p "$dir/run" "$dir/user"
chown "$user:" "$dir/user"

# Waits (bounded) for a condition; on timeout shows LOG's tail and fails.
wait_until() {
    local what=$1 log_file=$2
    shift 2
    for _ in $(seq 100); do
        "$@" >/dev/null 2>&1 && return 0
        [[ -n $backend_pid ]] && ! kill -0 "$backend_pid" 2>/dev/null && break
        sleep 0.1
    done
    tail -n 20 "$log_file" >&2 2>/dev/null || true
    die "$what"
}

# ---- the rules ----
write_netd_config() {
    local mode=$1 path=$2 run=$3
    {
        printf '{ "socket": "%s", "decision_log": "%s", "stats": "%s",\n' \
            "$run/net.sock" "$run/net.jsonl" "$run/net-stats.json"
        printf '  "resolv_conf": "/etc/resolv.conf",\n'
        if [[ $mode == open ]]; then
            printf '  "policy": { "mode": "open" } }\n'
        else
            printf '  "policy": { "mode": "allowlist", "rules": [\n'
            for i in $(seq 0 999); do
                printf '    { "kind": "name", "name": "r%d.bench.test", "ports": [443], "protos": ["tcp"], "source": "r%d.bench.test:443" },\n' "$i" "$i"
            done
            printf '    { "kind": "name", "name": "bench.test", "ports": [80, 5201], "protos": ["tcp"], "source": "bench.test:80,5201" } ] } }\n'
        fi
    } >"$path"
    jq -e '.policy' "$path" >/dev/null || die "$path is not valid JSON"
}

# ---- backends: start_<config> RUN_DIR sets backend_pid, guest (how to run in the guest) ----
in_guest=()

start_relay() { # SOCKET FRAMING RUN_DIR
    ip netns exec "$guest" "$relay" --tap tap0 --socket "$1" --framing "$2" \
        >"$3/relay.log" 2>&1 &
    started+=($!)
}

start_netd() { # MODE RUN_DIR
    local run=$2
    write_netd_config "$1" "$run/netd.json" "$run"
    ip netns exec "$host" "$sbx" _netd --config "$run/netd.json" >"$run/netd.out" 2>"$run/netd.err" &
    backend_pid=$!
    started+=("$backend_pid")
    wait_until "netd did not become ready" "$run/netd.err" test -S "$run/net.sock"
    start_relay "$run/net.sock" stream "$run"
    wait_until "the relay did not connect to netd" "$run/netd.err" grep -q "guest connected" "$run/netd.err"
    in_guest=(ip netns exec "$guest")
}
start_netd-allow1000() { start_netd allowlist "$1"; }
start_netd-open() { start_netd open "$1"; }

start_slirp-bess() {
    local run=$1
    ip netns exec "$host" slirp4netns --target-type=bess --mtu 65520 "$run/bess.sock" >"$run/backend.log" 2>&1 &
    backend_pid=$!
    started+=("$backend_pid")
    wait_until "slirp4netns (bess) did not listen" "$run/backend.log" test -S "$run/bess.sock"
    start_relay "$run/bess.sock" seqpacket "$run"
    in_guest=(ip netns exec "$guest")
}

start_passt() {
    local run=$1 sock=$dir/user/passt.sock
    rm -f "$sock"
    ip netns exec "$host" setpriv --reuid="$user" --regid="$user" --clear-groups \
        passt --foreground --quiet --ipv4-only --socket "$sock" --mtu 65520 \
        --address 10.0.2.15 --netmask 24 --gateway 10.0.2.2 --dns-forward 10.0.2.3 \
        --tcp-ports none --udp-ports none >"$run/backend.log" 2>&1 &
    backend_pid=$!
    started+=("$backend_pid")
    wait_until "passt did not listen" "$run/backend.log" test -S "$sock"
    start_relay "$sock" stream "$run"
    in_guest=(ip netns exec "$guest")
}

start_slirp-tap() {
    local run=$1
    ip netns exec "$host" slirp4netns --netns-type=path --mtu 65520 "/run/netns/$guest" tap0 \
        >"$run/backend.log" 2>&1 &
    backend_pid=$!
    started+=("$backend_pid")
    wait_until "slirp4netns did not attach to tap0" "$run/backend.log" \
        sh -c "ip -n $guest link show tap0 | grep -q LOWER_UP"
    in_guest=(ip netns exec "$guest")
}

start_pasta-tap() {
    local run=$1
    ip netns exec "$host" setpriv --reuid="$user" --regid="$user" --clear-groups \
        pasta --foreground --quiet --ipv4-only --config-net --mtu 65520 \
        --tcp-ports none --udp-ports none --tcp-ns none --udp-ns none \
        -- sleep 100000 >"$run/backend.log" 2>&1 &
    backend_pid=$!
    started+=("$backend_pid")
    wait_until "pasta did not start its namespace" "$run/backend.log" pgrep -u "$user" -P "$backend_pid" -x sleep
    pasta_ns_pid=$(pgrep -u "$user" -P "$backend_pid" -x sleep)
    started+=("$pasta_ns_pid")
    in_guest=(nsenter --target "$pasta_ns_pid" --net)
    wait_until "pasta's namespace has no address" "$run/backend.log" \
        sh -c "nsenter --target $pasta_ns_pid --net ip -4 route show default | grep -q via"
}

stop_backend() {
    # pasta's command is PID 1 of its own PID namespace: it ignores SIGTERM.
    [[ -n $pasta_ns_pid ]] && { kill -9 "$pasta_ns_pid" 2>/dev/null || true; }
    ((${#started[@]})) && stop_pids "${started[@]}"
    started=()
    backend_pid="" pasta_ns_pid=""
}

# ---- one test each ----
resolve() { # CONFIG: the guest asks the backend's DNS for bench.test
    [[ $1 == pasta-tap ]] && return 0
    local got
    got=$("${in_guest[@]}" getent ahostsv4 bench.test 2>/dev/null | awk 'NR==1 {print $1}')
    [[ $got == "$target" ]] || { log "$1: bench.test resolved to '${got}' in the guest"; return 1; }
}

iperf() { # CONFIG RUN_DIR up|down -> Mbit/s or nan
    local c=$1 run=$2 dirn=$3 flag=() f
    [[ $dirn == down ]] && flag=(-R)
    f=$run/iperf3-$dirn.json
    resolve "$c" || { echo nan; return; }
    if timeout $((secs + 20)) "${in_guest[@]}" iperf3 --client "$target" --port 5201 --time "$secs" \
        --omit 1 --json "${flag[@]}" >"$f" 2>&1; then
        local stalled
        stalled=$(jq '[.intervals[].sum | select(.bits_per_second < 1e6)] | length' "$f")
        ((stalled == 0)) || log "$c: iperf3 $dirn: $stalled of its 1 s intervals moved under 1 Mbit/s (a stall)"
        jq -r '.end.sum_received.bits_per_second / 1e6 | . * 10 | round / 10' "$f"
    else
        log "$c: iperf3 $dirn failed: $(jq -r '.error // empty' "$f" 2>/dev/null || tail -n 3 "$f")"
        echo nan
    fi
}

conns() { # CONFIG RUN_DIR -> "rate p50_us" (nan nan on failure)
    local c=$1 run=$2 line
    resolve "$c" || { echo "nan nan"; return; }
    line=$(timeout $((secs + 20)) "${in_guest[@]}" "$conn_rate" "$target" 80 "$secs" bench.test 2>&1 || true)
    echo "$line" >"$run/conn_rate.txt"
    if [[ $line =~ ^conns\ ([0-9]+)\ errors\ ([0-9]+).*rate\ ([0-9.]+)\ p50_us\ ([0-9]+) ]]; then
        ((BASH_REMATCH[2] == 0)) || log "$c: conn_rate: ${BASH_REMATCH[2]} failed connections ($line)"
        echo "${BASH_REMATCH[3]} ${BASH_REMATCH[4]}"
    else
        log "$c: conn_rate failed: $line"
        echo "nan nan"
    fi
}

fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

rss_kib() { # PID -> "VmRSS VmHWM" in KiB
    awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} END {print (r ? r : "nan"), (h ? h : "nan")}' \
        "/proc/$1/status" 2>/dev/null || echo "nan nan"
}

# ---- the run ----
mkdir -p "$out"
rounds_file=$out/net_bench_rounds.dat
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)
{
    echo "# tests/bench/net_bench.sh $rounds $secs: $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs, load $load_start"
    echo "# backend VmRSS after the iperf3 tests, after the connection test, VmHWM then, and (netd-allow1000)"
    echo "# VmRSS once its fd count is back to where it was before the connection test (settled_s later, at most $settle)"
    echo "# round config upload_mbit download_mbit conn_per_s conn_p50_us rss_iperf_kib rss_conn_kib hwm_kib rss_settled_kib settled_s"
} >"$rounds_file"
read -r -a list <<<"$configs"
n=${#list[@]}
for r in $(seq "$rounds"); do
    for k in $(seq 0 $((n - 1))); do
        c=${list[$(((k + r - 1) % n))]}
        run=$dir/run/$r-$c
        mkdir -p "$run"
        ip -n "$guest" neigh flush dev tap0 2>/dev/null || true
        "start_$c" "$run"
        # The guest reaches the server (first ARP, first DNS answer) before anything is timed.
        resolve "$c" || true
        wait_until "$c: the guest cannot reach $target:80" "$run/backend.log" \
            "${in_guest[@]}" "$probe" tcp "$target" 80 1000
        up=$(iperf "$c" "$run" up)
        down=$(iperf "$c" "$run" down)
        read -r rss_iperf _ <<<"$(rss_kib "$backend_pid")"
        fds_before=$(fds "$backend_pid")
        read -r rate p50 <<<"$(conns "$c" "$run")"
        read -r rss_conn hwm <<<"$(rss_kib "$backend_pid")"
        rss_settled=nan settled_s=nan
        if [[ $c == netd-allow1000 ]] && ((settle > 0)); then
            # A closed connection's host socket goes once both FINs are acknowledged: wait
            # until netd holds no more fds than before the test, then read RSS again.
            for settled_s in $(seq 0 "$settle"); do
                (($(fds "$backend_pid") <= fds_before + 2)) && break
                sleep 1
            done
            read -r rss_settled _ <<<"$(rss_kib "$backend_pid")"
        fi
        echo "$r $c $up $down $rate $p50 $rss_iperf $rss_conn $hwm $rss_settled $settled_s" >>"$rounds_file"
        printf 'net_bench: round %d/%d %-15s up %7s  down %7s Mbit/s  %7s conn/s  RSS %s/%s/%s KiB\n' \
            "$r" "$rounds" "$c" "$up" "$down" "$rate" "$rss_iperf" "$rss_conn" "$rss_settled" >&2
        stop_backend
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- summary: median [min-max] over the rounds, NaN (a failed test) left out ----
summary=$out/net_bench.dat
{
    echo "# tests/bench/net_bench.sh $rounds $secs: $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs," \
        "load $load_start at start, $load_end at end, $(($(date +%s) - t_start)) s"
    echo "# median, min, max over $rounds rounds; memory: the backend's VmRSS (median) and VmHWM (max), KiB"
    echo "# config up_med up_min up_max down_med down_min down_max conn_med conn_min conn_max p50_us" \
        "rss_iperf rss_conn hwm_max rss_settled settled_s failed"
    for c in "${list[@]}"; do
        awk -v c="$c" '
            function stat(col, counted,   n, i, j, t, v) {
                n = 0
                for (i = 1; i <= rows; i++) { v = val[i, col]; if (v != "nan") { a[++n] = v + 0 } else if (counted) { failed++ } }
                for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
                if (n == 0) { med = "nan"; lo = "nan"; hi = "nan"; return }
                med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2; lo = a[1]; hi = a[n]
            }
            $1 !~ /^#/ && $2 == c { rows++; for (k = 3; k <= 11; k++) val[rows, k] = $k }
            END {
                failed = 0
                line = c
                stat(3, 1); line = line " " med " " lo " " hi
                stat(4, 1); line = line " " med " " lo " " hi
                stat(5, 1); line = line " " med " " lo " " hi
                stat(6, 0); line = line " " med
                stat(7, 0); line = line " " med
                stat(8, 0); line = line " " med
                stat(9, 0); line = line " " hi
                stat(10, 0); line = line " " med
                stat(11, 0); line = line " " med
                print line, failed
            }' "$rounds_file"
    done
} >"$summary"

# ---- the table, the ratios, the plot ----
mib() { awk -v v="$1" 'BEGIN { if (v == "nan") printf "-"; else printf "%.0f", v / 1024 }'; }
range() { printf '%.0f [%.0f-%.0f]' "$1" "$2" "$3"; }
echo
printf '%-15s %-20s %-20s %-18s %6s  %s\n' config "upload Mbit/s" "download Mbit/s" "conn/s" "p50 ms" \
    "RSS MiB: iperf3 / conn / peak / settled"
grep -v '^#' "$summary" | while read -r c um ul uh dm dl dh cm cl ch p50 ri rc hw rs _ failed; do
    printf '%-15s %-20s %-20s %-18s %6s  %s / %s / %s / %s%s\n' "$c" "$(range "$um" "$ul" "$uh")" \
        "$(range "$dm" "$dl" "$dh")" "$(range "$cm" "$cl" "$ch")" \
        "$(awk -v v="$p50" 'BEGIN { if (v == "nan") printf "-"; else printf "%.2f", v / 1000 }')" \
        "$(mib "$ri")" "$(mib "$rc")" "$(mib "$hw")" "$(mib "$rs")" \
        "$(if ((failed > 0)); then echo "  ($failed failed tests)"; fi)"
done
awk '$1 == "netd-allow1000" && $15 != "nan" {
    printf "netd-allow1000: the TCP engine had freed the closed connections after %.0f s (median); RSS then %.0f MiB\n", $16, $15 / 1024
}' "$summary"
echo
echo "ratios of medians (upload, download, conn/s); above 1: faster than the reference"
for a in netd-allow1000 netd-open; do
    for b in slirp-bess passt; do
        awk -v a="$a" -v b="$b" '
            $1 == a { for (i = 2; i <= 10; i++) x[i] = $i; hx = 1 }
            $1 == b { for (i = 2; i <= 10; i++) y[i] = $i; hy = 1 }
            function q(i) { return (x[i] == "nan" || y[i] == "nan" || y[i] == 0) ? "-" : sprintf("%.2f", x[i] / y[i]) }
            END { if (hx && hy) printf "  %-15s / %-11s %6s %6s %6s\n", a, b, q(2), q(5), q(8) }' "$summary"
    done
done
echo

gnuplot <<EOF
set terminal pngcairo size 1500,500 font "sans,10"
set output "$out/net_bench.png"
set multiplot layout 1,3 title "sbx netd vs passt and slirp4netns: median of $rounds rounds, bars min-max ($(nproc) CPUs, load $load_start)"
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30 nomirror
set grid ytics
set yrange [0:*]
set key below
set title "iperf3 throughput (Mbit/s)"
plot "$summary" using 2:3:4:xtic(1) title "upload (guest -> internet)", \
     "" using 5:6:7 title "download (internet -> guest)"
set title "connect + HTTP GET + close (connections/s)"
plot "$summary" using 8:9:10:xtic(1) title "conn/s" lc rgb "#4a7"
set title "backend memory (VmRSS MiB, median; log scale)"
set style histogram clustered gap 2
set logscale y
set yrange [1:*]
plot "$summary" using (\$12/1024):xtic(1) title "after iperf3", \
     "" using (\$13/1024) title "after the connection test"
unset multiplot
EOF
log "data: $summary, $rounds_file; plot: $out/net_bench.png ($(($(date +%s) - t_start)) s)"
