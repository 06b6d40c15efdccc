// The int8 forward kernels (kernels/int8/) against TensorFlow Lite Micro's own
// reference integer kernels, byte for byte, on randomized shapes and
// quantization parameters. The parameters our Prepare helpers derive from the
// tensors' scales (multipliers, shifts, activation ranges, ADD's rescales) are
// compared with what TFLM's Prepare functions compute from TfLiteTensors.
//
// Built only when CMake is given -DTFLM_DIR=<TFLM's Arduino library folder>:
// the TFLM sources it calls are compiled where they lie (micro_kernels/CMakeLists.txt).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/kernels/internal/common.h"
#include "tensorflow/lite/kernels/internal/quantization_util.h"
#include "tensorflow/lite/kernels/internal/reference/dequantize.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/add.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/pooling.h"
#include "tensorflow/lite/kernels/internal/reference/pad.h"
#include "tensorflow/lite/kernels/internal/reference/quantize.h"
#include "tensorflow/lite/kernels/internal/reference/reduce.h"
#include "tensorflow/lite/kernels/internal/reference/requantize.h"
#include "tensorflow/lite/kernels/internal/reference/softmax.h"
#include "tensorflow/lite/kernels/internal/types.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/add.h"
#include "tensorflow/lite/micro/kernels/fully_connected.h"
#include "tensorflow/lite/micro/kernels/softmax.h"
#include "third_party/cmsis_nn/Include/arm_nnfunctions.h"

#include "kernels/int8/add.h"
#include "kernels/int8/conv_2d.h"
#include "kernels/int8/depthwise_conv_2d.h"
#include "kernels/int8/fully_connected.h"
#include "kernels/int8/mean.h"
#include "kernels/int8/pad.h"
#include "kernels/int8/pooling.h"
#include "kernels/int8/quantization.h"
#include "kernels/int8/quantize.h"
#include "kernels/int8/softmax.h"
#include "test_harness.h"

namespace kernels = tflm_train::kernels;
using kernels::FusedAct;
using test::Lcg;

namespace {

constexpr int kCases = 1500;  // random cases per kernel

// ---- random parameters ----------------------------------------------------

float LogUniform(Lcg& rng, float lo, float hi) {
  return expf(rng.Uniform(logf(lo), logf(hi)));
}

FusedAct RandomAct(Lcg& rng) {
  const int a = rng.Int(0, 2);
  return a == 0 ? FusedAct::kNone : (a == 1 ? FusedAct::kRelu : FusedAct::kRelu6);
}

TfLiteFusedActivation TfLiteAct(FusedAct act) {
  switch (act) {
    case FusedAct::kRelu: return kTfLiteActRelu;
    case FusedAct::kRelu6: return kTfLiteActRelu6;
    default: return kTfLiteActNone;
  }
}

std::vector<int8_t> RandomInt8(Lcg& rng, size_t n) {
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(rng.Int(-128, 127));
  return v;
}

// Weights as a quantizer makes them: symmetric, within [-127, 127].
std::vector<int8_t> RandomWeights(Lcg& rng, size_t n) {
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(rng.Int(-127, 127));
  return v;
}

// An output scale that keeps most outputs inside int8 for an accumulator over
// `taps` products (sometimes one that makes the multiplier exceed 1, a left shift).
float RandomOutputScale(Lcg& rng, float input_scale, float filter_scale, int taps) {
  const float acc_spread = 74.0f * 73.0f * sqrtf(static_cast<float>(taps));
  if (rng.Int(0, 19) == 0) return input_scale * filter_scale * rng.Uniform(0.05f, 0.9f);
  return input_scale * filter_scale * acc_spread / rng.Uniform(8.0f, 200.0f);
}

std::vector<int32_t> RandomBias(Lcg& rng, size_t n) {
  std::vector<int32_t> v(n);
  const int32_t span = rng.Coin() ? 3000 : 200000;
  for (auto& x : v) x = rng.Int(-span, span);
  return v;
}

// A TFLite geometry: SAME or VALID output size and the leading padding
// ComputePaddingHeightWidth gives (total padding / 2).
kernels::ConvShape RandomShape(Lcg& rng, bool depthwise, bool pooling) {
  kernels::ConvShape s{};
  s.in_h = rng.Int(1, 9);
  s.in_w = rng.Int(1, 9);
  const int c_kind = rng.Int(0, 3);
  s.in_c = c_kind == 0 ? 1 : (c_kind == 3 ? rng.Int(9, 20) : rng.Int(2, 8));
  s.depth_multiplier = depthwise ? rng.Int(1, 3) : 1;
  s.out_c = depthwise ? s.in_c * s.depth_multiplier : (pooling ? s.in_c : rng.Int(1, 12));
  s.filter_h = rng.Int(1, pooling ? 4 : 5);
  s.filter_w = rng.Int(1, pooling ? 4 : 5);
  s.stride_h = rng.Int(1, pooling ? 3 : 2);
  s.stride_w = rng.Int(1, pooling ? 3 : 2);
  s.dilation_h = pooling ? 1 : rng.Int(1, 2);
  s.dilation_w = pooling ? 1 : rng.Int(1, 2);
  const int32_t eff_h = (s.filter_h - 1) * s.dilation_h + 1, eff_w = (s.filter_w - 1) * s.dilation_w + 1;
  const bool same = rng.Coin() || eff_h > s.in_h || eff_w > s.in_w;
  if (same) {
    s.out_h = (s.in_h + s.stride_h - 1) / s.stride_h;
    s.out_w = (s.in_w + s.stride_w - 1) / s.stride_w;
    const int32_t total_h = (s.out_h - 1) * s.stride_h + eff_h - s.in_h;
    const int32_t total_w = (s.out_w - 1) * s.stride_w + eff_w - s.in_w;
    s.pad_top = total_h > 0 ? total_h / 2 : 0;
    s.pad_left = total_w > 0 ? total_w / 2 : 0;
  } else {
    s.out_h = (s.in_h - eff_h) / s.stride_h + 1;
    s.out_w = (s.in_w - eff_w) / s.stride_w + 1;
  }
  return s;
}

// ---- TFLite tensors for TFLM's Prepare functions --------------------------

void ReportError(TfLiteContext*, const char* format, ...) {
  printf("    TFLM reported an error: %s\n", format);
}

// Storage for TfLiteIntArray / TfLiteFloatArray (a size then flexible data).
struct IntArray {
  int size;
  int data[64];
};
struct FloatArray {
  int size;
  float data[64];
};

// One quantized tensor as the micro allocator leaves it: params.scale is the
// first scale of its affine quantization.
struct QTensor {
  TfLiteTensor t;
  TfLiteAffineQuantization affine;
  FloatArray scales;
  IntArray zero_points;
  IntArray dims;

