// SOFTMAX over the last axis. Float: beta 1, and backward reads the output. int8
// (a frozen prefix): any beta TFLM accepts, forward only.
#include "finite.h"
#include "kernels/int8/softmax.h"
#include "kernels/softmax.h"
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status != Status::kOk) return status;
  const auto options = ctx.Options<tflite::SoftmaxOptions>(tflite::BuiltinOptions::SoftmaxOptions);
  // The int8 kernel takes beta (PrepareInt8); the float one has beta 1 built in.
  if (!RunsInt8(ctx) && options.present() && options.beta() != 1.0f) return ctx.Fail("has beta other than 1");
  if (!SameElementOrder(in, out)) return ctx.Fail("needs an input shaped as its output", Status::kInvalidModel);
  return Status::kOk;
}

uint64_t Forward(const OpRuntime& op) {
  kernels::Softmax(op.in, op.rows, op.depth, op.out);
  return 0;
}

void Backward(const OpRuntime& op) {
  if (op.d_in != nullptr) kernels::SoftmaxInputGrad(op.out, op.d_out, op.rows, op.depth, op.d_in);
}

Status PrepareInt8(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  const Status status = PrepareInt8InOut(ctx, op, q);
  if (status != Status::kOk) return status;
  if (!kernels::SoftmaxInt8OutputSupported(q->output.scale, q->output.zero_point)) {
    return ctx.Fail("needs an int8 output of scale 1/256 and zero point -128, as TFLite's converter makes it "
                    "(TFLM's int8 softmax refuses any other)");
  }
  // Without options TFLM reads beta 0, which its Prepare refuses like any beta <= 0.
  const auto options = ctx.Options<tflite::SoftmaxOptions>(tflite::BuiltinOptions::SoftmaxOptions);
  const float beta = options.present() ? options.beta() : 0.0f;
  if (op.depth > kernels::kSoftmaxInt8MaxDepth) {
    return ctx.Fail("runs int8 over more than 511 values, where TFLM's int8 softmax shifts by 32 bits or more for "
                    "some inputs (undefined, platform-dependent results)");
  }
  if (!IsFinite(beta) || !kernels::SoftmaxInt8Supported(q->input.scale, beta, op.depth)) {
    return ctx.Fail("has a beta x input scale TFLM's int8 softmax refuses (beta must be positive and "
                    "beta x input scale above 2^-26)", Status::kInvalidModel);
  }
  q->softmax = kernels::PrepareSoftmaxInt8(q->input.scale, beta);
  return Status::kOk;
}

uint64_t ForwardInt8(const OpRuntime& op) {
  kernels::SoftmaxInt8(op.quant->softmax, Int8In(op), op.rows, op.depth, Int8Out(op));
  return 0;
}

}  // namespace

extern const OpUnit kSoftmax = {tflite::BuiltinOperator::SOFTMAX, "SOFTMAX", kReadsOutput, Prepare, Forward,
                                Backward, nullptr, PrepareInt8, ForwardInt8};

}  // namespace tflm_train
