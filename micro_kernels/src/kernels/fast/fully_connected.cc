#include "kernels/fast/fully_connected.h"

#include "kernels/fast/mul_add.h"
#include "kernels/fast/zero.h"

namespace tflm_train {
namespace kernels {
namespace fast {
namespace {

// The reference's last steps of one row: (s0 + s1) + (s2 + s3), then the bias.
inline float RowResult(float s0, float s1, float s2, float s3, const float* bias, int o, FusedAct act) {
  float total = (s0 + s1) + (s2 + s3);
  if (bias != nullptr) total += bias[o];
  return ApplyFusedAct(act, total);
}

// dx[i] = (((dx[i] + w0[i]*d0) + w1[i]*d1) + w2[i]*d2) + w3[i]*d3: four rows in the
// order the reference adds them, with one load and store of dx instead of four.
void InputGradRows4(const float* w0, const float* w1, const float* w2, const float* w3, float d0, float d1,
                    float d2, float d3, int n_in, float* dx) {
  int i = 0;
  for (; i + 2 <= n_in; i += 2) {
    float v0 = dx[i];
    float v1 = dx[i + 1];
    v0 = MulAdd(v0, w0[i], d0);
    v1 = MulAdd(v1, w0[i + 1], d0);
    v0 = MulAdd(v0, w1[i], d1);
    v1 = MulAdd(v1, w1[i + 1], d1);
    v0 = MulAdd(v0, w2[i], d2);
    v1 = MulAdd(v1, w2[i + 1], d2);
    v0 = MulAdd(v0, w3[i], d3);
    v1 = MulAdd(v1, w3[i + 1], d3);
    dx[i] = v0;
    dx[i + 1] = v1;
  }
  if (i < n_in) {
    float v = dx[i];
    v = MulAdd(v, w0[i], d0);
    v = MulAdd(v, w1[i], d1);
    v = MulAdd(v, w2[i], d2);
    v = MulAdd(v, w3[i], d3);
    dx[i] = v;
  }
}

#if TFLM_TRAIN_VFP_ASM
// Columns [0, n4) of four rows (n4 a positive multiple of 4) on a Cortex-M4F: per
// four columns one VLDM of x, and per row one VLDM of its four weights and four
// VMLA into its partial sums (sum j % 4 gets x[j] * w[j], the product rounded
// first, as the reference adds it). The 16 sums (row-major, starting at 0) stay
// in s8-s23 for the whole loop.
void Rows4Vfp(const float* x, int n4, const float* w0, const float* w1, const float* w2, const float* w3,
              float* sums) {
  int blocks = n4 >> 2;
#define TFLM_TRAIN_FC_ROW(W, S0, S1, S2, S3)    \
  "vldmia %[" W "]!, {s4-s7}\n\t"               \
  "vmla.f32 " S0 ", s0, s4\n\t"                 \
  "vmla.f32 " S1 ", s1, s5\n\t"                 \
  "vmla.f32 " S2 ", s2, s6\n\t"                 \
  "vmla.f32 " S3 ", s3, s7\n\t"
  __asm__ volatile(
      "vldm %[sums], {s8-s23}\n\t"
      "1:\n\t"
      "vldmia %[x]!, {s0-s3}\n\t"
      TFLM_TRAIN_FC_ROW("w0", "s8", "s9", "s10", "s11")
      TFLM_TRAIN_FC_ROW("w1", "s12", "s13", "s14", "s15")
      TFLM_TRAIN_FC_ROW("w2", "s16", "s17", "s18", "s19")
      TFLM_TRAIN_FC_ROW("w3", "s20", "s21", "s22", "s23")
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      "vstm %[sums], {s8-s23}\n\t"
      : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [n] "+r"(blocks)
      : [sums] "r"(sums)
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
        "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "cc", "memory");
#undef TFLM_TRAIN_FC_ROW
}
#endif

}  // namespace

// Four output rows at a time share each load of x. Each row keeps the reference's
// four partial sums (element i goes to sum i % 4, in ascending i; the tail to the
// first), so every output is bit-identical to the reference.
void FullyConnected(const float* x, int n_in, const float* w, const float* bias, int n_out, FusedAct act,
                    float* y) {
  const int n8 = n_in & ~7;
  const int n4 = n_in & ~3;
  int o = 0;
  for (; o + 4 <= n_out; o += 4) {
    const float* w0 = w + o * n_in;
    const float* w1 = w0 + n_in;
    const float* w2 = w1 + n_in;
    const float* w3 = w2 + n_in;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    float b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
    float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f;
    float e0 = 0.0f, e1 = 0.0f, e2 = 0.0f, e3 = 0.0f;
    int i = 0;
#if TFLM_TRAIN_VFP_ASM
    if (n4 > 0) {
      float sums[16] = {};
      Rows4Vfp(x, n4, w0, w1, w2, w3, sums);
      a0 = sums[0]; a1 = sums[1]; a2 = sums[2]; a3 = sums[3];
      b0 = sums[4]; b1 = sums[5]; b2 = sums[6]; b3 = sums[7];
      c0 = sums[8]; c1 = sums[9]; c2 = sums[10]; c3 = sums[11];
      e0 = sums[12]; e1 = sums[13]; e2 = sums[14]; e3 = sums[15];
      i = n4;
    }
#endif
    for (; i < n8; i += 8) {
      const float x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
      a0 += x0 * w0[i]; a1 += x1 * w0[i + 1]; a2 += x2 * w0[i + 2]; a3 += x3 * w0[i + 3];
      b0 += x0 * w1[i]; b1 += x1 * w1[i + 1]; b2 += x2 * w1[i + 2]; b3 += x3 * w1[i + 3];
      c0 += x0 * w2[i]; c1 += x1 * w2[i + 1]; c2 += x2 * w2[i + 2]; c3 += x3 * w2[i + 3];
      e0 += x0 * w3[i]; e1 += x1 * w3[i + 1]; e2 += x2 * w3[i + 2]; e3 += x3 * w3[i + 3];
      const float x4 = x[i + 4], x5 = x[i + 5], x6 = x[i + 6], x7 = x[i + 7];
      a0 += x4 * w0[i + 4]; a1 += x5 * w0[i + 5]; a2 += x6 * w0[i + 6]; a3 += x7 * w0[i + 7];
      b0 += x4 * w1[i + 4]; b1 += x5 * w1[i + 5]; b2 += x6 * w1[i + 6]; b3 += x7 * w1[i + 7];
      c0 += x4 * w2[i + 4]; c1 += x5 * w2[i + 5]; c2 += x6 * w2[i + 6]; c3 += x7 * w2[i + 7];
      e0 += x4 * w3[i + 4]; e1 += x5 * w3[i + 5]; e2 += x6 * w3[i + 6]; e3 += x7 * w3[i + 7];
    }
    for (; i < n4; i += 4) {
      const float x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
      a0 += x0 * w0[i]; a1 += x1 * w0[i + 1]; a2 += x2 * w0[i + 2]; a3 += x3 * w0[i + 3];
      b0 += x0 * w1[i]; b1 += x1 * w1[i + 1]; b2 += x2 * w1[i + 2]; b3 += x3 * w1[i + 3];
      c0 += x0 * w2[i]; c1 += x1 * w2[i + 1]; c2 += x2 * w2[i + 2]; c3 += x3 * w2[i + 3];
      e0 += x0 * w3[i]; e1 += x1 * w3[i + 1]; e2 += x2 * w3[i + 2]; e3 += x3 * w3[i + 3];
    }
    for (; i < n_in; ++i) {
      const float xi = x[i];
      a0 = MulAdd(a0, xi, w0[i]);
      b0 = MulAdd(b0, xi, w1[i]);
      c0 = MulAdd(c0, xi, w2[i]);
      e0 = MulAdd(e0, xi, w3[i]);
    }
    y[o] = RowResult(a0, a1, a2, a3, bias, o, act);
    y[o + 1] = RowResult(b0, b1, b2, b3, bias, o + 1, act);
    y[o + 2] = RowResult(c0, c1, c2, c3, bias, o + 2, act);
    y[o + 3] = RowResult(e0, e1, e2, e3, bias, o + 3, act);
  }
  for (; o < n_out; ++o) {
    const float* w_row = w + o * n_in;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int i = 0;
    for (; i < n4; i += 4) {
      s0 = MulAdd(s0, x[i], w_row[i]);
      s1 = MulAdd(s1, x[i + 1], w_row[i + 1]);
      s2 = MulAdd(s2, x[i + 2], w_row[i + 2]);
      s3 = MulAdd(s3, x[i + 3], w_row[i + 3]);
    }
    for (; i < n_in; ++i) s0 = MulAdd(s0, x[i], w_row[i]);
    y[o] = RowResult(s0, s1, s2, s3, bias, o, act);
  }
}

// Kept rows four at a time, in ascending order; rows whose error is zero are
// skipped (exact: see kernels/fast/zero.h).
void FullyConnectedInputGrad(const float* w, int n_in, const float* delta, const int32_t* rows, int num_rows,
                             float* dx) {
  int32_t block[4];
  int m = 0;
  for (int r = 0; r < num_rows; ++r) {
    const int32_t o = rows != nullptr ? rows[r] : r;
    if (delta[o] == 0.0f) continue;
    block[m++] = o;
    if (m < 4) continue;
    InputGradRows4(w + block[0] * n_in, w + block[1] * n_in, w + block[2] * n_in, w + block[3] * n_in,
                   delta[block[0]], delta[block[1]], delta[block[2]], delta[block[3]], n_in, dx);
    m = 0;
  }
  for (int j = 0; j < m; ++j) {
    const float d = delta[block[j]];
    const float* w_row = w + block[j] * n_in;
    for (int i = 0; i < n_in; ++i) dx[i] = MulAdd(dx[i], w_row[i], d);
  }
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
