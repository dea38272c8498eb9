#!/usr/bin/env bash
# Boot time: `sbx up` to SSH-ready against its floor, a bare QEMU command on the same image,
# disk, seed, kernel command line and accelerator, in one run, alternated: odd repetitions run
# sbx first, even ones the bare QEMU first, so a busy machine's drift spreads over both.
#
#   tests/bench/boot_floor.sh [PROFILE] [REPEAT]     (default: profiles/work.toml, 5)
#   SBX_BIN   the sbx binary (default: build/release/sbx, else sbx on PATH)
#   SBX_HOME  where sbx keeps images and VMs (the image is built on first use)
#   OUT_DIR   boot_bench.dat, boot_bench_runs.dat, boot_bench.png (default: docs)
#
# The bare QEMU is the command `sbx plan PROFILE` prints, with one change: QEMU's own user-mode
# network, `-netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:PORT-:22`, in place of the
# stream socket to netd, and no QMP socket. It is polled with OpenSSH (BatchMode, the VM's key,
# its pinned host key, libssh's key exchange) every 0.2 s until `true` runs; sbx polls with
# libssh every 0.25 s.
# A warm-up `sbx up` first creates the disk, keys and seed and boots once (the first boot
# grows the filesystem); every measured boot after it reuses that disk. Each VM is stopped
# cleanly (sbx down; `sudo poweroff` for the bare one) so no boot replays a journal.
#
# The breakdown of each boot: the host side from the instance's events.jsonl (the
# supervisor's "start" event, its steps keys/seed/disk/network/qemu with "ms", "ready"); the
# guest side from the guest itself once it is up (dmesg's "Run /init as init process";
# systemd's UserspaceTimestampMonotonic; ssh.service's ActiveEnterTimestampMonotonic, i.e.
# sshd listening). The guest's clock starts near the kernel's start; it is placed on the
# host's clock by the serial log: the script watches serial.log (every 10 ms) and notes when
# its first line, which carries a kernel timestamp ("[    0.62] PCI: Fatal: No config space
# access function found" on microvm: sbx boots with `quiet`, so it is the only kernel line),
# arrives. The journal's own timestamps are not used: under TCG journald lags by a second or
# more. Phases (they add up to the total):
#   sbx:  cli (sbx up's start to the supervisor's first event), prepare (keys, seed, disk),
#         netd (spawn to its socket, until QEMU is spawned), QEMU spawn to the kernel's clock
#         start, kernel to /init, initrd to systemd, systemd to sshd listening, sshd listening
#         to the supervisor's "ready" (key exchange and login under TCG, the 0.25 s poll),
#         ready to `sbx up` exiting.
#   bare: the QEMU command's start to the kernel's clock start, the same guest phases, sshd
#         listening to OpenSSH's `true` returning.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
profile=${1:-$repo/profiles/work.toml}
repeat=${2:-5}
sbx=${SBX_BIN:-$repo/build/release/sbx}
[[ -x $sbx ]] || sbx=$(command -v sbx) || { echo "boot_floor: no sbx binary (build it, or set SBX_BIN)" >&2; exit 1; }
out=${OUT_DIR:-$repo/docs}
name=$(basename "$profile" .toml)
tmp=$(mktemp -d)
qpid=""

die() { echo "boot_floor: $*" >&2; exit 1; }
log() { echo "boot_floor: $*" >&2; }
ms() { date +%s%3N; }
[[ $repeat =~ ^[1-9][0-9]*$ ]] || die "usage: $0 [PROFILE] [REPEAT]"
for p in jq ssh gnuplot qemu-system-x86_64; do
    command -v "$p" >/dev/null || die "$p is not installed (scripts/install-deps.sh installs it)"
done

