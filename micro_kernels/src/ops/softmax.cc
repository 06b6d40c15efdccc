// SOFTMAX over the last axis, beta 1. Backward reads the output.
#include "kernels/softmax.h"
#include "ops/prepare_helpers.h"

namespace tflm_train {
namespace {

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status != Status::kOk) return status;
  const auto options = ctx.Options<tflite::SoftmaxOptions>(tflite::BuiltinOptions::SoftmaxOptions);
  if (options.present() && options.beta() != 1.0f) return ctx.Fail("has beta other than 1");
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

}  // namespace

extern const OpUnit kSoftmax = {tflite::BuiltinOperator::SOFTMAX, "SOFTMAX", kReadsOutput, Prepare, Forward,
                                Backward, nullptr, nullptr, nullptr};

}  // namespace tflm_train
