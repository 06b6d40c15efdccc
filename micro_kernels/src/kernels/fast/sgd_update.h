// The SGD updates of sgd.h (the spec), optimized: the momentum and weight-decay
// tests hoisted out of the loops and, for plain SGD of a direct layer's kept rows,
// four rows sharing each load of x. Same arithmetic per weight in the same order,
// so results are bit-identical.
#ifndef TFLM_TRAIN_KERNELS_FAST_SGD_UPDATE_H_
#define TFLM_TRAIN_KERNELS_FAST_SGD_UPDATE_H_

#include <stdint.h>

#include "sgd.h"

namespace tflm_train {
namespace kernels {
namespace fast {

// As tflm_train::SgdUpdate.
void SgdUpdate(const SgdStep& s, const float* g, float g_scale, int n, float* w, float* velocity);

// As tflm_train::SgdUpdateRankOne (one row, gradient delta * x[i]).
void SgdUpdateRankOne(const SgdStep& s, float delta, const float* x, int n, float* w, float* velocity);

// Plain SGD (no momentum, no weight decay) of the listed rows of a [rows, n_in]
// weight matrix whose gradient is rank one: w[o, i] -= (delta[o] * x[i]) * lr for
// each o in rows (strictly ascending; null = rows 0..num_rows-1). A row with
// delta +0 is skipped when that is exact (kernels/fast/zero.h).
void SgdRankOneRows(float lr, const float* delta, const int32_t* rows, int num_rows, const float* x, int n_in,
                    float* w);

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_SGD_UPDATE_H_
