#!/usr/bin/env bash
# Installs what is needed, builds (ASan+UBSan, warnings as errors) and runs every test
# through ctest: unit, golden, integration (real sshd) and end-to-end (real VMs).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

cmake --preset dev >/dev/null
cmake --build --preset dev
ctest --preset dev "$@"
