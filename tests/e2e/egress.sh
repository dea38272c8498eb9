#!/usr/bin/env bash
# The egress filter in a real VM. sbx runs inside the "host" namespace of the netd harness
# (tests/integration/netns_harness.sh): its resolver configuration points at the harness's
# dnsmasq, and the harness's "internet" namespace holds nginx. From inside the guest: an
# allowed name works over IPv4 and IPv6, a denied name gets NXDOMAIN without the query
# reaching dnsmasq, a raw IP and a wrong port are refused at once, host loopback is closed;
# `sbx net log`, `sbx ls` and `sbx status` show the decisions; killing netd stops the VM.
source "$(dirname "$0")/lib.sh"
require_vm_tools
[ "$(id -u)" -eq 0 ] || skip "not root (network namespaces)"
[ -e /dev/net/tun ] || skip "no /dev/net/tun"
for t in ip dnsmasq nginx openssl; do
  command -v "$t" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
  command -v "$t" >/dev/null || skip "$t is not installed"
done
: "${SBX_NET_PROBE:?SBX_NET_PROBE must name the net_probe helper}"
harness=$SBX_SOURCE_DIR/tests/integration/netns_harness.sh

name=e2e-egress
id=sbxt-$$
work=$(mktemp -d)
cleanup() {
  local rc=$?
  [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || DUMP_EXEC="ip netns exec $id-host" dump_instance "$name"
  in_host "$SBX_BIN" down --force "$name" >/dev/null 2>&1 || true
  "$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true
  "$harness" down "$id" "$work/world" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
in_host() { ip netns exec "$id-host" "$@"; }
"$harness" sweep
"$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true

step "the world: dnsmasq and nginx in their own namespaces"
"$harness" up "$id" "$work/world" "$SBX_NET_PROBE"
# shellcheck disable=SC1091
source "$work/world/harness.env"

cat > "$work/$name.toml" <<'TOML'
[vm]
cpus = 1
memory = "768M"

[network]
allow = ["www.allowed.test:80"]
TOML

step "sbx up inside the host namespace"
in_host "$SBX_BIN" up "$work/$name.toml"
in_host "$SBX_BIN" plan "$work/$name.toml" | grep >/dev/null -- '-netdev stream,id=net0' ||
  fail "the plan does not give QEMU netd's stream socket"
gsh() { in_host "$SBX_BIN" ssh "$name" -- "$@"; }

step "an allowed name works, over IPv4 and IPv6"
body=$(gsh curl -sS -4 -m 20 http://www.allowed.test/)
[ "$body" = "sbx-netd-test-body" ] || fail "IPv4 fetch of www.allowed.test returned '$body'"
body=$(gsh curl -sS -6 -m 20 http://www.allowed.test/)
[ "$body" = "sbx-netd-test-body" ] || fail "IPv6 fetch of www.allowed.test returned '$body'"
gsh sh -c 'ip link show eth0' | grep >/dev/null 'mtu 65520' || fail "the guest's eth0 does not have MTU 65520"

step "a denied name: NXDOMAIN, and dnsmasq never sees the query"
out=$(gsh curl -sS -m 20 http://denied.test/ 2>&1) && fail "denied.test was fetched: $out"
echo "$out"
echo "$out" | grep >/dev/null "Could not resolve host" || fail "denied.test: expected a resolve failure, got: $out"
grep -q 'www.allowed.test' "$DNSMASQ_LOG" || fail "dnsmasq logged no query for the allowed name"
if grep -q 'denied.test' "$DNSMASQ_LOG"; then fail "the query for denied.test reached dnsmasq"; fi

step "a raw IP, a wrong port and host loopback are refused at once"
t0=$(date +%s%N)
expect_status 7 gsh curl -sS -m 20 http://198.51.100.81/
expect_status 7 gsh curl -sS -m 20 http://www.allowed.test:8080/
port=$(in_host "$SBX_BIN" status "$name" --json | sed -n 's/.*"ssh_port": \([0-9]*\).*/\1/p')
expect_status 7 gsh curl -sS -m 20 "http://10.0.2.2:$port/"
elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "three refusals (three ssh sessions) took ${elapsed} ms"
# curl's -m 20 would make a silent drop take a minute; a RST takes well under one.
[ "$elapsed" -lt 45000 ] || fail "refusals were not immediate (${elapsed} ms)"

step "sbx net log, sbx ls and sbx status show the decisions"
sleep 1.5  # netd writes its log and counters once a second
log=$("$SBX_BIN" net log "$name")
echo "$log"
echo "$log" | grep -E 'ALLOW +dns +www.allowed.test' >/dev/null || fail "net log has no allowed DNS answer"
echo "$log" | grep -E 'ALLOW +tcp +www.allowed.test +198.51.100.80:80' >/dev/null || fail "net log has no allowed flow"
echo "$log" | grep -E 'DENY +dns +denied.test' >/dev/null || fail "net log has no denied.test"
echo "$log" | grep -E 'DENY +tcp .*198.51.100.81:80 +not resolved' >/dev/null || fail "net log has no raw-IP denial"
echo "$log" | grep -E 'DENY +tcp +www.allowed.test +198.51.100.80:8080' >/dev/null || fail "net log has no wrong-port denial"
echo "$log" | grep -E "DENY +tcp .*10.0.2.2:$port +host loopback" >/dev/null || fail "net log has no host-loopback denial"
# The list that never rolls over: each denied destination once, with its count.
denied=$(echo "$log" | sed -n '/^denied destinations since netd started/,$p')
echo "$denied" | grep -E '^ +[1-9][0-9]*x +.*DENY +tcp .*198.51.100.81:80 +not resolved' >/dev/null ||
  fail "net log's denied destinations miss the raw IP"
echo "$denied" | grep -E '^ +[1-9][0-9]*x +.*DENY +dns +denied.test' >/dev/null ||
  fail "net log's denied destinations miss denied.test"
"$SBX_BIN" ls
"$SBX_BIN" ls | grep -E "^$name +running .* [1-9][0-9]*/[1-9][0-9]* *$" >/dev/null ||
  fail "sbx ls shows no allowed/denied counts"
"$SBX_BIN" status "$name" | grep -E '^egress: +[1-9][0-9]* allowed, [1-9][0-9]* denied' >/dev/null ||
  fail "sbx status shows no egress counts"

step "netd dies: the VM is stopped (fail closed) and sbx status says why"
netd=$("$SBX_BIN" status "$name" --json | sed -n 's/.*"netd_pid": \([0-9]*\).*/\1/p')
[ -n "$netd" ] && kill -0 "$netd" || fail "no live netd pid in sbx status --json"
kill -9 "$netd"
for _ in $(seq 100); do [ -z "$(qemu_pids "$name")" ] && break; sleep 0.1; done
[ -z "$(qemu_pids "$name")" ] || fail "QEMU still runs after netd died"
wait_failed "$name"
"$SBX_BIN" status "$name"
"$SBX_BIN" status "$name" | grep >/dev/null 'netd (the egress filter) was killed by signal 9' ||
  fail "sbx status does not say netd died"
echo "egress e2e: all good"
