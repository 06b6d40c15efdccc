// FULLY_CONNECTED, optimized: the same functions as kernels/fully_connected.h (the
// spec) with the same arithmetic in the same order, so results are bit-identical;
// only the loop structure differs (four output rows share each load of x, inner
// loops unrolled so that loads use immediate offsets).
#ifndef TFLM_TRAIN_KERNELS_FAST_FULLY_CONNECTED_H_
#define TFLM_TRAIN_KERNELS_FAST_FULLY_CONNECTED_H_

#include <stdint.h>

#include "kernels/activations.h"
#include "kernels/fully_connected.h"

namespace tflm_train {
namespace kernels {
namespace fast {

void FullyConnected(const float* x, int n_in, const float* w, const float* bias, int n_out, FusedAct act,
                    float* y);

// As kernels::FullyConnectedInputGrad; rows strictly ascending (null = all), as
// every kept list is.
void FullyConnectedInputGrad(const float* w, int n_in, const float* delta, const int32_t* rows, int num_rows,
                             float* dx);

// Batch > 1 only (a gradient buffer); the reference loop is already one
// contiguous multiply-add per weight.
using kernels::FullyConnectedWeightGrad;

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_FULLY_CONNECTED_H_
