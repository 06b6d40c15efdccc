// QUANTIZE (float -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float), as
// TFLM's reference kernels compute them.
#ifndef TFLM_TRAIN_KERNELS_INT8_QUANTIZE_H_
#define TFLM_TRAIN_KERNELS_INT8_QUANTIZE_H_

#include <math.h>
#include <stdint.h>

#include "kernels/int8/quantization.h"

namespace tflm_train {
namespace kernels {

// TFLM's AffineQuantize: round(x / scale) in float, ties away from zero, plus
// the zero point, clamped to int8. A division, not a product with 1 / scale,
// which rounds differently. The rounded quotient is held in [-512, 512] before
// the cast: no clamped result changes and the cast stays defined for any input
// (NaN gives -128; callers check that samples are finite anyway).
inline void QuantizeInt8(const float* in, int32_t n, float scale, int32_t zero_point, int8_t* out) {
  for (int32_t i = 0; i < n; ++i) {
    float q = roundf(in[i] / scale);
    if (!(q >= -512.0f)) q = -512.0f;
    if (q > 512.0f) q = 512.0f;
    out[i] = static_cast<int8_t>(ClampInt32(static_cast<int32_t>(q) + zero_point, -128, 127));
  }
}

// The multiplier of an int8 -> int8 QUANTIZE: input_scale / output_scale in
// double (TFLM's quantize Prepare).
inline Requant RequantizeMultiplier(float input_scale, float output_scale) {
  return QuantizeMultiplier(static_cast<double>(input_scale) / static_cast<double>(output_scale));
}

// TFLM's Requantize for int8 -> int8: (x - input zero point) rescaled, plus the
// output zero point, clamped. (Its shortcut for equal scales applies only
// between int8 and uint8.)
inline void RequantizeInt8(const int8_t* in, int32_t n, int32_t input_zero_point, int32_t multiplier,
                           int32_t shift, int32_t output_zero_point, int8_t* out) {
  for (int32_t i = 0; i < n; ++i) {
    const int32_t v =
        MultiplyByQuantizedMultiplier(static_cast<int32_t>(in[i]) - input_zero_point, multiplier, shift) +
        output_zero_point;
    out[i] = static_cast<int8_t>(ClampInt32(v, -128, 127));
  }
}

// TFLM's DEQUANTIZE computes double(scale) * (x - zero_point) and rounds that to
// float. The float product here is the same number: x - zero_point has at most
// 9 significant bits and scale 24, so the double product is exact and both
// round the exact product once to float (no double arithmetic on a
// single-precision FPU).
inline void DequantizeInt8(const int8_t* in, int32_t n, float scale, int32_t zero_point, float* out) {
  for (int32_t i = 0; i < n; ++i) out[i] = scale * static_cast<float>(static_cast<int32_t>(in[i]) - zero_point);
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_QUANTIZE_H_
