// PAD of one int8 sample. TFLite pads an int8 tensor with the output zero point
// (the quantized 0.0; PAD requires input and output to share quantization), so
// the interior is copied as it is.
#ifndef TFLM_TRAIN_KERNELS_INT8_PAD_H_
#define TFLM_TRAIN_KERNELS_INT8_PAD_H_

#include <stdint.h>

#include "kernels/pad.h"

namespace tflm_train {
namespace kernels {

// y (n_out elements) = x padded as p says, with pad_value outside the input.
inline void PadInt8(const int8_t* x, const PadShape& p, int32_t n_out, int8_t pad_value, int8_t* y) {
  for (int32_t i = 0; i < n_out; ++i) y[i] = pad_value;
  const int8_t* from = x;
  for (int32_t a = 0; a < p.in[0]; ++a) {
    for (int32_t b = 0; b < p.in[1]; ++b) {
      for (int32_t c = 0; c < p.in[2]; ++c) {
        int8_t* row = y + PaddedIndex(p, a, b, c, 0);
        for (int32_t d = 0; d < p.in[3]; ++d) row[d] = *from++;
      }
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_PAD_H_
