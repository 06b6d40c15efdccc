// Per-op and per-layer records the trainer keeps in the arena.
#ifndef TFLM_TRAIN_TRAINER_INTERNAL_H_
#define TFLM_TRAIN_TRAINER_INTERNAL_H_

#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/conv.h"
#include "kernels/pad_add.h"

namespace tflm_train {

// The op kinds the step code runs; values equal plan::OpKind (checked in op_prepare.cc).
enum class OpKind : uint8_t {
  kFullyConnected = 0, kRelu = 1, kRelu6 = 2, kLogistic = 3, kTanh = 4, kSoftmax = 5, kReshape = 6,
  kConv2D = 7, kDepthwiseConv2D = 8, kMaxPool2D = 9, kAveragePool2D = 10, kMean = 11, kPad = 12,
  kAdd = 13,
};

inline bool HasWeights(OpKind kind) {
  return kind == OpKind::kFullyConnected || kind == OpKind::kConv2D ||
         kind == OpKind::kDepthwiseConv2D;
}

// What an op needs from the forward pass to run its backward.
inline bool BackwardReadsInput(OpKind kind, bool trainable) {
  return (trainable && HasWeights(kind)) || kind == OpKind::kMaxPool2D;
}

struct OpRuntime {
  OpKind kind;
  kernels::FusedAct act;      // fused activation, or the op itself (Relu/Relu6)
  int32_t layer;              // trainable layer index, -1 if none
  int32_t n_in, n_out;        // elements (FullyConnected: features)
  int32_t rows, depth;        // Softmax: rows of `depth`; Mean: positions x channels
  int32_t fan_in;             // weight ops: MACs per output element (docs/algorithm.md)
  int32_t n_weights, n_bias;  // weight ops
  kernels::ConvShape conv;    // convolutions and pooling
  kernels::PadShape pad;      // Pad
  const float* in;            // input activation
  const float* in2;           // Add: the second input
  float* out;                 // output activation
  float* d_in;                // gradient w.r.t. the input, null when not needed
  float* d_in2;               // Add: gradient w.r.t. the second input, or null
  float* d_out;               // gradient w.r.t. the output, null when the op has no backward
  float* weights;             // inside the model bytes
  float* bias;                // or null
};

struct TrainableLayer {
  int32_t op;                 // index into the op records
  int32_t position;           // trainable layers between it and the output (0 = last)
  int32_t n_out;              // error elements ranked by top-k (a convolution's whole map)
  int32_t n_weights, n_bias;
  bool direct;                // FullyConnected at batch 1: updated from its kept rows, no buffer
  float* weights;
  float* bias;
  float* weight_velocity;     // momentum state, null when momentum is 0
  float* bias_velocity;
  float* weight_grad;         // gradient buffers, null when direct
  float* bias_grad;
  int32_t* rows;              // direct: this sample's kept output rows, ascending
  int32_t k;
  float ymax;                 // TinyProp running maximum of the layer's total error
};

}  // namespace tflm_train

#endif  // TFLM_TRAIN_TRAINER_INTERNAL_H_
