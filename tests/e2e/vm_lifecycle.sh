#!/usr/bin/env bash
# A VM's life through the real CLI: up, ssh (exit codes, output), isolation, ls, down,
# kill -9 of the supervisor, stale state and recovery, concurrent double up, rm.
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
