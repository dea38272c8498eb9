#!/usr/bin/env bash
# Share throughput inside the guest, virtiofs against 9p, in one run on one VM:
#
#   tests/bench/share_bench.sh [ROUNDS]      (default 3; SBX_BIN, else build/release/sbx, else sbx on PATH)
#
# Boots one VM of image debian-12-generic (Debian's generic kernel: the cloud kernel has no
# 9p) with two rw shares of two empty host folders, one virtiofs and one 9p, then in the
# guest, as root, alternating the two and repeating: write 200 MiB (dd, fsync at the end),
# read it back after dropping the guest's caches, and create 10 000 small files. Prints the
# median [min-max] of each, and writes share_bench.dat and share_bench.png into OUT_DIR
# (default docs). The accel is what sbx picks (TCG on machines without KVM: the figures then
# say more about the ratio than the speed).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
out_dir=${OUT_DIR:-docs}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
sbx=${SBX_BIN:-build/release/sbx}
[ -x "$sbx" ] || sbx=$(command -v sbx || echo build/release/sbx)
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
out=$out_dir/share_bench.dat
mkdir -p "$out_dir"
{
  echo "# share_bench.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), accel $accel, $rounds rounds: median min max; $(nproc) CPUs, load $load_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at end"
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
gnuplot <<EOF
set terminal pngcairo size 1000,400 font "sans,10"
set output "$out_dir/share_bench.png"
set multiplot layout 1,2 title "Shares in the guest under $accel: virtiofs vs 9p (median of $rounds, bars min-max; $(nproc) CPUs, load $load_start)"
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key below
set title "200 MiB with dd (MiB/s)"
plot "$out" using 2:3:4:xtic(1) title "write + fsync", "" using 5:6:7 title "read (cold cache)"
set title "10 000 small files created (files/s)"
plot "$out" using 8:9:10:xtic(1) title "files/s" lc rgb "#4a7"
unset multiplot
EOF
echo "(accel $accel; data in $out, plot $out_dir/share_bench.png)"
