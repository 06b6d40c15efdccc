// FULLY_CONNECTED on one int8 sample, as TFLite's reference integer kernel:
// weights [n_out, n_in] symmetric (zero point 0), an int32 accumulator of
// w * (x + input_offset), the int32 bias added before the rescale.
#ifndef TFLM_TRAIN_KERNELS_INT8_FULLY_CONNECTED_H_
#define TFLM_TRAIN_KERNELS_INT8_FULLY_CONNECTED_H_

#include <stdint.h>

#include "kernels/int8/quantization.h"

namespace tflm_train {
namespace kernels {

// input_offset = -input zero point, output_offset = +output zero point.
// multiplier/shift hold n_out entries; a per-tensor layer repeats one value
// (TFLM's per-tensor path rescales every channel with that one value too).
inline void FullyConnectedInt8(const int8_t* in, int32_t n_in, int32_t input_offset, const int8_t* weights,
                               const int32_t* bias, int32_t n_out, const int32_t* multiplier,
                               const int32_t* shift, int32_t output_offset, int32_t act_min, int32_t act_max,
                               int8_t* out) {
  for (int32_t o = 0; o < n_out; ++o) {
    const int8_t* w_row = weights + o * n_in;
    int32_t acc = 0;
    for (int32_t i = 0; i < n_in; ++i) {
      acc += static_cast<int32_t>(w_row[i]) * (static_cast<int32_t>(in[i]) + input_offset);
    }
    if (bias != nullptr) acc += bias[o];
    const int32_t scaled = MultiplyByQuantizedMultiplier(acc, multiplier[o], shift[o]) + output_offset;
    out[o] = static_cast<int8_t>(ClampInt32(scaled, act_min, act_max));
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_FULLY_CONNECTED_H_
