#!/usr/bin/env bash
# Fixture: build the default image once per build tree through the real CLI.
source "$(dirname "$0")/lib.sh"
require_vm_tools
cd "$SBX_SOURCE_DIR"
if sbx image ls | grep >/dev/null '^debian-12 '; then
  echo "image debian-12 already built in $SBX_HOME"
  sbx image ls
  exit 0
fi
start=$(date +%s)
sbx image build debian-12
echo "image build took $(( $(date +%s) - start ))s"
sbx image ls | grep >/dev/null '^debian-12 ' || fail "sbx image ls does not list debian-12 after the build"
