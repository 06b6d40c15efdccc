// CONV_2D: NHWC input, weights OHWI [C_out, KH, KW, C_in], bias [C_out].
#include "kernels/active.h"
#include "kernels/fast/conv_2d.h"
#include "kernels/int8/conv_2d.h"
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out, w;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status != Status::kOk) return status;
  const auto options = ctx.Options<tflite::Conv2DOptions>(tflite::BuiltinOptions::Conv2DOptions);
  if (!options.present()) return ctx.Fail("has no Conv2DOptions", Status::kInvalidModel);
  status = ctx.FusedActivation(options.fused_activation_function(), &op->act);
  if (status != Status::kOk) return status;
  if (!TensorDims(ctx.view, ctx.Input(1), &w) || w.rank != 4) return ctx.Fail("needs 4-D weights (OHWI)");
  op->padding = options.padding();
  status = PrepareWindow(ctx, in, out, options.padding(), options.stride_h(), options.stride_w(),
                         options.dilation_h_factor(), options.dilation_w_factor(), w.d[1], w.d[2], &op->conv);
  if (status != Status::kOk) return status;
  const kernels::ConvShape& s = op->conv;
  const int32_t shape[4] = {s.out_c, s.filter_h, s.filter_w, s.in_c};
  status = PrepareWeights(ctx, shape, 4, s.out_c, op);  // the weights exist: their product fits
  op->fan_in = s.filter_h * s.filter_w * s.in_c;
  return status;
}

uint64_t Forward(const OpRuntime& op) {
  kernels::active::Conv2D(op.in, op.conv, op.weights, op.bias, op.act, op.out);
  return static_cast<uint64_t>(op.n_out) * op.fan_in;
}

void WeightBackward(const OpRuntime& op, const int32_t* kept, int32_t k, float* grad_w) {
  kernels::active::Conv2DWeightAndInputGrad(op.in, op.weights, op.conv, op.d_out, kept, k, grad_w, op.d_in);
}

Status PrepareInt8(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  return PrepareInt8Weights(ctx, op, 0, op.conv.out_c, q);
}

uint64_t ForwardInt8(const OpRuntime& op) {
  const QuantizedOp& q = *op.quant;
  kernels::Conv2DInt8(op.conv, Int8In(op), -q.input.zero_point, q.weights, q.bias, q.multiplier, q.shift,
                      q.output.zero_point, q.act_min, q.act_max, Int8Out(op));
  return static_cast<uint64_t>(op.n_out) * op.fan_in;
}

}  // namespace

extern const OpUnit kConv2D = {tflite::BuiltinOperator::CONV_2D, "CONV_2D", kWeights, Prepare, Forward, nullptr,
                               WeightBackward, PrepareInt8, ForwardInt8};

}  // namespace tflm_train
