// CONV_2D on one int8 sample, NHWC, weights OHWI [out_c, fh, fw, in_c], as
// TFLite's per-channel reference integer kernel. A padding tap is skipped, so it
// adds nothing: the input offset enters only with in-bounds taps.
#ifndef TFLM_TRAIN_KERNELS_INT8_CONV_2D_H_
#define TFLM_TRAIN_KERNELS_INT8_CONV_2D_H_

#include <stdint.h>

#include "kernels/conv_shape.h"
#include "kernels/int8/quantization.h"

namespace tflm_train {
namespace kernels {

// input_offset = -input zero point, output_offset = +output zero point;
// multiplier/shift per output channel [out_c]; bias [out_c] or null.
inline void Conv2DInt8(const ConvShape& s, const int8_t* in, int32_t input_offset, const int8_t* weights,
                       const int32_t* bias, const int32_t* multiplier, const int32_t* shift, int32_t output_offset,
                       int32_t act_min, int32_t act_max, int8_t* out) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      int8_t* out_pos = out + (oy * s.out_w + ox) * s.out_c;
      for (int32_t oc = 0; oc < s.out_c; ++oc) {
        int32_t acc = 0;
        for (int32_t ky = 0; ky < s.filter_h; ++ky) {
          const int32_t iy = InputRow(s, oy, ky);
          if (iy < 0 || iy >= s.in_h) continue;
          for (int32_t kx = 0; kx < s.filter_w; ++kx) {
            const int32_t ix = InputCol(s, ox, kx);
            if (ix < 0 || ix >= s.in_w) continue;
            const int8_t* in_tap = in + (iy * s.in_w + ix) * s.in_c;
            const int8_t* w_tap = weights + ((oc * s.filter_h + ky) * s.filter_w + kx) * s.in_c;
            for (int32_t ic = 0; ic < s.in_c; ++ic) {
              acc += static_cast<int32_t>(w_tap[ic]) * (static_cast<int32_t>(in_tap[ic]) + input_offset);
            }
          }
        }
        if (bias != nullptr) acc += bias[oc];
        const int32_t scaled = MultiplyByQuantizedMultiplier(acc, multiplier[oc], shift[oc]) + output_offset;
        out_pos[oc] = static_cast<int8_t>(ClampInt32(scaled, act_min, act_max));
      }
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_CONV_2D_H_
