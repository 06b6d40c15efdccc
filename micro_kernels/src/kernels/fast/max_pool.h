// MAX_POOL_2D, optimized: the functions of kernels/max_pool.h (the spec) with the
// same results bit for bit (the same comparisons in the same tap order per
// channel), but four channels share each step over the window, whose bounds are
// found once per pixel, and the gradient rescans only windows with a nonzero error
// (exact: kernels/fast/zero.h).
#ifndef TFLM_TRAIN_KERNELS_FAST_MAX_POOL_H_
#define TFLM_TRAIN_KERNELS_FAST_MAX_POOL_H_

#include "kernels/activations.h"
#include "kernels/conv_shape.h"
#include "kernels/max_pool.h"

namespace tflm_train {
namespace kernels {
namespace fast {

void MaxPool2D(const float* x, const ConvShape& s, FusedAct act, float* y);

void MaxPool2DInputGrad(const float* x, const ConvShape& s, const float* dy, float* dx);

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_MAX_POOL_H_
