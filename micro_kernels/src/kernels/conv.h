// Convolution forward and backward on one sample, NHWC activations. Conv2D
// weights are OHWI [C_out, KH, KW, C_in]; depthwise weights are
// [1, KH, KW, C_out] with C_out = C_in * depth_multiplier and output channel
// c * multiplier + m reading input channel c. Backward visits only the output
// elements listed in `kept` (flat NHWC indices, ascending; null = every element),
// so sparse backward touches only taps of kept outputs.
#ifndef TFLM_TRAIN_KERNELS_CONV_H_
#define TFLM_TRAIN_KERNELS_CONV_H_

#include <stdint.h>

#include "kernels/activations.h"

namespace tflm_train {
namespace kernels {

// Geometry shared by convolutions and pooling (batch 1). pad_top/pad_left are
// the elements TFLite's SAME padding adds before the data (0 for VALID).
struct ConvShape {
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w, out_c;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_top, pad_left;
  int32_t depth_multiplier;  // depthwise only
};

// The input row/column a tap reads, or a value outside [0, in) for padding.
inline int32_t InputRow(const ConvShape& s, int32_t oy, int32_t ky) {
  return oy * s.stride_h - s.pad_top + ky * s.dilation_h;
}
inline int32_t InputCol(const ConvShape& s, int32_t ox, int32_t kx) {
  return ox * s.stride_w - s.pad_left + kx * s.dilation_w;
}

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

// For each kept output element e with error delta[e]: grad_w += delta[e] * its
// input patch, dx += delta[e] * its weights. grad_w or dx may be null (not wanted).
inline void Conv2DBackward(const float* x, const float* w, const ConvShape& s, const float* delta,
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

inline void DepthwiseConv2DBackward(const float* x, const float* w, const ConvShape& s,
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

// grad_b[c] += sum over the `positions` rows of delta[p, c] (the dense error).
inline void BiasGrad(const float* delta, int32_t positions, int32_t channels, float* grad_b) {
  for (int32_t p = 0; p < positions; ++p) {
    const float* row = delta + p * channels;
    for (int32_t c = 0; c < channels; ++c) grad_b[c] += row[c];
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_CONV_H_
