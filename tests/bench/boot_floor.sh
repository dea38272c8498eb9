#!/usr/bin/env bash
# Boot time, in one run: `sbx up` to SSH-ready, against the floor, a bare QEMU command
# on the same image, overlay, seed and accelerator, polled with OpenSSH until it answers.
# Usage: tests/bench/boot_floor.sh [PROFILE] [REPEAT]   (default: work, 3)
# Needs a built sbx on PATH (or SBX_BIN) and the profile's image built.
set -euo pipefail
profile=${1:-work}
repeat=${2:-3}
sbx=${SBX_BIN:-sbx}
name=$(basename "$profile" .toml)

ms() { date +%s%3N; }

"$sbx" down --force "$name" >/dev/null 2>&1 || true
# One warm-up start creates the disk, keys and seed, and applies the seed once.
"$sbx" up "$profile" >/dev/null
dir=$("$sbx" status "$name" --json | sed -n 's/.*"dir": "\(.*\)".*/\1/p')
"$sbx" down --force "$name" >/dev/null

for i in $(seq "$repeat"); do
  t0=$(ms)
  "$sbx" up "$profile" >/dev/null
  t1=$(ms)
  echo "sbx up to ssh-ready        run $i: $((t1 - t0)) ms"
  user=$("$sbx" status "$name" --json | sed -n 's/.*"ssh_user": "\(.*\)".*/\1/p')
  "$sbx" down --force "$name" >/dev/null

  # The same QEMU command sbx runs (from its plan), minus QMP and the sandbox flags'
  # effect on nothing; on a fixed port, polled with OpenSSH.
  port=$(( 20000 + RANDOM % 20000 ))
  mapfile -t argv < <("$sbx" plan "$profile" | sed -n '/^qemu-system/,$p' | sed 's/ \\$//; s/^ *//' |
    sed "s/hostfwd=tcp:127.0.0.1:0-:22/hostfwd=tcp:127.0.0.1:$port-:22/" | xargs -n1 printf '%s\n' | grep -v -- '-qmp\|qmp.sock')
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cat "$dir/ssh_host_ed25519_key.pub")" > "$dir/known_hosts.bench"
  t0=$(ms)
  "${argv[@]}" >/dev/null 2>&1 &
  qpid=$!
  until ssh -q -o BatchMode=yes -o ConnectTimeout=2 -o StrictHostKeyChecking=yes \
      -o UserKnownHostsFile="$dir/known_hosts.bench" -o IdentitiesOnly=yes -i "$dir/id_ed25519" \
      -p "$port" "$user@127.0.0.1" true 2>/dev/null; do
    kill -0 $qpid 2>/dev/null || { echo "bare qemu exited early"; exit 1; }
    sleep 0.2
  done
  t1=$(ms)
  echo "bare qemu to ssh-ready     run $i: $((t1 - t0)) ms"
  kill $qpid; wait $qpid 2>/dev/null || true
  rm -f "$dir/known_hosts.bench"
done
