// PAD with zeros on one sample.
#ifndef TFLM_TRAIN_KERNELS_PAD_H_
#define TFLM_TRAIN_KERNELS_PAD_H_

#include <stdint.h>

namespace tflm_train {
namespace kernels {

// A padding of a rank-4 tensor (lower ranks are extended with leading 1s).
struct PadShape {
  int32_t in[4];
  int32_t before[4];
  int32_t after[4];
};

inline int32_t PaddedDim(const PadShape& p, int axis) {
  return p.before[axis] + p.in[axis] + p.after[axis];
}

// Flat index in the padded output of input element (a, b, c, d).
inline int32_t PaddedIndex(const PadShape& p, int32_t a, int32_t b, int32_t c, int32_t d) {
  return (((a + p.before[0]) * PaddedDim(p, 1) + b + p.before[1]) * PaddedDim(p, 2) + c + p.before[2]) *
             PaddedDim(p, 3) + d + p.before[3];
}

inline void Pad(const float* x, const PadShape& p, int32_t n_out, float* y) {
  for (int32_t i = 0; i < n_out; ++i) y[i] = 0.0f;
  const float* from = x;
  for (int32_t a = 0; a < p.in[0]; ++a) {
    for (int32_t b = 0; b < p.in[1]; ++b) {
      for (int32_t c = 0; c < p.in[2]; ++c) {
        float* row = y + PaddedIndex(p, a, b, c, 0);
        for (int32_t d = 0; d < p.in[3]; ++d) row[d] = *from++;
      }
    }
  }
}

// dx += the interior of dy.
inline void PadInputGrad(const float* dy, const PadShape& p, float* dx) {
  for (int32_t a = 0; a < p.in[0]; ++a) {
    for (int32_t b = 0; b < p.in[1]; ++b) {
      for (int32_t c = 0; c < p.in[2]; ++c) {
        const float* row = dy + PaddedIndex(p, a, b, c, 0);
        for (int32_t d = 0; d < p.in[3]; ++d) *dx++ += row[d];
      }
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_PAD_H_
