// Elementwise ADD, SUB and MUL on one sample, of two activations of one shape or
// of an activation and a constant broadcast along the last axis (rows x depth,
// the constant holding `depth` values: a bias or a per-channel scale).
#ifndef TFLM_TRAIN_KERNELS_ELEMENTWISE_H_
#define TFLM_TRAIN_KERNELS_ELEMENTWISE_H_

#include <stdint.h>

#include "kernels/activations.h"

namespace tflm_train {
namespace kernels {

// y = act(a + sign_b * b), two activations of n elements.
inline void AddScaled(const float* a, const float* b, float sign_b, int32_t n, FusedAct act, float* y) {
  for (int32_t i = 0; i < n; ++i) y[i] = ApplyFusedAct(act, a[i] + sign_b * b[i]);
}

// y[r, j] = act(sign_x * x[r, j] + sign_c * c[j]): x + c, x - c or c - x.
inline void AddConstant(const float* x, float sign_x, const float* c, float sign_c, int32_t rows, int32_t depth,
                        FusedAct act, float* y) {
  for (int32_t r = 0; r < rows; ++r) {
    for (int32_t j = 0; j < depth; ++j) {
      y[r * depth + j] = ApplyFusedAct(act, sign_x * x[r * depth + j] + sign_c * c[j]);
    }
  }
}

// y[r, j] = act(x[r, j] * c[j]).
inline void MulConstant(const float* x, const float* c, int32_t rows, int32_t depth, FusedAct act, float* y) {
  for (int32_t r = 0; r < rows; ++r) {
    for (int32_t j = 0; j < depth; ++j) y[r * depth + j] = ApplyFusedAct(act, x[r * depth + j] * c[j]);
  }
}

// ADD/SUB's input gradient: dx[i] += sign * dy[i] (sign -1 for a subtracted operand).
inline void AddInputGrad(const float* dy, float sign, int32_t n, float* dx) {
  for (int32_t i = 0; i < n; ++i) dx[i] += sign * dy[i];
}

// dx[r, j] += dy[r, j] * c[j]: MUL's input gradient.
inline void MulConstantInputGrad(const float* dy, const float* c, int32_t rows, int32_t depth, float* dx) {
  for (int32_t r = 0; r < rows; ++r) {
    for (int32_t j = 0; j < depth; ++j) dx[r * depth + j] += dy[r * depth + j] * c[j];
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_ELEMENTWISE_H_
