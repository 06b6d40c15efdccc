// FULLY_CONNECTED on one sample and its two gradients. Weights are TFLite's
// [out, in] row-major; `rows` lists the output rows that get backward work, in
// ascending order (null = every row), so sparse backward touches only those rows.
#ifndef TFLM_TRAIN_KERNELS_FULLY_CONNECTED_H_
#define TFLM_TRAIN_KERNELS_FULLY_CONNECTED_H_

#include <stdint.h>

#include "kernels/activations.h"

namespace tflm_train {
namespace kernels {

// y[o] = act(bias[o] + sum_i w[o, i] * x[i]); bias may be null. Four partial sums
// in a fixed order break the add latency chain on hosts and stay deterministic.
inline void FullyConnected(const float* x, int n_in, const float* w, const float* bias, int n_out,
                           FusedAct act, float* y) {
  const int n4 = n_in & ~3;
  for (int o = 0; o < n_out; ++o) {
    const float* w_row = w + o * n_in;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (int i = 0; i < n4; i += 4) {
      s0 += x[i] * w_row[i];
      s1 += x[i + 1] * w_row[i + 1];
      s2 += x[i + 2] * w_row[i + 2];
      s3 += x[i + 3] * w_row[i + 3];
    }
    for (int i = n4; i < n_in; ++i) s0 += x[i] * w_row[i];
    float total = (s0 + s1) + (s2 + s3);
    if (bias != nullptr) total += bias[o];
    y[o] = ApplyFusedAct(act, total);
  }
}

// dx[i] += sum over kept rows o of w[o, i] * delta[o].
inline void FullyConnectedInputGrad(const float* w, int n_in, const float* delta,
                                    const int32_t* rows, int num_rows, float* dx) {
  for (int r = 0; r < num_rows; ++r) {
    const int o = rows != nullptr ? rows[r] : r;
    const float d = delta[o];
    const float* w_row = w + o * n_in;
    for (int i = 0; i < n_in; ++i) dx[i] += w_row[i] * d;
  }
}

// grad_w[o, :] += delta[o] * x for kept rows.
inline void FullyConnectedWeightGrad(const float* x, int n_in, const float* delta,
                                     const int32_t* rows, int num_rows, float* grad_w) {
  for (int r = 0; r < num_rows; ++r) {
    const int o = rows != nullptr ? rows[r] : r;
    const float d = delta[o];
    float* g_row = grad_w + o * n_in;
    for (int i = 0; i < n_in; ++i) g_row[i] += d * x[i];
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FULLY_CONNECTED_H_
