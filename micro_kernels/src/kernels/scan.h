// Whole-tensor scans the trainer runs on every step, outside the layers: whether
// a sample is all finite (CheckSample) and the largest magnitude of an input or
// an error (the SGD overflow guard, optimizer.cc). The reference loops (the spec);
// kernels/fast/scan.h gives the same answers without a branch per element.
#ifndef TFLM_TRAIN_KERNELS_SCAN_H_
#define TFLM_TRAIN_KERNELS_SCAN_H_

#include <math.h>
#include <stddef.h>

#include "finite.h"

namespace tflm_train {
namespace kernels {

// Whether no v[i] is an Inf or a NaN.
inline bool AllFinite(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!IsFinite(v[i])) return false;
  }
  return true;
}

// The largest |v[i]| (0 when n is 0), compared as `!(a <= m)`: a NaN replaces the
// running maximum, and so does the element after it.
inline float MaxAbs(const float* v, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float a = fabsf(v[i]);
    if (!(a <= m)) m = a;
  }
  return m;
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_SCAN_H_
