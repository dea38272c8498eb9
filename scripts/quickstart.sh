#!/usr/bin/env bash
# From a fresh Debian 12 machine to a shell command inside a VM:
# install packages, build sbx, install it on PATH, build the default image, start the
# `work` VM and run a command in it. Re-running is quick: every step skips done work.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

echo "quickstart: building sbx (release)"
cmake --preset release >/dev/null
cmake --build --preset release

if [ "$(id -u)" -eq 0 ]; then
  prefix=/usr/local
else
  prefix="$HOME/.local"
fi
echo "quickstart: installing sbx into $prefix"
cmake --install build/release --prefix "$prefix" >/dev/null
export PATH="$prefix/bin:$PATH"
if ! command -v sbx >/dev/null; then
  echo "quickstart: sbx is not on PATH; add $prefix/bin to PATH" >&2
  exit 1
fi
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "quickstart: note: add $prefix/bin to your PATH to use sbx in new shells" ;;
esac

# `sbx up` builds the image the profile names when it is missing, then boots the VM.
sbx up work
sbx ssh work -- sh -c 'echo "hello from $(hostname), kernel $(uname -r), user $(id -un)"'
echo "quickstart: done. Try: sbx ssh work   (and sbx down work when finished)"
