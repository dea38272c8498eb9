#!/usr/bin/env bash
# Installs the Debian packages sbx needs to build, run and test. Safe to re-run: it only
# calls apt-get when something is missing. Uses sudo when not run as root.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config
  libcli11-dev libtomlplusplus-dev libspdlog-dev libfmt-dev libssh-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # wildcard host patterns: the Public Suffix List and libpsl to read it
  libpsl-dev publicsuffix
  # the egress filter (netd): host-side DNS, its own seccomp filter
  libc-ares-dev libseccomp-dev
  # fuzzing: clang with libFuzzer
  clang libfuzzer-14-dev libclang-rt-14-dev
  # run: QEMU, image building, disks
  qemu-system-x86 qemu-utils mmdebstrap e2fsprogs uidmap debian-archive-keyring
  # tests: a real sshd for the SSH integration tests, an OpenSSH client, process tools
  openssh-server openssh-client procps iproute2 netcat-openbsd
  # tests and benchmarks of the network path: real DNS/HTTP(S)/SOCKS servers in namespaces,
  # and the user-mode stacks sbx is compared with
  dnsmasq-base nginx-light microsocks curl openssl iperf3 slirp4netns passt gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
