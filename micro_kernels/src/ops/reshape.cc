// RESHAPE, SQUEEZE and EXPAND_DIMS: the same elements under another shape. The
// output shares its input's storage (and gradient), so they cost nothing.
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status == Status::kOk && op->n_in != op->n_out) {
    return ctx.Fail("must keep the element count", Status::kInvalidModel);
  }
  return status;
}

uint64_t Forward(const OpRuntime&) { return 0; }  // the output aliases the input

void Backward(const OpRuntime& op) {
  // Gradients alias too; a copy is needed only where the planner could not share them.
  if (op.d_in != nullptr && op.d_in != op.d_out) {
    for (int32_t i = 0; i < op.n_out; ++i) op.d_in[i] += op.d_out[i];
  }
}

}  // namespace

extern const OpUnit kReshape = {tflite::BuiltinOperator::RESHAPE, "RESHAPE", kAliasesInput, Prepare, Forward,
                                Backward, nullptr, PrepareInt8SameQuantization, Forward};
extern const OpUnit kSqueeze = {tflite::BuiltinOperator::SQUEEZE, "SQUEEZE", kAliasesInput, Prepare, Forward,
                                Backward, nullptr, PrepareInt8SameQuantization, Forward};
extern const OpUnit kExpandDims = {tflite::BuiltinOperator::EXPAND_DIMS, "EXPAND_DIMS", kAliasesInput, Prepare,
                                   Forward, Backward, nullptr, PrepareInt8SameQuantization, Forward};

}  // namespace tflm_train