  QTensor(TfLiteType type, const float* scale, int num_scales, int32_t zero_point, int quantized_dimension = 0) {
    memset(&t, 0, sizeof(t));
    scales.size = num_scales;
    for (int i = 0; i < num_scales; ++i) scales.data[i] = scale[i];
    zero_points.size = num_scales;
    for (int i = 0; i < num_scales; ++i) zero_points.data[i] = zero_point;
    dims.size = 1;
    dims.data[0] = 1;
    affine.scale = reinterpret_cast<TfLiteFloatArray*>(&scales);
    affine.zero_point = reinterpret_cast<TfLiteIntArray*>(&zero_points);
    affine.quantized_dimension = quantized_dimension;
    t.type = type;
    t.params.scale = scale[0];
    t.params.zero_point = zero_point;
    t.quantization.type = kTfLiteAffineQuantization;
    t.quantization.params = &affine;
    t.dims = reinterpret_cast<TfLiteIntArray*>(&dims);
  }
  void SetDims(std::initializer_list<int> d) {
    dims.size = static_cast<int>(d.size());
    int i = 0;
    for (int v : d) dims.data[i++] = v;
  }
};

TfLiteContext MakeContext() {
  TfLiteContext context;
  memset(&context, 0, sizeof(context));
  context.ReportError = ReportError;
  return context;
}

// TFLM's CalculateActivationRangeQuantized for an int8 output.
bool TflmActivationRange(FusedAct act, float scale, int32_t zero_point, int32_t* act_min, int32_t* act_max) {
  TfLiteContext context = MakeContext();
  QTensor output(kTfLiteInt8, &scale, 1, zero_point);
  return tflite::CalculateActivationRangeQuantized(&context, TfLiteAct(act), &output.t, act_min, act_max) ==
         kTfLiteOk;
}

// TFLM's RuntimeShape takes its dimensions from an array.
tflite::RuntimeShape Shape4(int32_t a, int32_t b, int32_t c, int32_t d) {
  const int32_t dims[4] = {a, b, c, d};
  return tflite::RuntimeShape(4, dims);
}
tflite::RuntimeShape Shape2(int32_t a, int32_t b) {
  const int32_t dims[2] = {a, b};
  return tflite::RuntimeShape(2, dims);
}
tflite::RuntimeShape Shape1(int32_t a) { return tflite::RuntimeShape(1, &a); }

bool SameBytes(const std::vector<int8_t>& a, const std::vector<int8_t>& b) {
  return a.size() == b.size() && memcmp(a.data(), b.data(), a.size()) == 0;
}

int FirstDifference(const std::vector<int8_t>& a, const std::vector<int8_t>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i] != b[i]) return static_cast<int>(i);
  }
  return -1;
}

void Report(const char* kernel, int cases) {
  printf("  %s: %d cases byte-identical to TFLM\n", kernel, cases);
}

}  // namespace

// ---- the arithmetic ------------------------------------------------------------

TEST(QuantizeMultiplierMatchesTflm) {
  std::vector<double> values = {0.0, 1.0, 0.5, 0.25, 2.0, 0.75, 1.5, 1e-3, 1e-6, 1e-9, 1e-10, 3.0e-10,
                                4.0e-10, 4.6e-10, 4.7e-10, 1e-12, 1e-300, 1e20, 65536.0, 123456.789,
                                ldexp(1.0, -31), ldexp(1.0, -32), ldexp(1.0, -33), ldexp(0.75, -31),
                                ldexp(0.9999999999, -31), ldexp(1.0, -31) * (1.0 - 1e-12), 1.0 - 1e-10,
                                1.0 - ldexp(1.0, -33), 1.0 - ldexp(1.0, -32), 1.0 - ldexp(1.0, -31),
                                0.5 + ldexp(1.0, -33), 0.5 - ldexp(1.0, -34), -0.3, -1.0, -1.0 + 1e-12,
                                -ldexp(1.0, -32)};
  Lcg rng(11);
  for (int i = 0; i < 20000; ++i) {
    // Log-uniform over 2^-40 .. 2^12, and significands next to the rounding edges.
    const double e = static_cast<double>(rng.Int(-40, 12));
    double v = ldexp(0.5 + 0.5 * rng.Next() / 2147483648.0, static_cast<int>(e));
    if (rng.Int(0, 3) == 0) v = ldexp(1.0 - ldexp(static_cast<double>(rng.Int(1, 4096)), -44), static_cast<int>(e));
    values.push_back(v);
  }
  int compared = 0;
  for (double v : values) {
    int32_t tflm_multiplier = 0;
    int tflm_shift = 0;
    tflite::QuantizeMultiplier(v, &tflm_multiplier, &tflm_shift);
    const kernels::Requant ours = kernels::QuantizeMultiplier(v);
    CHECK_MSG(ours.multiplier == tflm_multiplier && ours.shift == tflm_shift,
              "QuantizeMultiplier(%.17g): ours (%d, %d), TFLM (%d, %d)", v, ours.multiplier, ours.shift,
              tflm_multiplier, tflm_shift);
    ++compared;
  }
  Report("QuantizeMultiplier", compared);
}

TEST(MultiplyByQuantizedMultiplierMatchesTflm) {
  const int32_t kMin = -2147483647 - 1, kMax = 2147483647;
  const int32_t xs[] = {0, 1, -1, 2, -2, 3, -3, 127, -128, 255, -255, 1 << 15, -(1 << 15), 1 << 20, -(1 << 20),
                        (1 << 30) - 1, -(1 << 30), kMax, kMin, kMin + 1, kMax - 1, 12345678, -12345678};
  const int32_t multipliers[] = {0, 1, 2, 1 << 30, (1 << 30) + 1, kMax, kMax - 1, 1518500250, 1431655765,
                                 1840700269, 1073741823, -1, -(1 << 30), kMin + 1};
  int compared = 0;
  for (int32_t x : xs) {
    for (int32_t m : multipliers) {
      for (int32_t shift = -31; shift <= 30; ++shift) {
        // TFLM shifts left in int32: only inputs whose shifted value fits are defined behaviour there.
        const int64_t shifted = static_cast<int64_t>(x) * (static_cast<int64_t>(1) << (shift > 0 ? shift : 0));
        if (shifted > kMax || shifted < kMin) continue;
        const int32_t ours = kernels::MultiplyByQuantizedMultiplier(x, m, shift);
        const int32_t tflm = tflite::MultiplyByQuantizedMultiplier(x, m, static_cast<int>(shift));
        CHECK_MSG(ours == tflm, "x=%d m=%d shift=%d: ours %d, TFLM %d", x, m, shift, ours, tflm);
        ++compared;
      }
    }
  }
  Lcg rng(12);
  for (int i = 0; i < 200000; ++i) {
    const int32_t shift = rng.Int(-31, 8);
    int32_t x = static_cast<int32_t>(rng.Next() ^ (rng.Next() << 1));
    if (shift > 0) x >>= shift;  // keep x * 2^shift inside int32
    const int32_t m = (1 << 30) + static_cast<int32_t>(rng.Next() >> 1);
    const int32_t ours = kernels::MultiplyByQuantizedMultiplier(x, m, shift);
    const int32_t tflm = tflite::MultiplyByQuantizedMultiplier(x, m, static_cast<int>(shift));
    CHECK_MSG(ours == tflm, "x=%d m=%d shift=%d: ours %d, TFLM %d", x, m, shift, ours, tflm);
    ++compared;
  }
  Report("MultiplyByQuantizedMultiplier", compared);
}

