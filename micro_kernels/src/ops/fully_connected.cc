// FULLY_CONNECTED: y = act(W x + b), weights [out, in].
#include "kernels/active.h"
#include "kernels/fast/fully_connected.h"
#include "kernels/int8/fully_connected.h"
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status != Status::kOk) return status;
  const auto options = ctx.Options<tflite::FullyConnectedOptions>(tflite::BuiltinOptions::FullyConnectedOptions);
  if (options.weights_format() != 0) return ctx.Fail("has shuffled (non-default) weights");
  status = ctx.FusedActivation(options.fused_activation_function(), &op->act);
  if (status != Status::kOk) return status;
  // One sample: TFLite flattens the input to [batch, in]; the trainer's batch is 1, so
  // the output is one row of `units` (its leading dimensions all 1).
  Dims w;
  if (!TensorDims(ctx.view, ctx.Input(1), &w) || w.rank != 2 || w.d[1] != op->n_in || w.d[0] != op->n_out ||
      op->depth != op->n_out) {
    return ctx.Fail("needs weights [outputs, inputs] for one sample of batch 1", Status::kInvalidModel);
  }
  const int32_t shape[2] = {op->n_out, op->n_in};
  op->fan_in = op->n_in;
  return PrepareWeights(ctx, shape, 2, op->n_out, op);
}

uint64_t Forward(const OpRuntime& op) {
  kernels::active::FullyConnected(op.in, op.n_in, op.weights, op.bias, op.n_out, op.act, op.out);
  return static_cast<uint64_t>(op.n_out) * op.fan_in;
}

void WeightBackward(const OpRuntime& op, const int32_t* kept, int32_t k, float* grad_w) {
  if (grad_w != nullptr) kernels::active::FullyConnectedWeightGrad(op.in, op.n_in, op.d_out, kept, k, grad_w);
  if (op.d_in != nullptr) kernels::active::FullyConnectedInputGrad(op.weights, op.n_in, op.d_out, kept, k, op.d_in);
}

Status PrepareInt8(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  return PrepareInt8Weights(ctx, op, 0, op.n_out, q);
}

uint64_t ForwardInt8(const OpRuntime& op) {
  const QuantizedOp& q = *op.quant;
  kernels::FullyConnectedInt8(Int8In(op), op.n_in, -q.input.zero_point, q.weights, q.bias, op.n_out, q.multiplier,
                              q.shift, q.output.zero_point, q.act_min, q.act_max, Int8Out(op));
  return static_cast<uint64_t>(op.n_out) * op.fan_in;
}

}  // namespace

extern const OpUnit kFullyConnected = {tflite::BuiltinOperator::FULLY_CONNECTED, "FULLY_CONNECTED", kWeights,
                                       Prepare, Forward, nullptr, WeightBackward, PrepareInt8, ForwardInt8};

}  // namespace tflm_train
