// The fixed-point arithmetic of TFLite's full-integer (int8) kernels: real
// multipliers as a 31-bit significand and a power-of-two shift, the rescaling of
// an int32 accumulator by one, and the parameters TFLM's Prepare derives from the
// tensors' scales. Every function here is bit-exact with the TFLM the project
// tests against (tests/test_int8_kernels.py), which builds without
// TFLITE_SINGLE_ROUNDING: a rounding high multiply, then a rounding shift.
#ifndef TFLM_TRAIN_KERNELS_INT8_QUANTIZATION_H_
#define TFLM_TRAIN_KERNELS_INT8_QUANTIZATION_H_

#include <math.h>
#include <stdint.h>

#include "kernels/activations.h"

namespace tflm_train {
namespace kernels {

// A real multiplier as TFLite stores it:
// value ~= x * multiplier * 2^(shift - 31); shift > 0 is a left shift.
struct Requant {
  int32_t multiplier;
  int32_t shift;
};

// TFLite's QuantizeMultiplier: the significand of frexp rounded half away from
// zero to 31 bits; a significand that rounds up to 2^31 becomes 2^30 with the
// exponent one higher; below 2^-31 (shift < -31) the multiplier flushes to zero.
// Zero and non-finite values give {0, 0} (TFLM would not run with the latter).
inline Requant QuantizeMultiplier(double real_multiplier) {
  Requant r = {0, 0};
  if (real_multiplier == 0.0 || real_multiplier != real_multiplier || real_multiplier > 1.0e300 ||
      real_multiplier < -1.0e300) {
    return r;
  }
  int exponent = 0;
  const double significand = frexp(real_multiplier, &exponent);  // |significand| in [0.5, 1)
  int64_t fixed = static_cast<int64_t>(round(significand * 2147483648.0));
  if (fixed == (static_cast<int64_t>(1) << 31)) {
    fixed /= 2;
    ++exponent;
  }
  if (exponent < -31) return r;
  r.multiplier = static_cast<int32_t>(fixed);
  r.shift = exponent;
  return r;
}

// gemmlowp's rounding doubling high multiply: (a * b + 2^30) / 2^31 with the
// nudge towards the sign, truncated towards zero, saturating the one overflow.
inline int32_t SaturatingRoundingDoublingHighMul(int32_t a, int32_t b) {
  const int32_t kMin = -2147483647 - 1;
  if (a == kMin && b == kMin) return 2147483647;
  const int64_t product = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = product >= 0 ? (static_cast<int64_t>(1) << 30) : 1 - (static_cast<int64_t>(1) << 30);
  // Division, not a shift: the quotient truncates towards zero, as gemmlowp's does.
  return static_cast<int32_t>((product + nudge) / (static_cast<int64_t>(1) << 31));
}

// x / 2^exponent rounded to nearest, ties away from zero; exponent in [0, 31].
inline int32_t RoundingDivideByPOT(int32_t x, int32_t exponent) {
  const int32_t mask = static_cast<int32_t>((static_cast<int64_t>(1) << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// TFLM's MultiplyByQuantizedMultiplier (double rounding): a left shift first,
// then the high multiply, then a rounding right shift. shift must lie in
// [-31, 30] (RequantSupported; others are clamped only to keep the shifts
// defined). Where TFLM's int32 left shift would overflow (undefined behaviour
// there; it wraps in practice), this one wraps, defined.
inline int32_t MultiplyByQuantizedMultiplier(int32_t x, int32_t multiplier, int32_t shift) {
  const int32_t left = shift > 0 ? (shift < 31 ? shift : 31) : 0;
  const int32_t right = shift > 0 ? 0 : (shift > -31 ? -shift : 31);
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left);
  return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(shifted, multiplier), right);
}

// Whether a Requant is one MultiplyByQuantizedMultiplier accepts; an op's
// Prepare refuses the others.
inline bool RequantSupported(const Requant& r) {
  return r.multiplier >= 0 && r.shift >= -31 && r.shift <= 30;
}

inline int32_t ClampInt32(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// TFLite's Quantize of one real value f as CalculateActivationRangeQuantized
// does it: zero_point + round(f / scale) in float. The rounded quotient is held
// in [-2^24, 2^24] first, so that no scale makes the cast undefined; the callers
// clamp to int8 anyway.
inline int32_t QuantizeActivationBound(float scale, int32_t zero_point, float f) {
  float q = roundf(f / scale);
  if (!(q >= -16777216.0f)) q = -16777216.0f;
  if (q > 16777216.0f) q = 16777216.0f;
  return zero_point + static_cast<int32_t>(q);
}

// TFLite's CalculateActivationRangeQuantized for an int8 output: [-128, 127]
// narrowed to the quantized 0 (RELU) and 6 (RELU6).
inline void Int8ActivationRange(FusedAct act, float output_scale, int32_t output_zero_point, int32_t* act_min,
                                int32_t* act_max) {
  *act_min = -128;
  *act_max = 127;
  if (act == FusedAct::kRelu || act == FusedAct::kRelu6) {
    const int32_t zero = QuantizeActivationBound(output_scale, output_zero_point, 0.0f);
    if (zero > *act_min) *act_min = zero;
  }
  if (act == FusedAct::kRelu6) {
    const int32_t six = QuantizeActivationBound(output_scale, output_zero_point, 6.0f);
    if (six < *act_max) *act_max = six;
  }
}

// PopulateConvolutionQuantizationParams (CONV_2D, DEPTHWISE_CONV_2D): per output
// channel, input_scale * filter_scale[c] / output_scale in double, each float
// widened first. num_filter_scales == 1 repeats the one scale (per tensor).
inline void ChannelMultipliers(float input_scale, const float* filter_scales, int32_t num_filter_scales,
                               float output_scale, int32_t channels, int32_t* multiplier, int32_t* shift) {
  for (int32_t c = 0; c < channels; ++c) {
    const float filter_scale = filter_scales[num_filter_scales == 1 ? 0 : c];
    const double effective =
        static_cast<double>(input_scale) * static_cast<double>(filter_scale) / static_cast<double>(output_scale);
    const Requant r = QuantizeMultiplier(effective);
    multiplier[c] = r.multiplier;
    shift[c] = r.shift;
  }
}

// FULLY_CONNECTED's multiplier (GetQuantizedConvolutionMultipler): unlike the
// convolutions, TFLM multiplies input_scale * filter_scale in FLOAT and only then
// divides in double, so the two can differ in the last bit of the multiplier.
// TFLM's FULLY_CONNECTED is per tensor: it reads the weights' first scale only.
inline Requant FullyConnectedMultiplier(float input_scale, float filter_scale, float output_scale) {
  const float product = input_scale * filter_scale;
  return QuantizeMultiplier(static_cast<double>(product) / static_cast<double>(output_scale));
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_QUANTIZATION_H_
