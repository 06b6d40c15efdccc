// ADD, SUB and MUL: of two activations of one shape (ADD, SUB: a residual
// connection), or of an activation and a constant broadcast along the last axis
// (a bias TensorFlow kept out of a weight op, or a batch norm it did not fold). An
// ADD's constant trains when the plan names it as a layer's bias; otherwise
// constants are frozen.
#include "kernels/elementwise.h"
#include "kernels/int8/add.h"
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

// The constant operand's length when it broadcasts along the last axis of `x` as
// TFLite broadcasts it: one value (every dimension 1), one per channel (every
// dimension but the last 1, the last = x's), or one per element (x's shape); 0 otherwise.
int32_t BroadcastLength(const Dims& x, const Dims& c) {
  const int64_t n = Elements(c);
  const int32_t depth = x.rank > 0 ? x.d[x.rank - 1] : 1;
  bool leading_ones = true;
  for (int i = 0; i + 1 < c.rank; ++i) leading_ones = leading_ones && c.d[i] == 1;
  if (n == 1) return 1;
  if (leading_ones && c.rank >= 1 && c.d[c.rank - 1] == depth) return depth;
  return n == Elements(x) && SameElementOrder(x, c) ? static_cast<int32_t>(n) : 0;
}

Status Prepare(const PrepareContext& ctx, OpRuntime* op, tflite::BuiltinOptions type, bool can_add_layers) {
  if (ctx.num_inputs() != 2 || ctx.num_outputs() != 1 || ctx.Output(0) < 0) {
    return ctx.Fail("needs two inputs and one output", Status::kInvalidModel);
  }
  const tflite::ActivationFunctionType fused =
      type == tflite::BuiltinOptions::MulOptions
          ? ctx.Options<tflite::MulOptions>(type).fused_activation_function()
          : type == tflite::BuiltinOptions::SubOptions
                ? ctx.Options<tflite::SubOptions>(type).fused_activation_function()
                : ctx.Options<tflite::AddOptions>(type).fused_activation_function();
  Status status = ctx.FusedActivation(fused, &op->act);
  if (status != Status::kOk) return status;
  uint32_t bytes = 0;
  const bool first_constant = ConstantBytes(ctx.view, ctx.Input(0), &bytes) != nullptr;
  const bool second_constant = ConstantBytes(ctx.view, ctx.Input(1), &bytes) != nullptr;
  if (first_constant && second_constant) return ctx.Fail("works on two constants");
  const int32_t x = first_constant ? ctx.Input(1) : ctx.Input(0);
  op->inputs[0] = x;
  op->output = ctx.Output(0);
  Dims in, other, out;
  if (!TensorDims(ctx.view, x, &in) || !TensorDims(ctx.view, op->output, &out) ||
      !TensorDims(ctx.view, first_constant ? ctx.Input(0) : ctx.Input(1), &other) || !SameElementOrder(in, out)) {
    return ctx.Fail("needs inputs and an output of static shapes, the output shaped as its input");
  }
  op->n_in = op->n_out = static_cast<int32_t>(Elements(out));
  if (!first_constant && !second_constant) {
    if (!can_add_layers) return ctx.Fail("multiplies two activations (only a constant factor is supported)");
    if (!SameElementOrder(in, other)) {
      return ctx.Fail("adds tensors of different shapes (broadcasting two activations is not supported)");
    }
    op->inputs[1] = ctx.Input(1);
    op->rows = 1;
    op->depth = op->n_out;
    return Status::kOk;
  }
  const int32_t length = BroadcastLength(in, other);
  if (length == 0) return ctx.Fail("has a constant that does not broadcast along the last axis");
  op->constant = ConstantFloats(ctx.view, ctx.model, first_constant ? ctx.Input(0) : ctx.Input(1), length, ctx.why);
  if (op->constant == nullptr) return Status::kUnsupportedModel;
  op->constant_first = first_constant;
  // A single value broadcasts over everything: treat it as rows of one.
  op->depth = length;
  op->rows = op->n_out / length;
  return Status::kOk;
}

