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

#include "kernels/fast/platform.h"

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

// True when a row list (strictly ascending, non-negative, as every kept list is;
// null: rows 0 .. num_rows - 1) holds every row 0 .. num_rows - 1 (then its last
// is num_rows - 1) and none of their errors is +-0:
// then no row is one a kernel would skip, and all can run in one loop.
inline bool EveryRowNoZero(const int32_t* rows, int num_rows, const float* delta) {
  if (num_rows <= 0 || (rows != nullptr && rows[num_rows - 1] != num_rows - 1)) return false;
  const float* d = delta;
  const float* const end = delta + num_rows;
#if TFLM_TRAIN_VFP_ASM
  // Four errors per LDM (its registers named so that the list ascends), then a
  // shift-and-test each: 11 instructions per four where the C loop takes 20.
  const float* const end4 = delta + (num_rows & ~3);
  if (d != end4) {
    register uint32_t a __asm__("r4");
    register uint32_t b __asm__("r5");
    register uint32_t c __asm__("r6");
    register uint32_t e __asm__("r8");
    int zero = 0;
    __asm__ volatile(
        "1:\n\t"
        "ldm %[d]!, {%[a], %[b], %[c], %[e]}\n\t"
        "lsls %[a], %[a], #1\n\t" "beq 2f\n\t"
        "lsls %[b], %[b], #1\n\t" "beq 2f\n\t"
        "lsls %[c], %[c], #1\n\t" "beq 2f\n\t"
        "lsls %[e], %[e], #1\n\t" "beq 2f\n\t"
        "cmp %[d], %[end]\n\t"
        "bne 1b\n\t"
        "b 3f\n\t"
        "2:\n\t"
        "movs %[z], #1\n\t"
        "3:\n\t"
        : [d] "+r"(d), [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [e] "=&r"(e), [z] "+r"(zero)
        : [end] "r"(end4)
        : "cc", "memory");
    if (zero != 0) return false;
  }
#endif
  for (; d != end; ++d) {
    if ((FloatBits(*d) << 1) == 0u) return false;
  }
  return true;
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_ZERO_H_
