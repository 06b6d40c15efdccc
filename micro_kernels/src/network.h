// The trainer's picture of the model after Init: one record per operator and per
// trainable layer, and per tensor its storage, its gradient and its producer. It
// lives at the start of the arena (its size depends only on the model's counts).
#ifndef TFLM_TRAIN_NETWORK_H_
#define TFLM_TRAIN_NETWORK_H_

#include <stddef.h>
#include <stdint.h>

#include "op_unit.h"

namespace tflm_train {

struct Network {
  OpRuntime* ops = nullptr;
  int32_t num_ops = 0;
  TrainableLayer* layers = nullptr;
  int32_t num_layers = 0;
  float** tensor_data = nullptr;  // per tensor: its storage (null for constants)
  float** tensor_grad = nullptr;  // per tensor: its error buffer, null when backward needs none
  int32_t* producer = nullptr;    // per tensor: the op that writes it, -1 (input, constants)
  int32_t num_tensors = 0;
  int32_t input = -1, output = -1;  // the model's input and output tensors
  size_t input_size = 0, output_size = 0;  // their elements
  int32_t loss_op = 0;            // ops from here on are folded into the loss gradient
  int32_t lowest_layer = 0;       // the lowest layer that trains anything: backward stops there
  bool keeps_layer_outputs = false;  // TinyTrain: its measurement reads every layer's output
  // Laid out by the arena planner.
  float* error_region = nullptr;  // all per-sample error buffers, zeroed per sample
  size_t error_region_floats = 0;
  int32_t* select_index = nullptr;  // top-k scratch, sized for the widest trainable layer
  uint8_t* select_mask = nullptr;
  int32_t* select_rows = nullptr;   // kept elements of layers that are not `direct`
};

}  // namespace tflm_train

#endif  // TFLM_TRAIN_NETWORK_H_
