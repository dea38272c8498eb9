#!/usr/bin/env bash
# netd's memory with a large policy and many flows, in the namespace world of net_bench.sh
# (tests/integration/netns_harness.sh): `sbx _netd` with an allowlist of COUNT name rules
# (n0.load.test .. nCOUNT-1.load.test, tcp/7777), a guest that resolves every name through netd
# (COUNT pins: each name has an address of its own, 45.0.x.y) and then opens one TCP
# connection to each and holds them all (COUNT flows in the filter, COUNT host sockets in the TCP engine).
#
#   tests/bench/netd_rss.sh [COUNT]          (root; default 10000)
#   BUILD_DIR  sbx and, under tests/, frame_relay, conn_hold, net_probe  (default: build/release)
#   OUT        the data file (default: docs/netd_rss.dat)
#   MTU        the guest link's MTU, netd's guest.mtu and the tap's (default 65520, sbx's)
#   SETTLE     at most this many seconds for the TCP engine to free the closed sockets (default 90)
#   KEEP=1     keep the run's folder in /tmp/sbxt-PID
#
# netd's VmRSS is read: after start (the rules compiled, the guest attached), after the pins,
# with every connection open, after the guest closed them all and the TCP engine freed its sockets
# (netd's fd count back to where it was), plus VmHWM. The guest's DNS queries are not capped
# here (limits.dns_per_second is raised: at the default 100/s, 10 000 names take 100 s); the
# tables' sizes are the defaults (16384 flows, 16384 pins).
#
# The world: a second dnsmasq on 198.51.100.54 in the "internet" namespace answers the COUNT
# names; 45.0.0.0/16 is routed to that namespace's loopback (a local route), where
# `conn_hold serve 7777` accepts and holds every connection. netd runs with the script's
# RLIMIT_NOFILE raised to COUNT + 1024 (netd sets its soft limit to twice its flow-table size + 256, within that).
set -euo pipefail

