#include "kernels/fast/fully_connected.h"

#include <stdint.h>

#include "kernels/fast/all_rows_vfp.h"
#include "kernels/fast/platform.h"
#include "kernels/fast/zero.h"

namespace tflm_train {
namespace kernels {
namespace fast {
namespace {

#if !TFLM_TRAIN_VFP_ASM
// The reference's last steps of one row: (s0 + s1) + (s2 + s3), then the bias.
inline float RowResult(float s0, float s1, float s2, float s3, const float* bias, int o, FusedAct act) {
  float total = (s0 + s1) + (s2 + s3);
  if (bias != nullptr) total += bias[o];
  return ApplyFusedAct(act, total);
}
#endif

// dx[i] = (((dx[i] + w0[i]*d0) + w1[i]*d1) + w2[i]*d2) + w3[i]*d3: four rows in the
// order the reference adds them, with one load and store of dx instead of four.
#if TFLM_TRAIN_VFP_ASM
// InputGradRows4's columns [0, n4) (n4 a positive multiple of 4) on a Cortex-M4F:
// per four columns one VLDM and one VSTM of dx and one VLDM per row, the
// reference's VMUL and VADD per weight in its order. dx's four values live in
// s4-s7, a row's weights in s8-s11 and its products in s12-s15, leaving s0-s3 to
// the errors where the calling convention passes them.
#define TFLM_TRAIN_DX_ROW_IN(W, D)                                   \
  "vldmia %[" W "]!, {s8-s11}\n\t"                                   \
  "vmul.f32 s12, s8, " D "\n\t" "vmul.f32 s13, s9, " D "\n\t"        \
  "vmul.f32 s14, s10, " D "\n\t" "vmul.f32 s15, s11, " D "\n\t"      \
  "vadd.f32 s4, s4, s12\n\t" "vadd.f32 s5, s5, s13\n\t"            \
  "vadd.f32 s6, s6, s14\n\t" "vadd.f32 s7, s7, s15\n\t"
// The error D an operand, or (TFLM_TRAIN_DX_ROW_IN) a register named in the asm.
#define TFLM_TRAIN_DX_ROW(W, D) TFLM_TRAIN_DX_ROW_IN(W, "%[" D "]")
// The loop over blocks of four columns around the rows' ROWS.
#define TFLM_TRAIN_DX_LOOP(ROWS)   \
  "1:\n\t"                         \
  "vldm %[dx], {s4-s7}\n\t"        \
  ROWS                             \
  "vstmia %[dx]!, {s4-s7}\n\t"     \
  "subs %[n], %[n], #1\n\t"        \
  "bne 1b\n\t"
#define TFLM_TRAIN_DX_CLOBBERS \
  "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "cc", "memory"
void InputGradRows4Vfp(const float* w0, const float* w1, const float* w2, const float* w3, float d0, float d1,
                       float d2, float d3, int n4, float* dx) {
  int blocks = n4 >> 2;
  __asm__ volatile(
      TFLM_TRAIN_DX_LOOP(TFLM_TRAIN_DX_ROW("w0", "d0") TFLM_TRAIN_DX_ROW("w1", "d1")
                         TFLM_TRAIN_DX_ROW("w2", "d2") TFLM_TRAIN_DX_ROW("w3", "d3"))
      : [dx] "+r"(dx), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [n] "+r"(blocks)
      : [d0] "t"(d0), [d1] "t"(d1), [d2] "t"(d2), [d3] "t"(d3)
      : TFLM_TRAIN_DX_CLOBBERS);
}

// The same for two rows and for one (the rows left over from the groups of four).
void InputGradRows2Vfp(const float* w0, const float* w1, float d0, float d1, int n4, float* dx) {
  int blocks = n4 >> 2;
  __asm__ volatile(
      TFLM_TRAIN_DX_LOOP(TFLM_TRAIN_DX_ROW("w0", "d0") TFLM_TRAIN_DX_ROW("w1", "d1"))
      : [dx] "+r"(dx), [w0] "+r"(w0), [w1] "+r"(w1), [n] "+r"(blocks)
      : [d0] "t"(d0), [d1] "t"(d1)
      : TFLM_TRAIN_DX_CLOBBERS);
}
void InputGradRow1Vfp(const float* w0, float d0, int n4, float* dx) {
  int blocks = n4 >> 2;
  __asm__ volatile(
      TFLM_TRAIN_DX_LOOP(TFLM_TRAIN_DX_ROW("w0", "d0"))
      : [dx] "+r"(dx), [w0] "+r"(w0), [n] "+r"(blocks)
      : [d0] "t"(d0)
      : TFLM_TRAIN_DX_CLOBBERS);
}

// Every row of the input gradient in turn (n_in a positive multiple of 4) on a
// Cortex-M4F in one asm, up to the first group with a +-0 error:
// TFLM_TRAIN_ALL_ROWS (all_rows_vfp.h) around InputGradRows4Vfp's loops.
// Returns the rows done.
int InputGradAllVfp(const float* w, int n_in, const float* delta, int num_rows, float* dx) {
  const int stride = n_in * static_cast<int>(sizeof(float));
  // The first group's rows as addresses (integers: for fewer than four rows some
  // lie past the matrix, which the asm never reads and C++ may not point to).
  uintptr_t w0 = reinterpret_cast<uintptr_t>(w);
  uintptr_t w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride;
  const float* d = delta;
  int groups, n;
  __asm__ volatile(
      TFLM_TRAIN_ALL_ROWS("dx", "4",
          TFLM_TRAIN_DX_LOOP(TFLM_TRAIN_DX_ROW_IN("w0", "s0") TFLM_TRAIN_DX_ROW_IN("w1", "s1")
                             TFLM_TRAIN_DX_ROW_IN("w2", "s2") TFLM_TRAIN_DX_ROW_IN("w3", "s3")),
          TFLM_TRAIN_DX_LOOP(TFLM_TRAIN_DX_ROW_IN("w0", "s0") TFLM_TRAIN_DX_ROW_IN("w1", "s1")),
          TFLM_TRAIN_DX_LOOP(TFLM_TRAIN_DX_ROW_IN("w0", "s0")))
      : [dx] "+r"(dx), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [d] "+r"(d),
        [g] "=&r"(groups), [n] "=&r"(n)
      : [stride] "r"(stride), [rows] "r"(num_rows)
      : "s0", "s1", "s2", "s3", TFLM_TRAIN_DX_CLOBBERS);
  return static_cast<int>(d - delta);
}
#undef TFLM_TRAIN_DX_ROW_IN
#undef TFLM_TRAIN_DX_ROW
#undef TFLM_TRAIN_DX_LOOP
#undef TFLM_TRAIN_DX_CLOBBERS
#endif

// dx[i] += w[i] * d for one row.
void InputGradRow(const float* w_row, float d, int n_in, float* dx) {
  int i = 0;
#if TFLM_TRAIN_VFP_ASM
  i = n_in & ~3;
  if (i > 0) InputGradRow1Vfp(w_row, d, i, dx);
#endif
  for (; i < n_in; ++i) dx[i] = dx[i] + w_row[i] * d;
}

// Two rows: on the M4F sharing the loads of dx, else one after the other (the
// same additions in the same order per element).
void InputGradRows2(const float* w0, const float* w1, float d0, float d1, int n_in, float* dx) {
  int i = 0;
#if TFLM_TRAIN_VFP_ASM
  i = n_in & ~3;
  if (i > 0) InputGradRows2Vfp(w0, w1, d0, d1, i, dx);
#endif
  InputGradRow(w0 + i, d0, n_in - i, dx + i);
  InputGradRow(w1 + i, d1, n_in - i, dx + i);
}

void InputGradRows4(const float* w0, const float* w1, const float* w2, const float* w3, float d0, float d1,
                    float d2, float d3, int n_in, float* dx) {
  int i = 0;
#if TFLM_TRAIN_VFP_ASM
  i = n_in & ~3;
  if (i > 0) InputGradRows4Vfp(w0, w1, w2, w3, d0, d1, d2, d3, i, dx);
#endif
  for (; i + 2 <= n_in; i += 2) {
    float v0 = dx[i];
    float v1 = dx[i + 1];
    v0 += w0[i] * d0;
    v1 += w0[i + 1] * d0;
    v0 += w1[i] * d1;
    v1 += w1[i + 1] * d1;
    v0 += w2[i] * d2;
    v1 += w2[i + 1] * d2;
    v0 += w3[i] * d3;
    v1 += w3[i + 1] * d3;
    dx[i] = v0;
    dx[i + 1] = v1;
  }
  if (i < n_in) {
    float v = dx[i];
    v += w0[i] * d0;
    v += w1[i] * d1;
    v += w2[i] * d2;
    v += w3[i] * d3;
    dx[i] = v;
  }
}

#if TFLM_TRAIN_VFP_ASM
// FullyConnected on a Cortex-M4F: one inline-assembly block per group of six
// output rows (then four, two, one) does the whole rows: it zeroes the rows' partial
// sums, runs the blocks of four columns (per block one VLDM of x, per row one
// VLDM of its four weights, four VMUL and four VADD: sum j % 4 gets x[j] * w[j],
// as the reference adds it; the first block differs, see below), the last
// n_in % 4 columns into sum 0, then per row (s0 + s1) + (s2 + s3), + bias (when
// there is one), RELU (when act is kRelu; kRelu6 is applied afterwards in C), and
// stores the rows' outputs with one VSTM.
// Signed zeros in the first block: the reference's sums start at +0, so none of
// them is ever -0 (x + y is -0 only when both are). The first block stores
// products 1-3 as sums 1-3 (one VMUL each, no VADD) and adds product 0 to sum 0's
// +0. Sums 1-3 may then be -0 where the reference's are +0 (equal otherwise);
// sum 0 never is, so s0 + s1 absorbs s1's sign and is never -0 either, and
// (s0 + s1) + (s2 + s3) absorbs that of s2 + s3: every total has the
// reference's bits. That needs sum 0 seeded with +0 and this order of the total.
// In the four-row block (the others alike, see Rows6Vfp for six) row r's
// partial sums live in s12 + 4r ... s15 + 4r; s28 holds +0.0 (RELU's
// result for v <= 0 and NaN, as the reference's v > 0 ? v : 0). No VMLA: on a
// Cortex-M4 it takes 3 cycles, a VMUL and a VADD 2, and it would not round the
// same. Pointers advance: w_r past its row, x past n_in, bias and y past the rows.
alignas(8) const float kZeros[24] = {};

// One row's four weights times x's four (s0-s3), added to the row's sums.
#define TFLM_TRAIN_FC_ROW(W, S0, S1, S2, S3) \
  "vldmia %[" W "]!, {s4-s7}\n\t"            \
  "vmul.f32 s8, s0, s4\n\t"                  \
  "vmul.f32 s9, s1, s5\n\t"                  \
  "vmul.f32 s10, s2, s6\n\t"                 \
  "vmul.f32 s11, s3, s7\n\t"                 \
  "vadd.f32 " S0 ", " S0 ", s8\n\t"          \
  "vadd.f32 " S1 ", " S1 ", s9\n\t"          \
  "vadd.f32 " S2 ", " S2 ", s10\n\t"         \
  "vadd.f32 " S3 ", " S3 ", s11\n\t"
// The first four columns of a row: products 1-3 become sums 1-3, product 0 is
// added to sum 0's +0 (see "Signed zeros in the first block" above).
#define TFLM_TRAIN_FC_ROW_FIRST(W, S0, S1, S2, S3) \
  "vldmia %[" W "]!, {s4-s7}\n\t"                  \
  "vmul.f32 s8, s0, s4\n\t"                        \
  "vmul.f32 " S1 ", s1, s5\n\t"                    \
  "vmul.f32 " S2 ", s2, s6\n\t"                    \
  "vmul.f32 " S3 ", s3, s7\n\t"                    \
  "vadd.f32 " S0 ", " S0 ", s8\n\t"
// One tail column (x's in s0) into a row's sum 0; T is a scratch register.
#define TFLM_TRAIN_FC_TAIL(W, S0, T) \
  "vldmia %[" W "]!, {s4}\n\t"       \
  "vmul.f32 " T ", s0, s4\n\t"       \
  "vadd.f32 " S0 ", " S0 ", " T "\n\t"
// A row's total (s0 + s1) + (s2 + s3) into OUT.
#define TFLM_TRAIN_FC_TOTAL(S0, S1, S2, S3, OUT) \
  "vadd.f32 s8, " S0 ", " S1 "\n\t"              \
  "vadd.f32 s9, " S2 ", " S3 "\n\t"              \
  "vadd.f32 " OUT ", s8, s9\n\t"
// RELU of one output: v > 0 ? v : +0 (LE also holds for a NaN).
#define TFLM_TRAIN_FC_RELU(S) \
  "vcmpe.f32 " S ", #0\n\t"   \
  "vmrs APSR_nzcv, fpscr\n\t" \
  "it le\n\t"                 \
  "vmovle.f32 " S ", s28\n\t"
// The counter n packs ((n_in / 4 - 1) << 4) | (relu << 2) | n_in % 4 (see
// FullyConnectedVfp): the column loop subtracts 16 while n stays >= 0, the tail loop
// then counts down the low two bits, and bit 2 says RELU.
// Zero the sums; skip the column blocks when n_in < 4; load the first block's x
// (its rows follow, by TFLM_TRAIN_FC_ROW_FIRST).
#define TFLM_TRAIN_FC_BEGIN            \
  "vldm %[zeros], {s12-s28}\n\t"       \
  "cmp %[n], #0\n\t"                   \
  "blt 2f\n\t"                         \
  "vldmia %[x]!, {s0-s3}\n\t"
// After the first block: the next blocks' loop (rows by TFLM_TRAIN_FC_ROW).
#define TFLM_TRAIN_FC_NEXT             \
  "subs %[n], %[n], #16\n\t"           \
  "bmi 2f\n\t"                         \
  "1:\n\t"                             \
  "vldmia %[x]!, {s0-s3}\n\t"
#define TFLM_TRAIN_FC_LOOP_END \
  "subs %[n], %[n], #16\n\t"   \
  "bpl 1b\n\t"                 \
  "2:\n\t"                     \
  "tst %[n], #3\n\t"           \
  "beq 4f\n\t"                 \
  "3:\n\t"                     \
  "vldmia %[x]!, {s0}\n\t"
#define TFLM_TRAIN_FC_TAIL_END \
  "sub %[n], %[n], #1\n\t"     \
  "tst %[n], #3\n\t"           \
  "bne 3b\n\t"                 \
  "4:\n\t"
#define TFLM_TRAIN_FC_CLOBBERS                                                                               \
  "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", \
      "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "cc", "memory"

// Rows w0..w3 (each n_in long) into y[0..3].
#define TFLM_TRAIN_FC_ROWS4(ROW)              \
  ROW("w0", "s12", "s13", "s14", "s15")       \
  ROW("w1", "s16", "s17", "s18", "s19")       \
  ROW("w2", "s20", "s21", "s22", "s23")       \
  ROW("w3", "s24", "s25", "s26", "s27")
inline void Rows4Vfp(const float* x, int n, const float*& w0, const float* w1, const float* w2, const float*& w3,
                     const float*& bias, float*& y) {
  __asm__ volatile(
      TFLM_TRAIN_FC_BEGIN
      TFLM_TRAIN_FC_ROWS4(TFLM_TRAIN_FC_ROW_FIRST)
      TFLM_TRAIN_FC_NEXT
      TFLM_TRAIN_FC_ROWS4(TFLM_TRAIN_FC_ROW)
      TFLM_TRAIN_FC_LOOP_END
      TFLM_TRAIN_FC_TAIL("w0", "s12", "s8")
      TFLM_TRAIN_FC_TAIL("w1", "s16", "s9")
      TFLM_TRAIN_FC_TAIL("w2", "s20", "s10")
      TFLM_TRAIN_FC_TAIL("w3", "s24", "s11")
      TFLM_TRAIN_FC_TAIL_END
      TFLM_TRAIN_FC_TOTAL("s12", "s13", "s14", "s15", "s0")
      TFLM_TRAIN_FC_TOTAL("s16", "s17", "s18", "s19", "s1")
      TFLM_TRAIN_FC_TOTAL("s20", "s21", "s22", "s23", "s2")
      TFLM_TRAIN_FC_TOTAL("s24", "s25", "s26", "s27", "s3")
      "cmp %[b], #0\n\t"
      "beq 5f\n\t"
      "vldmia %[b]!, {s4-s7}\n\t"
      "vadd.f32 s0, s0, s4\n\t"
      "vadd.f32 s1, s1, s5\n\t"
      "vadd.f32 s2, s2, s6\n\t"
      "vadd.f32 s3, s3, s7\n\t"
      "5:\n\t"
      "tst %[n], #4\n\t"
      "beq 6f\n\t"
      TFLM_TRAIN_FC_RELU("s0")
      TFLM_TRAIN_FC_RELU("s1")
      TFLM_TRAIN_FC_RELU("s2")
      TFLM_TRAIN_FC_RELU("s3")
      "6:\n\t"
      "vstmia %[y]!, {s0-s3}\n\t"
      : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [n] "+r"(n),
        [b] "+r"(bias), [y] "+r"(y)
      : [zeros] "r"(kZeros)
      : TFLM_TRAIN_FC_CLOBBERS);
}

// Rows w0, w1 into y[0..1].
inline void Rows2Vfp(const float* x, int n, const float*& w0, const float*& w1, const float*& bias, float*& y) {
  __asm__ volatile(
      TFLM_TRAIN_FC_BEGIN
      TFLM_TRAIN_FC_ROW_FIRST("w0", "s12", "s13", "s14", "s15")
      TFLM_TRAIN_FC_ROW_FIRST("w1", "s16", "s17", "s18", "s19")
      TFLM_TRAIN_FC_NEXT
      TFLM_TRAIN_FC_ROW("w0", "s12", "s13", "s14", "s15")
      TFLM_TRAIN_FC_ROW("w1", "s16", "s17", "s18", "s19")
      TFLM_TRAIN_FC_LOOP_END
      TFLM_TRAIN_FC_TAIL("w0", "s12", "s8")
      TFLM_TRAIN_FC_TAIL("w1", "s16", "s9")
      TFLM_TRAIN_FC_TAIL_END
      TFLM_TRAIN_FC_TOTAL("s12", "s13", "s14", "s15", "s0")
      TFLM_TRAIN_FC_TOTAL("s16", "s17", "s18", "s19", "s1")
      "cmp %[b], #0\n\t"
      "beq 5f\n\t"
      "vldmia %[b]!, {s4-s5}\n\t"
      "vadd.f32 s0, s0, s4\n\t"
      "vadd.f32 s1, s1, s5\n\t"
      "5:\n\t"
      "tst %[n], #4\n\t"
      "beq 6f\n\t"
      TFLM_TRAIN_FC_RELU("s0")
      TFLM_TRAIN_FC_RELU("s1")
      "6:\n\t"
      "vstmia %[y]!, {s0-s1}\n\t"
      : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [n] "+r"(n), [b] "+r"(bias), [y] "+r"(y)
      : [zeros] "r"(kZeros)
      : TFLM_TRAIN_FC_CLOBBERS);
}

// Row w0 into y[0].
inline void Rows1Vfp(const float* x, int n, const float* w0, const float*& bias, float*& y) {
  __asm__ volatile(
      TFLM_TRAIN_FC_BEGIN
      TFLM_TRAIN_FC_ROW_FIRST("w0", "s12", "s13", "s14", "s15")
      TFLM_TRAIN_FC_NEXT
      TFLM_TRAIN_FC_ROW("w0", "s12", "s13", "s14", "s15")
      TFLM_TRAIN_FC_LOOP_END
      TFLM_TRAIN_FC_TAIL("w0", "s12", "s8")
      TFLM_TRAIN_FC_TAIL_END
      TFLM_TRAIN_FC_TOTAL("s12", "s13", "s14", "s15", "s0")
      "cmp %[b], #0\n\t"
      "beq 5f\n\t"
      "vldmia %[b]!, {s4}\n\t"
      "vadd.f32 s0, s0, s4\n\t"
      "5:\n\t"
      "tst %[n], #4\n\t"
      "beq 6f\n\t"
      TFLM_TRAIN_FC_RELU("s0")
      "6:\n\t"
      "vstmia %[y]!, {s0}\n\t"
      : [x] "+r"(x), [w0] "+r"(w0), [n] "+r"(n), [b] "+r"(bias), [y] "+r"(y)
      : [zeros] "r"(kZeros)
      : TFLM_TRAIN_FC_CLOBBERS);
}
// Six rows: their 24 partial sums fill s8-s31, so a row's products go to its own
// weights' registers (s4-s7) and x's pointer, the zeros, the bias and y are read
// from (and the bias and y written back to) an FcArgs: the asm has no registers
// left for them. Per four columns 57 instructions for 24 MACs, against 39 for 16.
struct FcArgs {
  const float* x;
  const float* zeros;
  const float* bias;
  float* y;
};
#define TFLM_TRAIN_FC_ROW6(W, S0, S1, S2, S3) \
  "vldmia %[" W "]!, {s4-s7}\n\t"             \
  "vmul.f32 s4, s0, s4\n\t"                   \
  "vmul.f32 s5, s1, s5\n\t"                   \
  "vmul.f32 s6, s2, s6\n\t"                   \
  "vmul.f32 s7, s3, s7\n\t"                   \
  "vadd.f32 " S0 ", " S0 ", s4\n\t"           \
  "vadd.f32 " S1 ", " S1 ", s5\n\t"           \
  "vadd.f32 " S2 ", " S2 ", s6\n\t"           \
  "vadd.f32 " S3 ", " S3 ", s7\n\t"
#define TFLM_TRAIN_FC_ROW6_FIRST(W, S0, S1, S2, S3) \
  "vldmia %[" W "]!, {s4-s7}\n\t"                   \
  "vmul.f32 s4, s0, s4\n\t"                         \
  "vmul.f32 " S1 ", s1, s5\n\t"                     \
  "vmul.f32 " S2 ", s2, s6\n\t"                     \
  "vmul.f32 " S3 ", s3, s7\n\t"                     \
  "vadd.f32 " S0 ", " S0 ", s4\n\t"
#define TFLM_TRAIN_FC_ROWS6(ROW)        \
  ROW("w0", "s8", "s9", "s10", "s11")   \
  ROW("w1", "s12", "s13", "s14", "s15") \
  ROW("w2", "s16", "s17", "s18", "s19") \
  ROW("w3", "s20", "s21", "s22", "s23") \
  ROW("w4", "s24", "s25", "s26", "s27") \
  ROW("w5", "s28", "s29", "s30", "s31")
#define TFLM_TRAIN_FC_TAIL6(W, S0) \
  "vldmia %[" W "]!, {s4}\n\t"     \
  "vmul.f32 s4, s0, s4\n\t"        \
  "vadd.f32 " S0 ", " S0 ", s4\n\t"
#define TFLM_TRAIN_FC_TOTAL6(S0, S1, S2, S3, OUT) \
  "vadd.f32 s6, " S0 ", " S1 "\n\t"               \
  "vadd.f32 s7, " S2 ", " S3 "\n\t"               \
  "vadd.f32 " OUT ", s6, s7\n\t"
#define TFLM_TRAIN_FC_RELU6(S) \
  "vcmpe.f32 " S ", #0\n\t"    \
  "vmrs APSR_nzcv, fpscr\n\t"  \
  "it le\n\t"                  \
  "vmovle.f32 " S ", s31\n\t"

// Rows w0..w5 (each n_in long) into a->y[0..5]; the counter n as for Rows4Vfp.
inline void Rows6Vfp(FcArgs* a, int n, const float*& w0, const float* w1, const float* w2, const float* w3,
                     const float* w4, const float*& w5) {
  const float* t;
  __asm__ volatile(
      "vldm %[zeros], {s8-s31}\n\t"
      "ldr %[t], [%[a]]\n\t"
      "cmp %[n], #0\n\t"
      "blt 2f\n\t"
      "vldmia %[t]!, {s0-s3}\n\t"
      TFLM_TRAIN_FC_ROWS6(TFLM_TRAIN_FC_ROW6_FIRST)
      "subs %[n], %[n], #16\n\t"
      "bmi 2f\n\t"
      "1:\n\t"
      "vldmia %[t]!, {s0-s3}\n\t"
      TFLM_TRAIN_FC_ROWS6(TFLM_TRAIN_FC_ROW6)
      "subs %[n], %[n], #16\n\t"
      "bpl 1b\n\t"
      "2:\n\t"
      "tst %[n], #3\n\t"
      "beq 4f\n\t"
      "3:\n\t"
      "vldmia %[t]!, {s0}\n\t"
      TFLM_TRAIN_FC_TAIL6("w0", "s8")
      TFLM_TRAIN_FC_TAIL6("w1", "s12")
      TFLM_TRAIN_FC_TAIL6("w2", "s16")
      TFLM_TRAIN_FC_TAIL6("w3", "s20")
      TFLM_TRAIN_FC_TAIL6("w4", "s24")
      TFLM_TRAIN_FC_TAIL6("w5", "s28")
      "sub %[n], %[n], #1\n\t"
      "tst %[n], #3\n\t"
      "bne 3b\n\t"
      "4:\n\t"
      TFLM_TRAIN_FC_TOTAL6("s8", "s9", "s10", "s11", "s0")
      TFLM_TRAIN_FC_TOTAL6("s12", "s13", "s14", "s15", "s1")
      TFLM_TRAIN_FC_TOTAL6("s16", "s17", "s18", "s19", "s2")
      TFLM_TRAIN_FC_TOTAL6("s20", "s21", "s22", "s23", "s3")
      TFLM_TRAIN_FC_TOTAL6("s24", "s25", "s26", "s27", "s4")
      TFLM_TRAIN_FC_TOTAL6("s28", "s29", "s30", "s31", "s5")
      "ldr %[t], [%[a], #8]\n\t"
      "cmp %[t], #0\n\t"
      "beq 5f\n\t"
      "vldmia %[t]!, {s8-s13}\n\t"
      "vadd.f32 s0, s0, s8\n\t"
      "vadd.f32 s1, s1, s9\n\t"
      "vadd.f32 s2, s2, s10\n\t"
      "vadd.f32 s3, s3, s11\n\t"
      "vadd.f32 s4, s4, s12\n\t"
      "vadd.f32 s5, s5, s13\n\t"
      "str %[t], [%[a], #8]\n\t"
      "5:\n\t"
      "tst %[n], #4\n\t"
      "beq 6f\n\t"
      "vldr s31, [%[zeros]]\n\t"
      TFLM_TRAIN_FC_RELU6("s0")
      TFLM_TRAIN_FC_RELU6("s1")
      TFLM_TRAIN_FC_RELU6("s2")
      TFLM_TRAIN_FC_RELU6("s3")
      TFLM_TRAIN_FC_RELU6("s4")
      TFLM_TRAIN_FC_RELU6("s5")
      "6:\n\t"
      "ldr %[t], [%[a], #12]\n\t"
      "vstmia %[t]!, {s0-s5}\n\t"
      "str %[t], [%[a], #12]\n\t"
      : [t] "=&r"(t), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [w4] "+r"(w4),
        [w5] "+r"(w5), [n] "+r"(n)
      : [a] "r"(a), [zeros] "r"(kZeros)
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
        "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30",
        "s31", "cc", "memory");
}
#undef TFLM_TRAIN_FC_ROW6
#undef TFLM_TRAIN_FC_ROW6_FIRST
#undef TFLM_TRAIN_FC_ROWS6
#undef TFLM_TRAIN_FC_ROWS4
#undef TFLM_TRAIN_FC_ROW_FIRST
#undef TFLM_TRAIN_FC_NEXT
#undef TFLM_TRAIN_FC_TAIL6
#undef TFLM_TRAIN_FC_TOTAL6
#undef TFLM_TRAIN_FC_RELU6
#undef TFLM_TRAIN_FC_ROW
#undef TFLM_TRAIN_FC_TAIL
#undef TFLM_TRAIN_FC_TOTAL
#undef TFLM_TRAIN_FC_RELU
#undef TFLM_TRAIN_FC_BEGIN
#undef TFLM_TRAIN_FC_LOOP_END
#undef TFLM_TRAIN_FC_TAIL_END
#undef TFLM_TRAIN_FC_CLOBBERS

void FullyConnectedVfp(const float* x, int n_in, const float* w, const float* bias, int n_out, FusedAct act,
                       float* y) {
  // See TFLM_TRAIN_FC_BEGIN: ((n_in / 4 - 1) << 4) | (relu << 2) | n_in % 4.
  const int n = ((n_in >> 2) - 1) * 16 + (act == FusedAct::kRelu ? 4 : 0) + (n_in & 3);
  float* const y_begin = y;
  const float* w0 = w;
  int rest = n_out;
  if (rest >= 6) {  // groups of six rows, then of four, two and one
    FcArgs args{x, kZeros, bias, y};
    for (; rest >= 6; rest -= 6) {
      const float* w1 = w0 + n_in;
      const float* w2 = w1 + n_in;
      const float* w3 = w2 + n_in;
      const float* w4 = w3 + n_in;
      const float* w5 = w4 + n_in;
      Rows6Vfp(&args, n, w0, w1, w2, w3, w4, w5);
      w0 = w5;  // w5 ends where the next group's first row starts
    }
    bias = args.bias;
    y = args.y;
  }
  for (int g = rest >> 2; g > 0; --g) {
    const float* w1 = w0 + n_in;
    const float* w2 = w1 + n_in;
    const float* w3 = w2 + n_in;
    Rows4Vfp(x, n, w0, w1, w2, w3, bias, y);
    w0 = w3;  // w3 ends where the next group's first row starts
  }
  if (rest & 2) {
    const float* w1 = w0 + n_in;
    Rows2Vfp(x, n, w0, w1, bias, y);
    w0 = w1;
  }
  if (rest & 1) Rows1Vfp(x, n, w0, bias, y);
  if (act == FusedAct::kRelu6) {
    for (int o = 0; o < n_out; ++o) y_begin[o] = ApplyFusedAct(act, y_begin[o]);
  }
}
#endif

#if TFLM_TRAIN_AVX_DISPATCH
// Columns [0, n4) of eight rows (w0 the first, rows n_in apart; n4 a positive
// multiple of 4) with AVX: register p holds rows 2p and 2p + 1, four lanes each
// (lane j: the elements i with i % 4 == j), x's four values in both halves. Row
// r's four partial sums go to sums[4r .. 4r + 3], as the SSE loop's.
__attribute__((target("avx"))) void Rows8Avx(const float* x, int n4, const float* w0, int n_in, float* sums) {
  const float* w[8];
  for (int r = 0; r < 8; ++r) w[r] = w0 + r * n_in;
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), c = _mm256_setzero_ps(), d = _mm256_setzero_ps();
  for (int i = 0; i < n4; i += 4) {
    const __m256 xv = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(x + i));
    const __m256 wa = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(w[0] + i)), _mm_loadu_ps(w[1] + i), 1);
    const __m256 wb = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(w[2] + i)), _mm_loadu_ps(w[3] + i), 1);
    const __m256 wc = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(w[4] + i)), _mm_loadu_ps(w[5] + i), 1);
    const __m256 wd = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(w[6] + i)), _mm_loadu_ps(w[7] + i), 1);
    a = _mm256_add_ps(a, _mm256_mul_ps(xv, wa));
    b = _mm256_add_ps(b, _mm256_mul_ps(xv, wb));
    c = _mm256_add_ps(c, _mm256_mul_ps(xv, wc));
    d = _mm256_add_ps(d, _mm256_mul_ps(xv, wd));
  }
  _mm256_storeu_ps(sums, a);
  _mm256_storeu_ps(sums + 8, b);
  _mm256_storeu_ps(sums + 16, c);
  _mm256_storeu_ps(sums + 24, d);
}
#endif

}  // namespace

