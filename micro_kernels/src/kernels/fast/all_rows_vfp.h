// The whole-matrix row loop (Cortex-M4F inline assembly) shared by the FC input
// gradient (fully_connected.cc) and the fused SGD (sgd_update.cc).
#ifndef TFLM_TRAIN_KERNELS_FAST_ALL_ROWS_VFP_H_
#define TFLM_TRAIN_KERNELS_FAST_ALL_ROWS_VFP_H_

#include "kernels/fast/platform.h"

#if TFLM_TRAIN_VFP_ASM
// The whole-matrix loop of the FC input gradient and the fused SGD, every row in
// turn: groups of four rows (their errors into s0-s3 by one VLDM, then LOOP4),
// then two rows (LOOP2), then one (LOOP1), as the operand rows needs. Operands:
// d the errors, w0-w3 the rows' pointers, stride a row in bytes, n the blocks of
// a row (stride >> SHIFT), g the groups left. After each group (or pair) V, dx or
// x, goes back by a row and the row pointers on to the next rows (w3 ends at the
// next group's first row, w1 at the row after a pair).
#define TFLM_TRAIN_ALL_ROWS(V, SHIFT, LOOP4, LOOP2, LOOP1) \
  "lsrs %[g], %[rows], #2\n\t"                          \
  "beq 4f\n\t"                                          \
  "0:\n\t"                                              \
  "vldmia %[d]!, {s0-s3}\n\t"                           \
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
  "lsr %[n], %[stride], #" SHIFT "\n\t"                 \
  LOOP2                                                  \
  "sub %[" V "], %[" V "], %[stride]\n\t"               \
  "mov %[w0], %[w1]\n\t"                                \
  "5:\n\t"                                              \
  "tst %[rows], #1\n\t"                                 \
  "beq 6f\n\t"                                          \
  "vldr s0, [%[d]]\n\t"                                 \
  "lsr %[n], %[stride], #" SHIFT "\n\t"                 \
  LOOP1                                                  \
  "6:\n\t"
#endif

#endif  // TFLM_TRAIN_KERNELS_FAST_ALL_ROWS_VFP_H_
