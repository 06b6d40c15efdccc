// DEPTHWISE_CONV_2D on one sample: NHWC activations, weights [1, KH, KW, C_out]
// with C_out = C_in * depth_multiplier; output channel c * multiplier + m reads
// input channel c. The gradients visit only the output elements listed in
// `kept` (flat NHWC indices, ascending; null = every element).
#ifndef TFLM_TRAIN_KERNELS_DEPTHWISE_CONV_2D_H_
#define TFLM_TRAIN_KERNELS_DEPTHWISE_CONV_2D_H_

#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/conv_shape.h"

namespace tflm_train {
namespace kernels {

inline void DepthwiseConv2D(const float* x, const ConvShape& s, const float* w, const float* bias,
                            FusedAct act, float* y) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      float* y_pos = y + (oy * s.out_w + ox) * s.out_c;
      for (int32_t oc = 0; oc < s.out_c; ++oc) {
        const int32_t ic = oc / s.depth_multiplier;
        float acc = 0.0f;
        for (int32_t ky = 0; ky < s.filter_h; ++ky) {
          const int32_t iy = InputRow(s, oy, ky);
          if (iy < 0 || iy >= s.in_h) continue;
          for (int32_t kx = 0; kx < s.filter_w; ++kx) {
            const int32_t ix = InputCol(s, ox, kx);
            if (ix < 0 || ix >= s.in_w) continue;
            acc += x[(iy * s.in_w + ix) * s.in_c + ic] * w[(ky * s.filter_w + kx) * s.out_c + oc];
          }
        }
        if (bias != nullptr) acc += bias[oc];
        y_pos[oc] = ApplyFusedAct(act, acc);
      }
    }
  }
}

// Both gradients in one pass over the kept output elements (as
// Conv2DWeightAndInputGrad). Either output may be null (not wanted); x is read
// only for grad_w.
inline void DepthwiseConv2DWeightAndInputGrad(const float* x, const float* w, const ConvShape& s,
                                              const float* delta, const int32_t* kept, int32_t num_kept,
                                              float* grad_w, float* dx) {
  for (int32_t r = 0; r < num_kept; ++r) {
    const int32_t e = kept != nullptr ? kept[r] : r;
    const float d = delta[e];
    const int32_t oc = e % s.out_c;
    const int32_t ic = oc / s.depth_multiplier;
    const int32_t pos = e / s.out_c;
    const int32_t ox = pos % s.out_w;
    const int32_t oy = pos / s.out_w;
    for (int32_t ky = 0; ky < s.filter_h; ++ky) {
      const int32_t iy = InputRow(s, oy, ky);
      if (iy < 0 || iy >= s.in_h) continue;
      for (int32_t kx = 0; kx < s.filter_w; ++kx) {
        const int32_t ix = InputCol(s, ox, kx);
        if (ix < 0 || ix >= s.in_w) continue;
        const int32_t x_at = (iy * s.in_w + ix) * s.in_c + ic;
        const int32_t w_at = (ky * s.filter_w + kx) * s.out_c + oc;
        if (grad_w != nullptr) grad_w[w_at] += d * x[x_at];
        if (dx != nullptr) dx[x_at] += d * w[w_at];
      }
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_DEPTHWISE_CONV_2D_H_