// Four output rows at a time share each load of x. Each row keeps the reference's
// four partial sums (element i goes to sum i % 4, in ascending i; the tail to the
// first), so every output is bit-identical to the reference.
void FullyConnected(const float* x, int n_in, const float* w, const float* bias, int n_out, FusedAct act,
                    float* y) {
#if TFLM_TRAIN_VFP_ASM
  FullyConnectedVfp(x, n_in, w, bias, n_out, act, y);
#else
  const int n4 = n_in & ~3;
  int o = 0;
#if TFLM_TRAIN_AVX_DISPATCH
  if (n4 > 0 && n_out >= 8 && HasAvx()) {
    for (; o + 8 <= n_out; o += 8) {
      float s[32];
      Rows8Avx(x, n4, w + o * n_in, n_in, s);
      for (int r = 0; r < 8; ++r) {
        const float* w_row = w + (o + r) * n_in;
        for (int i = n4; i < n_in; ++i) s[4 * r] = s[4 * r] + x[i] * w_row[i];
        y[o + r] = RowResult(s[4 * r], s[4 * r + 1], s[4 * r + 2], s[4 * r + 3], bias, o + r, act);
      }
    }
  }
#endif
  for (; o + 4 <= n_out; o += 4) {
    const float* w0 = w + o * n_in;
    const float* w1 = w0 + n_in;
    const float* w2 = w1 + n_in;
    const float* w3 = w2 + n_in;
    // Row r's partial sums: s[4 * r + j] gets the elements i with i % 4 == j.
    float s[16] = {};
    int i = 0;
#if TFLM_TRAIN_SSE
    if (n4 > 0) {
      __m128 a = _mm_setzero_ps(), b = _mm_setzero_ps(), c = _mm_setzero_ps(), e = _mm_setzero_ps();
      for (; i < n4; i += 4) {
        const __m128 xv = _mm_loadu_ps(x + i);
        a = _mm_add_ps(a, _mm_mul_ps(xv, _mm_loadu_ps(w0 + i)));
        b = _mm_add_ps(b, _mm_mul_ps(xv, _mm_loadu_ps(w1 + i)));
        c = _mm_add_ps(c, _mm_mul_ps(xv, _mm_loadu_ps(w2 + i)));
        e = _mm_add_ps(e, _mm_mul_ps(xv, _mm_loadu_ps(w3 + i)));
      }
      _mm_storeu_ps(s, a);
      _mm_storeu_ps(s + 4, b);
      _mm_storeu_ps(s + 8, c);
      _mm_storeu_ps(s + 12, e);
    }
#endif
    for (; i < n4; i += 4) {
      for (int j = 0; j < 4; ++j) {
        const float xj = x[i + j];
        s[j] = s[j] + xj * w0[i + j];
        s[4 + j] = s[4 + j] + xj * w1[i + j];
        s[8 + j] = s[8 + j] + xj * w2[i + j];
        s[12 + j] = s[12 + j] + xj * w3[i + j];
      }
    }
    for (; i < n_in; ++i) {
      const float xi = x[i];
      s[0] = s[0] + xi * w0[i];
      s[4] = s[4] + xi * w1[i];
      s[8] = s[8] + xi * w2[i];
      s[12] = s[12] + xi * w3[i];
    }
    for (int r = 0; r < 4; ++r) y[o + r] = RowResult(s[4 * r], s[4 * r + 1], s[4 * r + 2], s[4 * r + 3], bias, o + r, act);
  }
  for (; o < n_out; ++o) {
    const float* w_row = w + o * n_in;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int i = 0;
    for (; i < n4; i += 4) {
      s0 = s0 + x[i] * w_row[i];
      s1 = s1 + x[i + 1] * w_row[i + 1];
      s2 = s2 + x[i + 2] * w_row[i + 2];
      s3 = s3 + x[i + 3] * w_row[i + 3];
    }
    for (; i < n_in; ++i) s0 = s0 + x[i] * w_row[i];
    y[o] = RowResult(s0, s1, s2, s3, bias, o, act);
  }
#endif
}