TEST(ActivationRangeMatchesTflm) {
  Lcg rng(13);
  int compared = 0;
  for (int i = 0; i < 30000; ++i) {
    const FusedAct act = RandomAct(rng);
    // Some scales put 6.0 exactly half-way between two quantized values.
    float scale = LogUniform(rng, 1e-3f, 0.5f);
    if (rng.Int(0, 4) == 0) scale = 6.0f / (static_cast<float>(rng.Int(1, 200)) + 0.5f);
    const int32_t zero_point = rng.Int(-128, 127);
    int32_t tflm_min = 0, tflm_max = 0, our_min = 0, our_max = 0;
    CHECK(TflmActivationRange(act, scale, zero_point, &tflm_min, &tflm_max));
    kernels::Int8ActivationRange(act, scale, zero_point, &our_min, &our_max);
    CHECK_MSG(our_min == tflm_min && our_max == tflm_max, "act %d scale %.9g zp %d: ours [%d, %d], TFLM [%d, %d]",
              static_cast<int>(act), static_cast<double>(scale), zero_point, our_min, our_max, tflm_min, tflm_max);
    ++compared;
  }
  Report("Int8ActivationRange", compared);
}

// ChannelMultipliers against PopulateConvolutionQuantizationParams, per tensor
// and per channel; FullyConnectedMultiplier against CalculateOpDataFullyConnected.
TEST(PrepareMultipliersMatchTflm) {
  Lcg rng(14);
  int compared = 0, fc_compared = 0, fc_conv_style_differs = 0;
  for (int i = 0; i < 4000; ++i) {
    const int channels = rng.Int(1, 64);
    const bool per_channel = rng.Coin() && channels > 1;
    float filter_scales[64];
    for (int c = 0; c < channels; ++c) filter_scales[c] = LogUniform(rng, 1e-4f, 0.05f);
    const float input_scale = LogUniform(rng, 1e-3f, 0.5f);
    const float output_scale = RandomOutputScale(rng, input_scale, filter_scales[0], rng.Int(1, 300));
    const int32_t input_zp = rng.Int(-128, 127), output_zp = rng.Int(-128, 127);
    const FusedAct act = RandomAct(rng);
    const int num_scales = per_channel ? channels : 1;

    TfLiteContext context = MakeContext();
    QTensor input(kTfLiteInt8, &input_scale, 1, input_zp);
    QTensor filter(kTfLiteInt8, filter_scales, num_scales, 0, 0);
    filter.SetDims({channels, 1, 1, 1});
    QTensor output(kTfLiteInt8, &output_scale, 1, output_zp);
    int32_t tflm_multiplier[64], tflm_shift[64], unused_multiplier = 0;
    int unused_shift = 0, tflm_min = 0, tflm_max = 0;
    const TfLiteFusedActivation tfl_act = TfLiteAct(act);
    CHECK(tflite::PopulateConvolutionQuantizationParams(&context, &input.t, &filter.t, nullptr, &output.t, tfl_act,
                                                        &unused_multiplier, &unused_shift, &tflm_min, &tflm_max,
                                                        tflm_multiplier, tflm_shift, channels) == kTfLiteOk);
    int32_t multiplier[64], shift[64];
    kernels::ChannelMultipliers(input_scale, filter_scales, num_scales, output_scale, channels, multiplier, shift);
    for (int c = 0; c < channels; ++c) {
      CHECK_MSG(multiplier[c] == tflm_multiplier[c] && shift[c] == tflm_shift[c],
                "channel %d: ours (%d, %d), TFLM (%d, %d)", c, multiplier[c], shift[c], tflm_multiplier[c],
                tflm_shift[c]);
    }
    int32_t act_min = 0, act_max = 0;
    kernels::Int8ActivationRange(act, output_scale, output_zp, &act_min, &act_max);
    CHECK(act_min == tflm_min && act_max == tflm_max);
    ++compared;

    // FULLY_CONNECTED (per tensor), with a bias whose scale is input * filter scale.
    const float bias_scale = input_scale * filter_scales[0];
    QTensor bias(kTfLiteInt32, &bias_scale, 1, 0);
    tflite::OpDataFullyConnected fc;
    memset(&fc, 0, sizeof(fc));
    CHECK(tflite::CalculateOpDataFullyConnected(&context, tfl_act, kTfLiteInt8, &input.t, &filter.t, &bias.t,
                                                &output.t, &fc) == kTfLiteOk);
    const kernels::Requant ours = kernels::FullyConnectedMultiplier(input_scale, filter_scales[0], output_scale);
    CHECK_MSG(ours.multiplier == fc.output_multiplier && ours.shift == fc.output_shift,
              "FC: ours (%d, %d), TFLM (%d, %d)", ours.multiplier, ours.shift, fc.output_multiplier,
              fc.output_shift);
    CHECK(fc.output_activation_min == tflm_min && fc.output_activation_max == tflm_max);
    if (multiplier[0] != fc.output_multiplier || shift[0] != fc.output_shift) ++fc_conv_style_differs;
    ++fc_compared;
  }
  Report("ChannelMultipliers (PopulateConvolutionQuantizationParams)", compared);
  Report("FullyConnectedMultiplier (CalculateOpDataFullyConnected)", fc_compared);
  printf("  (the conv-style double product would have given another FC multiplier in %d of %d cases)\n",
         fc_conv_style_differs, fc_compared);
}

// ---- the kernels -----------------------------------------------------------------