Status PrepareAdd(const PrepareContext& ctx, OpRuntime* op) {
  return Prepare(ctx, op, tflite::BuiltinOptions::AddOptions, true);
}
Status PrepareSub(const PrepareContext& ctx, OpRuntime* op) {
  return Prepare(ctx, op, tflite::BuiltinOptions::SubOptions, true);
}
Status PrepareMul(const PrepareContext& ctx, OpRuntime* op) {
  return Prepare(ctx, op, tflite::BuiltinOptions::MulOptions, false);
}

// SUB: x - c, or c - x when the constant comes first; a - b for two activations.
float SignOfX(const OpRuntime& op, bool subtract) { return subtract && op.constant_first ? -1.0f : 1.0f; }
float SignOfConstant(const OpRuntime& op, bool subtract) {
  return subtract && !op.constant_first ? -1.0f : 1.0f;
}

uint64_t ForwardAddSub(const OpRuntime& op, bool subtract) {
  if (op.constant == nullptr) {
    kernels::AddScaled(op.in, op.in2, subtract ? -1.0f : 1.0f, op.n_out, op.act, op.out);
  } else {
    kernels::AddConstant(op.in, SignOfX(op, subtract), op.constant, SignOfConstant(op, subtract), op.rows,
                         op.depth, op.act, op.out);
  }
  return 0;
}

void BackwardAddSub(const OpRuntime& op, bool subtract) {
  kernels::FusedActGradInPlace(op.act, op.out, op.n_out, op.d_out);
  if (op.d_in != nullptr) kernels::AddInputGrad(op.d_out, SignOfX(op, subtract), op.n_out, op.d_in);
  if (op.d_in2 != nullptr) kernels::AddInputGrad(op.d_out, subtract ? -1.0f : 1.0f, op.n_out, op.d_in2);
}

uint64_t ForwardAdd(const OpRuntime& op) { return ForwardAddSub(op, false); }
uint64_t ForwardSub(const OpRuntime& op) { return ForwardAddSub(op, true); }
void BackwardAdd(const OpRuntime& op) { BackwardAddSub(op, false); }
void BackwardSub(const OpRuntime& op) { BackwardAddSub(op, true); }

uint64_t ForwardMul(const OpRuntime& op) {
  kernels::MulConstant(op.in, op.constant, op.rows, op.depth, op.act, op.out);
  return 0;
}

void BackwardMul(const OpRuntime& op) {
  kernels::FusedActGradInPlace(op.act, op.out, op.n_out, op.d_out);
  if (op.d_in != nullptr) kernels::MulConstantInputGrad(op.d_out, op.constant, op.rows, op.depth, op.d_in);
}

// int8 ADD: two activations of one shape (a residual connection), each rescaled
// to a common scale as TFLM's ADD does.
Status PrepareAddInt8(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  if (op.inputs[1] < 0) return ctx.Fail("adds an int8 constant (only two int8 activations run)");
  TensorQuantization second;
  Status status = PrepareInt8InOut(ctx, op, q);
  if (status == Status::kOk) status = Int8Activation(ctx, op.inputs[1], "second input", &second);
  if (status != Status::kOk) return status;
  if (!kernels::AddInt8Supported(q->input.scale, second.scale, q->output.scale)) {
    return ctx.Fail("has int8 scales whose rescaling TFLite's ADD cannot represent", Status::kInvalidModel);
  }
  q->add = kernels::PrepareAddInt8(q->input.scale, q->input.zero_point, second.scale, second.zero_point,
                                   q->output.scale, q->output.zero_point, q->act_min, q->act_max);
  return Status::kOk;
}

uint64_t ForwardAddInt8(const OpRuntime& op) {
  kernels::AddInt8(op.quant->add, Int8In(op), Int8In2(op), op.n_out, Int8Out(op));
  return 0;
}

}  // namespace

extern const OpUnit kAdd = {tflite::BuiltinOperator::ADD, "ADD", 0, PrepareAdd, ForwardAdd, BackwardAdd, nullptr,
                            PrepareAddInt8, ForwardAddInt8};
extern const OpUnit kSub = {tflite::BuiltinOperator::SUB, "SUB", 0, PrepareSub, ForwardSub, BackwardSub, nullptr,
                            nullptr, nullptr};
extern const OpUnit kMul = {tflite::BuiltinOperator::MUL, "MUL", 0, PrepareMul, ForwardMul, BackwardMul, nullptr,
                            nullptr, nullptr};

}  // namespace tflm_train
