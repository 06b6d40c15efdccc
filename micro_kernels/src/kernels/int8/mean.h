// MEAN over the spatial positions of one int8 sample ([1, H, W, C] over axes
// {1, 2}, keep_dims either way): `positions` rows of `channels` values. TFLM has
// computed it two ways (docs/int8.md):
//  - current TFLM (and TFLite's QuantizedMeanOrSum): the integer sum less
//    positions x the input zero point, rescaled by input_scale / output_scale
//    divided by the count, folded into one quantized multiplier;
//  - older TFLM (the 2023 Arduino library, build with TFLM_TRAIN_LEGACY_INT8_MEAN):
//    with equal input and output quantization the sum divided by the count in C++
//    integer division (truncated towards zero); otherwise in float,
//    round(sum / count * s + b) + output zero point with s = input_scale /
//    output_scale and b = -input_zero_point * s, clamped to int8.
#ifndef TFLM_TRAIN_KERNELS_INT8_MEAN_H_
#define TFLM_TRAIN_KERNELS_INT8_MEAN_H_

#include <math.h>
#include <stdint.h>

#include "kernels/int8/quantization.h"

namespace tflm_train {
namespace kernels {

#ifdef TFLM_TRAIN_LEGACY_INT8_MEAN
constexpr bool kLegacyInt8MeanDefault = true;
#else
constexpr bool kLegacyInt8MeanDefault = false;
#endif

struct MeanInt8Params {
  bool legacy;                // older TFLM's arithmetic
  bool same_quantization;     // legacy: the truncating integer path
  float scale;                // legacy: input_scale / output_scale, in float
  float bias;                 // legacy: -input_zero_point * scale, in float
  float count;                // legacy: positions, as the float divisor
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t multiplier, shift;  // current: (input_scale / output_scale) / positions
};

inline MeanInt8Params PrepareMeanInt8(float input_scale, int32_t input_zero_point, float output_scale,
                                      int32_t output_zero_point, int32_t positions,
                                      bool legacy = kLegacyInt8MeanDefault) {
  MeanInt8Params p;
  p.legacy = legacy;
  p.same_quantization = input_zero_point == output_zero_point && input_scale == output_scale;
  p.scale = input_scale / output_scale;
  p.bias = static_cast<float>(-input_zero_point) * p.scale;
  p.count = static_cast<float>(positions);
  p.input_zero_point = input_zero_point;
  p.output_zero_point = output_zero_point;
  // The ratio's multiplier, then the division by the count folded into it: scaled
  // up by 2^shift first (shift = floor(log2(positions)), at most 32 and at most
  // 31 + the ratio's shift) so the integer division keeps its precision.
  const Requant ratio = QuantizeMultiplier(static_cast<double>(input_scale) / static_cast<double>(output_scale));
  int32_t shift = 0;
  while (shift < 63 && (static_cast<uint64_t>(positions) >> (shift + 1)) != 0) ++shift;
  if (shift > 32) shift = 32;
  if (shift > 31 + ratio.shift) shift = 31 + ratio.shift;
  p.multiplier = static_cast<int32_t>((static_cast<int64_t>(ratio.multiplier) << shift) / positions);
  p.shift = ratio.shift - shift;
  return p;
}

// out[c] = the mean of in[p, c] over the `positions` rows (positions > 0).
inline void MeanInt8(const MeanInt8Params& p, const int8_t* in, int32_t positions, int32_t channels, int8_t* out) {
  for (int32_t c = 0; c < channels; ++c) {
    int32_t sum = 0;
    for (int32_t r = 0; r < positions; ++r) sum += in[r * channels + c];
    if (!p.legacy) {
      const int32_t centered = sum - p.input_zero_point * positions;
      out[c] = static_cast<int8_t>(
          ClampInt32(MultiplyByQuantizedMultiplier(centered, p.multiplier, p.shift) + p.output_zero_point, -128, 127));
      continue;
    }
    if (p.same_quantization) {
      out[c] = static_cast<int8_t>(sum / positions);
      continue;
    }
    // TFLM's float steps in its order. Bit-exact as long as neither build fuses
    // mean * scale + bias into one FMA (this library builds with
    // -ffp-contract=off; GCC's default for a Cortex-M4F would fuse it).
    const float mean = static_cast<float>(sum) / p.count;
    float result = roundf(mean * p.scale + p.bias) + static_cast<float>(p.output_zero_point);
    if (result > 127.0f) result = 127.0f;
    if (result < -128.0f) result = -128.0f;
    out[c] = static_cast<int8_t>(result);
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_MEAN_H_