TEST(FullyConnectedInt8MatchesTflm) {
  Lcg rng(21);
  int compared = 0;
  for (int i = 0; i < kCases; ++i) {
    const int32_t n_in = rng.Int(0, 3) == 0 ? 1 : rng.Int(2, 300);
    const int32_t n_out = rng.Int(1, 40);
    const float input_scale = LogUniform(rng, 1e-3f, 0.5f), filter_scale = LogUniform(rng, 1e-4f, 0.05f);
    const float output_scale = RandomOutputScale(rng, input_scale, filter_scale, n_in);
    const int32_t input_zp = rng.Int(-128, 127), output_zp = rng.Int(-128, 127);
    const FusedAct act = RandomAct(rng);
    const bool with_bias = rng.Int(0, 4) != 0;
    const std::vector<int8_t> in = RandomInt8(rng, static_cast<size_t>(n_in));
    const std::vector<int8_t> w = RandomWeights(rng, static_cast<size_t>(n_in * n_out));
    const std::vector<int32_t> bias = RandomBias(rng, static_cast<size_t>(n_out));

    const kernels::Requant r = kernels::FullyConnectedMultiplier(input_scale, filter_scale, output_scale);
    int32_t act_min = 0, act_max = 0;
    kernels::Int8ActivationRange(act, output_scale, output_zp, &act_min, &act_max);
    std::vector<int32_t> multiplier(static_cast<size_t>(n_out), r.multiplier), shift(static_cast<size_t>(n_out), r.shift);
    std::vector<int8_t> ours(static_cast<size_t>(n_out)), tflm(static_cast<size_t>(n_out));
    kernels::FullyConnectedInt8(in.data(), n_in, -input_zp, w.data(), with_bias ? bias.data() : nullptr, n_out,
                                multiplier.data(), shift.data(), output_zp, act_min, act_max, ours.data());

    // TFLM's FULLY_CONNECTED kernel: the per-tensor reference path.
    tflite::FullyConnectedParams params{};
    params.input_offset = -input_zp;
    params.weights_offset = 0;
    params.output_offset = output_zp;
    params.output_multiplier = r.multiplier;
    params.output_shift = r.shift;
    params.quantized_activation_min = act_min;
    params.quantized_activation_max = act_max;
    tflite::reference_integer_ops::FullyConnected(
        params, Shape2(1, n_in), in.data(), Shape2(n_out, n_in), w.data(),
        Shape1(n_out), with_bias ? bias.data() : nullptr, Shape2(1, n_out),
        tflm.data());
    CHECK_MSG(SameBytes(ours, tflm), "case %d (per tensor): first difference at %d", i, FirstDifference(ours, tflm));

    // And the per-channel reference function with distinct per-output multipliers.
    for (int32_t o = 0; o < n_out; ++o) {
      const kernels::Requant ro =
          kernels::QuantizeMultiplier(static_cast<double>(input_scale) * LogUniform(rng, 1e-4f, 0.05f) /
                                      static_cast<double>(output_scale));
      multiplier[static_cast<size_t>(o)] = ro.multiplier;
      shift[static_cast<size_t>(o)] = ro.shift;
    }
    kernels::FullyConnectedInt8(in.data(), n_in, -input_zp, w.data(), with_bias ? bias.data() : nullptr, n_out,
                                multiplier.data(), shift.data(), output_zp, act_min, act_max, ours.data());
    tflite::reference_integer_ops::FullyConnectedPerChannel(
        params, multiplier.data(), shift.data(), Shape2(1, n_in), in.data(),
        Shape2(n_out, n_in), w.data(), Shape1(n_out),
        with_bias ? bias.data() : nullptr, Shape2(1, n_out), tflm.data());
    CHECK_MSG(SameBytes(ours, tflm), "case %d (per channel): first difference at %d", i, FirstDifference(ours, tflm));
    compared += 2;
  }
  Report("FullyConnectedInt8", compared);
}

// CONV_2D and DEPTHWISE_CONV_2D share the set-up: the TFLM params struct differs.
static void CompareConvolution(bool depthwise, uint64_t seed, int* compared) {
  Lcg rng(seed);
  for (int i = 0; i < kCases; ++i) {
    const kernels::ConvShape s = RandomShape(rng, depthwise, false);
    const int32_t taps = s.filter_h * s.filter_w * (depthwise ? 1 : s.in_c);
    const bool per_channel = rng.Int(0, 3) != 0;
    std::vector<float> filter_scales(static_cast<size_t>(s.out_c));
    for (auto& f : filter_scales) f = LogUniform(rng, 1e-4f, 0.05f);
    const float input_scale = LogUniform(rng, 1e-3f, 0.5f);
    const float output_scale = RandomOutputScale(rng, input_scale, filter_scales[0], taps);
    const int32_t input_zp = rng.Int(-128, 127), output_zp = rng.Int(-128, 127);
    const FusedAct act = RandomAct(rng);
    const bool with_bias = rng.Int(0, 4) != 0;
    const size_t n_in = static_cast<size_t>(s.in_h * s.in_w * s.in_c);
    const size_t n_out = static_cast<size_t>(s.out_h * s.out_w * s.out_c);
    const size_t n_w = static_cast<size_t>(s.filter_h * s.filter_w * s.out_c * (depthwise ? 1 : s.in_c));
    const std::vector<int8_t> in = RandomInt8(rng, n_in);
    const std::vector<int8_t> w = RandomWeights(rng, n_w);
    const std::vector<int32_t> bias = RandomBias(rng, static_cast<size_t>(s.out_c));

    std::vector<int32_t> multiplier(static_cast<size_t>(s.out_c)), shift(static_cast<size_t>(s.out_c));
    kernels::ChannelMultipliers(input_scale, filter_scales.data(), per_channel ? s.out_c : 1, output_scale, s.out_c,
                                multiplier.data(), shift.data());
    int32_t act_min = 0, act_max = 0;
    kernels::Int8ActivationRange(act, output_scale, output_zp, &act_min, &act_max);
    std::vector<int8_t> ours(n_out), tflm(n_out);
    const int32_t* b = with_bias ? bias.data() : nullptr;
    const tflite::RuntimeShape in_shape = Shape4(1, s.in_h, s.in_w, s.in_c);
    const tflite::RuntimeShape out_shape = Shape4(1, s.out_h, s.out_w, s.out_c);
    const tflite::RuntimeShape bias_shape = Shape1(s.out_c);
    if (depthwise) {
      kernels::DepthwiseConv2DInt8(s, in.data(), -input_zp, w.data(), b, multiplier.data(), shift.data(), output_zp,
                                   act_min, act_max, ours.data());
      tflite::DepthwiseParams p{};
      p.padding_type = tflite::PaddingType::kSame;
      p.padding_values.height = static_cast<int16_t>(s.pad_top);
      p.padding_values.width = static_cast<int16_t>(s.pad_left);
      p.stride_height = static_cast<int16_t>(s.stride_h);
      p.stride_width = static_cast<int16_t>(s.stride_w);
      p.dilation_height_factor = static_cast<int16_t>(s.dilation_h);
      p.dilation_width_factor = static_cast<int16_t>(s.dilation_w);
      p.depth_multiplier = static_cast<int16_t>(s.depth_multiplier);
      p.input_offset = -input_zp;
      p.output_offset = output_zp;
      p.quantized_activation_min = act_min;
      p.quantized_activation_max = act_max;
      tflite::reference_integer_ops::DepthwiseConvPerChannel(
          p, multiplier.data(), shift.data(), in_shape, in.data(), Shape4(1, s.filter_h, s.filter_w, s.out_c),
          w.data(), bias_shape, b, out_shape, tflm.data());
    } else {
      kernels::Conv2DInt8(s, in.data(), -input_zp, w.data(), b, multiplier.data(), shift.data(), output_zp, act_min,
                          act_max, ours.data());
      tflite::ConvParams p{};
      p.padding_type = tflite::PaddingType::kSame;
      p.padding_values.height = static_cast<int16_t>(s.pad_top);
      p.padding_values.width = static_cast<int16_t>(s.pad_left);
      p.stride_height = static_cast<int16_t>(s.stride_h);
      p.stride_width = static_cast<int16_t>(s.stride_w);
      p.dilation_height_factor = static_cast<int16_t>(s.dilation_h);
      p.dilation_width_factor = static_cast<int16_t>(s.dilation_w);
      p.input_offset = -input_zp;
      p.output_offset = output_zp;
      p.quantized_activation_min = act_min;
      p.quantized_activation_max = act_max;
      tflite::reference_integer_ops::ConvPerChannel(p, multiplier.data(), shift.data(), in_shape, in.data(),
                                                    Shape4(s.out_c, s.filter_h, s.filter_w, s.in_c), w.data(),
                                                    bias_shape, b, out_shape, tflm.data());
    }
    CHECK_MSG(SameBytes(ours, tflm),
              "case %d: in %dx%dx%d out %dx%dx%d filter %dx%d stride %d,%d dilation %d,%d pad %d,%d mult %d: "
              "first difference at %d",
              i, s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c, s.filter_h, s.filter_w, s.stride_h, s.stride_w,
              s.dilation_h, s.dilation_w, s.pad_top, s.pad_left, s.depth_multiplier, FirstDifference(ours, tflm));
    ++*compared;
  }
}

