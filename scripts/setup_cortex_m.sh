#!/usr/bin/env bash
# Installs Debian's Cortex-M cross toolchain and QEMU for examples/cortex_m and
# tests/test_cortex_m.py: arm-none-eabi-gcc/g++ with newlib and libstdc++, and
# qemu-system-arm (machine mps2-an386). Quiet and non-interactive.
#   bash scripts/setup_cortex_m.sh
set -euo pipefail
if command -v arm-none-eabi-g++ >/dev/null && command -v qemu-system-arm >/dev/null; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm >/dev/null
arm-none-eabi-g++ --version | head -n 1
qemu-system-arm --version | head -n 1
