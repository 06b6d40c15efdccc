// TANH on one sample; the input gradient works from the output y.
#ifndef TFLM_TRAIN_KERNELS_TANH_H_
#define TFLM_TRAIN_KERNELS_TANH_H_

#include <math.h>

namespace tflm_train {
namespace kernels {

inline void Tanh(const float* x, int n, float* y) {
  for (int i = 0; i < n; ++i) y[i] = tanhf(x[i]);
}

// dx += dy * (1 - y^2).
inline void TanhInputGrad(const float* y, const float* dy, int n, float* dx) {
  for (int i = 0; i < n; ++i) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_TANH_H_
