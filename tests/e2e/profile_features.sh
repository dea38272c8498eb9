#!/usr/bin/env bash
# Profile features in a real VM: [[forward]] reaches a server in the guest, a port in use is
# a clear error, [provision] runs once after the first boot (again with --provision), and a
# failing step is reported by number.
source "$(dirname "$0")/lib.sh"
require_vm_tools
name=e2e-features
work=$(mktemp -d)
cleanup() {
  "$SBX_BIN" down --force "$name" >/dev/null 2>&1 || true
  "$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true
  [ -n "${holder:-}" ] && kill "$holder" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true

command -v nc >/dev/null || skip "nc (netcat-openbsd) is not installed"
free_port() {
  local p
  while :; do
    p=$(shuf -i 20000-40000 -n 1)
    [ -z "$(ss -Htln "sport = :$p")" ] && { echo "$p"; return; }
  done
}
fport=$(free_port)
cat > "$work/$name.toml" <<TOML
[vm]
cpus = 1
memory = "512M"
[ssh]
user = "tester"
[network]
policy = "none"
[[forward]]
host = $fport
guest = 22
[provision]
run = ["echo provisioned-once >> /var/tmp/sbx-provision.log", "id -u > /var/tmp/sbx-provision-uid"]
script = "setup.sh"
TOML
cat > "$work/setup.sh" <<'SH'
#!/bin/sh
echo "script ran as $(id -un)"
echo script >> /var/tmp/sbx-provision.log
SH

step "a forward port already in use stops sbx up with its name"
nc -lk 127.0.0.1 "$fport" </dev/null >/dev/null &
holder=$!
sleep 0.5
set +e
out=$("$SBX_BIN" up "$work/$name.toml" 2>&1); rc=$?
set -e
echo "$out"
[ $rc -eq 1 ] || fail "sbx up with a busy forward port exited $rc, expected 1"
echo "$out" | grep >/dev/null "forward\[0\]: 127.0.0.1:$fport (tcp) is already in use" || fail "no clear message for the busy port"
kill "$holder"; wait "$holder" 2>/dev/null || true; holder=

step "up: provisioning runs after the first boot, as root, output shown"
out=$(sbx up "$work/$name.toml" 2>&1) || { echo "$out"; fail "sbx up failed"; }
echo "$out"
echo "$out" | grep >/dev/null "provision.*\[1/3\] echo provisioned-once" || fail "provision step 1 not shown"
echo "$out" | grep >/dev/null "script ran as root" || fail "the provision script's output was not shown"
[ "$(sbx ssh "$name" -- cat /var/tmp/sbx-provision-uid)" = "0" ] || fail "provision did not run as root"

step "forward: host 127.0.0.1:$fport reaches the guest's sshd"
banner=$(timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$fport; head -c 7 <&3")
[ "$banner" = "SSH-2.0" ] || fail "forwarded port answered '$banner', expected an SSH banner"
sbx status "$name" | grep >/dev/null "forward: *tcp 127.0.0.1:$fport -> 22" || fail "sbx status does not list the forward"

step "a second up does not provision again; --provision does"
sbx up "$work/$name.toml" >/dev/null
[ "$(sbx ssh "$name" -- grep -c provisioned-once /var/tmp/sbx-provision.log)" = "1" ] || fail "provision ran twice"
sbx up --provision "$work/$name.toml" >/dev/null
[ "$(sbx ssh "$name" -- grep -c provisioned-once /var/tmp/sbx-provision.log)" = "2" ] || fail "--provision did not run it"

step "a failing step is reported with its number, and the next up retries"
sed -i 's|^run = .*|run = ["true", "echo about-to-fail; exit 7"]|' "$work/$name.toml"
set +e
out=$("$SBX_BIN" up --provision "$work/$name.toml" 2>&1); rc=$?
set -e
echo "$out"
[ $rc -eq 1 ] || fail "failing provision exited $rc, expected 1"
echo "$out" | grep >/dev/null "failed at step 2 of 3 (exit status 7): echo about-to-fail; exit 7" || fail "failing step not named"
echo "$out" | grep >/dev/null "about-to-fail" || fail "the failing step's output was not shown"
sed -i 's|^run = .*|run = ["true"]|' "$work/$name.toml"
out=$(sbx up "$work/$name.toml" 2>&1) || { echo "$out"; fail "retry failed"; }
echo "$out" | grep >/dev/null "provision.*2 steps done" || fail "the next up did not retry provisioning: $out"

step "down"
sbx down "$name"
echo "profile features: ok"
