// AVERAGE_POOL_2D, optimized: the functions of kernels/average_pool.h (the spec)
// with the same results bit for bit: each channel's sum runs over the window's
// taps in the reference's order and is divided by the same count, but the
// window's inside taps are found once per pixel rather than tested per tap and
// channel, and the forward pass takes the channels in the inner loop (contiguous
// in x and y, the output row holding the running sums). The gradient skips zero
// errors (exact: kernels/fast/zero.h).
#ifndef TFLM_TRAIN_KERNELS_FAST_AVERAGE_POOL_H_
#define TFLM_TRAIN_KERNELS_FAST_AVERAGE_POOL_H_

#include "kernels/activations.h"
#include "kernels/average_pool.h"
#include "kernels/conv_shape.h"

namespace tflm_train {
namespace kernels {
namespace fast {

void AveragePool2D(const float* x, const ConvShape& s, FusedAct act, float* y);

void AveragePool2DInputGrad(const ConvShape& s, const float* dy, float* dx);

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_AVERAGE_POOL_H_