cleanup() {
    set +e
    if [[ -n $qpid ]]; then
        kill "$qpid" 2>/dev/null
        wait "$qpid" 2>/dev/null
    fi
    "$sbx" down --force "$name" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- warm-up: disk, keys, seed, the first boot ----
"$sbx" down --force "$name" >/dev/null 2>&1 || true
log "warm-up boot of $name ($profile)"
"$sbx" up "$profile" >"$tmp/warmup.log" 2>&1 || { tail -n 20 "$tmp/warmup.log" >&2; die "sbx up failed"; }
status=$("$sbx" status "$name" --json)
dir=$(jq -r .dir <<<"$status")
user=$(jq -r .ssh_user <<<"$status")
accel=$(jq -r '.accel // empty' <<<"$status")
[[ -d $dir ]] || die "no instance folder in: $status"
"$sbx" down "$name" >/dev/null

# ---- the bare QEMU command: sbx's plan, QEMU's own network, no QMP ----
bare_argv() { # PORT -> one word a line
    "$sbx" plan "$profile" | sed -n '/^# vm:/,$p' | sed '1d; s/ \\$//; s/^ *//' |
        xargs -n1 printf '%s\n' | awk -v port="$1" '
            skip { skip = 0; next }
            $0 == "-qmp" { skip = 1; next }
            prev == "-netdev" { print "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:" port "-:22"; prev = ""; next }
            { print; prev = $0 }'
}
bare_argv 2222 >"$tmp/bare.argv"
grep -q '^user,id=net0,restrict=on' "$tmp/bare.argv" || die "no -netdev in sbx plan's QEMU command"
grep -q 'stream\|qmp' "$tmp/bare.argv" && die "the bare command still has a stream or QMP socket"

# As sbx's libssh probe: a 10 s connect timeout (it covers the key exchange, which takes
# seconds under TCG while the guest boots) and curve25519 (OpenSSH's default, the hybrid
# sntrup761x25519, costs the guest more).
ssh_opts=(-q -o BatchMode=yes -o ConnectTimeout=10 -o KexAlgorithms=curve25519-sha256 -o StrictHostKeyChecking=yes
    -o UserKnownHostsFile="$tmp/known_hosts" -o IdentitiesOnly=yes -i "$dir/id_ed25519")

# The guest's view of its boot: "init_s userspace_us sshd_ready_us" (the kernel's clock).
guest_probe='
init=$(dmesg | sed -n "s/^\[ *\([0-9.]*\)\] Run \/init as init process.*/\1/p" | head -n 1)
us=$(systemctl show -p UserspaceTimestampMonotonic --value)
sshd=$(systemctl show ssh.service -p ActiveEnterTimestampMonotonic --value)
echo "${init:-nan} ${us:-nan} ${sshd:-nan}"'

# -> "kernel_ms initrd_ms systemd_to_sshd_ms sshd_ready_ms" (the last on the guest's clock)
guest_phases() {
    awk '{ if ($1 == "nan" || $2 == "nan" || $3 == "nan" || $3 == 0) { print "nan nan nan nan"; exit }
           init = $1 * 1000; us = $2 / 1000; sshd = $3 / 1000
           printf "%.0f %.0f %.0f %.0f\n", init, us - init, sshd - us, sshd }' <<<"$1"
}

