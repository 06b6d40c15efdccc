// Top-k selection by magnitude for sparse backprop: O(n) on average
// (quickselect), no allocation, deterministic ties (the lower index wins).
#ifndef TFLM_TRAIN_KERNELS_TOP_K_H_
#define TFLM_TRAIN_KERNELS_TOP_K_H_

#include <stdint.h>

namespace tflm_train {
namespace kernels {

// Writes to `rows` the indices of the k entries of `values` with the largest
// magnitude, in ascending index order. Scratch: `index` (n entries), `mask`
// (n bytes). Returns the number of comparisons made (the selection cost).
// Needs 1 <= k <= n and finite values.
uint64_t SelectTopKRows(const float* values, int n, int k, int32_t* index, uint8_t* mask,
                        int32_t* rows);

}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_TOP_K_H_