TEST(Conv2DInt8MatchesTflm) {
  int compared = 0;
  CompareConvolution(false, 31, &compared);
  Report("Conv2DInt8", compared);
}

TEST(DepthwiseConv2DInt8MatchesTflm) {
  int compared = 0;
  CompareConvolution(true, 32, &compared);
  Report("DepthwiseConv2DInt8", compared);
}

TEST(PoolingInt8MatchesTflm) {
  Lcg rng(41);
  int compared_avg = 0, compared_max = 0;
  for (int i = 0; i < kCases; ++i) {
    const kernels::ConvShape s = RandomShape(rng, false, true);
    const float scale = LogUniform(rng, 1e-3f, 0.5f);
    const int32_t zero_point = rng.Int(-128, 127);
    const FusedAct act = RandomAct(rng);
    int32_t act_min = 0, act_max = 0;
    kernels::Int8ActivationRange(act, scale, zero_point, &act_min, &act_max);
    const std::vector<int8_t> in = RandomInt8(rng, static_cast<size_t>(s.in_h * s.in_w * s.in_c));
    const size_t n_out = static_cast<size_t>(s.out_h * s.out_w * s.out_c);
    tflite::PoolParams p{};
    p.padding_type = tflite::PaddingType::kSame;
    p.padding_values.height = static_cast<int16_t>(s.pad_top);
    p.padding_values.width = static_cast<int16_t>(s.pad_left);
    p.stride_height = s.stride_h;
    p.stride_width = s.stride_w;
    p.filter_height = s.filter_h;
    p.filter_width = s.filter_w;
    p.quantized_activation_min = act_min;
    p.quantized_activation_max = act_max;
    const tflite::RuntimeShape in_shape = Shape4(1, s.in_h, s.in_w, s.in_c);
    const tflite::RuntimeShape out_shape = Shape4(1, s.out_h, s.out_w, s.out_c);
    std::vector<int8_t> ours(n_out), tflm(n_out);

    kernels::AveragePoolInt8(s, in.data(), act_min, act_max, ours.data());
    CHECK(tflite::reference_integer_ops::AveragePool(p, in_shape, in.data(), out_shape, tflm.data()));
    CHECK_MSG(SameBytes(ours, tflm), "average case %d: first difference at %d", i, FirstDifference(ours, tflm));
    ++compared_avg;

    kernels::MaxPoolInt8(s, in.data(), act_min, act_max, ours.data());
    tflite::reference_integer_ops::MaxPool(p, in_shape, in.data(), out_shape, tflm.data());
    CHECK_MSG(SameBytes(ours, tflm), "max case %d: first difference at %d", i, FirstDifference(ours, tflm));
    ++compared_max;
  }
  Report("AveragePoolInt8", compared_avg);
  Report("MaxPoolInt8", compared_max);
}

TEST(AddInt8MatchesTflm) {
  Lcg rng(51);
  int compared = 0;
  for (int i = 0; i < kCases; ++i) {
    const int32_t n = rng.Int(1, 400);
    const float scale1 = LogUniform(rng, 1e-3f, 0.5f);
    const int scale_kind = rng.Int(0, 3);  // equal scales, a power-of-two ratio, or unrelated ones
    const float scale2 = scale_kind == 0 ? scale1 : (scale_kind == 1 ? scale1 * 2.0f : LogUniform(rng, 1e-3f, 0.5f));
    const float output_scale = (scale1 > scale2 ? scale1 : scale2) * rng.Uniform(0.3f, 3.0f);
    const int32_t zp1 = rng.Int(-128, 127), zp2 = rng.Int(-128, 127), output_zp = rng.Int(-128, 127);
    const FusedAct act = RandomAct(rng);
    const std::vector<int8_t> a = RandomInt8(rng, static_cast<size_t>(n)), b = RandomInt8(rng, static_cast<size_t>(n));

    int32_t act_min = 0, act_max = 0;
    kernels::Int8ActivationRange(act, output_scale, output_zp, &act_min, &act_max);
    CHECK(kernels::AddInt8Supported(scale1, scale2, output_scale));
    const kernels::AddInt8Params ours_p =
        kernels::PrepareAddInt8(scale1, zp1, scale2, zp2, output_scale, output_zp, act_min, act_max);

    // TFLM's ADD Prepare on the same tensors.
    TfLiteContext context = MakeContext();
    QTensor in1(kTfLiteInt8, &scale1, 1, zp1), in2(kTfLiteInt8, &scale2, 1, zp2), out(kTfLiteInt8, &output_scale, 1,
                                                                                           output_zp);
    in1.SetDims({1, n});
    in2.SetDims({1, n});
    out.SetDims({1, n});
    TfLiteAddParams add_params{};
    add_params.activation = TfLiteAct(act);
    tflite::OpDataAdd data;
    memset(&data, 0, sizeof(data));
    CHECK(tflite::CalculateOpDataAdd(&context, &add_params, &in1.t, &in2.t, &out.t, &data) == kTfLiteOk);
    CHECK(!data.requires_broadcast);
    CHECK(ours_p.input1_offset == data.input1_offset && ours_p.input2_offset == data.input2_offset &&
          ours_p.output_offset == data.output_offset && ours_p.left_shift == data.left_shift);
    CHECK_MSG(ours_p.input1_multiplier == data.input1_multiplier && ours_p.input1_shift == data.input1_shift &&
                  ours_p.input2_multiplier == data.input2_multiplier && ours_p.input2_shift == data.input2_shift &&
                  ours_p.output_multiplier == data.output_multiplier && ours_p.output_shift == data.output_shift,
              "case %d: multipliers differ from TFLM's Prepare", i);
    CHECK(ours_p.act_min == data.output_activation_min && ours_p.act_max == data.output_activation_max);

    tflite::ArithmeticParams p{};
    p.input1_offset = data.input1_offset;
    p.input2_offset = data.input2_offset;
    p.output_offset = data.output_offset;
    p.left_shift = data.left_shift;
    p.input1_multiplier = data.input1_multiplier;
    p.input1_shift = data.input1_shift;
    p.input2_multiplier = data.input2_multiplier;
    p.input2_shift = data.input2_shift;
    p.output_multiplier = data.output_multiplier;
    p.output_shift = data.output_shift;
    p.quantized_activation_min = data.output_activation_min;
    p.quantized_activation_max = data.output_activation_max;
    std::vector<int8_t> ours(static_cast<size_t>(n)), tflm(static_cast<size_t>(n));
    kernels::AddInt8(ours_p, a.data(), b.data(), n, ours.data());
    tflite::reference_integer_ops::Add(p, Shape2(1, n), a.data(), Shape2(1, n),
                                       b.data(), Shape2(1, n), tflm.data());
    CHECK_MSG(SameBytes(ours, tflm), "case %d: first difference at %d", i, FirstDifference(ours, tflm));
    ++compared;
  }
  Report("AddInt8 (and PrepareAddInt8 against CalculateOpDataAdd)", compared);
}