# Waits (bounded) for FILE's first line with a kernel timestamp; writes "arrival_ms ts_ms" to
# OUT (nothing on timeout). Polls every 10 ms without forking (read -t on an idle fifo).
mkfifo "$tmp/tick"
watch_serial() { # FILE OUT
    local f=$1 o=$2 line now w k
    exec {w}<>"$tmp/tick"
    for ((k = 0; k < 30000; k++)); do
        if [[ -s $f ]]; then
            line=""
            IFS= read -r line <"$f" || true
            if [[ $line =~ ^\[\ *([0-9]+)\.([0-9]{3}) ]]; then
                now=${EPOCHREALTIME/./}
                echo "$((now / 1000)) $((10#${BASH_REMATCH[1]} * 1000 + 10#${BASH_REMATCH[2]}))" >"$o"
                return
            fi
        fi
        read -r -t 0.01 -u "$w" _ || true
    done
}
# The host time (ms) of the guest kernel clock's zero, from watch_serial's OUT; nan if none.
kernel_zero() { if [[ -s $1 ]]; then awk '{ printf "%.0f\n", $1 - $2 }' "$1"; else echo nan; fi; }

runs=$tmp/runs
: >"$runs"

# One `sbx up` to SSH-ready, then its breakdown. Appends a line to $runs.
run_sbx() {
    local i=$1 t0 t1 run ev wpid
    rm -f "$dir/serial.log" "$tmp/serial.first"
    watch_serial "$dir/serial.log" "$tmp/serial.first" &
    wpid=$!
    t0=$(ms)
    "$sbx" up "$profile" >"$tmp/up.log" 2>&1 || { tail -n 20 "$tmp/up.log" >&2; die "sbx up failed"; }
    t1=$(ms)
    wait "$wpid" || true
    run=$(jq -r 'select(.kind == "start") | .run' "$dir/events.jsonl" | tail -n 1)
    # start_t, netd's spawn, QEMU's spawn, QMP's wait, ready_t of this run
    ev=$(jq -rs --arg run "$run" '
        map(select(.run == $run)) as $e
        | def step(n): ($e | map(select(.kind == "step" and .step == n)) | .[0]);
        [($e | map(select(.kind == "start"))[0].t), (step("network").t - step("network").ms),
         (step("qemu").t - step("qemu").ms), step("qemu").ms,
         ($e | map(select(.kind == "ready"))[0].t)] | @tsv' "$dir/events.jsonl")
    local start net_t0 qemu_t0 qemu_ms ready
    read -r start net_t0 qemu_t0 qemu_ms ready <<<"$ev"
    local g kernel initrd systemd sshd k0
    g=$("$sbx" ssh "$name" -- sudo sh -c "$guest_probe" 2>/dev/null || echo "nan nan nan")
    read -r kernel initrd systemd sshd <<<"$(guest_phases "$g")"
    k0=$(kernel_zero "$tmp/serial.first")
    "$sbx" down "$name" >/dev/null
    awk -v i="$i" -v t0="$t0" -v t1="$t1" -v start="$start" -v net_t0="$net_t0" -v qemu_t0="$qemu_t0" \
        -v qemu_ms="$qemu_ms" -v ready="$ready" -v k0="$k0" -v kernel="$kernel" -v initrd="$initrd" \
        -v systemd="$systemd" -v sshd="$sshd" 'BEGIN {
        to_kernel = (k0 == "nan") ? "nan" : k0 - qemu_t0
        to_login = (k0 == "nan" || sshd == "nan") ? "nan" : ready - (k0 + sshd)
        printf "%d sbx %d %d %d %d %s %s %s %s %s %d %d\n", i, t1 - t0, start - t0, net_t0 - start,
            qemu_t0 - net_t0, to_kernel, kernel, initrd, systemd, to_login, t1 - ready, qemu_ms
    }' >>"$runs"
}

# The bare QEMU to SSH-ready, then the same guest-side breakdown.
run_bare() {
    local i=$1 port t0 t1 argv wpid
    port=$((20000 + RANDOM % 20000))
    mapfile -t argv < <(bare_argv "$port")
    printf '[127.0.0.1]:%s %s\n' "$port" "$(cat "$dir/ssh_host_ed25519_key.pub")" >"$tmp/known_hosts"
    rm -f "$dir/serial.log" "$tmp/serial.first"
    watch_serial "$dir/serial.log" "$tmp/serial.first" &
    wpid=$!
    t0=$(ms)
    "${argv[@]}" >"$tmp/qemu.log" 2>&1 &
    qpid=$!
    until ssh "${ssh_opts[@]}" -p "$port" "$user@127.0.0.1" true 2>/dev/null; do
        kill -0 "$qpid" 2>/dev/null || { cat "$tmp/qemu.log" >&2; die "the bare QEMU exited early"; }
        (($(ms) - t0 < 300000)) || die "the bare QEMU's guest did not answer SSH within 300 s"
        sleep 0.2
    done
    t1=$(ms)
    wait "$wpid" || true
    local g kernel initrd systemd sshd k0
    g=$(ssh "${ssh_opts[@]}" -p "$port" "$user@127.0.0.1" sudo sh -c "'$guest_probe'" 2>/dev/null || echo "nan nan nan")
    read -r kernel initrd systemd sshd <<<"$(guest_phases "$g")"
    k0=$(kernel_zero "$tmp/serial.first")
    ssh "${ssh_opts[@]}" -p "$port" "$user@127.0.0.1" sudo systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 300); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
    kill "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
    qpid=""
    awk -v i="$i" -v t0="$t0" -v t1="$t1" -v k0="$k0" -v kernel="$kernel" -v initrd="$initrd" \
        -v systemd="$systemd" -v sshd="$sshd" 'BEGIN {
        to_kernel = (k0 == "nan") ? "nan" : k0 - t0
        to_login = (k0 == "nan" || sshd == "nan") ? "nan" : t1 - (k0 + sshd)
        printf "%d bare %d 0 0 0 %s %s %s %s %s 0 nan\n", i, t1 - t0, to_kernel, kernel, initrd, systemd, to_login
    }' >>"$runs"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)
