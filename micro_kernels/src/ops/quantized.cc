#include "ops/quantized.h"

#include "arena_allocator.h"
#include "finite.h"
#include "kernels/int8/quantization.h"
#include "schema/tflite_schema.h"

namespace tflm_train {
namespace {

constexpr int kInt8 = static_cast<int>(tflite::TensorType::INT8);
constexpr int kInt32 = static_cast<int>(tflite::TensorType::INT32);

// Why a tensor type cannot run in the int8 prefix, for the refusal.
const char* TypeProblem(int type) {
  switch (type) {
    case static_cast<int>(tflite::TensorType::INT16): return "is int16 (16x8 quantization is not supported)";
    case static_cast<int>(tflite::TensorType::UINT8): return "is uint8 (only int8 quantization is supported)";
    case static_cast<int>(tflite::TensorType::FLOAT32): return "is float32 where int8 is expected";
    default: return "is not int8";
  }
}

bool ValidScale(float scale) { return IsFinite(scale) && scale > 0.0f; }

}  // namespace

bool RunsInt8(const PrepareContext& ctx) {
  const int32_t code = ctx.view.BuiltinCode(ctx.op);
  if (code == static_cast<int32_t>(tflite::BuiltinOperator::DEQUANTIZE)) return true;
  return TensorType(ctx.view, ctx.Output(0)) == kInt8;
}

Status Int8Activation(const PrepareContext& ctx, int32_t tensor, const char* what, TensorQuantization* q) {
  const int type = TensorType(ctx.view, tensor);
  if (type != kInt8) {
    ctx.Fail("has an int8 output, but its ", Status::kUnsupportedModel);
    ctx.why->Add(what).Add(" ").Add(TypeProblem(type));
    return Status::kUnsupportedModel;
  }
  const tflite::QuantizationParameters p = ctx.view.tensor(tensor).quantization();
  if (!p.present() || p.scale().size() != 1 || p.zero_point().size() != 1 || p.details_type() != 0) {
    ctx.Fail("needs one scale and zero point on its int8 ", Status::kUnsupportedModel);
    ctx.why->Add(what);
    return Status::kUnsupportedModel;
  }
  const float scale = p.scale().Get<float>(0);
  const int64_t zero_point = p.zero_point().Get<int64_t>(0);
  if (!ValidScale(scale) || zero_point < -128 || zero_point > 127) {
    ctx.Fail("has an int8 ", Status::kInvalidModel);
    ctx.why->Add(what).Add(" with a scale that is not finite and positive or a zero point outside int8");
    return Status::kInvalidModel;
  }
  q->scale = scale;
  q->zero_point = static_cast<int32_t>(zero_point);
  return Status::kOk;
}

Status PrepareInt8InOut(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  Status status = Int8Activation(ctx, op.inputs[0], "input", &q->input);
  if (status == Status::kOk) status = Int8Activation(ctx, op.output, "output", &q->output);
  if (status != Status::kOk) return status;
  kernels::Int8ActivationRange(op.act, q->output.scale, q->output.zero_point, &q->act_min, &q->act_max);
  return Status::kOk;
}

Status PrepareInt8SameQuantization(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q) {
  const Status status = PrepareInt8InOut(ctx, op, q);
  if (status != Status::kOk) return status;
  if (q->input.scale != q->output.scale || q->input.zero_point != q->output.zero_point) {
    return ctx.Fail("needs the same int8 scale and zero point on its input and output");
  }
  return Status::kOk;
}

Status PrepareInt8Weights(const PrepareContext& ctx, const OpRuntime& op, int channel_axis, int32_t channels,
                          QuantizedOp* q) {
  Status status = PrepareInt8InOut(ctx, op, q);
  if (status != Status::kOk) return status;
  const int32_t weights = ctx.Input(1);
  const int32_t bias = ctx.num_inputs() > 2 ? ctx.Input(2) : -1;
  uint32_t bytes = 0;
  const uint8_t* w = ConstantBytes(ctx.view, weights, &bytes);
  if (TensorType(ctx.view, weights) != kInt8 || w == nullptr || static_cast<int64_t>(bytes) != op.n_weights) {
    return ctx.Fail("needs constant int8 weights (int4, uint8 and hybrid weights are not supported)");
  }
  const tflite::QuantizationParameters p = ctx.view.tensor(weights).quantization();
  const uint32_t scales = p.present() ? p.scale().size() : 0;
  if (scales == 0 || p.zero_point().size() != scales || p.details_type() != 0 ||
      (scales != 1 && (scales != static_cast<uint32_t>(channels) || p.quantized_dimension() != channel_axis))) {
    return ctx.Fail("needs int8 weights quantized per tensor or per output channel");
  }
  for (uint32_t c = 0; c < scales; ++c) {
    if (p.zero_point().Get<int64_t>(c) != 0) {
      return ctx.Fail("has asymmetric int8 weights (a nonzero weight zero point); TFLite's int8 kernels "
                      "need symmetric ones");
    }
    if (!ValidScale(p.scale().Get<float>(c))) {
      return ctx.Fail("has a weight scale that is not finite and positive", Status::kInvalidModel);
    }
  }
  const uint8_t* b = nullptr;
  if (bias >= 0) {
    b = ConstantBytes(ctx.view, bias, &bytes);
    if (TensorType(ctx.view, bias) != kInt32 || b == nullptr || bytes != static_cast<uint32_t>(channels) * 4u ||
        (reinterpret_cast<uintptr_t>(b) & 3u) != 0) {
      return ctx.Fail("needs a constant, 4-byte aligned int32 bias for its int8 weights");
    }
  }
  q->weights = reinterpret_cast<const int8_t*>(w);
  q->bias = reinterpret_cast<const int32_t*>(b);
  q->multiplier = ctx.persistent->Take<int32_t>(static_cast<size_t>(channels));
  q->shift = ctx.persistent->Take<int32_t>(static_cast<size_t>(channels));
  const bool fully_connected =
      ctx.view.BuiltinCode(ctx.op) == static_cast<int32_t>(tflite::BuiltinOperator::FULLY_CONNECTED);
  for (int32_t c = 0; c < channels; ++c) {
    const float scale = p.scale().Get<float>(scales == 1 ? 0u : static_cast<uint32_t>(c));
    // TFLM's per-tensor FULLY_CONNECTED takes input x weight scale in float first;
    // the convolutions (and per-channel weights) take the whole ratio in double.
    kernels::Requant r = {0, 0};
    if (fully_connected && scales == 1) {
      r = kernels::FullyConnectedMultiplier(q->input.scale, scale, q->output.scale);
    } else {
      kernels::ChannelMultipliers(q->input.scale, &scale, 1, q->output.scale, 1, &r.multiplier, &r.shift);
    }
    if (!kernels::RequantSupported(r) || r.multiplier == 0) {
      return ctx.Fail("has scales whose ratio TFLite's int8 arithmetic cannot represent", Status::kInvalidModel);
    }
    if (q->multiplier != nullptr && q->shift != nullptr) {  // else measuring: checked only
      q->multiplier[c] = r.multiplier;
      q->shift[c] = r.shift;
    }
  }
  return Status::kOk;
}

}  // namespace tflm_train
