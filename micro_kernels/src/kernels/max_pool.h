// MAX_POOL_2D on one sample, NHWC, with the ConvShape geometry (in_c == out_c).
// Padded positions are outside the window: they never win, as in TFLite.
#ifndef TFLM_TRAIN_KERNELS_MAX_POOL_H_
#define TFLM_TRAIN_KERNELS_MAX_POOL_H_

#include <float.h>
#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/conv_shape.h"

namespace tflm_train {
namespace kernels {

inline void MaxPool2D(const float* x, const ConvShape& s, FusedAct act, float* y) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      for (int32_t c = 0; c < s.out_c; ++c) {
        float best = -FLT_MAX;
        for (int32_t ky = 0; ky < s.filter_h; ++ky) {
          const int32_t iy = InputRow(s, oy, ky);
          if (iy < 0 || iy >= s.in_h) continue;
          for (int32_t kx = 0; kx < s.filter_w; ++kx) {
            const int32_t ix = InputCol(s, ox, kx);
            if (ix < 0 || ix >= s.in_w) continue;
            const float v = x[(iy * s.in_w + ix) * s.in_c + c];
            if (v > best) best = v;
          }
        }
        y[(oy * s.out_w + ox) * s.out_c + c] = ApplyFusedAct(act, best);
      }
    }
  }
}

// dx += dy routed to the first maximum of each window in scan order (the window
// is re-scanned from the kept input, so no argmax is stored).
inline void MaxPool2DInputGrad(const float* x, const ConvShape& s, const float* dy, float* dx) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      for (int32_t c = 0; c < s.out_c; ++c) {
        float best = -FLT_MAX;
        int32_t best_at = -1;
        for (int32_t ky = 0; ky < s.filter_h; ++ky) {
          const int32_t iy = InputRow(s, oy, ky);
          if (iy < 0 || iy >= s.in_h) continue;
          for (int32_t kx = 0; kx < s.filter_w; ++kx) {
            const int32_t ix = InputCol(s, ox, kx);
            if (ix < 0 || ix >= s.in_w) continue;
            const int32_t at = (iy * s.in_w + ix) * s.in_c + c;
            if (best_at < 0 || x[at] > best) {
              best = x[at];
              best_at = at;
            }
          }
        }
        if (best_at >= 0) dx[best_at] += dy[(oy * s.out_w + ox) * s.out_c + c];
      }
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_MAX_POOL_H_
