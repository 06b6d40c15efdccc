// One unit per TFLite operator the trainer runs, registered in one table
// (ops/registry.cc), as TFLM's op resolver does: its Prepare (validate the
// operator against its tensors and options, fill its runtime record), Forward,
// Backward (input gradients), and its traits (what backward reads, weights).
// docs/design.md, "Adding an op", lists what a new op needs.
#ifndef TFLM_TRAIN_OP_UNIT_H_
#define TFLM_TRAIN_OP_UNIT_H_

#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/conv_shape.h"
#include "kernels/pad.h"
#include "message.h"
#include "model_reader.h"
#include "tflm_train/status.h"

namespace tflm_train {

class ArenaAllocator;
struct QuantizedOp;

// What an op is, as the graph planner and the step code need to know.
enum OpTrait : uint8_t {
  kWeights = 1,             // FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D: can train
  kReadsInput = 2,          // backward reads the op's (first) input activation
  kReadsOutput = 4,         // backward reads its output (also any op with a fused activation)
  kAliasesInput = 8,        // the output is the input's storage with another shape (no copy)
};

// Everything an op needs at run time, filled by its Prepare and the planner. It
// lives in the arena, one per operator of subgraph 0.
struct OpRuntime {
  const struct OpUnit* unit;
  int32_t index;              // operator index in subgraph 0
  kernels::FusedAct act;      // fused activation, or the op itself (RELU/RELU6)
  int32_t layer;              // trainable layer index, -1 if none
  int32_t n_in, n_out;        // elements (FULLY_CONNECTED: features)
  int32_t rows, depth;        // SOFTMAX: rows of `depth`; MEAN: positions x channels;
                              // elementwise with a constant: positions x constant length
  int32_t fan_in;             // weight ops: MACs per output element (docs/algorithm.md)
  int32_t n_weights, n_bias;  // weight ops
  kernels::ConvShape conv;    // convolutions and pooling
  tflite::Padding padding;    // their TFLite padding (for reports; conv holds the geometry)
  kernels::PadShape pad;      // PAD
  int32_t inputs[2];          // activation tensors read (-1: none)
  int32_t output;             // tensor written
  float* constant;            // ADD/SUB/MUL with a constant operand: its data, else null
  bool constant_first;        // SUB: the constant is the minuend
  // Graph facts (graph.cc): the op whose storage each input/the output uses
  // (aliases resolved; -1 is the model input), and whether backward visits it.
  int32_t input_root[2];
  int32_t output_root;
  bool needs_grad;
  // Resolved by the planner.
  const float* in;            // first input activation
  const float* in2;           // second input activation (ADD/SUB of two layers)
  float* out;
  float* d_in;                // gradient w.r.t. the first input, null when not needed
  float* d_in2;
  float* d_out;               // gradient w.r.t. the output, null when the op has no backward
  float* weights;             // inside the model bytes
  float* bias;                // or null
  // int8 ops (frozen, forward only): their quantization, else null. in/out then
  // point at int8 data (a DEQUANTIZE's output is float).
  const QuantizedOp* quant;
};

// Which of a plan layer's parameters train: every policy but the baselines trains
// all of them; a baseline picks layers, biases or output channels (docs/baselines.md).
enum TrainedParts : uint8_t {
  kTrainsAllWeights = 1,
  kTrainsSomeChannels = 2,  // the weights of the channels `selected` marks
  kTrainsBias = 4,
};

// A trainable layer: a weight op, its parameters and its training state.
struct TrainableLayer {
  int32_t op;                 // index into the op records
  int32_t position;           // trainable layers between it and the output (0 = last)
  int32_t n_out;              // error elements ranked by top-k (a convolution's whole map)
  int32_t n_weights, n_bias;
  bool direct;                // FULLY_CONNECTED at batch 1: updated from its kept rows, no buffer
  float* weights;
  float* bias;                // the op's own bias, or the constant of a split-off ADD
  float* weight_velocity;     // momentum state, null when momentum is 0
  float* bias_velocity;
  float* weight_grad;         // gradient buffers, null when direct
  float* bias_grad;
  int32_t* rows;              // direct: this sample's kept output rows, ascending
  int32_t k;
  float ymax;                 // TinyProp running maximum of the layer's total error
  uint8_t trains;             // TrainedParts bits; 0: a baseline leaves the layer frozen
  int32_t channels;           // output channels (the last axis of its output)
  uint8_t* selected;          // SparseUpdate/TinyTrain: 1 per channel whose weights train
  float* fisher;              // per channel: TinyTrain's Fisher sums (SparseUpdate: weight norms at Init)
};

// What Prepare reads: the verified model and the operator's index.
struct PrepareContext {
  const ModelView& view;
  uint8_t* model;             // writable model bytes (weights are trained in place)
  int index;
  tflite::Operator op;
  Message* why;
  ArenaAllocator* persistent;  // lasts as long as the trainer (int8 multipliers); hands out null while measuring

