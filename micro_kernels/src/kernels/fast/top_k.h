// Top-k selection by magnitude, optimized: the same result as kernels/top_k.h
// (the spec: the k largest |values|, ties to the lower index, ascending), found
// by selecting the k-th largest magnitude as an integer key instead of ranking
// (value, index) pairs, so ties cost nothing extra.
#ifndef TFLM_TRAIN_KERNELS_FAST_TOP_K_H_
#define TFLM_TRAIN_KERNELS_FAST_TOP_K_H_

#include <stdint.h>

#include "kernels/top_k.h"

namespace tflm_train {
namespace kernels {
namespace fast {

// As kernels::SelectTopKRows; `mask` is not used. Returns the number of key
// comparisons made (a different count from the reference's for the same input).
uint64_t SelectTopKRows(const float* values, int n, int k, int32_t* index, uint8_t* mask, int32_t* rows);

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_TOP_K_H_