count=${1:-10000}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$repo/build/release}
out_file=${OUT:-$repo/docs/netd_rss.dat}
mtu=${MTU:-65520}
settle=${SETTLE:-90}
harness=$repo/tests/integration/netns_harness.sh
id=sbxt-$$
dir=/tmp/$id
port=7777
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() { echo "netd_rss: $*" >&2; exit 1; }
log() { echo "netd_rss: $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, taps)"
[[ $count =~ ^[1-9][0-9]*$ ]] && ((count <= 60000)) || die "usage: $0 [COUNT] (1 to 60000)"
for p in ip dnsmasq nginx jq; do
    command -v "$p" >/dev/null || die "$p is not installed (scripts/install-deps.sh installs it)"
done
bin() {
    local f
    for f in "$build/$1" "$build/tests/$1"; do
        [[ -x $f ]] && { echo "$f"; return; }
    done
    die "no $1 in $build: cmake --preset release && cmake --build --preset release"
}
sbx=$(bin sbx)
relay=$(bin frame_relay)
hold=$(bin conn_hold)
probe=$(bin net_probe)

inet=$id-inet host=$id-host guest=$id-guest
started=()
netd_pid="" client_pid=""

cleanup() {
    set +e
    local p
    for p in "${started[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${started[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    bash "$harness" down "$id" "$dir" >/dev/null 2>&1
    if [[ ${KEEP:-0} == 1 ]]; then log "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # WHAT SECONDS COMMAND...: bounded; fails with WHAT
    local what=$1 secs=$2
    shift 2
    for _ in $(seq $((secs * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        [[ -n $netd_pid ]] && ! kill -0 "$netd_pid" 2>/dev/null && { tail -n 20 "$dir/netd.err" >&2; die "netd exited"; }
        sleep 0.1
    done
    [[ -f $dir/netd.err ]] && tail -n 20 "$dir/netd.err" >&2
    die "$what"
}

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# ---- the world ----
bash "$harness" sweep
bash "$harness" up "$id" "$dir" "$probe" >/dev/null
ip -n "$guest" link set tap0 mtu "$mtu"
{
    for i in $(seq 0 $((count - 1))); do
        echo "45.0.$((1 + i / 250)).$((1 + i % 250)) n$i.load.test"
    done
} >"$dir/load.hosts"
ip -n "$inet" addr add 198.51.100.54/32 dev lo
ip -n "$inet" route add local 45.0.0.0/16 dev lo
ip netns exec "$inet" dnsmasq --no-daemon --no-resolv --no-hosts --addn-hosts="$dir/load.hosts" \
    --pid-file= --user=root --group=root --listen-address=198.51.100.54 --bind-interfaces \
    --port=53 --cache-size=0 >"$dir/dnsmasq-load.log" 2>&1 &
started+=($!)
ip netns exec "$inet" "$hold" serve "$port" >"$dir/serve.out" 2>&1 &
started+=($!)
echo "nameserver 198.51.100.54" >"$dir/resolv.conf"
wait_for "dnsmasq did not read $dir/load.hosts" 10 grep -q "load.hosts - $count names" "$dir/dnsmasq-load.log"
wait_for "dnsmasq does not listen on 198.51.100.54" 10 sh -c "ip netns exec $inet ss -lun | grep -q 198.51.100.54:53"
wait_for "conn_hold does not listen" 10 grep -q listening "$dir/serve.out"

# ---- netd: COUNT rules ----
{
    printf '{ "socket": "%s", "decision_log": "%s", "stats": "%s",\n' \
        "$dir/net.sock" "$dir/net.jsonl" "$dir/net-stats.json"
    printf '  "resolv_conf": "%s",\n' "$dir/resolv.conf"
    printf '  "limits": { "dns_per_second": 100000 },\n'
    printf '  "guest": { "mtu": %d },\n' "$mtu"
    printf '  "policy": { "mode": "allowlist", "rules": [\n'
    for i in $(seq 0 $((count - 1))); do
        ((i > 0)) && printf ',\n'
        printf '    { "kind": "name", "name": "n%d.load.test", "ports": [%d], "protos": ["tcp"], "source": "n%d.load.test:%d" }' \
            "$i" "$port" "$i" "$port"
    done
    printf ' ] } }\n'
} >"$dir/netd.json"
jq -e '.policy.rules | length' "$dir/netd.json" >/dev/null || die "$dir/netd.json is not valid JSON"

t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
(ulimit -n $((count + 1024)) && exec ip netns exec "$host" "$sbx" _netd --config "$dir/netd.json") \
    >"$dir/netd.out" 2>"$dir/netd.err" &
netd_pid=$!
started+=("$netd_pid")
wait_for "netd did not become ready" 30 test -S "$dir/net.sock"
ip netns exec "$guest" "$relay" --tap tap0 --socket "$dir/net.sock" --framing stream >"$dir/relay.log" 2>&1 &
started+=($!)
wait_for "the relay did not connect to netd" 10 grep -q "guest connected" "$dir/netd.err"
sleep 1
rss_start=$(rss "$netd_pid")
fds_start=$(fds "$netd_pid")
log "netd up: $count rules, VmRSS $rss_start KiB, $fds_start fds"

# ---- the guest: resolve every name, then open a connection to each ----
ip netns exec "$guest" "$hold" open "$count" "$port" "n%d.load.test" >"$dir/client.out" 2>&1 &
client_pid=$!
started+=("$client_pid")
wait_for "the guest did not resolve the names" 600 grep -q '^resolved' "$dir/client.out"
log "guest: $(grep '^resolved' "$dir/client.out")"
sleep 1.5 # a stats tick
rss_pins=$(rss "$netd_pid")
kill -USR1 "$client_pid"
wait_for "the guest did not open its connections" 600 grep -q '^connected' "$dir/client.out"
log "guest: $(grep '^connected' "$dir/client.out")"
sleep 1.5
rss_flows=$(rss "$netd_pid")
fds_flows=$(fds "$netd_pid")
stats_flows=$(jq -c '{flows_allowed, flows_denied, dns_allowed, flow_evictions, pin_evictions}' "$dir/net-stats.json" 2>/dev/null || echo '{}')
log "all open: VmRSS $rss_flows KiB, $fds_flows fds, $stats_flows"

# ---- the guest closes them all; the TCP engine frees its sockets ----
kill -TERM "$client_pid"
wait "$client_pid" 2>/dev/null || true
settled_s=nan
for s in $(seq 0 "$settle"); do
    n=$(fds "$netd_pid")
    if ((n <= fds_start + 2)); then settled_s=$s; break; fi
    ((s % 15 == 0)) && log "closing: $s s, netd has $n fds, VmRSS $(rss "$netd_pid") KiB, $(cpu_s "$netd_pid") s of CPU"
    sleep 1
done
tap_drops=$(ip -s -j -n "$guest" link show tap0 | jq -c '.[0].stats64 | {rx_dropped: .rx.dropped, tx_dropped: .tx.dropped}')
log "the guest's tap0 dropped: $tap_drops"
rss_closed=$(rss "$netd_pid")
fds_closed=$(fds "$netd_pid")
peak=$(hwm "$netd_pid")
log "closed: VmRSS $rss_closed KiB, $fds_closed fds, after ${settled_s} s; VmHWM $peak KiB"

read -r resolved rfail rsecs <<<"$(awk '/^resolved/ {print $2, $4, $6}' "$dir/client.out")"
read -r connected cfail csecs <<<"$(awk '/^connected/ {print $2, $4, $6}' "$dir/client.out")"
mkdir -p "$(dirname "$out_file")"
{
    echo "# MTU=$mtu tests/bench/netd_rss.sh $count: $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs, load $load_start, $(($(date +%s) - t_start)) s"
    echo "# netd (sbx _netd) VmRSS in KiB with $count name rules; guest: $resolved names resolved" \
        "($rfail failed, $rsecs s), $connected connections open ($cfail failed, $csecs s); netd stats then: $stats_flows"
    echo "# phase rss_kib netd_fds"
    echo "started $rss_start $fds_start"
    echo "pinned $rss_pins -"
    echo "open $rss_flows $fds_flows"
    echo "closed $rss_closed $fds_closed"
    echo "peak $peak -"
    echo "# the guest's tap0 dropped (frames): $tap_drops"
    echo "# closed: ${settled_s} s after the guest closed them (nan: netd still held more than $((fds_start + 2)) fds after $settle s)"
} >"$out_file"
awk -v n="$count" -v r="$resolved" -v c="$connected" -v a="$rss_start" -v p="$rss_pins" -v f="$rss_flows" \
    -v z="$rss_closed" -v h="$peak" 'BEGIN {
    printf "\nnetd with %d rules (MTU '"$mtu"'), VmRSS MiB: started %.1f, %d pins %.1f, %d flows open %.1f, closed %.1f, peak %.1f\n",
        n, a / 1024, r, p / 1024, c, f / 1024, z / 1024, h / 1024 }'
log "data: $out_file"
