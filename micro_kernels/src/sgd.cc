#include "sgd.h"

#include <math.h>

namespace tflm_train {

float ScheduledLearningRate(uint8_t schedule, float peak, uint64_t step, uint32_t decay_steps,
                            uint32_t warmup_steps, float alpha, float warmup_initial) {
  if (schedule == 0) return peak;
  const float pi = 3.14159265358979f;
  float t = static_cast<float>(step);
  if (warmup_steps > 0 && t < static_cast<float>(warmup_steps)) {
    return (peak - warmup_initial) * (t / static_cast<float>(warmup_steps)) + warmup_initial;
  }
  t -= static_cast<float>(warmup_steps);
  const float total = static_cast<float>(decay_steps);
  if (t > total) t = total;
  const float cosine = 0.5f * (1.0f + cosf(pi * (t / total)));
  return peak * ((1.0f - alpha) * cosine + alpha);
}

}  // namespace tflm_train
