// Activation forward and backward on one sample. Backward works from the
// activation's output y, which is what the trainer keeps: for every supported
// activation f'(z) is a function of y = f(z).
#ifndef TFLM_TRAIN_KERNELS_ACTIVATIONS_H_
#define TFLM_TRAIN_KERNELS_ACTIVATIONS_H_

#include <math.h>
#include <stdint.h>

namespace tflm_train {
namespace kernels {

enum class FusedAct : uint8_t { kNone = 0, kRelu = 1, kRelu6 = 2 };

inline float ApplyFusedAct(FusedAct act, float v) {
  switch (act) {
    case FusedAct::kRelu: return v > 0.0f ? v : 0.0f;
    case FusedAct::kRelu6: return v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
    default: return v;
  }
}

// delta[i] *= f'(z[i]), in place. ReLU passes where y > 0; ReLU6 where 0 < y < 6
// (TensorFlow's gradients: zero at the kinks).
inline void FusedActBackwardInPlace(FusedAct act, const float* y, int n, float* delta) {
  if (act == FusedAct::kRelu) {
    for (int i = 0; i < n; ++i) if (!(y[i] > 0.0f)) delta[i] = 0.0f;
  } else if (act == FusedAct::kRelu6) {
    for (int i = 0; i < n; ++i) if (!(y[i] > 0.0f && y[i] < 6.0f)) delta[i] = 0.0f;
  }
}

inline void FusedActForward(FusedAct act, const float* x, int n, float* y) {
  for (int i = 0; i < n; ++i) y[i] = ApplyFusedAct(act, x[i]);
}

// dx += dy * f'(z) for a standalone ReLU / ReLU6 op.
inline void FusedActBackward(FusedAct act, const float* y, const float* dy, int n, float* dx) {
  if (act == FusedAct::kRelu) {
    for (int i = 0; i < n; ++i) if (y[i] > 0.0f) dx[i] += dy[i];
  } else {
    for (int i = 0; i < n; ++i) if (y[i] > 0.0f && y[i] < 6.0f) dx[i] += dy[i];
  }
}

inline void Logistic(const float* x, int n, float* y) {
  for (int i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

inline void LogisticBackward(const float* y, const float* dy, int n, float* dx) {
  for (int i = 0; i < n; ++i) dx[i] += dy[i] * (y[i] * (1.0f - y[i]));
}

inline void Tanh(const float* x, int n, float* y) {
  for (int i = 0; i < n; ++i) y[i] = tanhf(x[i]);
}

inline void TanhBackward(const float* y, const float* dy, int n, float* dx) {
  for (int i = 0; i < n; ++i) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

// Softmax over the last axis: `rows` rows of `depth` values.
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
inline void SoftmaxBackward(const float* y, const float* dy, int rows, int depth, float* dx) {
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

#endif  // TFLM_TRAIN_KERNELS_ACTIVATIONS_H_
