// PAD with zeros: constant paddings [rank, 2] (before, after per axis), rank <= 4.
#include "kernels/pad.h"
#include "kernels/int8/pad.h"
#include "ops/prepare_helpers.h"
#include "ops/quantized.h"

namespace tflm_train {
namespace {

Status Prepare(const PrepareContext& ctx, OpRuntime* op) {
  Dims in, out;
  Status status = PrepareInOut(ctx, op, &in, &out);
  if (status != Status::kOk) return status;
  if (ctx.num_inputs() != 2) return ctx.Fail("(PADV2-style) padding values are not supported");
  uint32_t bytes = 0;
  const uint8_t* paddings = ConstantBytes(ctx.view, ctx.Input(1), &bytes);
  const int type = TensorType(ctx.view, ctx.Input(1));
  const uint32_t width = type == static_cast<int>(tflite::TensorType::INT64) ? 8 : 4;
  if (paddings == nullptr || (type != static_cast<int>(tflite::TensorType::INT32) && width != 8) ||
      in.rank < 1 || in.rank > 4 || out.rank != in.rank || bytes != static_cast<uint32_t>(in.rank) * 2 * width) {
    return ctx.Fail("needs constant int32/int64 paddings [rank, 2] for a rank 1-4 tensor");
  }
  const int lead = 4 - in.rank;
  for (int i = 0; i < 4; ++i) {
    const bool real = i >= lead;
    int64_t before = 0, after = 0;
    if (real) {
      const int axis = i - lead;
      if (width == 8) {
        memcpy(&before, paddings + 16 * axis, 8);
        memcpy(&after, paddings + 16 * axis + 8, 8);
      } else {
        int32_t b32, a32;
        memcpy(&b32, paddings + 8 * axis, 4);
        memcpy(&a32, paddings + 8 * axis + 4, 4);
        before = b32;
        after = a32;
      }
    }
    const int32_t d = real ? in.d[i - lead] : 1;
    if (before < 0 || after < 0 || before > kMaxWindow || after > kMaxWindow ||
        (real && out.d[i - lead] != before + d + after)) {
      return ctx.Fail("has paddings that do not give its output shape", Status::kInvalidModel);
    }
    op->pad.in[i] = d;
    op->pad.before[i] = static_cast<int32_t>(before);
    op->pad.after[i] = static_cast<int32_t>(after);
  }
  return Status::kOk;
}

uint64_t Forward(const OpRuntime& op) {
  kernels::Pad(op.in, op.pad, op.n_out, op.out);
  return 0;
}

void Backward(const OpRuntime& op) {
  if (op.d_in != nullptr) kernels::PadInputGrad(op.d_out, op.pad, op.d_in);
}

// TFLite pads int8 with the output's zero point: the real value 0.
uint64_t ForwardInt8(const OpRuntime& op) {
  kernels::PadInt8(Int8In(op), op.pad, op.n_out, static_cast<int8_t>(op.quant->output.zero_point), Int8Out(op));
  return 0;
}

}  // namespace

extern const OpUnit kPad = {tflite::BuiltinOperator::PAD, "PAD", 0, Prepare, Forward, Backward, nullptr,
                            PrepareInt8SameQuantization, ForwardInt8};

}  // namespace tflm_train
