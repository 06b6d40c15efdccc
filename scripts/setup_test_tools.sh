#!/usr/bin/env bash
# Installs the Debian packages the tests use beyond Python's: the Cortex-M cross
# toolchain and QEMU for examples/cortex_m and tests/test_cortex_m.py
# (arm-none-eabi-gcc/g++ with newlib and libstdc++, qemu-system-arm), Debian's
# FlatBuffers headers (libflatbuffers-dev) for the FlatBuffers-version test in
# tests/test_cpp_unit.py, clang with libFuzzer's runtime for tests/test_fuzzing.py and
# benchmarks/fuzz.py, Valgrind for the checkpoint test that looks for uninitialised
# reads, and CMake and g++ for the C++ unit tests when missing.
# Quiet and non-interactive; does nothing when everything is there.
#   bash scripts/setup_test_tools.sh
set -euo pipefail
packages=()
if ! command -v arm-none-eabi-g++ >/dev/null; then
  packages+=(gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib)
fi
command -v qemu-system-arm >/dev/null || packages+=(qemu-system-arm)
[ -f /usr/include/flatbuffers/flatbuffers.h ] || packages+=(libflatbuffers-dev)
command -v cmake >/dev/null || packages+=(cmake)
command -v clang++ >/dev/null || packages+=(clang)
# libFuzzer's runtime for clang (the fuzz harnesses in micro_kernels/fuzz).
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 || packages+=(libclang-rt-14-dev)
command -v g++ >/dev/null || packages+=(g++)
command -v valgrind >/dev/null || packages+=(valgrind)
if [ "${#packages[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
arm-none-eabi-g++ --version | head -n 1
qemu-system-arm --version | head -n 1
grep -E "define FLATBUFFERS_VERSION_(MAJOR|MINOR|REVISION) " /usr/include/flatbuffers/base.h |
  awk '{printf "%s%s", sep, $3; sep="."} END {print " (libflatbuffers-dev)"}'
