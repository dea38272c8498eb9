#!/usr/bin/env bash
# The daily verbs on a real VM: `sbx ssh-config` used by the real OpenSSH client, `sbx cp`
# both ways (content, modes, symlinks, errors), `sbx run --rm` leaving nothing behind
# (also when interrupted), then down and rm.
source "$(dirname "$0")/lib.sh"
require_vm_tools
command -v ssh >/dev/null || skip "no OpenSSH client (Debian package openssh-client)"
cd "$SBX_SOURCE_DIR"
profile="$SBX_E2E_DIR/profiles/e2e-daily.toml"
name=e2e-daily
work=$(mktemp -d)

leftovers() { ls "$SBX_HOME/vms" 2>/dev/null | grep "^$name-run-" || true; }
cleanup() {
  "$SBX_BIN" down --force "$name" >/dev/null 2>&1 || true
  for vm in $(leftovers); do "$SBX_BIN" rm --force "$vm" >/dev/null 2>&1 || true; done
  for p in $(qemu_pids "$name"); do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
"$SBX_BIN" rm --force "$name" >/dev/null 2>&1 || true
t0=$(date +%s)

step "up"
sbx up "$profile"

step "ssh-config with the real OpenSSH client"
sbx ssh-config "$name" > "$work/ssh.conf"
cat "$work/ssh.conf"
grep -qx "Host sbx-$name" "$work/ssh.conf" || fail "no Host sbx-$name block"
sbx ssh-config --all | grep >/dev/null -x "Host sbx-$name" || fail "ssh-config --all lacks sbx-$name"
ssh -F "$work/ssh.conf" -o BatchMode=yes "sbx-$name" true || fail "ssh sbx-$name true failed"
out=$(ssh -F "$work/ssh.conf" -o BatchMode=yes "sbx-$name" 'echo hello-$((6*7)); hostname; id -un')
[ "$out" = "$(printf 'hello-42\n%s\ntester' "$name")" ] || fail "ssh output was: $out"
# The host key is pinned: with an empty known_hosts OpenSSH must refuse to connect.
: > "$work/empty_known_hosts"
sed "s|UserKnownHostsFile .*|UserKnownHostsFile $work/empty_known_hosts|" "$work/ssh.conf" > "$work/ssh-unpinned.conf"
expect_status 255 ssh -F "$work/ssh-unpinned.conf" -o BatchMode=yes "sbx-$name" true

step "cp host -> guest -> host"
mkdir -p "$work/tree/sub" "$work/tree/empty"
printf 'hello from the host\n' > "$work/tree/hello.txt"
printf '#!/bin/sh\necho ran\n' > "$work/tree/sub/run.sh"
chmod 755 "$work/tree/sub/run.sh"
chmod 600 "$work/tree/hello.txt"
ln -s ../hello.txt "$work/tree/sub/link"
head -c 5000000 /dev/urandom > "$work/tree/big.bin"
sbx cp -r "$work/tree" "$name:copied"
[ "$(sbx ssh "$name" -- cat copied/hello.txt)" = "hello from the host" ] || fail "content differs in the guest"
[ "$(sbx ssh "$name" -- stat -c %a copied/sub/run.sh copied/hello.txt | tr '\n' ' ')" = "755 600 " ] \
  || fail "modes not kept in the guest"
[ "$(sbx ssh "$name" -- readlink copied/sub/link)" = "../hello.txt" ] || fail "symlink not kept in the guest"
[ "$(sbx ssh "$name" -- sh copied/sub/run.sh)" = "ran" ] || fail "script does not run in the guest"
guest_sum=$(sbx ssh "$name" -- sha256sum copied/big.bin | cut -d' ' -f1)
[ "$guest_sum" = "$(sha256sum "$work/tree/big.bin" | cut -d' ' -f1)" ] || fail "big.bin differs in the guest"
sbx cp -r "$name:copied" "$work/back"
diff -r --no-dereference "$work/tree" "$work/back" || fail "the round trip changed the tree"
[ "$(stat -c %a "$work/back/sub/run.sh")" = 755 ] || fail "modes not kept on the way back"
sbx cp "$name:/etc/hostname" "$work/hostname"
[ "$(cat "$work/hostname")" = "$name" ] || fail "guest /etc/hostname came back as '$(cat "$work/hostname")'"
expect_status 4 sbx cp "$name:/no/such/file" "$work/x"
expect_status 2 sbx cp "$name:copied" "$work/x"
expect_status 2 sbx cp "$work/tree/hello.txt" "$work/elsewhere"
[ ! -e "$work/x" ] || fail "a failed copy left $work/x"

step "down"
sbx down "$name"
expect_status 5 sbx ssh-config "$name"
expect_status 5 sbx cp "$work/tree/hello.txt" "$name:"

step "run --rm: a fresh VM, the command's status and output, nothing kept"
set +e
out=$(sbx run --rm "$profile" -- sh -c 'echo run-ok; hostname; exit 7')
status=$?
set -e
echo "$out"
[ $status -eq 7 ] || fail "sbx run --rm exited $status, expected the command's 7"
[ "$(echo "$out" | head -1)" = "run-ok" ] || fail "stdout of sbx run is not the command's: $out"
echo "$out" | sed -n 2p | grep >/dev/null "^$name-run-[0-9a-f]\{4\}$" || fail "ephemeral hostname: $out"
sbx ls | grep >/dev/null "$name-run-" && fail "sbx ls still shows the ephemeral instance"
[ -z "$(leftovers)" ] || fail "instance folders left: $(leftovers)"
[ -z "$(pgrep -f -- "process=sbx-$name-run-" || true)" ] || fail "qemu of the ephemeral instance still runs"

step "run --rm interrupted (SIGINT, as Ctrl-C) while the command runs"
# The binary itself (not the sbx shell function) is the background job, with SIGINT at its
# default: a shell starts background jobs with SIGINT ignored, and sbx keeps it ignored.
env --default-signal=INT "$SBX_BIN" run --rm "$profile" -- sleep 300 > "$work/run.out" 2> "$work/run.err" &
pid=$!
for _ in $(seq 600); do
  sbx ls 2>/dev/null | grep -Eq "^$name-run-[0-9a-f]{4} +running" && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.5
done
sbx ls | grep -Eq "^$name-run-[0-9a-f]{4} +running" || { cat "$work/run.err"; fail "the interrupted run never got to running"; }
sleep 2
kill -INT $pid
set +e
wait $pid
status=$?
set -e
cat "$work/run.err"
[ $status -eq 130 ] || fail "interrupted sbx run exited $status, expected 130"
[ -z "$(leftovers)" ] || fail "instance folders left after the interruption: $(leftovers)"
[ -z "$(pgrep -f -- "process=sbx-$name-run-" || true)" ] || fail "qemu still runs after the interruption"

step "rm"
sbx rm "$name"
expect_status 4 sbx status "$name"
echo "e2e daily_verbs: all checks passed in $(( $(date +%s) - t0 ))s"
