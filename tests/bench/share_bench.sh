#!/usr/bin/env bash
# Share throughput inside the guest, virtiofs against 9p, in one run on one VM:
#
#   tests/bench/share_bench.sh [ROUNDS]      (default 3; needs a built sbx on PATH or SBX_BIN)
#
# Boots one VM of image debian-12-generic (Debian's generic kernel: the cloud kernel has no
# 9p) with two rw shares of two empty host folders, one virtiofs and one 9p, then in the
# guest, as root, alternating the two and repeating: write 200 MiB (dd, fsync at the end),
# read it back after dropping the guest's caches, and create 10 000 small files. Prints the
# median [min-max] of each, and writes docs/share_bench.dat. The accel is what sbx picks
# (TCG on machines without KVM: the figures then say more about the ratio than the speed).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
sbx=${SBX_BIN:-$(command -v sbx || echo build/release/sbx)}
[ -x "$sbx" ] || { echo "share_bench: no sbx binary (build it, or set SBX_BIN)" >&2; exit 1; }
name=sharebench
work=$(mktemp -d)
cleanup() {
  "$sbx" down --force "$name" >/dev/null 2>&1 || true
  "$sbx" rm --force "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/vfs" "$work/9p"
cat > "$work/$name.toml" <<TOML
[vm]
image = "debian-12-generic"
cpus = 2
memory = "2G"

[[share]]
host = "$work/vfs"
guest = "/mnt/virtiofs"

[[share]]
host = "$work/9p"
guest = "/mnt/9p"
type = "9p"
TOML
"$sbx" rm --force "$name" >/dev/null 2>&1 || true
"$sbx" up "$work/$name.toml"

# One measurement in the guest: prints seconds with millisecond precision.
measure() {
  local fs=$1 what=$2
  "$sbx" ssh "$name" -- sudo bash -c "
    set -e; d=/mnt/$fs; cd \$d
    t() { date +%s.%N; }
    case $what in
    write) rm -f big; s=\$(t); dd if=/dev/zero of=big bs=1M count=200 conv=fsync status=none; e=\$(t) ;;
    read) sync; echo 3 > /proc/sys/vm/drop_caches; s=\$(t); dd if=big of=/dev/null bs=1M status=none; e=\$(t) ;;
    small) rm -rf small; mkdir small; cd small; s=\$(t); for i in \$(seq 10000); do echo x > f\$i; done; sync; e=\$(t)
           cd ..; rm -rf small ;;
    esac
    echo \"\$s \$e\" | awk '{ printf \"%.3f\\n\", \$2 - \$1 }'"
}

declare -A results
for r in $(seq "$rounds"); do
  for fs in virtiofs 9p; do
    for what in write read small; do
      sec=$(measure "$fs" "$what")
      results[$fs.$what]+="$sec "
      echo "round $r: $fs $what ${sec}s"
    done
  done
done

stats() {  # seconds list -> "median min max"
  tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { printf "%s %s %s", a[int((NR + 1) / 2)], a[1], a[NR] }'
}
accel=$("$sbx" status "$name" --json | sed -n 's/.*"accel": "\([a-z]*\)".*/\1/p')
out=docs/share_bench.dat
{
  echo "# share_bench.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), accel $accel, $rounds rounds: median min max"
  echo "# fs write_MiBps(median min max) read_MiBps(median min max) small_files_per_s(median min max)"
} > "$out"
printf '\n%-9s %-26s %-26s %-26s\n' "share" "write 200 MiB (MiB/s)" "read 200 MiB (MiB/s)" "10 000 files (files/s)"
for fs in virtiofs 9p; do
  line="$fs"
  row=""
  for what in write read small; do
    read -r med min max <<<"$(echo "${results[$fs.$what]}" | stats)"
    scale=200
    [ "$what" = small ] && scale=10000
    # Rates: the fastest time is the highest rate.
    rmed=$(awk -v s="$scale" -v t="$med" 'BEGIN { printf "%.0f", s / t }')
    rmax=$(awk -v s="$scale" -v t="$min" 'BEGIN { printf "%.0f", s / t }')
    rmin=$(awk -v s="$scale" -v t="$max" 'BEGIN { printf "%.0f", s / t }')
    row+=$(printf '%-26s ' "$rmed [$rmin-$rmax]")
    line+=" $rmed $rmin $rmax"
  done
  printf '%-9s %s\n' "$fs" "$row"
  echo "$line" >> "$out"
done
echo "(accel $accel; data in $out)"
