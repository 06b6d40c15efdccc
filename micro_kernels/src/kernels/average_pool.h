// AVERAGE_POOL_2D on one sample, NHWC, with the ConvShape geometry (in_c ==
// out_c). Padded positions are outside the window: the average divides by the
// in-bounds count, as TFLite does.
#ifndef TFLM_TRAIN_KERNELS_AVERAGE_POOL_H_
#define TFLM_TRAIN_KERNELS_AVERAGE_POOL_H_

#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/conv_shape.h"

namespace tflm_train {
namespace kernels {

// In-bounds taps of the window of output (oy, ox).
inline int32_t WindowCount(const ConvShape& s, int32_t oy, int32_t ox) {
  int32_t rows = 0, cols = 0;
  for (int32_t ky = 0; ky < s.filter_h; ++ky) {
    const int32_t iy = InputRow(s, oy, ky);
    rows += (iy >= 0 && iy < s.in_h) ? 1 : 0;
  }
  for (int32_t kx = 0; kx < s.filter_w; ++kx) {
    const int32_t ix = InputCol(s, ox, kx);
    cols += (ix >= 0 && ix < s.in_w) ? 1 : 0;
  }
  return rows * cols;
}

inline void AveragePool2D(const float* x, const ConvShape& s, FusedAct act, float* y) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      const int32_t count = WindowCount(s, oy, ox);
      for (int32_t c = 0; c < s.out_c; ++c) {
        float sum = 0.0f;
        for (int32_t ky = 0; ky < s.filter_h; ++ky) {
          const int32_t iy = InputRow(s, oy, ky);
          if (iy < 0 || iy >= s.in_h) continue;
          for (int32_t kx = 0; kx < s.filter_w; ++kx) {
            const int32_t ix = InputCol(s, ox, kx);
            if (ix < 0 || ix >= s.in_w) continue;
            sum += x[(iy * s.in_w + ix) * s.in_c + c];
          }
        }
        const float mean = count > 0 ? sum / static_cast<float>(count) : 0.0f;
        y[(oy * s.out_w + ox) * s.out_c + c] = ApplyFusedAct(act, mean);
      }
    }
  }
}

// dx += each output's error shared equally among its window's in-bounds taps.
inline void AveragePool2DInputGrad(const ConvShape& s, const float* dy, float* dx) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      const int32_t count = WindowCount(s, oy, ox);
      if (count == 0) continue;
      for (int32_t c = 0; c < s.out_c; ++c) {
        const float share = dy[(oy * s.out_w + ox) * s.out_c + c] / static_cast<float>(count);
        for (int32_t ky = 0; ky < s.filter_h; ++ky) {
          const int32_t iy = InputRow(s, oy, ky);
          if (iy < 0 || iy >= s.in_h) continue;
          for (int32_t kx = 0; kx < s.filter_w; ++kx) {
            const int32_t ix = InputCol(s, ox, kx);
            if (ix < 0 || ix >= s.in_w) continue;
            dx[(iy * s.in_w + ix) * s.in_c + c] += share;
          }
        }
      }
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_AVERAGE_POOL_H_
