// Per-op and per-layer records the trainer keeps in the arena.
#ifndef TFLM_TRAIN_TRAINER_INTERNAL_H_
#define TFLM_TRAIN_TRAINER_INTERNAL_H_

#include <stdint.h>

#include "kernels/activations.h"

namespace tflm_train {

// The op kinds the step code runs; values equal plan::OpKind (checked in trainer_init.cc).
enum class OpKind : uint8_t {
  kFullyConnected = 0, kRelu = 1, kRelu6 = 2, kLogistic = 3, kTanh = 4, kSoftmax = 5, kReshape = 6,
};

struct OpRuntime {
  OpKind kind;
  kernels::FusedAct act;      // fused (FullyConnected) or the op itself (Relu/Relu6)
  int32_t layer;              // trainable layer index, -1 if none
  int32_t n_in, n_out;        // elements (FullyConnected: features)
  int32_t rows, depth;        // Softmax: rows of `depth`
  const float* in;            // input activation
  float* out;                 // output activation
  float* d_in;                // gradient w.r.t. the input, null when not needed
  float* d_out;               // gradient w.r.t. the output, null when not needed
  float* weights;             // FullyConnected [n_out, n_in], inside the model bytes
  float* bias;                // [n_out] or null
};

struct TrainableLayer {
  int32_t op;                 // index into the op records
  int32_t position;           // trainable layers between it and the output (0 = last)
  int32_t n_in, n_out;
  float* weights;
  float* bias;
  float* weight_velocity;     // momentum state, null when momentum is 0
  float* bias_velocity;
  float* weight_grad;         // batch accumulators, null at batch size 1
  float* bias_grad;
  int32_t* rows;              // this sample's kept output rows, ascending
  int32_t k;
  float ymax;                 // TinyProp running maximum of the layer's total error
};

}  // namespace tflm_train

#endif  // TFLM_TRAIN_TRAINER_INTERNAL_H_