// Kept rows four at a time, in ascending order; rows whose error is zero are
// skipped (exact: see kernels/fast/zero.h). On the M4F, when the list holds
// every row, the rows up to the first group with a zero error run in one
// assembly loop.
void FullyConnectedInputGrad(const float* w, int n_in, const float* delta, const int32_t* rows, int num_rows,
                             float* dx) {
  int r = 0;
#if TFLM_TRAIN_VFP_ASM
  if (n_in > 0 && (n_in & 3) == 0 && ListsEveryRow(rows, num_rows)) {
    r = InputGradAllVfp(w, n_in, delta, num_rows, dx);
    if (r == num_rows) return;
  }
#endif
  int32_t block[4];
  int m = 0;
  for (; r < num_rows; ++r) {
    const int32_t o = rows != nullptr ? rows[r] : r;
    if (delta[o] == 0.0f) continue;
    block[m++] = o;
    if (m < 4) continue;
    InputGradRows4(w + block[0] * n_in, w + block[1] * n_in, w + block[2] * n_in, w + block[3] * n_in,
                   delta[block[0]], delta[block[1]], delta[block[2]], delta[block[3]], n_in, dx);
    m = 0;
  }
  int j = 0;
  if (m >= 2) {
    InputGradRows2(w + block[0] * n_in, w + block[1] * n_in, delta[block[0]], delta[block[1]], n_in, dx);
    j = 2;
  }
  if (j < m) InputGradRow(w + block[j] * n_in, delta[block[j]], n_in, dx);
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
