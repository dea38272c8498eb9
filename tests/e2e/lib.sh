# Shared helpers for the end-to-end scripts (sourced).
set -euo pipefail

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
