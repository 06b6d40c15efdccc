// DEPTHWISE_CONV_2D, optimized: the functions of kernels/depthwise_conv_2d.h (the
// spec) with the same results bit for bit. Each output's sum still runs over the
// taps in the reference's order (rows, then columns), but the window's inside
// taps are found once per pixel rather than tested per tap and channel, the
// channels are the inner loop (contiguous in x, the weights and y, the output
// row holding the running sums), nothing is divided per element, and the
// gradients step through the kept list pixel by pixel and skip zero errors (exact:
// kernels/fast/zero.h). With multiplier 1, four kept channels in a row of one
// pixel go together tap by tap (each element still gets the reference's
// additions in its order; their zero errors are added, as the reference does,
// unless all four are zero).
#ifndef TFLM_TRAIN_KERNELS_FAST_DEPTHWISE_CONV_2D_H_
#define TFLM_TRAIN_KERNELS_FAST_DEPTHWISE_CONV_2D_H_

#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/conv_shape.h"
#include "kernels/depthwise_conv_2d.h"

namespace tflm_train {
namespace kernels {
namespace fast {

void DepthwiseConv2D(const float* x, const ConvShape& s, const float* w, const float* bias, FusedAct act,
                     float* y);

void DepthwiseConv2DWeightAndInputGrad(const float* x, const float* w, const ConvShape& s, const float* delta,
                                       const int32_t* kept, int32_t num_kept, float* grad_w, float* dx);

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_DEPTHWISE_CONV_2D_H_