  // Input/output tensor `i` of the operator (-1 when absent or out of range).
  int32_t Input(uint32_t i) const;
  int32_t Output(uint32_t i) const;
  uint32_t num_inputs() const { return op.inputs().size(); }
  uint32_t num_outputs() const { return op.outputs().size(); }
  // Writes "operator N (CODE) <what>" and returns `status`.
  Status Fail(const char* what, Status status = Status::kUnsupportedModel) const;
  // The builtin options as table type T, checked against the union's type tag.
  template <typename T>
  T Options(tflite::BuiltinOptions type) const {
    return op.builtin_options_type() == type ? T(op.builtin_options().table()) : T();
  }
  // Reads a fused activation option: NONE, RELU and RELU6 are what the kernels run.
  Status FusedActivation(tflite::ActivationFunctionType fused, kernels::FusedAct* act) const;
};

struct OpUnit {
  tflite::BuiltinOperator code;
  const char* name;
  uint8_t traits;  // OpTrait bits
  // Validates the operator and fills `op` (shapes, options, activation tensors,
  // constant data). Weight ops fill weights/bias; they train only if the plan says so.
  Status (*prepare)(const PrepareContext& ctx, OpRuntime* op);
  // Computes op.out from op.in (and op.in2 / constants); returns its MACs (weight ops).
  uint64_t (*forward)(const OpRuntime& op);
  // Adds the input gradient(s) from op.d_out into op.d_in / op.d_in2 where those are
  // not null. Weight ops leave this null: the trainer runs their sparse backward.
  void (*backward)(const OpRuntime& op);
  // Weight ops: weight gradient (into grad_w, when not null) and input gradient
  // (into op.d_in, when not null) from the errors of the `k` output elements in
  // `kept` (null: all, in order).
  void (*weight_backward)(const OpRuntime& op, const int32_t* kept, int32_t k, float* grad_w);
  // int8 (ops/quantized.h): after `prepare`, fills `q` from the tensors' scales and
  // zero points as TFLM's Prepare does; null when the trainer has no int8 kernel.
  Status (*prepare_int8)(const PrepareContext& ctx, const OpRuntime& op, QuantizedOp* q);
  // Computes the int8 output (DEQUANTIZE: float); returns MACs as `forward` does.
  uint64_t (*forward_int8)(const OpRuntime& op);
};

// The unit for a builtin code, or null when the trainer does not run that operator.
const OpUnit* FindOpUnit(int32_t builtin_code);

inline bool Has(const OpRuntime& op, OpTrait trait) { return (op.unit->traits & trait) != 0; }
inline bool ReadsOutputInBackward(const OpRuntime& op) {
  return Has(op, kReadsOutput) || op.act != kernels::FusedAct::kNone;
}
// Whether the op's output holds int8 (sized in bytes by the planner).
inline bool WritesInt8(const OpRuntime& op) {
  return op.quant != nullptr && op.unit->code != tflite::BuiltinOperator::DEQUANTIZE;
}
inline bool ReadsInputInBackward(const OpRuntime& op) {
  return Has(op, kReadsInput) || (Has(op, kWeights) && op.layer >= 0);
}

}  // namespace tflm_train

#endif  // TFLM_TRAIN_OP_UNIT_H_
