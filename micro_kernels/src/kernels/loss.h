// Losses as Keras defines them, on one sample, with their gradient. The two
// cross-entropies work on the logits in front of the final Softmax/Logistic (as
// Keras does when the output comes from those activations), so the gradient is
// the stable `p - y` form.
#ifndef TFLM_TRAIN_KERNELS_LOSS_H_
#define TFLM_TRAIN_KERNELS_LOSS_H_

#include <stdint.h>

namespace tflm_train {
namespace kernels {

enum class LossKind : uint8_t {
  kSparseCategoricalCrossentropy = 0,
  kCategoricalCrossentropy = 1,
  kMeanSquaredError = 2,
  kBinaryCrossentropy = 3,
};

// Computes the loss of one sample and writes d loss / d (logits or outputs) to grad.
//   logits: the pre-activation for the cross-entropies (unused for MSE)
//   output: the model output (probabilities for the cross-entropies)
//   target: class index (sparse) or n values
// *correct: 1/0 for classification, fraction of right outputs for binary, 0 for MSE.
float LossAndGradient(LossKind kind, const float* logits, const float* output, int n,
                      const float* target, float* grad, float* correct);

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_LOSS_H_
