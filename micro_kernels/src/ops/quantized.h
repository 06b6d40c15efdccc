// The int8 side of the op units: a frozen prefix of a full-integer model runs with
// TFLite's integer arithmetic (docs/int8.md). What an int8 op needs beyond its
// float record lives in a QuantizedOp, in the arena next to the op records, and
// each unit's prepare_int8 fills it from the tensors' scales and zero points the
// way TFLM's Prepare does, so the results are bit-exact with TFLM's kernels.
#ifndef TFLM_TRAIN_OPS_QUANTIZED_H_
#define TFLM_TRAIN_OPS_QUANTIZED_H_

#include "kernels/int8/add.h"
#include "kernels/int8/mean.h"
#include "kernels/int8/softmax.h"
#include "op_unit.h"

namespace tflm_train {

// One tensor's affine quantization: real = scale * (q - zero_point).
struct TensorQuantization {
  float scale = 0.0f;
  int32_t zero_point = 0;
};

struct QuantizedOp {
  TensorQuantization input, output;  // first input and output (QUANTIZE: output; DEQUANTIZE: input)
  int32_t act_min = -128, act_max = 127;  // the fused activation in the output's integers
  // Weight ops: int8 weights (zero point 0) and int32 bias inside the model; the
  // requantization of each output channel.
  const int8_t* weights = nullptr;
  const int32_t* bias = nullptr;
  int32_t* multiplier = nullptr;
  int32_t* shift = nullptr;
  kernels::AddInt8Params add;         // ADD of two int8 activations
  kernels::MeanInt8Params mean;       // MEAN
  kernels::SoftmaxInt8Params softmax;  // SOFTMAX
  bool from_float = false;            // QUANTIZE of a float input (else int8 -> int8)
  int32_t requant_multiplier = 0;     // QUANTIZE int8 -> int8
  int32_t requant_shift = 0;
};

// Whether operator `op` of the model runs on int8 data: it writes an int8 tensor,
// or it is a DEQUANTIZE (int8 in, float out).
bool RunsInt8(const PrepareContext& ctx);

// The per-tensor int8 quantization of activation tensor `tensor`; fails naming
// the operator for another type (int16, uint8, ...) or per-channel quantization.
Status Int8Activation(const PrepareContext& ctx, int32_t tensor, const char* what, TensorQuantization* q);

// First input and output as int8 activations, and the fused activation's range.
Status PrepareInt8InOut(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q);

// Ops that move int8 values without rescaling them (pooling, PAD, reshapes): the
// input and output must share scale and zero point, as TFLite's converter makes them.
Status PrepareInt8SameQuantization(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q);

// Weight ops: int8 weights with symmetric quantization, per tensor or per channel
// along `channel_axis`, an int32 bias (or none), and the channel multipliers
// (taken from the persistent arena; while measuring they are only checked).
Status PrepareInt8Weights(const PrepareContext& ctx, const OpRuntime& op, int channel_axis, int32_t channels,
                          QuantizedOp* q);

// The op's int8 views of its activations (the planner sizes int8 storage in bytes).
inline const int8_t* Int8In(const OpRuntime& op) { return reinterpret_cast<const int8_t*>(op.in); }
inline const int8_t* Int8In2(const OpRuntime& op) { return reinterpret_cast<const int8_t*>(op.in2); }
inline int8_t* Int8Out(const OpRuntime& op) { return reinterpret_cast<int8_t*>(op.out); }

}  // namespace tflm_train

#endif  // TFLM_TRAIN_OPS_QUANTIZED_H_