// TFLM's int8 MEAN (reduce_common.cc, EvalIntegerMean): the integer Mean when
// input and output share scale and zero point, else QuantizedMeanOrSum.
TEST(MeanInt8MatchesTflm) {
  Lcg rng(61);
  int compared_same = 0, compared_rescaled = 0;
  for (int i = 0; i < kCases * 2; ++i) {
    const int32_t h = rng.Int(1, 8), w = rng.Int(1, 8), c = rng.Int(1, 24);
    const int32_t positions = h * w;
    const float input_scale = LogUniform(rng, 1e-3f, 0.5f);
    const int32_t input_zp = rng.Int(-128, 127);
    const int kind = rng.Int(0, 3);  // same quantization, zero point only, scale only, both differ
    const float output_scale = (kind == 0 || kind == 1) ? input_scale : input_scale * rng.Uniform(0.2f, 2.0f);
    const int32_t output_zp = (kind == 0 || kind == 2) ? input_zp : rng.Int(-128, 127);
    const bool keep_dims = rng.Coin();
    const std::vector<int8_t> in = RandomInt8(rng, static_cast<size_t>(positions * c));

    // TFLM_DIR is the 2023 Arduino snapshot: its MEAN is the legacy arithmetic (current
    // TFLM's is compared with the pip runtime in tests/test_int8.py).
    const kernels::MeanInt8Params p = kernels::PrepareMeanInt8(input_scale, input_zp, output_scale, output_zp,
                                                               positions, /*legacy=*/true);
    std::vector<int8_t> ours(static_cast<size_t>(c)), tflm(static_cast<size_t>(c));
    kernels::MeanInt8(p, in.data(), positions, c, ours.data());

    const int input_dims[4] = {1, h, w, c};
    const int output_dims_keep[4] = {1, 1, 1, c};
    const int output_dims_flat[2] = {1, c};
    const int* output_dims = keep_dims ? output_dims_keep : output_dims_flat;
    const int output_rank = keep_dims ? 4 : 2;
    const int axis[2] = {1, 2};
    int temp_index[5];
    int resolved_axis[2];
    std::vector<int32_t> temp_sum(static_cast<size_t>(c));
    const bool same = input_zp == output_zp && input_scale == output_scale;  // EvalIntegerMean's choice
    CHECK(p.same_quantization == same);
    if (same) {
      CHECK((tflite::reference_ops::Mean<int8_t, int32_t>(in.data(), input_dims, 4, tflm.data(), output_dims,
                                                          output_rank, axis, 2, keep_dims, temp_index, resolved_axis,
                                                          temp_sum.data())));
      ++compared_same;
    } else {
      int32_t multiplier = 0;
      int shift = 0;
      tflite::QuantizeMultiplier(static_cast<double>(input_scale) / static_cast<double>(output_scale), &multiplier,
                                 &shift);
      CHECK((tflite::reference_ops::QuantizedMeanOrSumExtraArgs<int8_t, int32_t>(
          in.data(), input_zp, input_scale, input_dims, 4, tflm.data(), output_scale, multiplier, shift, output_zp,
          output_dims, output_rank, axis, 2, keep_dims, temp_index, resolved_axis, temp_sum.data(),
          /*compute_sum=*/false)));
      ++compared_rescaled;
    }
    CHECK_MSG(SameBytes(ours, tflm), "case %d (%s): first difference at %d", i, same ? "same" : "rescaled",
              FirstDifference(ours, tflm));
  }
  Report("MeanInt8, same quantization (integer path)", compared_same);
  Report("MeanInt8, rescaled (float path)", compared_rescaled);
}

TEST(PadInt8MatchesTflm) {
  Lcg rng(71);
  int compared = 0;
  for (int i = 0; i < kCases; ++i) {
    kernels::PadShape s{};
    s.in[0] = 1;
    s.in[1] = rng.Int(1, 6);
    s.in[2] = rng.Int(1, 6);
    s.in[3] = rng.Int(1, 5);
    for (int a = 0; a < 4; ++a) {
      s.before[a] = rng.Int(0, 2) == 0 ? 0 : rng.Int(0, 3);
      s.after[a] = rng.Int(0, 2) == 0 ? 0 : rng.Int(0, 3);
    }
    const int8_t pad_value = static_cast<int8_t>(rng.Int(-128, 127));
    const std::vector<int8_t> in = RandomInt8(rng, static_cast<size_t>(s.in[1] * s.in[2] * s.in[3]));
    const int32_t n_out = kernels::PaddedDim(s, 0) * kernels::PaddedDim(s, 1) * kernels::PaddedDim(s, 2) *
                          kernels::PaddedDim(s, 3);
    std::vector<int8_t> ours(static_cast<size_t>(n_out)), tflm(static_cast<size_t>(n_out));
    kernels::PadInt8(in.data(), s, n_out, pad_value, ours.data());
    tflite::PadParams p{};
    p.left_padding_count = 4;
    p.right_padding_count = 4;
    for (int a = 0; a < 4; ++a) {
      p.left_padding[a] = s.before[a];
      p.right_padding[a] = s.after[a];
    }
    p.resizing_category = tflite::ResizingCategory::kGenericResize;
    tflite::reference_ops::Pad(p, Shape4(s.in[0], s.in[1], s.in[2], s.in[3]), in.data(), &pad_value,
                               Shape4(kernels::PaddedDim(s, 0), kernels::PaddedDim(s, 1), kernels::PaddedDim(s, 2),
                                      kernels::PaddedDim(s, 3)),
                               tflm.data());
    CHECK_MSG(SameBytes(ours, tflm), "case %d: first difference at %d", i, FirstDifference(ours, tflm));
    ++compared;
  }
  Report("PadInt8", compared);
}

