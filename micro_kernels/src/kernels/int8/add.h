// ADD of two int8 tensors of the same shape (no broadcast), as TFLite's
// reference integer kernel: both inputs are brought to a common scale (twice the
// larger input scale) with 20 bits of headroom, summed, and rescaled once.
#ifndef TFLM_TRAIN_KERNELS_INT8_ADD_H_
#define TFLM_TRAIN_KERNELS_INT8_ADD_H_

#include <stdint.h>

#include "kernels/int8/quantization.h"

namespace tflm_train {
namespace kernels {

struct AddInt8Params {
  int32_t input1_offset, input2_offset, output_offset, left_shift;
  int32_t input1_multiplier, input1_shift, input2_multiplier, input2_shift, output_multiplier, output_shift;
  int32_t act_min, act_max;
};

// The three real multipliers of an int8 ADD, in double as TFLM's Prepare forms
// them: scale_i / (2 * max input scale) and (2 * max input scale) / (2^20 *
// output scale).
inline void AddInt8RealMultipliers(float scale1, float scale2, float output_scale, int32_t left_shift,
                                   double* real1, double* real2, double* real_out) {
  const double twice_max_input_scale = 2.0 * static_cast<double>(scale1 > scale2 ? scale1 : scale2);
  *real1 = static_cast<double>(scale1) / twice_max_input_scale;
  *real2 = static_cast<double>(scale2) / twice_max_input_scale;
  *real_out = twice_max_input_scale /
              (static_cast<double>(static_cast<int32_t>(1) << left_shift) * static_cast<double>(output_scale));
}

// TFLM aborts in Prepare unless every multiplier lies in (0, 1) (its
// QuantizeMultiplierSmallerThanOneExp); an op refuses those scales first.
// Only the output multiplier can fail for positive finite scales: it needs
// 2 * max input scale < 2^20 * output scale.
inline bool AddInt8Supported(float scale1, float scale2, float output_scale) {
  double real1 = 0.0, real2 = 0.0, real_out = 0.0;
  AddInt8RealMultipliers(scale1, scale2, output_scale, 20, &real1, &real2, &real_out);
  return real1 > 0.0 && real1 < 1.0 && real2 > 0.0 && real2 < 1.0 && real_out > 0.0 && real_out < 1.0;
}

// As TFLM's ADD Prepare computes them for int8 (CalculateOpDataAdd).
// act_min/act_max come from Int8ActivationRange of the fused activation.
inline AddInt8Params PrepareAddInt8(float scale1, int32_t zero_point1, float scale2, int32_t zero_point2,
                                    float output_scale, int32_t output_zero_point, int32_t act_min,
                                    int32_t act_max) {
  AddInt8Params p;
  p.input1_offset = -zero_point1;
  p.input2_offset = -zero_point2;
  p.output_offset = output_zero_point;
  p.left_shift = 20;
  double real1 = 0.0, real2 = 0.0, real_out = 0.0;
  AddInt8RealMultipliers(scale1, scale2, output_scale, p.left_shift, &real1, &real2, &real_out);
  const Requant r1 = QuantizeMultiplier(real1);
  const Requant r2 = QuantizeMultiplier(real2);
  const Requant ro = QuantizeMultiplier(real_out);
  p.input1_multiplier = r1.multiplier;
  p.input1_shift = r1.shift;
  p.input2_multiplier = r2.multiplier;
  p.input2_shift = r2.shift;
  p.output_multiplier = ro.multiplier;
  p.output_shift = ro.shift;
  p.act_min = act_min;
  p.act_max = act_max;
  return p;
}

// The shifts are all <= 0 here, where MultiplyByQuantizedMultiplier is TFLite's
// MultiplyByQuantizedMultiplierSmallerThanOneExp.
inline void AddInt8(const AddInt8Params& p, const int8_t* a, const int8_t* b, int32_t n, int8_t* out) {
  for (int32_t i = 0; i < n; ++i) {
    const int32_t shifted1 = (p.input1_offset + a[i]) * (static_cast<int32_t>(1) << p.left_shift);
    const int32_t shifted2 = (p.input2_offset + b[i]) * (static_cast<int32_t>(1) << p.left_shift);
    const int32_t scaled1 = MultiplyByQuantizedMultiplier(shifted1, p.input1_multiplier, p.input1_shift);
    const int32_t scaled2 = MultiplyByQuantizedMultiplier(shifted2, p.input2_multiplier, p.input2_shift);
    const int32_t sum = scaled1 + scaled2;
    const int32_t result = MultiplyByQuantizedMultiplier(sum, p.output_multiplier, p.output_shift) + p.output_offset;
    out[i] = static_cast<int8_t>(ClampInt32(result, p.act_min, p.act_max));
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_INT8_ADD_H_