for i in $(seq "$repeat"); do
    if ((i % 2)); then order="sbx bare"; else order="bare sbx"; fi
    for what in $order; do
        "run_$what" "$i"
        tail -n 1 "$runs" | awk '{ printf "boot_floor: run %d %-4s %6d ms to ssh-ready\n", $1, $2, $3 }' >&2
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the data: every run, then median [min max] and the median of each phase ----
mkdir -p "$out"
columns="run config total_ms cli_ms prepare_ms netd_ms qemu_to_kernel_ms kernel_ms initrd_ms systemd_to_sshd_ms sshd_to_login_ms ready_to_exit_ms qmp_wait_ms"
{
    echo "# tests/bench/boot_floor.sh $(basename "$profile") $repeat: $(date -u +%Y-%m-%dT%H:%MZ), accel $accel, $(uname -r), $(nproc) CPUs, load $load_start at start, $load_end at end"
    echo "# $columns"
    cat "$runs"
} >"$out/boot_bench_runs.dat"
{
    echo "# tests/bench/boot_floor.sh $(basename "$profile") $repeat: $(date -u +%Y-%m-%dT%H:%MZ), accel $accel, $(uname -r), $(nproc) CPUs, load $load_start at start, $load_end at end, $(($(date +%s) - t_start)) s"
    echo "# ms: total median min max, then the median of each phase:"
    echo "# config total_med total_min total_max cli prepare netd qemu_to_kernel kernel initrd systemd_to_sshd sshd_to_login ready_to_exit qmp_wait"
    for c in sbx bare; do
        awk -v c="$c" '
            function med(col,   n, i, j, t, v) {
                n = 0
                for (i = 1; i <= rows; i++) { v = val[i, col]; if (v != "nan") a[++n] = v + 0 }
                for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
                if (n == 0) { lo = hi = "nan"; return "nan" }
                lo = a[1]; hi = a[n]
                return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            }
            $2 == c { rows++; for (k = 3; k <= 13; k++) val[rows, k] = $k }
            END {
                m = med(3)
                line = c " " m " " lo " " hi
                for (k = 4; k <= 13; k++) line = line " " med(k)
                print line
            }' "$runs"
    done
} >"$out/boot_bench.dat"

echo
awk '!/^#/ { printf "%-5s sbx up/bare QEMU to ssh-ready: median %5d ms [%d-%d]\n", $1, $2, $3, $4; m[$1] = $2 }
     END { if (m["bare"] > 0) printf "ratio sbx / bare: %.2f (target <= 1.1); sbx %s 8000 ms (target)\n", m["sbx"] / m["bare"], m["sbx"] <= 8000 ? "<=" : ">" }' \
    "$out/boot_bench.dat"
echo "median phases (ms):"
awk '!/^#/ { printf "  %-5s cli %s  prepare %s  netd %s  qemu->kernel %s  kernel %s  initrd %s  systemd->sshd %s  sshd->login %s  ready->exit %s\n",
     $1, $5, $6, $7, $8, $9, $10, $11, $12, $13 }' "$out/boot_bench.dat"

gnuplot <<EOF
set terminal pngcairo size 1200,420 font "sans,10"
set output "$out/boot_bench.png"
set title "Boot to SSH-ready under $accel: sbx up vs the bare QEMU floor (median of $repeat; $(nproc) CPUs, load $load_start)"
set style data histograms
set style histogram rowstacked
set style fill solid 0.85 border -1
set boxwidth 0.6
set key outside right top vertical
set grid ytics
set ylabel "ms"
set yrange [0:*]
plot "$out/boot_bench.dat" using 5:xtic(1) title "sbx CLI + supervisor start", \
     "" using 6 title "keys, seed, disk", \
     "" using 7 title "netd start", \
     "" using 8 title "QEMU spawn to kernel", \
     "" using 9 title "kernel to /init", \
     "" using 10 title "initrd to systemd", \
     "" using 11 title "systemd to sshd listening", \
     "" using 12 title "sshd listening to SSH ready", \
     "" using 13 title "ready to sbx up exit"
EOF
log "data: $out/boot_bench.dat, $out/boot_bench_runs.dat; plot: $out/boot_bench.png ($(($(date +%s) - t_start)) s)"
