// MEAN over the positions of one sample: global average pooling of `positions`
// rows of `channels` values.
#ifndef TFLM_TRAIN_KERNELS_MEAN_H_
#define TFLM_TRAIN_KERNELS_MEAN_H_

#include <stdint.h>

namespace tflm_train {
namespace kernels {

// y[c] = mean over the rows of x[p, c].
inline void Mean(const float* x, int32_t positions, int32_t channels, float* y) {
  for (int32_t c = 0; c < channels; ++c) y[c] = 0.0f;
  for (int32_t p = 0; p < positions; ++p) {
    for (int32_t c = 0; c < channels; ++c) y[c] += x[p * channels + c];
  }
  for (int32_t c = 0; c < channels; ++c) y[c] /= static_cast<float>(positions);
}

// dx[p, c] += dy[c] / positions.
inline void MeanInputGrad(const float* dy, int32_t positions, int32_t channels, float* dx) {
  for (int32_t p = 0; p < positions; ++p) {
    for (int32_t c = 0; c < channels; ++c) dx[p * channels + c] += dy[c] / static_cast<float>(positions);
  }
}

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_MEAN_H_
