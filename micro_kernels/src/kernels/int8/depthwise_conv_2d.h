// DEPTHWISE_CONV_2D on one int8 sample, NHWC, weights [1, fh, fw, out_c] with
// out_c = in_c * depth_multiplier (output channel ic * mult + m reads input
// channel ic), as TFLite's per-channel reference integer kernel. A padding tap
// adds nothing.
#ifndef TFLM_TRAIN_KERNELS_INT8_DEPTHWISE_CONV_2D_H_
#define TFLM_TRAIN_KERNELS_INT8_DEPTHWISE_CONV_2D_H_

#include <stdint.h>

#include "kernels/conv_shape.h"
#include "kernels/int8/quantization.h"

namespace tflm_train {
namespace kernels {

// Parameters as Conv2DInt8's; multiplier/shift/bias per output channel [out_c].
inline void DepthwiseConv2DInt8(const ConvShape& s, const int8_t* in, int32_t input_offset, const int8_t* weights,
                                const int32_t* bias, const int32_t* multiplier, const int32_t* shift,
                                int32_t output_offset, int32_t act_min, int32_t act_max, int8_t* out) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      int8_t* out_pos = out + (oy * s.out_w + ox) * s.out_c;
      for (int32_t ic = 0; ic < s.in_c; ++ic) {
        for (int32_t m = 0; m < s.depth_multiplier; ++m) {
          const int32_t oc = ic * s.depth_multiplier + m;
          int32_t acc = 0;
          for (int32_t ky = 0; ky < s.filter_h; ++ky) {
            const int32_t iy = InputRow(s, oy, ky);
            if (iy < 0 || iy >= s.in_h) continue;
            for (int32_t kx = 0; kx < s.filter_w; ++kx) {
              const int32_t ix = InputCol(s, ox, kx);
              if (ix < 0 || ix >= s.in_w) continue;
              const int32_t x = static_cast<int32_t>(in[(iy * s.in_w + ix) * s.in_c + ic]);
              const int32_t w = static_cast<int32_t>(weights[(ky * s.filter_w + kx) * s.out_c + oc]);
              acc += w * (x + input_offset);
            }
          }
          if (bias != nullptr) acc += bias[oc];
          const int32_t scaled = MultiplyByQuantizedMultiplier(acc, multiplier[oc], shift[oc]) + output_offset;
          out_pos[oc] = static_cast<int8_t>(ClampInt32(scaled, act_min, act_max));
        }
      }
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_DEPTHWISE_CONV_2D_H_
