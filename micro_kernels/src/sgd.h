// SGD as Keras applies it, and its learning-rate schedules.
//   weight decay:  w <- w - w*(wd*lr)          (before the gradient step)
//   m == 0:        w <- w - g*lr
//   m > 0:         v <- -g*lr + v*m;  w <- w + v
#ifndef TFLM_TRAIN_SGD_H_
#define TFLM_TRAIN_SGD_H_

#include <stdint.h>

namespace tflm_train {

struct SgdStep {
  float lr;
  float momentum;
  float weight_decay;
};

// Keras' CosineDecay (with optional linear warm-up from `warmup_initial` to
// `peak`), evaluated at `step` batches seen; schedule 0 = constant `peak`.
float ScheduledLearningRate(uint8_t schedule, float peak, uint64_t step, uint32_t decay_steps,
                            uint32_t warmup_steps, float alpha, float warmup_initial);

// Updates n weights with gradient g[i] * g_scale (g may be null: zero gradient);
// velocity is null when momentum is 0.
inline void SgdUpdate(const SgdStep& s, const float* g, float g_scale, int n, float* w,
                      float* velocity) {
  for (int i = 0; i < n; ++i) {
    float wi = w[i];
    if (s.weight_decay != 0.0f) wi = wi - wi * (s.weight_decay * s.lr);
    const float gi = g != nullptr ? g[i] * g_scale : 0.0f;
    if (velocity != nullptr) {
      velocity[i] = -gi * s.lr + velocity[i] * s.momentum;
      wi = wi + velocity[i];
    } else {
      wi = wi - gi * s.lr;
    }
    w[i] = wi;
  }
}

// The same update for one weight row whose gradient is the rank-one delta * x[i].
inline void SgdUpdateRankOne(const SgdStep& s, float delta, const float* x, int n, float* w,
                             float* velocity) {
  for (int i = 0; i < n; ++i) {
    float wi = w[i];
    if (s.weight_decay != 0.0f) wi = wi - wi * (s.weight_decay * s.lr);
    const float gi = delta * x[i];
    if (velocity != nullptr) {
      velocity[i] = -gi * s.lr + velocity[i] * s.momentum;
      wi = wi + velocity[i];
    } else {
      wi = wi - gi * s.lr;
    }
    w[i] = wi;
  }
}

}  // namespace tflm_train

#endif  // TFLM_TRAIN_SGD_H_
