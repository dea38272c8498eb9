# Shared helpers for the end-to-end scripts (sourced).
set -euo pipefail
# With pipefail, `producer | grep -q PATTERN` is a coin toss: grep -q exits at its first match,
# and a producer still writing then dies of SIGPIPE, failing the pipeline although the text
# was there (e2e.profile_features failed so). Tests write `| grep >/dev/null PATTERN`, which
# reads to the end.

: "${SBX_BIN:?SBX_BIN must name the sbx binary}"
: "${SBX_HOME:?SBX_HOME must be set}"
export SBX_HOME NO_COLOR=1

skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo; echo "=== $*"; }

sbx() { "$SBX_BIN" "$@"; }

# expect_status CODE CMD...: run CMD, fail unless it exits with CODE.
expect_status() {
  local want=$1; shift
  set +e
  "$@"
  local got=$?
  set -e
  [ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want"
}

# Every QEMU process of instance NAME (QEMU's process name is sbx-NAME).
qemu_pids() { pgrep -f -- "-name sbx-$1,process=sbx-$1" || true; }

# wait_failed NAME: the supervisor of NAME records "failed" within 10 s (it does so once QEMU,
# netd and the share servers are all stopped; QEMU goes first), else fail with its status.
wait_failed() {
  for _ in $(seq 100); do sbx status "$1" | grep -E '^status: +failed' >/dev/null && return 0; sleep 0.1; done
  fail "status is not failed: $(sbx status "$1")"
}

require_vm_tools() {
  command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
  command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed"
}

# dump_instance NAME: what a failed test needs to find its cause: the guest's own view (when
# SSH still works), the supervisor's log (netd's
# and QEMU's output tagged in it), the decision log, netd's counters and the serial console's
# last lines. Call it from an EXIT trap before the instance is removed.
dump_instance() {
  local dir=$SBX_HOME/vms/$1 f
  echo "--- instance $1 at failure ($dir)" >&2
  # The guest's side first, when SSH still works: its neighbours (a gateway it cannot resolve
  # fails a connect in ~3 s), routes, sockets and the counters that tell a RST from a lost
  # SYN. Then the host's logs, so that what netd wrote meanwhile is in them.
  echo "--- the guest's view" >&2
  timeout 30 ${DUMP_EXEC:-} "$SBX_BIN" ssh "$1" -- sh -c 'sudo -n journalctl -b -u systemd-networkd --no-pager 2>&1 | tail -n 15; sudo -n dmesg 2>&1 | tail -n 8; ip neigh; ip route; ip -6 addr show dev eth0; ip -6 route; ip link show eth0; ss -tan; nstat -az 2>/dev/null |
    grep -E "TcpActiveOpens|TcpAttemptFails|TcpOutRsts|TcpExtTCPSynRetrans|TcpExtTCPTimeouts|IpOutNoRoutes|IcmpInDestUnreachs"' >&2 2>&1 || true
  [ -f "$dir/net-stats.json" ] && { echo "--- net-stats.json" >&2; cat "$dir/net-stats.json" >&2; }
  for f in supervisor.log serial.log; do
    [ -f "$dir/$f" ] && { echo "--- $f (last 60 lines)" >&2; tail -n 60 "$dir/$f" >&2; }
  done
  "$SBX_BIN" net log "$1" 2>&1 | tail -n 40 >&2 || true
  "$SBX_BIN" status "$1" --json >&2 2>&1 || true
}
