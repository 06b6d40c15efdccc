// The TFLM ops the example's models use (make_data.py's MLP, CNN and MobileNet-style
// net), registered once for both programs.
#ifndef TFLM_TRAIN_SHARED_MODEL_MODEL_OPS_H_
#define TFLM_TRAIN_SHARED_MODEL_MODEL_OPS_H_

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

using ModelOpResolver = tflite::MicroMutableOpResolver<11>;

inline void AddModelOps(ModelOpResolver& resolver) {
  resolver.AddFullyConnected();
  resolver.AddConv2D();
  resolver.AddDepthwiseConv2D();
  resolver.AddMaxPool2D();
  resolver.AddAveragePool2D();
  resolver.AddMean();
  resolver.AddPad();
  resolver.AddAdd();
  resolver.AddReshape();
  resolver.AddSoftmax();
}

#endif  // TFLM_TRAIN_SHARED_MODEL_MODEL_OPS_H_
