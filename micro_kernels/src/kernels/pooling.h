// Pooling forward and backward on one sample, NHWC, with the ConvShape
// geometry (in_c == out_c). Padded positions are outside the window: max
// pooling ignores them and average pooling divides by the in-bounds count, as
// TFLite does.
#ifndef TFLM_TRAIN_KERNELS_POOLING_H_
#define TFLM_TRAIN_KERNELS_POOLING_H_

#include <float.h>
#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/conv.h"

namespace tflm_train {
namespace kernels {

inline void MaxPool(const float* x, const ConvShape& s, FusedAct act, float* y) {
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

// Each output's error goes to the first maximum of its window in scan order
// (the window is re-scanned from the kept input, so no argmax is stored).
inline void MaxPoolBackward(const float* x, const ConvShape& s, const float* dy, float* dx) {
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

inline void AveragePool(const float* x, const ConvShape& s, FusedAct act, float* y) {
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

inline void AveragePoolBackward(const ConvShape& s, const float* dy, float* dx) {
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

// Global average pooling: y[c] = mean over the `positions` rows of x[p, c].
inline void Mean(const float* x, int32_t positions, int32_t channels, float* y) {
  for (int32_t c = 0; c < channels; ++c) y[c] = 0.0f;
  for (int32_t p = 0; p < positions; ++p) {
    for (int32_t c = 0; c < channels; ++c) y[c] += x[p * channels + c];
  }
  for (int32_t c = 0; c < channels; ++c) y[c] /= static_cast<float>(positions);
}

inline void MeanBackward(const float* dy, int32_t positions, int32_t channels, float* dx) {
  for (int32_t p = 0; p < positions; ++p) {
    for (int32_t c = 0; c < channels; ++c) dx[p * channels + c] += dy[c] / static_cast<float>(positions);
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_POOLING_H_
