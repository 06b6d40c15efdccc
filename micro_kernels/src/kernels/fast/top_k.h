// Top-k selection by magnitude, optimized: the same result as kernels/top_k.h
// (the spec: the k largest |values|, ties to the lower index, ascending), found
// by selecting the k-th largest magnitude T as an integer key instead of ranking
// (value, index) pairs, so ties cost nothing extra. From 512 values on, T is
// first bracketed from a sample; one pass then lists the rows at or above the
// bracket, and only the candidates inside it are ranked exactly. A bracket that
// misses T is followed by a wider one on T's side, and if that misses too by
// quickselect over all keys: the same result, more work.
#ifndef TFLM_TRAIN_KERNELS_FAST_TOP_K_H_
#define TFLM_TRAIN_KERNELS_FAST_TOP_K_H_

#include <stdint.h>

#include "kernels/top_k.h"

namespace tflm_train {
namespace kernels {
namespace fast {

// As kernels::SelectTopKRows; `mask` is not used, and `rows` needs n entries
// (as the trainer gives it). Returns the number of key comparisons made (a
// different count from the reference's for the same input, deterministic).
uint64_t SelectTopKRows(const float* values, int n, int k, int32_t* index, uint8_t* mask, int32_t* rows);

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_TOP_K_H_
