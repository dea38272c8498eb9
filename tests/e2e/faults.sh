#!/usr/bin/env bash
# Lifecycle faults through the real CLI (issue 17): QEMU and netd killed with SIGKILL while a
# transfer runs through netd; `sbx down` while `sbx up` is still booting; two `sbx down` at
# once; `sbx rm --force` while starting; a full filesystem under SBX_HOME during `sbx up`.
# After each: the VM is stopped, `sbx status` says why, no process of it is left, and the
# next `sbx up` works.
source "$(dirname "$0")/lib.sh"
require_vm_tools
cd "$SBX_SOURCE_DIR"
work=$(mktemp -d)
name=e2e-faults
profile=$work/$name.toml
cp "$SBX_E2E_DIR/profiles/e2e-work.toml" "$profile"
small=
cleanup() {
  local rc=$?
  [ $rc -ne 0 ] && dump_instance "$name"
  "$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true
  for p in $(qemu_pids "$name"); do kill -9 "$p" 2>/dev/null || true; done
  if [ -n "$small" ]; then
    SBX_HOME=$small "$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true
    umount "$small" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
"$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true

# Every process of the instance: its supervisor, QEMU, netd (`sbx _netd` names the
# instance's folder).
instance_pids() {
  { pgrep -f -- "_supervise $name " || true; qemu_pids "$name"; pgrep -f -- "_netd .*vms/$name/" || true; } | sort -u
}
no_process_left() {
  for _ in $(seq 100); do [ -z "$(instance_pids)" ] && return 0; sleep 0.1; done
  fail "$1: processes of $name are left: $(instance_pids | xargs -r ps -o pid=,args= -p)"
}
status_says() {
  sbx status "$name"
  sbx status "$name" | grep >/dev/null -- "$1" || fail "sbx status does not say '$1'"
}
# wait_starting: waits until `sbx up` (run in the background) has a supervisor recorded as
# starting, and prints nothing; fails if the start got further or never came.
wait_starting() {
  for _ in $(seq 300); do
    sbx status "$name" --json 2>/dev/null | grep >/dev/null '"status": "starting"' && return 0
    sleep 0.05
  done
  fail "sbx up never showed $name as starting"
}

# A transfer through netd: `sbx ssh` goes through its forward. It must end (not hang) when
# the VM dies under it.
transfer_then_kill() {
  local what=$1 pid=$2 t
  sbx ssh "$name" -- sh -c 'exec cat /dev/zero' > /dev/null 2>"$work/ssh.err" & t=$!
  sleep 2
  kill -0 $t 2>/dev/null || fail "the transfer ended before $what was killed: $(cat "$work/ssh.err")"
  kill -9 "$pid"
  for _ in $(seq 150); do kill -0 $t 2>/dev/null || break; sleep 0.1; done
  if kill -0 $t 2>/dev/null; then kill -9 $t; fail "sbx ssh still runs 15 s after $what was killed"; fi
  local s=0; wait $t || s=$?
  [ $s -eq 255 ] || fail "sbx ssh exited $s, not 255 (SSH failed), when $what was killed under it"
  echo "sbx ssh ended with status $s after $what was killed"
}

# kill_during_transfer WHAT PID_FIELD SAYS: boots, kills the process in sbx status's
# PID_FIELD under a transfer, then checks the VM failed, its status SAYS why, nothing is left.
kill_during_transfer() {
  local what=$1 field=$2 says=$3 pid
  sbx up "$profile"
  pid=$(sbx status "$name" --json | sed -n "s/.*\"$field\": \([0-9]*\).*/\1/p")
  [ -n "$pid" ] && kill -0 "$pid" || fail "no live $field in sbx status --json"
  transfer_then_kill "$what" "$pid"
  wait_failed "$name"
  status_says "$says"
  no_process_left "after $what was killed"
}

step "QEMU killed during a transfer: the VM is stopped, status says why, nothing is left"
kill_during_transfer QEMU qemu_pid 'QEMU was killed by signal 9'

step "netd killed during a transfer: the same"
kill_during_transfer netd netd_pid 'netd (the egress filter) was killed by signal 9'

step "sbx down while sbx up is still booting"
sbx up "$profile" > "$work/up.log" 2>&1 & up=$!
wait_starting
sbx down "$name"
s=0; wait $up || s=$?
cat "$work/up.log"
[ $s -ne 0 ] || fail "sbx up exited 0 although the VM was stopped while it booted"
grep >/dev/null "stopped while starting" "$work/up.log" || fail "sbx up does not say the start was stopped"
sbx status "$name" | grep -E '^status: +stopped' >/dev/null || fail "not stopped: $(sbx status "$name")"
no_process_left "after a down during up"

step "sbx down at once after sbx up began (before its supervisor runs)"
sbx up "$profile" > "$work/up.log" 2>&1 & up=$!
lock=$SBX_HOME/vms/$name/up.lock
held=
for _ in $(seq 500); do [ -e "$lock" ] && ! flock -n -s "$lock" true && held=1 && break; sleep 0.01; done
[ -n "$held" ] || fail "sbx up never took its lock $lock"
sbx down "$name"
s=0; wait $up || s=$?
cat "$work/up.log"
[ $s -ne 0 ] || fail "sbx up exited 0 although sbx down ran while it started"
no_process_left "after an early down"

step "two sbx down at once"
sbx up "$profile"
sbx down "$name" > "$work/d1.log" 2>&1 & d1=$!
sbx down "$name" > "$work/d2.log" 2>&1 & d2=$!
s1=0; s2=0
wait $d1 || s1=$?
wait $d2 || s2=$?
cat "$work/d1.log" "$work/d2.log"
[ $s1 -eq 0 ] && [ $s2 -eq 0 ] || fail "two downs exited $s1 and $s2"
sbx status "$name" | grep -E '^status: +stopped' >/dev/null || fail "not stopped: $(sbx status "$name")"
grep >/dev/null "its supervisor had died" "$work/d1.log" "$work/d2.log" &&
  fail "a down took the other's clean stop for a dead supervisor"
no_process_left "after two downs"

step "sbx rm while starting: refused without --force; --force stops and removes it"
sbx up "$profile" > "$work/up.log" 2>&1 & up=$!
wait_starting
out=$(sbx rm "$name" 2>&1) && fail "sbx rm removed a starting VM without --force"
echo "$out"
echo "$out" | grep >/dev/null "is starting" || fail "sbx rm does not say the VM is starting"
sbx rm --force "$name"
s=0; wait $up || s=$?
cat "$work/up.log"
[ $s -ne 0 ] || fail "sbx up exited 0 although its VM was removed"
[ ! -e "$SBX_HOME/vms/$name" ] || fail "sbx rm --force left $SBX_HOME/vms/$name"
no_process_left "after rm --force while starting"
sbx up "$profile"
expect_status 0 sbx ssh "$name" -- true
sbx rm --force "$name"

step "the state folder's filesystem full during sbx up: a clear error, then a working sbx up"
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: a small tmpfs as SBX_HOME needs root to mount"
else
  small=$work/small
  mkdir -p "$small"
  mount -t tmpfs -o size=64m tmpfs "$small"
  mkdir -p "$small/images"
  # The image is read-only to sbx up; only the instance's own files land on the tmpfs.
  cp -rs "$SBX_HOME/images/debian-12" "$small/images/debian-12"
  for free in 0 4 64 1024 4096; do
    rm -f "$small/filler"
    avail=$(( $(stat -f -c '%a*%S' "$small") ))
    dd if=/dev/zero of="$small/filler" bs=1024 count=$(( avail / 1024 - free )) status=none 2>/dev/null || true
    echo "--- $free KiB free"
    s=0; out=$(SBX_HOME=$small timeout 120 "$SBX_BIN" up "$profile" 2>&1) || s=$?
    echo "$out"
    if [ $s -eq 0 ]; then
      SBX_HOME=$small "$SBX_BIN" down --force "$name"
      continue  # enough room after all; the next round has less
    fi
    [ $s -ne 124 ] || fail "sbx up hung on a full filesystem ($free KiB free)"
    echo "$out" | grep -i >/dev/null "no space left" || fail "sbx up on a full filesystem does not say so"
    for _ in $(seq 100); do [ -z "$(instance_pids)" ] && break; sleep 0.1; done
    [ -z "$(instance_pids)" ] || fail "processes left after a full-disk sbx up: $(instance_pids)"
  done
  rm -f "$small/filler"
  SBX_HOME=$small "$SBX_BIN" up "$profile"
  SBX_HOME=$small "$SBX_BIN" ssh "$name" -- true || fail "sbx ssh fails after the disk was freed"
  SBX_HOME=$small "$SBX_BIN" rm --force "$name"
fi
echo "faults e2e: all good"
