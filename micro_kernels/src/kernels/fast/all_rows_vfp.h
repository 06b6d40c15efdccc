// The whole-matrix row loop (Cortex-M4F inline assembly) shared by the FC input
// gradient (fully_connected.cc) and the fused SGD (sgd_update.cc).
#ifndef TFLM_TRAIN_KERNELS_FAST_ALL_ROWS_VFP_H_
#define TFLM_TRAIN_KERNELS_FAST_ALL_ROWS_VFP_H_

#include <stdint.h>

#include "kernels/fast/platform.h"

#if TFLM_TRAIN_VFP_ASM
namespace tflm_train {
namespace kernels {
namespace fast {

// True when a row list (strictly ascending, non-negative, as every kept list is;
// null: rows 0 .. num_rows - 1) holds every row 0 .. num_rows - 1, i.e. when its
// last is num_rows - 1.
inline bool ListsEveryRow(const int32_t* rows, int num_rows) {
  return num_rows > 0 && (rows == nullptr || rows[num_rows - 1] == num_rows - 1);
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

// The whole-matrix loop of the FC input gradient and the fused SGD, every row in
// turn: groups of four rows (their errors into s0-s3 by one VLDM, then LOOP4),
// then two rows (LOOP2), then one (LOOP1), as the operand rows needs. The loop
// stops, with d back at that group's (or pair's, or row's) first error, at the
// first whose errors multiply to +-0 (s4, s5: a +-0 error, or errors so small
// that their product underflows), and the caller's row-by-row loop, which may
// skip zero rows (kernels/fast/zero.h), takes the rest: three VMULs and one
// compare per four rows where testing each error takes two instructions. Both
// give the reference's bits (zero.h's one exception aside, where this loop,
// which skips nothing, is the one that matches), so where it stops changes no
// result; a zero beside an infinite error multiplies to NaN, compares unequal
// and is run here. Operands: d the errors, w0-w3 the rows' pointers, stride a
// row in bytes, n the blocks of a row (stride >> SHIFT), g the groups left.
// After each group (or pair) V, dx or x, goes back by a row and the row pointers
// on to the next rows (w3 ends at the next group's first row, w1 at the row
// after a pair).
#define TFLM_TRAIN_ALL_ROWS(V, SHIFT, LOOP4, LOOP2, LOOP1) \
  "lsrs %[g], %[rows], #2\n\t"                          \
  "beq 4f\n\t"                                          \
  "0:\n\t"                                              \
  "vldmia %[d]!, {s0-s3}\n\t"                           \
  "vmul.f32 s4, s0, s1\n\t"                             \
  "vmul.f32 s5, s2, s3\n\t"                             \
  "vmul.f32 s4, s4, s5\n\t"                             \
  "vcmp.f32 s4, #0\n\t"                                 \
  "vmrs APSR_nzcv, fpscr\n\t"                           \
  "beq 7f\n\t"                                          \
  "lsr %[n], %[stride], #" SHIFT "\n\t"                 \
  LOOP4                                                  \
  "sub %[" V "], %[" V "], %[stride]\n\t"               \
  "mov %[w0], %[w3]\n\t"                                \
  "add %[w1], %[w0], %[stride]\n\t"                     \
  "add %[w2], %[w1], %[stride]\n\t"                     \
  "add %[w3], %[w2], %[stride]\n\t"                     \
  "subs %[g], %[g], #1\n\t"                             \
  "bne 0b\n\t"                                          \
  "4:\n\t"                                              \
  "tst %[rows], #2\n\t"                                 \
  "beq 5f\n\t"                                          \
  "vldmia %[d]!, {s0-s1}\n\t"                           \
  "vmul.f32 s4, s0, s1\n\t"                             \
  "vcmp.f32 s4, #0\n\t"                                 \
  "vmrs APSR_nzcv, fpscr\n\t"                           \
  "beq 8f\n\t"                                          \
  "lsr %[n], %[stride], #" SHIFT "\n\t"                 \
  LOOP2                                                  \
  "sub %[" V "], %[" V "], %[stride]\n\t"               \
  "mov %[w0], %[w1]\n\t"                                \
  "5:\n\t"                                              \
  "tst %[rows], #1\n\t"                                 \
  "beq 6f\n\t"                                          \
  "vldmia %[d]!, {s0}\n\t"                              \
  "vcmp.f32 s0, #0\n\t"                                 \
  "vmrs APSR_nzcv, fpscr\n\t"                           \
  "beq 9f\n\t"                                          \
  "lsr %[n], %[stride], #" SHIFT "\n\t"                 \
  LOOP1                                                  \
  "b 6f\n\t"                                            \
  "7:\n\t"                                              \
  "sub %[d], %[d], #8\n\t"                              \
  "8:\n\t"                                              \
  "sub %[d], %[d], #4\n\t"                              \
  "9:\n\t"                                              \
  "sub %[d], %[d], #4\n\t"                              \
  "6:\n\t"
#endif

#endif  // TFLM_TRAIN_KERNELS_FAST_ALL_ROWS_VFP_H_
