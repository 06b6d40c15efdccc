// DEPTHWISE_CONV_2D: NHWC input, weights [1, KH, KW, C_in * depth_multiplier], bias.
#include "kernels/active.h"
#include "kernels/depthwise_conv_2d.h"
#include "kernels/fast/depthwise_conv_2d.h"
#include "kernels/int8/depthwise_conv_2d.h"
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out, w;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status != Status::kOk) return status;
  const auto options =
      ctx.Options<tflite::DepthwiseConv2DOptions>(tflite::BuiltinOptions::DepthwiseConv2DOptions);
  if (!options.present()) return ctx.Fail("has no DepthwiseConv2DOptions", Status::kInvalidModel);
  status = ctx.FusedActivation(options.fused_activation_function(), &op->act);
  if (status != Status::kOk) return status;
  if (!TensorDims(ctx.view, ctx.Input(1), &w) || w.rank != 4 || w.d[0] != 1) {
    return ctx.Fail("needs weights [1, KH, KW, C]");
  }
  op->padding = options.padding();
  status = PrepareWindow(ctx, in, out, options.padding(), options.stride_h(), options.stride_w(),
                         options.dilation_h_factor(), options.dilation_w_factor(), w.d[1], w.d[2], &op->conv);
  if (status != Status::kOk) return status;
  kernels::ConvShape& s = op->conv;
  // TFLM takes the multiplier as given (full TFLite would infer a 0 from the shapes).
  const int32_t multiplier = options.depth_multiplier();
  if (multiplier < 1 || static_cast<int64_t>(s.out_c) != static_cast<int64_t>(s.in_c) * multiplier) {
    return ctx.Fail("needs output channels = input channels x depth_multiplier (>= 1)", Status::kInvalidModel);
  }
  s.depth_multiplier = multiplier;
  const int32_t shape[4] = {1, s.filter_h, s.filter_w, s.out_c};
  op->fan_in = s.filter_h * s.filter_w;
  return PrepareWeights(ctx, shape, 4, s.out_c, op);
}

uint64_t Forward(const OpRuntime& op) {
  kernels::active::DepthwiseConv2D(op.in, op.conv, op.weights, op.bias, op.act, op.out);
  return static_cast<uint64_t>(op.n_out) * op.fan_in;
}

void WeightBackward(const OpRuntime& op, const int32_t* kept, int32_t k, float* grad_w) {
  kernels::active::DepthwiseConv2DWeightAndInputGrad(op.in, op.weights, op.conv, op.d_out, kept, k, grad_w, op.d_in);
}

// Weights [1, KH, KW, C]: per-channel scales run along axis 3.
Status PrepareInt8(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  return PrepareInt8Weights(ctx, op, 3, op.conv.out_c, q);
}

uint64_t ForwardInt8(const OpRuntime& op) {
  const QuantizedOp& q = *op.quant;
  kernels::DepthwiseConv2DInt8(op.conv, Int8In(op), -q.input.zero_point, q.weights, q.bias, q.multiplier, q.shift,
                               q.output.zero_point, q.act_min, q.act_max, Int8Out(op));
  return static_cast<uint64_t>(op.n_out) * op.fan_in;
}

}  // namespace

extern const OpUnit kDepthwiseConv2D = {tflite::BuiltinOperator::DEPTHWISE_CONV_2D, "DEPTHWISE_CONV_2D", kWeights,
                                        Prepare, Forward, nullptr, WeightBackward, PrepareInt8, ForwardInt8};

}  // namespace tflm_train