TEST(QuantizeInt8MatchesTflm) {
  Lcg rng(81);
  int compared = 0;
  for (int i = 0; i < kCases; ++i) {
    const float scale = LogUniform(rng, 1e-3f, 0.5f);
    const int32_t zero_point = rng.Int(-128, 127);
    std::vector<float> in;
    for (int k = -300; k <= 300; ++k) {
      // Exact ties (k + 0.5) * scale, their neighbours, and plain random reals.
      const float tie = (static_cast<float>(k) + 0.5f) * scale;
      in.push_back(tie);
      in.push_back(nextafterf(tie, 1e30f));
      in.push_back(nextafterf(tie, -1e30f));
      in.push_back(rng.Uniform(-300.0f, 300.0f) * scale);
    }
    in.push_back(0.0f);
    in.push_back(-0.0f);
    in.push_back(1e-30f);
    in.push_back(1e6f);
    in.push_back(-1e6f);
    const int32_t n = static_cast<int32_t>(in.size());
    std::vector<int8_t> ours(in.size()), tflm(in.size());
    kernels::QuantizeInt8(in.data(), n, scale, zero_point, ours.data());
    tflite::QuantizationParams qp;
    qp.zero_point = zero_point;
    qp.scale = static_cast<double>(scale);  // as TFLM's quantize Prepare stores it
    tflite::reference_ops::AffineQuantize(qp, Shape1(n), in.data(), Shape1(n),
                                          tflm.data());
    CHECK_MSG(SameBytes(ours, tflm), "case %d: first difference at %d", i, FirstDifference(ours, tflm));
    compared += n;
  }
  Report("QuantizeInt8 (values)", compared);
}

TEST(RequantizeInt8MatchesTflm) {
  Lcg rng(82);
  int compared = 0;
  std::vector<int8_t> all(256);
  for (int v = 0; v < 256; ++v) all[static_cast<size_t>(v)] = static_cast<int8_t>(v - 128);
  for (int i = 0; i < kCases; ++i) {
    const float input_scale = LogUniform(rng, 1e-3f, 0.5f);
    const float output_scale = rng.Int(0, 5) == 0 ? input_scale : input_scale * LogUniform(rng, 0.1f, 10.0f);
    const int32_t input_zp = rng.Int(-128, 127), output_zp = rng.Int(-128, 127);
    const kernels::Requant r = kernels::RequantizeMultiplier(input_scale, output_scale);
    int32_t tflm_multiplier = 0;
    int tflm_shift = 0;
    tflite::QuantizeMultiplier(static_cast<double>(input_scale) / static_cast<double>(output_scale), &tflm_multiplier,
                               &tflm_shift);
    CHECK(r.multiplier == tflm_multiplier && r.shift == tflm_shift);
    std::vector<int8_t> ours(256), tflm(256);
    kernels::RequantizeInt8(all.data(), 256, input_zp, r.multiplier, r.shift, output_zp, ours.data());
    tflite::reference_ops::Requantize(all.data(), 256, tflm_multiplier, tflm_shift, input_zp, output_zp,
                                      tflm.data());
    CHECK_MSG(SameBytes(ours, tflm), "case %d: first difference at %d", i, FirstDifference(ours, tflm));
    compared += 256;
  }
  Report("RequantizeInt8 (values)", compared);
}

TEST(DequantizeInt8MatchesTflm) {
  Lcg rng(83);
  int compared = 0;
  std::vector<int8_t> all(256);
  for (int v = 0; v < 256; ++v) all[static_cast<size_t>(v)] = static_cast<int8_t>(v - 128);
  for (int i = 0; i < kCases * 4; ++i) {
    float scale = LogUniform(rng, 1e-5f, 10.0f);
    if (rng.Int(0, 3) == 0) scale = nextafterf(scale, 1e30f);  // odd significands
    const int32_t zero_point = rng.Int(-128, 127);
    std::vector<float> ours(256), tflm(256);
    kernels::DequantizeInt8(all.data(), 256, scale, zero_point, ours.data());
    tflite::DequantizationParams dp;
    dp.scale = static_cast<double>(scale);  // as TFLM's dequantize Prepare stores it
    dp.zero_point = zero_point;
    tflite::reference_ops::Dequantize(dp, Shape1(256), all.data(), Shape1(256),
                                      tflm.data());
    CHECK_MSG(memcmp(ours.data(), tflm.data(), 256 * sizeof(float)) == 0, "case %d: scale %.9g zp %d differ", i,
              static_cast<double>(scale), zero_point);
    compared += 256;
  }
  Report("DequantizeInt8 (values, bitwise)", compared);
}

// The fixed-point pieces of the int8 softmax against gemmlowp's, which TFLM's
// reference softmax calls: exp on [-31, 0] in Q5.26 and 1 / (1 + x) on [0, 1).
TEST(SoftmaxFixedPointMatchesGemmlowp) {
  using Q5_26 = gemmlowp::FixedPoint<int32_t, 5>;
  using Q0_31 = gemmlowp::FixedPoint<int32_t, 0>;
  int compared_exp = 0, compared_reciprocal = 0;
  std::vector<int32_t> exps;
  for (int32_t a = -(1 << 17); a <= 0; ++a) exps.push_back(a);  // every low-bit pattern near 0
  for (int64_t a = -(static_cast<int64_t>(31) << 26); a <= 0; a += 997) exps.push_back(static_cast<int32_t>(a));
  for (int32_t a : exps) {
    const int32_t ours = kernels::SoftmaxExpOnNegative(a);
    const int32_t tflm = gemmlowp::exp_on_negative_values(Q5_26::FromRaw(a)).raw();
    CHECK_MSG(ours == tflm, "exp of %d (Q5.26): ours %d, gemmlowp %d", a, ours, tflm);
    ++compared_exp;
  }
  Lcg rng(91);
  for (int i = 0; i < 200000; ++i) {
    int32_t x = static_cast<int32_t>(rng.Next());  // 31 bits: [0, 1) in Q0.31
    if (i < 4096) x = i < 2048 ? i : 2147483647 - (i - 2048);  // both ends
    const int32_t ours = kernels::SoftmaxOneOverOnePlusX(x);
    const int32_t tflm = gemmlowp::one_over_one_plus_x_for_x_in_0_1(Q0_31::FromRaw(x)).raw();
    CHECK_MSG(ours == tflm, "1 / (1 + x) for x = %d (Q0.31): ours %d, gemmlowp %d", x, ours, tflm);
    ++compared_reciprocal;
  }
  Report("SoftmaxExpOnNegative (values)", compared_exp);
  Report("SoftmaxOneOverOnePlusX (values)", compared_reciprocal);
}

