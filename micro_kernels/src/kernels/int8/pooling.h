// AVERAGE_POOL_2D and MAX_POOL_2D on one int8 sample, NHWC, with the ConvShape
// geometry (in_c == out_c, dilation 1: TFLite's pooling has none). TFLM requires
// the input and output to share scale and zero point, so both work on the raw
// int8 values: no offsets, no rescale, only the clamp to [act_min, act_max].
#ifndef TFLM_TRAIN_KERNELS_INT8_POOLING_H_
#define TFLM_TRAIN_KERNELS_INT8_POOLING_H_

#include <stdint.h>

#include "kernels/conv_shape.h"
#include "kernels/int8/quantization.h"

namespace tflm_train {
namespace kernels {

// The sum of the in-bounds taps divided by their count, rounded to nearest with
// ties away from zero (padding is outside the window, as in TFLite).
inline void AveragePoolInt8(const ConvShape& s, const int8_t* in, int32_t act_min, int32_t act_max, int8_t* out) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      int8_t* out_pos = out + (oy * s.out_w + ox) * s.out_c;
      for (int32_t c = 0; c < s.out_c; ++c) {
        int32_t sum = 0;
        int32_t count = 0;
        for (int32_t ky = 0; ky < s.filter_h; ++ky) {
          const int32_t iy = InputRow(s, oy, ky);
          if (iy < 0 || iy >= s.in_h) continue;
          for (int32_t kx = 0; kx < s.filter_w; ++kx) {
            const int32_t ix = InputCol(s, ox, kx);
            if (ix < 0 || ix >= s.in_w) continue;
            sum += in[(iy * s.in_w + ix) * s.in_c + c];
            ++count;
          }
        }
        // A window with no input at all cannot come from SAME or VALID padding;
        // TFLM fails such an op, here it averages to 0 rather than divide by 0.
        int32_t avg = 0;
        if (count > 0) avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
        out_pos[c] = static_cast<int8_t>(ClampInt32(avg, act_min, act_max));
      }
    }
  }
}

// The largest in-bounds tap (-128 for a window with none), then the clamp.
inline void MaxPoolInt8(const ConvShape& s, const int8_t* in, int32_t act_min, int32_t act_max, int8_t* out) {
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      int8_t* out_pos = out + (oy * s.out_w + ox) * s.out_c;
      for (int32_t c = 0; c < s.out_c; ++c) {
        int32_t max = -128;
        for (int32_t ky = 0; ky < s.filter_h; ++ky) {
          const int32_t iy = InputRow(s, oy, ky);
          if (iy < 0 || iy >= s.in_h) continue;
          for (int32_t kx = 0; kx < s.filter_w; ++kx) {
            const int32_t ix = InputCol(s, ox, kx);
            if (ix < 0 || ix >= s.in_w) continue;
            const int32_t v = in[(iy * s.in_w + ix) * s.in_c + c];
            if (v > max) max = v;
          }
        }
        out_pos[c] = static_cast<int8_t>(ClampInt32(max, act_min, act_max));
      }
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_POOLING_H_
