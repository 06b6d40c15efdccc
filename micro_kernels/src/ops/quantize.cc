// QUANTIZE (float -> int8, or int8 -> int8 at another scale) and DEQUANTIZE
// (int8 -> float): the edges of a model's int8 part. They run only as int8 ops.
#include "kernels/int8/quantization.h"
#include "kernels/int8/quantize.h"
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

constexpr int kFloat32 = static_cast<int>(tflite::TensorType::FLOAT32);
constexpr int kInt8 = static_cast<int>(tflite::TensorType::INT8);

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out;
  const Status status = PrepareInOut(ctx, op, &in, &out);
  if (status == Status::kOk && op->n_in != op->n_out) {
    return ctx.Fail("must keep the element count", Status::kInvalidModel);
  }
  return status;
}

Status PrepareQuantize(const PrepareContext& ctx, OpRuntime* op) {
  const Status status = Prepare(ctx, op);
  if (status == Status::kOk && TensorType(ctx.view, op->output) != kInt8) {
    return ctx.Fail("quantizes to a type other than int8 (int16 and uint8 activations are not supported)");
  }
  return status;
}

Status PrepareQuantizeInt8(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  Status status = Int8Activation(ctx, op.output, "output", &q->output);
  if (status != Status::kOk) return status;
  q->from_float = TensorType(ctx.view, op.inputs[0]) == kFloat32;
  if (q->from_float) return Status::kOk;
  status = Int8Activation(ctx, op.inputs[0], "input", &q->input);
  if (status != Status::kOk) return status;
  const kernels::Requant r = kernels::RequantizeMultiplier(q->input.scale, q->output.scale);
  if (!kernels::RequantSupported(r) || r.multiplier == 0) {
    return ctx.Fail("has scales whose ratio TFLite's int8 arithmetic cannot represent", Status::kInvalidModel);
  }
  q->requant_multiplier = r.multiplier;
  q->requant_shift = r.shift;
  return Status::kOk;
}

uint64_t ForwardQuantize(const OpRuntime& op) {
  const QuantizedOp& q = *op.quant;
  if (q.from_float) {
    kernels::QuantizeInt8(op.in, op.n_out, q.output.scale, q.output.zero_point, Int8Out(op));
  } else {
    kernels::RequantizeInt8(Int8In(op), op.n_out, q.input.zero_point, q.requant_multiplier, q.requant_shift,
                            q.output.zero_point, Int8Out(op));
  }
  return 0;
}

Status PrepareDequantizeInt8(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  if (TensorType(ctx.view, op.output) != kFloat32) return ctx.Fail("must write a float32 tensor");
  return Int8Activation(ctx, op.inputs[0], "input", &q->input);
}

uint64_t ForwardDequantize(const OpRuntime& op) {
  kernels::DequantizeInt8(Int8In(op), op.n_out, op.quant->input.scale, op.quant->input.zero_point, op.out);
  return 0;
}

}  // namespace

extern const OpUnit kQuantize = {tflite::BuiltinOperator::QUANTIZE, "QUANTIZE", 0, PrepareQuantize, nullptr,
                                 nullptr, nullptr, PrepareQuantizeInt8, ForwardQuantize};
extern const OpUnit kDequantize = {tflite::BuiltinOperator::DEQUANTIZE, "DEQUANTIZE", 0, Prepare, nullptr, nullptr,
                                   nullptr, PrepareDequantizeInt8, ForwardDequantize};

}  // namespace tflm_train