static void IgnoreError(TfLiteContext*, const char*, ...) {}

// SoftmaxInt8 against TFLM's int8 softmax: PrepareSoftmaxInt8 against TFLM's own
// Prepare (CalculateSoftmaxParams, which also checks the output quantization),
// and the output against both kernels TFLM may run, the reference one (TFLM's
// default build, the pip runtime) and CMSIS-NN's arm_softmax_s8 (its Arduino build).
TEST(SoftmaxInt8MatchesTflm) {
  Lcg rng(92);
  const float betas[] = {1.0f, 1.0f, 1.0f, 0.5f, 2.0f, 0.1f, 1.7f, 10.0f};
  const float output_scale = 1.0f / 256.0f;
  int compared = 0, compared_rows = 0, capped = 0;
  long interior = 0;
  for (int i = 0; i < kCases * 4 + 200; ++i) {
    const bool edge = i >= kCases * 4;  // then: long rows up to the depth limit, most values at the maximum
    const float beta = betas[rng.Int(0, 7)];
    float input_scale = LogUniform(rng, 1e-3f, 1.0f);
    const int scale_kind = rng.Int(0, 19);
    if (scale_kind == 0) input_scale = LogUniform(rng, 1e-7f, 1e-3f);  // long exp tails
    if (scale_kind == 1) input_scale = LogUniform(rng, 1.0f, 64.0f);   // up to the capped multiplier
    if (scale_kind == 2) input_scale = ldexpf(1.0f, -rng.Int(0, 20));  // exact powers of two
    const int32_t input_zp = rng.Int(-128, 127);
    const int32_t rows = edge ? 1 : rng.Int(1, 4);
    const int32_t depth = edge ? (rng.Coin() ? kernels::kSoftmaxInt8MaxDepth : rng.Int(101, 511)) : rng.Int(1, 100);
    if (!kernels::SoftmaxInt8Supported(input_scale, beta, depth)) continue;  // TFLM would abort
    // Values uniform over int8, or bunched under a row maximum (many exps near 1: large sums).
    std::vector<int8_t> in(static_cast<size_t>(rows * depth));
    for (int32_t r = 0; r < rows; ++r) {
      const int kind = edge ? 2 : rng.Int(0, 2);
      const int32_t top = rng.Int(-128, 127), spread = rng.Int(0, 12);
      for (int32_t c = 0; c < depth; ++c) {
        int32_t v = rng.Int(-128, 127);
        if (kind == 1) v = top - rng.Int(0, spread);
        if (kind == 2) v = rng.Int(0, 9) < 8 ? top : top - rng.Int(0, 255);
        in[static_cast<size_t>(r * depth + c)] = static_cast<int8_t>(v < -128 ? -128 : v);
      }
    }

    const kernels::SoftmaxInt8Params ours_p = kernels::PrepareSoftmaxInt8(input_scale, beta);
    TfLiteContext context = MakeContext();
    QTensor input(kTfLiteInt8, &input_scale, 1, input_zp), output(kTfLiteInt8, &output_scale, 1, -128);
    input.SetDims({rows, depth});
    output.SetDims({rows, depth});
    TfLiteSoftmaxParams softmax_params{};
    softmax_params.beta = beta;
    tflite::SoftmaxParams data;
    memset(&data, 0, sizeof(data));
    CHECK(tflite::CalculateSoftmaxParams(&context, &input.t, &output.t, &softmax_params, &data) == kTfLiteOk);
    CHECK_MSG(ours_p.input_multiplier == data.input_multiplier && ours_p.input_left_shift == data.input_left_shift &&
                  ours_p.diff_min == data.diff_min,
              "case %d (scale %.9g, beta %g): ours (%d, %d, %d), TFLM (%d, %d, %d)", i,
              static_cast<double>(input_scale), static_cast<double>(beta), ours_p.input_multiplier,
              ours_p.input_left_shift, ours_p.diff_min, data.input_multiplier, data.input_left_shift, data.diff_min);
    if (ours_p.input_multiplier == 2147483647) ++capped;

    std::vector<int8_t> ours(in.size()), reference(in.size()), cmsis(in.size());
    kernels::SoftmaxInt8(ours_p, in.data(), rows, depth, ours.data());
    tflite::reference_ops::Softmax(data, Shape2(rows, depth), in.data(), Shape2(rows, depth), reference.data());
    arm_softmax_s8(in.data(), rows, depth, data.input_multiplier, data.input_left_shift, data.diff_min, cmsis.data());
    CHECK_MSG(SameBytes(ours, reference), "case %d (scale %.9g, beta %g, %d x %d): first difference from the "
              "reference kernel at %d", i, static_cast<double>(input_scale), static_cast<double>(beta), rows, depth,
              FirstDifference(ours, reference));
    CHECK_MSG(SameBytes(ours, cmsis), "case %d (scale %.9g, beta %g, %d x %d): first difference from CMSIS-NN at %d",
              i, static_cast<double>(input_scale), static_cast<double>(beta), rows, depth,
              FirstDifference(ours, cmsis));
    for (int8_t v : ours) interior += (v > -128 && v < 127) ? 1 : 0;
    ++compared;
    compared_rows += rows;
  }
  // Most cases exercised, the capped multiplier among them, and outputs strictly inside (0, 1) by the thousand.
  CHECK_MSG(compared > kCases * 3 && capped > 0 && interior > 100000, "%d cases, %d capped, %ld interior outputs",
            compared, capped, interior);
  Report("SoftmaxInt8 vs reference and CMSIS-NN (cases)", compared);
  Report("SoftmaxInt8 vs reference and CMSIS-NN (rows)", compared_rows);

  // The output quantization TFLM's Prepare accepts is exactly the one ours does.
  const float scales[] = {1.0f / 256.0f, nextafterf(1.0f / 256.0f, 1.0f), 1.0f / 255.0f, 1.0f / 128.0f};
  const int32_t zero_points[] = {-128, -127, 0};
  for (float scale : scales) {
    for (int32_t zp : zero_points) {
      const float input_scale = 0.1f;
      TfLiteContext context = MakeContext();
      context.ReportError = IgnoreError;  // the refusals are expected here
      QTensor input(kTfLiteInt8, &input_scale, 1, 0), output(kTfLiteInt8, &scale, 1, zp);
      TfLiteSoftmaxParams softmax_params{};
      softmax_params.beta = 1.0f;
      tflite::SoftmaxParams data;
      memset(&data, 0, sizeof(data));
      const bool tflm_ok =
          tflite::CalculateSoftmaxParams(&context, &input.t, &output.t, &softmax_params, &data) == kTfLiteOk;
      CHECK_MSG(kernels::SoftmaxInt8OutputSupported(scale, zp) == tflm_ok, "output scale %.9g zp %d: TFLM %s it",
                static_cast<double>(scale), zp, tflm_ok ? "accepts" : "refuses");
    }
  }
}

int main() { return test::RunAll(); }
