// Window geometry shared by the convolutions and pooling (one sample, NHWC), and
// the bias gradient of a layer whose bias is added at every position.
#ifndef TFLM_TRAIN_KERNELS_CONV_SHAPE_H_
#define TFLM_TRAIN_KERNELS_CONV_SHAPE_H_

#include <stdint.h>

namespace tflm_train {
namespace kernels {

// pad_top/pad_left are the elements TFLite's SAME padding adds before the data
// (0 for VALID).
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

// grad_b[c] += sum over the `positions` rows of delta[p, c] (the dense error).
inline void BiasGrad(const float* delta, int32_t positions, int32_t channels, float* grad_b) {
  for (int32_t p = 0; p < positions; ++p) {
    const float* row = delta + p * channels;
    for (int32_t c = 0; c < channels; ++c) grad_b[c] += row[c];
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_CONV_SHAPE_H_
