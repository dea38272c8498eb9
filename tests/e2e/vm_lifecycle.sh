#!/usr/bin/env bash
# A VM's life through the real CLI: up, ssh (exit codes, output), isolation, netd's privileges,
# ls, down, kill -9 of the supervisor, stale state and recovery, concurrent double up, rm.
source "$(dirname "$0")/lib.sh"
require_vm_tools
cd "$SBX_SOURCE_DIR"
profile="$SBX_E2E_DIR/profiles/e2e-work.toml"
name=e2e-work

cleanup() {
  "$SBX_BIN" down --force "$name" >/dev/null 2>&1 || true
  for p in $(qemu_pids "$name"); do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
"$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true

step "up"
start=$(date +%s%N)
sbx up "$profile"
echo "sbx up to ssh-ready: $(( ($(date +%s%N) - start) / 1000000 )) ms"

step "ssh: exit codes and output pass through"
expect_status 0 sbx ssh "$name" -- true
expect_status 3 sbx ssh "$name" -- sh -c 'exit 3'
out=$(sbx ssh "$name" -- hostname)
[ "$out" = "$name" ] || fail "guest hostname is '$out', expected '$name'"
err=$(sbx ssh "$name" -- sh -c 'echo to-stderr >&2' 2>&1 >/dev/null)
[ "$err" = "to-stderr" ] || fail "stderr did not pass through: '$err'"
echo "stdin-works" | sbx ssh "$name" -- cat | grep >/dev/null -x stdin-works || fail "stdin did not pass through"
user=$(sbx ssh "$name" -- id -un)
[ "$user" = "tester" ] || fail "logged in as '$user', expected tester"

step "ls shows running"
sbx ls
sbx ls | grep -E "^$name +running " >/dev/null || fail "sbx ls does not show $name running"
sbx ls --json | grep >/dev/null '"status": "running"' || fail "sbx ls --json does not show running"
sbx status "$name"

step "netd runs with no capabilities, no new privileges and its seccomp filter; as nobody when sbx is root"
dir=$SBX_HOME/vms/$name
netd=$(sbx status "$name" --json | sed -n 's/.*"netd_pid": \([0-9]*\).*/\1/p')
[ -n "$netd" ] && [ -r "/proc/$netd/status" ] || fail "no live netd pid in sbx status --json"
grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs|Seccomp):' "/proc/$netd/status"
proc_field() { sed -n "s/^$1:[[:space:]]*//p" "/proc/$netd/status"; }
[ "$(proc_field NoNewPrivs)" = 1 ] || fail "netd has no NoNewPrivs"
[ "$(proc_field Seccomp)" = 2 ] || fail "netd has no seccomp filter (Seccomp: $(proc_field Seccomp))"
for set in CapEff CapPrm; do
  [ "$(proc_field $set)" = 0000000000000000 ] || fail "netd's $set is $(proc_field $set)"
done
if [ "$(id -u)" -eq 0 ]; then
  for set in CapInh CapBnd CapAmb; do
    [ "$(proc_field $set)" = 0000000000000000 ] || fail "netd's $set is $(proc_field $set)"
  done
  for id in $(proc_field Uid) $(proc_field Gid); do
    [ "$id" -ne 0 ] || fail "netd runs with uid or gid 0: Uid $(proc_field Uid), Gid $(proc_field Gid)"
  done
  [ -z "$(proc_field Groups)" ] || fail "netd kept supplementary groups: $(proc_field Groups)"
  # It still writes its stats and log, through descriptors it opened as root: the files keep
  # their owner (sbx status, sbx net log and sbx rm read and remove them as root).
  stats_updated() { sed -n 's/.*"updated_ms":\([0-9]*\).*/\1/p' "$dir/net-stats.json"; }
  before=$(stats_updated)
  sbx ssh "$name" -- true
  sleep 1.5  # netd rewrites its counters about once a second
  [ "$(stats_updated)" -gt "$before" ] || fail "netd's net-stats.json is not rewritten after the drop"
  for f in net-stats.json net.jsonl; do
    [ "$(stat -c %u "$dir/$f")" = 0 ] || fail "$f is owned by uid $(stat -c %u "$dir/$f"), not root"
  done
else
  echo "skipped: netd's drop from root to nobody (sbx does not run as root; a user's netd keeps the user's uid)"
fi

step "the guest reaches nothing outside"
port=$(sbx status "$name" --json | sed -n 's/.*"ssh_port": \([0-9]*\).*/\1/p')
[ -n "$port" ] || fail "no ssh port in sbx status --json"
# The host's SSH forward listens on 127.0.0.1:$port; through 10.0.2.2 the guest would reach
# it if host loopback were open. netd must refuse (host_loopback).
expect_status 1 sbx ssh "$name" -- sh -c "timeout 5 bash -c 'echo > /dev/tcp/10.0.2.2/$port' 2>/dev/null && exit 0 || exit 1"
expect_status 1 sbx ssh "$name" -- sh -c "timeout 5 bash -c 'echo > /dev/tcp/10.0.2.2/22' 2>/dev/null && exit 0 || exit 1"

step "down"
sbx down "$name"
sbx ls | grep -E "^$name +stopped " >/dev/null || fail "sbx ls does not show $name stopped"
[ -z "$(qemu_pids "$name")" ] || fail "qemu still runs after sbx down"
expect_status 5 sbx ssh "$name" -- true

step "kill -9 of the supervisor leaves no QEMU behind"
sbx up "$profile"
sup=$(sbx status "$name" --json | sed -n 's/.*"supervisor_pid": \([0-9]*\).*/\1/p')
[ -n "$(qemu_pids "$name")" ] || fail "no qemu process while running"
kill -9 "$sup"
for _ in $(seq 50); do [ -z "$(qemu_pids "$name")" ] && break; sleep 0.2; done
[ -z "$(qemu_pids "$name")" ] || fail "qemu survived kill -9 of its supervisor"
sbx ls
sbx ls | grep -E "^$name +stale " >/dev/null || fail "sbx ls does not show $name as stale"

step "up recovers a stale instance"
sbx up "$profile"
expect_status 0 sbx ssh "$name" -- true
sbx down --force "$name"

step "two sbx up at once start one VM"
logs=$(mktemp -d)
sbx up "$profile" > "$logs/up1.log" 2>&1 & p1=$!
sbx up "$profile" > "$logs/up2.log" 2>&1 & p2=$!
s1=0; s2=0
wait $p1 || s1=$?
wait $p2 || s2=$?
cat "$logs/up1.log" "$logs/up2.log"
rm -rf "$logs"
[ $s1 -eq 0 ] && [ $s2 -eq 0 ] || fail "concurrent ups exited $s1 and $s2"
n=$(qemu_pids "$name" | wc -l)
[ "$n" -eq 1 ] || fail "$n qemu processes after a concurrent double up"
expect_status 0 sbx ssh "$name" -- true

step "rm"
expect_status 1 sbx rm "$name"
sbx rm --force "$name"
[ -z "$(qemu_pids "$name")" ] || fail "qemu still runs after rm --force"
expect_status 4 sbx status "$name"
echo "e2e vm_lifecycle: all checks passed"
