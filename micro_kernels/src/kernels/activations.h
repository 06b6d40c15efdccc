// The fused activations TFLite folds into an op (NONE, RELU, RELU6), which are
// also the standalone RELU and RELU6 ops. Backward works from the activation's
// output y, which is what the trainer keeps: f'(z) is a function of y = f(z).
#ifndef TFLM_TRAIN_KERNELS_ACTIVATIONS_H_
#define TFLM_TRAIN_KERNELS_ACTIVATIONS_H_

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

// y = act(x): the standalone RELU / RELU6 op.
inline void FusedActForward(FusedAct act, const float* x, int n, float* y) {
  for (int i = 0; i < n; ++i) y[i] = ApplyFusedAct(act, x[i]);
}

// dx += dy * f'(z): the standalone RELU / RELU6 op's input gradient.
inline void FusedActInputGrad(FusedAct act, const float* y, const float* dy, int n, float* dx) {
  if (act == FusedAct::kRelu) {
    for (int i = 0; i < n; ++i) if (y[i] > 0.0f) dx[i] += dy[i];
  } else {
    for (int i = 0; i < n; ++i) if (y[i] > 0.0f && y[i] < 6.0f) dx[i] += dy[i];
  }
}

// delta[i] *= f'(z[i]), in place: an op's output error becomes the error of its
// pre-activation value. ReLU passes where y > 0; ReLU6 where 0 < y < 6
// (TensorFlow's gradients: zero at the kinks).
inline void FusedActGradInPlace(FusedAct act, const float* y, int n, float* delta) {
  if (act == FusedAct::kRelu) {
    for (int i = 0; i < n; ++i) if (!(y[i] > 0.0f)) delta[i] = 0.0f;
  } else if (act == FusedAct::kRelu6) {
    for (int i = 0; i < n; ++i) if (!(y[i] > 0.0f && y[i] < 6.0f)) delta[i] = 0.0f;
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_ACTIVATIONS_H_
