// The TFLM ops the example's models use (make_data.py's MLP, CNN, MobileNet-style net
// and the CNN with an int8 backbone), registered once for both programs.
#ifndef TFLM_TRAIN_SHARED_MODEL_MODEL_OPS_H_
#define TFLM_TRAIN_SHARED_MODEL_MODEL_OPS_H_

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

using ModelOpResolver = tflite::MicroMutableOpResolver<13>;

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
  resolver.AddQuantize();    // cnn_int8: the int8 backbone's edges
  resolver.AddDequantize();
}

#endif  // TFLM_TRAIN_SHARED_MODEL_MODEL_OPS_H_
