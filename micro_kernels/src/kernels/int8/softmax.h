// SOFTMAX over the last axis of one int8 sample (`rows` rows of `depth` values),
// int8 in and int8 out, as TFLite's integer softmax computes it. TFLM's reference
// kernel and CMSIS-NN's arm_softmax_s8 (what TFLM's Arduino build runs) agree
// bit for bit, and so does this one (tests/test_int8_kernels.py):
//  - each value's difference to its row's maximum, times beta x input_scale,
//    becomes a fixed-point number with 5 integer bits (Q5.26) through one
//    multiplier with a left shift; differences below diff_min count as exp 0;
//  - exp of it in Q0.31 from gemmlowp's fixed-point method;
//  - the exps summed in Q12.19, the sum normalized to [1, 2) and inverted by
//    Newton-Raphson;
//  - each exp times that reciprocal, rounded to the output's steps of 1/256 and
//    offset by its zero point -128 (the only output quantization TFLM accepts).
#ifndef TFLM_TRAIN_KERNELS_INT8_SOFTMAX_H_
#define TFLM_TRAIN_KERNELS_INT8_SOFTMAX_H_

#include <stdint.h>

#include "kernels/int8/quantization.h"

namespace tflm_train {
namespace kernels {

struct SoftmaxInt8Params {
  int32_t input_multiplier;  // beta x input_scale x 2^26 as a significand ...
  int32_t input_left_shift;  // ... and a left shift in [1, 31]
  int32_t diff_min;          // smaller differences to the row's maximum give exp 0
};

// TFLM sums up to `depth` exps of at most 2^19 each in an int32, and shifts the
// final product right by 23 + log2 of the sum: past 511 values some rows would
// shift by 32 bits or more, which TFLM leaves undefined (each platform gives
// something else). Up to 511 every input is defined there, and matched here.
constexpr int32_t kSoftmaxInt8MaxDepth = 511;

// The real multiplier TFLM's Prepare derives (PreprocessSoftmaxScaling with 5
// integer bits): beta x input_scale in double, scaled by 2^26 (exact), capped at
// 2^31 - 1 (larger ones would only round every non-maximal value to 0 anyway).
inline double SoftmaxInt8RealMultiplier(float input_scale, float beta) {
  const double real = static_cast<double>(beta) * static_cast<double>(input_scale) * 67108864.0;
  const double cap = 2147483647.0;
  return cap < real ? cap : real;  // a NaN stays NaN, as with TFLM's std::min
}

// TFLM aborts in Prepare unless that multiplier exceeds 1 (a left shift), so
// beta x input_scale must exceed 2^-26; beta <= 0 fails too. See
// kSoftmaxInt8MaxDepth for the depth. An op refuses the rest first.
inline bool SoftmaxInt8Supported(float input_scale, float beta, int32_t depth) {
  return SoftmaxInt8RealMultiplier(input_scale, beta) > 1.0 && depth >= 1 && depth <= kSoftmaxInt8MaxDepth;
}

// TFLM's int8 -> int8 softmax requires an output scale of exactly 1/256 and a
// zero point of -128 (what TFLite's converter gives it): [0, 1) over the int8 range.
inline bool SoftmaxInt8OutputSupported(float output_scale, int32_t output_zero_point) {
  return output_scale == 1.0f / 256.0f && output_zero_point == -128;
}

// As TFLM's SOFTMAX Prepare computes them for int8 (CalculateSoftmaxParams).
inline SoftmaxInt8Params PrepareSoftmaxInt8(float input_scale, float beta) {
  SoftmaxInt8Params p;
  const Requant r = QuantizeMultiplier(SoftmaxInt8RealMultiplier(input_scale, beta));
  p.input_multiplier = r.multiplier;
  p.input_left_shift = r.shift;
  // Only differences whose rescaled magnitude stays below 31 (in Q5.26) are
  // taken: floor(31 x 2^26 / 2^shift), an exact integer shift here.
  const int32_t shift = r.shift < 0 ? 0 : (r.shift > 31 ? 31 : r.shift);
  p.diff_min = -((static_cast<int32_t>(31) << 26) >> shift);
  return p;
}

// x x 2^shift for a fixed-point value moved to `shift` fewer integer bits,
// saturated at the int32 limits as gemmlowp's rescale is (shift 1 or 2 here).
inline int32_t SoftmaxSaturatingShiftLeft(int32_t x, int32_t shift) {
  const int32_t limit = static_cast<int32_t>((static_cast<int64_t>(1) << (31 - shift)) - 1);
  if (x > limit) return 2147483647;
  if (x < -limit) return -2147483647 - 1;
  return static_cast<int32_t>(static_cast<uint32_t>(x) << shift);
}

// exp(a) for a <= 0 in Q5.26, as Q0.31 (exp(0) gives 2^31 - 1). a is split into
// r in [-1/4, 0) and a multiple of 1/4; exp(r) comes from a degree-4 Taylor
// polynomial around -1/8, then each set bit of the multiple multiplies in its
// exp(-2^k) constant, smallest first. None of the int32 sums can overflow for
// inputs in [-32, 0].
inline int32_t SoftmaxExpOnNegative(int32_t a) {
  if (a == 0) return 2147483647;
  const int32_t quarter = 1 << 24;  // 1/4 in Q5.26
  const int32_t r = (a & (quarter - 1)) - quarter;
  const int32_t whole_quarters = r - a;  // -(a - r) >= 0, a multiple of 1/4
  const int32_t exp_minus_one_eighth = 1895147668;  // exp(-1/8) in Q0.31
  const int32_t one_third = 715827883;              // 1/3 in Q0.31
  const int32_t x = r * 32 + (1 << 28);              // r + 1/8 in Q0.31
  const int32_t x2 = SaturatingRoundingDoublingHighMul(x, x);
  const int32_t x3 = SaturatingRoundingDoublingHighMul(x2, x);
  const int32_t x4 = SaturatingRoundingDoublingHighMul(x2, x2);
  // x^2/2 + x^3/6 + x^4/24 as ((x^4/4 + x^3) / 3 + x^2) / 2, each halving rounded.
  const int32_t higher_terms = RoundingDivideByPOT(
      SaturatingRoundingDoublingHighMul(RoundingDivideByPOT(x4, 2) + x3, one_third) + x2, 1);
  int32_t result = exp_minus_one_eighth + SaturatingRoundingDoublingHighMul(exp_minus_one_eighth, x + higher_terms);
  // exp(-1/4), exp(-1/2), exp(-1), ..., exp(-16) in Q0.31, for bits 24 .. 30.
  static const int32_t kExpOfMinusPowerOfTwo[7] = {1672461947, 1302514674, 790015084, 290630308,
                                                   39332535,   720401,     242};
  for (int32_t k = 0; k < 7; ++k) {
    if ((whole_quarters & (quarter << k)) != 0) {
      result = SaturatingRoundingDoublingHighMul(result, kExpOfMinusPowerOfTwo[k]);
    }
  }
  return result;
}

// 1 / (1 + x) for x in [0, 1) in Q0.31, as Q0.31. Newton-Raphson on the half
// denominator d = (1 + x) / 2 in [1/2, 1): from 48/17 - 32/17 d, three steps of
// e += e (1 - d e), in Q2.29; 1 / (1 + x) is then e / 2.
inline int32_t SoftmaxOneOverOnePlusX(int32_t x) {
  // (x + 1.0) / 2 with 1.0 as 2^31 - 1, rounded half away from zero.
  const int64_t sum = static_cast<int64_t>(x) + 2147483647;
  const int32_t half_denominator = static_cast<int32_t>((sum + (sum >= 0 ? 1 : -1)) / 2);
  int32_t e = 1515870810 + SaturatingRoundingDoublingHighMul(half_denominator, -1010580540);  // Q2.29
  for (int i = 0; i < 3; ++i) {
    const int32_t error = (1 << 29) - SaturatingRoundingDoublingHighMul(half_denominator, e);  // Q2.29
    // e x error lands in Q4.27: two bits left to return to Q2.29.
    e += SoftmaxSaturatingShiftLeft(SaturatingRoundingDoublingHighMul(e, error), 2);
  }
  // e / 2 in Q1.30 is e's raw value: one bit left to Q0.31.
  return SoftmaxSaturatingShiftLeft(e, 1);
}

// A difference to the row's maximum (diff_min <= diff <= 0), scaled to Q5.26.
// The left shift cannot overflow: diff_min bounds |diff| x 2^shift by 31 x 2^26.
inline int32_t SoftmaxScaledDiff(const SoftmaxInt8Params& p, int32_t diff) {
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(diff) << p.input_left_shift);
  return SaturatingRoundingDoublingHighMul(shifted, p.input_multiplier);
}

// out = softmax(beta x input_scale x in) row by row, as int8 with scale 1/256 and
// zero point -128. The input zero point cancels out in the differences.
// rows >= 0 and 1 <= depth <= kSoftmaxInt8MaxDepth (SoftmaxInt8Supported).
inline void SoftmaxInt8(const SoftmaxInt8Params& p, const int8_t* in, int32_t rows, int32_t depth, int8_t* out) {
  for (int32_t row = 0; row < rows; ++row) {
    const int8_t* x = in + row * depth;
    int8_t* y = out + row * depth;
    int32_t max_value = -128;
    for (int32_t c = 0; c < depth; ++c) {
      if (x[c] > max_value) max_value = x[c];
    }
    // The sum in Q12.19: each exp rounded from Q0.31 first, as TFLM adds them.
    int32_t sum = 0;
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = static_cast<int32_t>(x[c]) - max_value;
      if (diff >= p.diff_min) sum += RoundingDivideByPOT(SoftmaxExpOnNegative(SoftmaxScaledDiff(p, diff)), 12);
    }
    // The maximum itself adds 2^19 (exp 0), so sum >= 2^19: shift its top bit
    // to bit 31 (at most 12 places), i.e. sum = 2^bits_over_unit x (1 +
    // fraction), fraction in [0, 1). The bound only guards against bad params.
    int32_t headroom = 0;
    while (headroom < 12 && ((static_cast<uint32_t>(sum) << headroom) & 0x80000000u) == 0) ++headroom;
    const int32_t bits_over_unit = 12 - headroom;
    const int32_t fraction = static_cast<int32_t>((static_cast<uint32_t>(sum) << headroom) - 0x80000000u);
    const int32_t reciprocal = SoftmaxOneOverOnePlusX(fraction);  // 2^bits_over_unit / sum, Q0.31
    // exp x reciprocal in Q0.31, divided by 2^bits_over_unit and brought to
    // steps of 1/256: one rounding shift by bits_over_unit + 23 (<= 31 for
    // depth <= 511).
    const int32_t out_shift = bits_over_unit + 23;
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = static_cast<int32_t>(x[c]) - max_value;
      int32_t q = -128;
      if (diff >= p.diff_min) {
        const int32_t exp_value = SoftmaxExpOnNegative(SoftmaxScaledDiff(p, diff));
        q = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(reciprocal, exp_value), out_shift) - 128;
      }
      y[c] = static_cast<int8_t>(ClampInt32(q, -128, 127));
    }
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_SOFTMAX_H_
