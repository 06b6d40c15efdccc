// When the optimized kernels may skip a zero error, and stay bit-identical to
// the reference kernels that do not.
//
// Gradient accumulators (a weight-gradient buffer, an error buffer) start at +0
// and only ever receive additions. In round-to-nearest, a + (+-0) == a for every
// a except a == -0, and a sum reaches -0 only if every addend is -0, so an
// accumulator that starts at +0 is never -0: adding d * v with d == +-0 and a
// finite v (a +-0 product) never changes it. A kernel may therefore skip an
// output element or row whose error is zero (ReLU-inactive outputs are exactly
// +0), provided what it multiplies is finite. Weights are (every update is
// checked for overflow). Activations are unless a float overflowed in forward
// and a ReLU then hid the -Inf from the loss: there the reference's 0 * Inf
// makes the gradient NaN and the update is refused, while the skip leaves it
// finite. That is the one case where the optimized kernels differ.
//
// A weight update w - (d * x[i]) * lr is not such a sum: with d == +0 it is
// w - (+-0), which turns a weight of -0 into +0 when the product is -0, i.e.
// when x[i] carries a sign bit. A row with d == +0 is skipped only when no x[i]
// has its sign bit set (XHasNoSignBit), as after a ReLU or for image input.
#ifndef TFLM_TRAIN_KERNELS_FAST_ZERO_H_
#define TFLM_TRAIN_KERNELS_FAST_ZERO_H_

#include <stdint.h>
#include <string.h>

namespace tflm_train {
namespace kernels {
namespace fast {

inline uint32_t FloatBits(float v) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof(bits));
  return bits;
}

// True when no x[i] is negative, -0 or a NaN with its sign bit set.
inline bool XHasNoSignBit(const float* x, int n) {
  uint32_t any = 0;
  for (int i = 0; i < n; ++i) any |= FloatBits(x[i]);
  return (any & 0x80000000u) == 0;
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_ZERO_H_
