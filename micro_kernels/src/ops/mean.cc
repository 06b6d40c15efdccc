// MEAN over every axis but the batch and the channels: global average pooling.
#include "kernels/mean.h"
#include "kernels/int8/mean.h"
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status != Status::kOk) return status;
  uint32_t bytes = 0;
  const uint8_t* axes = ConstantBytes(ctx.view, ctx.Input(1), &bytes);
  const int type = TensorType(ctx.view, ctx.Input(1));
  const uint32_t width = type == static_cast<int>(tflite::TensorType::INT64) ? 8 : 4;
  if (axes == nullptr || (type != static_cast<int>(tflite::TensorType::INT32) && width != 8) ||
      bytes % width != 0 || in.rank < 3 || in.d[0] != 1) {
    return ctx.Fail("needs constant int32/int64 axes over a [1, ..., C] tensor");
  }
  // The axes must be exactly 1 .. rank-2 (negative counts from the end), in any order.
  uint32_t seen = 0;
  for (uint32_t i = 0; i < bytes / width; ++i) {
    int64_t axis = 0;
    if (width == 8) {
      memcpy(&axis, axes + 8 * i, 8);
    } else {
      int32_t a32;
      memcpy(&a32, axes + 4 * i, 4);
      axis = a32;
    }
    if (axis < 0) axis += in.rank;
    if (axis < 1 || axis > in.rank - 2 || (seen & (1u << axis)) != 0) {
      return ctx.Fail("averages over axes other than the spatial ones (only global average pooling runs)");
    }
    seen |= 1u << axis;
  }
  if (seen != ((1u << (in.rank - 1)) - 2u) || op->n_out != in.d[in.rank - 1]) {
    return ctx.Fail("averages over axes other than the spatial ones (only global average pooling runs)");
  }
  op->depth = op->n_out;
  op->rows = op->n_in / op->n_out;
  return Status::kOk;
}

uint64_t Forward(const OpRuntime& op) {
  kernels::Mean(op.in, op.rows, op.depth, op.out);
  return 0;
}

void Backward(const OpRuntime& op) {
  if (op.d_in != nullptr) kernels::MeanInputGrad(op.d_out, op.rows, op.depth, op.d_in);
}

Status PrepareInt8(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  const Status status = PrepareInt8InOut(ctx, op, q);
  if (status != Status::kOk) return status;
  q->mean = kernels::PrepareMeanInt8(q->input.scale, q->input.zero_point, q->output.scale, q->output.zero_point,
                                     op.rows);
  return Status::kOk;
}

uint64_t ForwardInt8(const OpRuntime& op) {
  kernels::MeanInt8(op.quant->mean, Int8In(op), op.rows, op.depth, Int8Out(op));
  return 0;
}

}  // namespace

extern const OpUnit kMean = {tflite::BuiltinOperator::MEAN, "MEAN", 0, Prepare, Forward, Backward, nullptr, PrepareInt8,
                             ForwardInt8};

}  // namespace tflm_train
