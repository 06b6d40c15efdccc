// CONV_2D on one sample: NHWC activations, weights OHWI [C_out, KH, KW, C_in].
// The gradients visit only the output elements listed in `kept` (flat NHWC
// indices, ascending; null = every element), so sparse backward touches only
// the taps of kept outputs.
#ifndef TFLM_TRAIN_KERNELS_CONV_2D_H_
#define TFLM_TRAIN_KERNELS_CONV_2D_H_

#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/conv_shape.h"

namespace tflm_train {
namespace kernels {

inline void Conv2D(const float* x, const ConvShape& s, const float* w, const float* bias,
                   FusedAct act, float* y) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      float* y_pos = y + (oy * s.out_w + ox) * s.out_c;
      for (int32_t oc = 0; oc < s.out_c; ++oc) {
        float acc = 0.0f;
        for (int32_t ky = 0; ky < s.filter_h; ++ky) {
          const int32_t iy = InputRow(s, oy, ky);
          if (iy < 0 || iy >= s.in_h) continue;
          for (int32_t kx = 0; kx < s.filter_w; ++kx) {
            const int32_t ix = InputCol(s, ox, kx);
            if (ix < 0 || ix >= s.in_w) continue;
            const float* x_tap = x + (iy * s.in_w + ix) * s.in_c;
            const float* w_tap = w + ((oc * s.filter_h + ky) * s.filter_w + kx) * s.in_c;
            for (int32_t ic = 0; ic < s.in_c; ++ic) acc += x_tap[ic] * w_tap[ic];
          }
        }
        if (bias != nullptr) acc += bias[oc];
        y_pos[oc] = ApplyFusedAct(act, acc);
      }
    }
  }
}

// Both gradients in one pass over the kept output elements: for each kept e with
// error delta[e], grad_w += delta[e] * its input patch and dx += delta[e] * its
// weights. Either output may be null (not wanted); x is read only for grad_w.
inline void Conv2DWeightAndInputGrad(const float* x, const float* w, const ConvShape& s, const float* delta,
                                     const int32_t* kept, int32_t num_kept, float* grad_w, float* dx) {
  for (int32_t r = 0; r < num_kept; ++r) {
    const int32_t e = kept != nullptr ? kept[r] : r;
    const float d = delta[e];
    const int32_t oc = e % s.out_c;
    const int32_t pos = e / s.out_c;
    const int32_t ox = pos % s.out_w;
    const int32_t oy = pos / s.out_w;
    for (int32_t ky = 0; ky < s.filter_h; ++ky) {
      const int32_t iy = InputRow(s, oy, ky);
      if (iy < 0 || iy >= s.in_h) continue;
      for (int32_t kx = 0; kx < s.filter_w; ++kx) {
        const int32_t ix = InputCol(s, ox, kx);
        if (ix < 0 || ix >= s.in_w) continue;
        const int32_t x_at = (iy * s.in_w + ix) * s.in_c;
        const int32_t w_at = ((oc * s.filter_h + ky) * s.filter_w + kx) * s.in_c;
        if (grad_w != nullptr) {
          for (int32_t ic = 0; ic < s.in_c; ++ic) grad_w[w_at + ic] += d * x[x_at + ic];
        }
        if (dx != nullptr) {
          for (int32_t ic = 0; ic < s.in_c; ++ic) dx[x_at + ic] += d * w[w_at + ic];
        }
      }
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_CONV_2D_H_
