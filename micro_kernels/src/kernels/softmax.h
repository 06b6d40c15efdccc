// SOFTMAX over the last axis on one sample: `rows` rows of `depth` values. The
// input gradient works from the output y.
#ifndef TFLM_TRAIN_KERNELS_SOFTMAX_H_
#define TFLM_TRAIN_KERNELS_SOFTMAX_H_

#include <math.h>

namespace tflm_train {
namespace kernels {

inline void Softmax(const float* x, int rows, int depth, float* y) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + r * depth;
    float* yr = y + r * depth;
    float max_v = xr[0];
    for (int i = 1; i < depth; ++i) if (xr[i] > max_v) max_v = xr[i];
    float sum = 0.0f;
    for (int i = 0; i < depth; ++i) {
      yr[i] = expf(xr[i] - max_v);
      sum += yr[i];
    }
    for (int i = 0; i < depth; ++i) yr[i] /= sum;
  }
}

// dx += y * (dy - sum_j dy_j y_j), row by row.
inline void SoftmaxInputGrad(const float* y, const float* dy, int rows, int depth, float* dx) {
  for (int r = 0; r < rows; ++r) {
    const float* yr = y + r * depth;
    const float* dyr = dy + r * depth;
    float dot = 0.0f;
    for (int i = 0; i < depth; ++i) dot += dyr[i] * yr[i];
    for (int i = 0; i < depth; ++i) dx[r * depth + i] += yr[i] * (dyr[i] - dot);
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_SOFTMAX_H_
