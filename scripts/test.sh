#!/usr/bin/env bash
# Installs what is needed, builds (ASan+UBSan, warnings as errors) and runs every test
# through ctest: unit, golden, integration (real sshd) and end-to-end (real VMs); then the
# network engine's libFuzzer targets (preset "fuzz", clang), each for a short fixed time.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

cmake --preset dev >/dev/null
cmake --build --preset dev
ctest --preset dev "$@"

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
ctest --preset fuzz
