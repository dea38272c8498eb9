#!/usr/bin/env bash
# Fixture: build debian-12-generic (Debian's generic kernel, which has 9p) once per build tree.
source "$(dirname "$0")/lib.sh"
require_vm_tools
cd "$SBX_SOURCE_DIR"
if sbx image ls | grep >/dev/null '^debian-12-generic '; then
  echo "image debian-12-generic already built in $SBX_HOME"
  exit 0
fi
start=$(date +%s)
sbx image build debian-12-generic
echo "image build took $(( $(date +%s) - start ))s"
sbx image ls | grep >/dev/null '^debian-12-generic ' || fail "sbx image ls does not list debian-12-generic after the build"
