#include "kernels/loss.h"

#include <math.h>

namespace tflm_train {
namespace kernels {
namespace {

// -log softmax(z)[i] = log(sum_j exp(z_j - max)) - (z_i - max). Keeping the max
// out of the sum keeps small losses (confident samples) accurate.
struct LogSoftmax {
  float max_v;
  float log_sum;
  float NegLogProb(const float* z, int i) const { return log_sum - (z[i] - max_v); }
};

LogSoftmax MakeLogSoftmax(const float* z, int n) {
  float max_v = z[0];
  for (int i = 1; i < n; ++i) if (z[i] > max_v) max_v = z[i];
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += expf(z[i] - max_v);
  return {max_v, logf(sum)};
}

int ArgMax(const float* v, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) if (v[i] > v[best]) best = i;
  return best;
}

}  // namespace

float LossAndGradient(LossKind kind, const float* logits, const float* output, int n,
                      const float* target, float* grad, float* correct) {
  switch (kind) {
    case LossKind::kSparseCategoricalCrossentropy: {
      const int label = static_cast<int>(target[0]);
      for (int i = 0; i < n; ++i) grad[i] = output[i] - (i == label ? 1.0f : 0.0f);
      *correct = ArgMax(output, n) == label ? 1.0f : 0.0f;
      return MakeLogSoftmax(logits, n).NegLogProb(logits, label);
    }
    case LossKind::kCategoricalCrossentropy: {
      const LogSoftmax log_softmax = MakeLogSoftmax(logits, n);
      float loss = 0.0f;
      for (int i = 0; i < n; ++i) {
        loss += target[i] * log_softmax.NegLogProb(logits, i);
        grad[i] = output[i] - target[i];
      }
      *correct = ArgMax(output, n) == ArgMax(target, n) ? 1.0f : 0.0f;
      return loss;
    }
    case LossKind::kMeanSquaredError: {
      float loss = 0.0f;
      const float scale = 2.0f / static_cast<float>(n);
      for (int i = 0; i < n; ++i) {
        const float diff = output[i] - target[i];
        loss += diff * diff;
        grad[i] = scale * diff;
      }
      *correct = 0.0f;
      return loss / static_cast<float>(n);
    }
    case LossKind::kBinaryCrossentropy: {
      // Per output: max(z, 0) - z*y + log(1 + exp(-|z|)), the stable logits form.
      float loss = 0.0f;
      float right = 0.0f;
      const float inv_n = 1.0f / static_cast<float>(n);
      for (int i = 0; i < n; ++i) {
        const float z = logits[i];
        const float y = target[i];
        loss += (z > 0.0f ? z : 0.0f) - z * y + log1pf(expf(-fabsf(z)));
        grad[i] = (output[i] - y) * inv_n;
        const float predicted = output[i] > 0.5f ? 1.0f : 0.0f;
        if (predicted == y) right += 1.0f;
      }
      *correct = right * inv_n;
      return loss * inv_n;
    }
  }
  return 0.0f;
}

}  // namespace kernels
}  // namespace tflm_train
