// LOGISTIC (sigmoid) on one sample; the input gradient works from the output y.
#ifndef TFLM_TRAIN_KERNELS_LOGISTIC_H_
#define TFLM_TRAIN_KERNELS_LOGISTIC_H_

#include <math.h>

namespace tflm_train {
namespace kernels {

inline void Logistic(const float* x, int n, float* y) {
  for (int i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

// dx += dy * y * (1 - y).
inline void LogisticInputGrad(const float* y, const float* dy, int n, float* dx) {
  for (int i = 0; i < n; ++i) dx[i] += dy[i] * (y[i] * (1.0f - y[i]));
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_LOGISTIC_H_
