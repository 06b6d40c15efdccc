// Applies a step's gradients to the trainable layers with SGD (sgd.h), refusing
// a step whose update could overflow, and clears the gradient buffers.
#ifndef TFLM_TRAIN_OPTIMIZER_H_
#define TFLM_TRAIN_OPTIMIZER_H_

#include "message.h"
#include "network.h"
#include "tflm_train/trainer.h"

namespace tflm_train {

// The learning rate after `step` batches.
float LearningRate(const SgdSettings& sgd, uint64_t step);

// Direct layers (FULLY_CONNECTED at batch size 1) update straight from their kept
// rows and errors, with no gradient buffer; the others apply their gradient
// buffers scaled by `grad_scale` (1 / samples trained). Gradients are cleared
// either way. kNonFinite (weights unchanged) when an update could overflow.
Status ApplyUpdate(const SgdSettings& sgd, Network* net, float lr, float grad_scale, Message* why);

void ClearGradients(Network* net);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_OPTIMIZER_H_
