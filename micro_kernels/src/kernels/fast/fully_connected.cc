#include "kernels/fast/fully_connected.h"

#include "kernels/fast/platform.h"
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
#if TFLM_TRAIN_VFP_ASM
// InputGradRows4's columns [0, n4) (n4 a positive multiple of 4) on a Cortex-M4F:
// per four columns one VLDM and one VSTM of dx and one VLDM per row, the
// reference's VMUL and VADD per weight in its order.
void InputGradRows4Vfp(const float* w0, const float* w1, const float* w2, const float* w3, float d0, float d1,
                       float d2, float d3, int n4, float* dx) {
  int blocks = n4 >> 2;
#define TFLM_TRAIN_DX_ROW(W, D)                                          \
  "vldmia %[" W "]!, {s4-s7}\n\t"                                        \
  "vmul.f32 s8, s4, %[" D "]\n\t" "vmul.f32 s9, s5, %[" D "]\n\t"        \
  "vmul.f32 s10, s6, %[" D "]\n\t" "vmul.f32 s11, s7, %[" D "]\n\t"      \
  "vadd.f32 s0, s0, s8\n\t" "vadd.f32 s1, s1, s9\n\t"                    \
  "vadd.f32 s2, s2, s10\n\t" "vadd.f32 s3, s3, s11\n\t"
  __asm__ volatile(
      "1:\n\t"
      "vldm %[dx], {s0-s3}\n\t"
      TFLM_TRAIN_DX_ROW("w0", "d0")
      TFLM_TRAIN_DX_ROW("w1", "d1")
      TFLM_TRAIN_DX_ROW("w2", "d2")
      TFLM_TRAIN_DX_ROW("w3", "d3")
      "vstmia %[dx]!, {s0-s3}\n\t"
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      : [dx] "+r"(dx), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [n] "+r"(blocks)
      : [d0] "t"(d0), [d1] "t"(d1), [d2] "t"(d2), [d3] "t"(d3)
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "cc", "memory");
#undef TFLM_TRAIN_DX_ROW
}
#endif

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
// Columns [0, n4) of four rows (n4 a positive multiple of 4) on a Cortex-M4F: per
// four columns one VLDM of x, and per row one VLDM of its four weights, four VMUL
// and four VADD into its partial sums (sum j % 4 gets x[j] * w[j], as the
// reference adds it). The 16 sums (row-major, starting at 0) stay in s12-s27 for
// the whole loop. (No VMLA: on a Cortex-M4 it takes 3 cycles, a VMUL and a VADD 2.)
void Rows4Vfp(const float* x, int n4, const float* w0, const float* w1, const float* w2, const float* w3,
              float* sums) {
  int blocks = n4 >> 2;
#define TFLM_TRAIN_FC_ROW(W, S0, S1, S2, S3)    \
  "vldmia %[" W "]!, {s4-s7}\n\t"               \
  "vmul.f32 s8, s0, s4\n\t"                     \
  "vmul.f32 s9, s1, s5\n\t"                     \
  "vmul.f32 s10, s2, s6\n\t"                    \
  "vmul.f32 s11, s3, s7\n\t"                    \
  "vadd.f32 " S0 ", " S0 ", s8\n\t"             \
  "vadd.f32 " S1 ", " S1 ", s9\n\t"             \
  "vadd.f32 " S2 ", " S2 ", s10\n\t"            \
  "vadd.f32 " S3 ", " S3 ", s11\n\t"
  __asm__ volatile(
      "vldm %[sums], {s12-s27}\n\t"
      "1:\n\t"
      "vldmia %[x]!, {s0-s3}\n\t"
      TFLM_TRAIN_FC_ROW("w0", "s12", "s13", "s14", "s15")
      TFLM_TRAIN_FC_ROW("w1", "s16", "s17", "s18", "s19")
      TFLM_TRAIN_FC_ROW("w2", "s20", "s21", "s22", "s23")
      TFLM_TRAIN_FC_ROW("w3", "s24", "s25", "s26", "s27")
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      "vstm %[sums], {s12-s27}\n\t"
      : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [n] "+r"(blocks)
      : [sums] "r"(sums)
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
        "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "cc", "memory");
#undef TFLM_TRAIN_FC_ROW
}
#endif

}  // namespace

// Four output rows at a time share each load of x. Each row keeps the reference's
// four partial sums (element i goes to sum i % 4, in ascending i; the tail to the
// first), so every output is bit-identical to the reference.
void FullyConnected(const float* x, int n_in, const float* w, const float* bias, int n_out, FusedAct act,
                    float* y) {
  const int n4 = n_in & ~3;
  int o = 0;
  for (; o + 4 <= n_out; o += 4) {
    const float* w0 = w + o * n_in;
    const float* w1 = w0 + n_in;
    const float* w2 = w1 + n_in;
    const float* w3 = w2 + n_in;
    // Row r's partial sums: s[4 * r + j] gets the elements i with i % 4 == j.
    float s[16] = {};
    int i = 0;
#if TFLM_TRAIN_VFP_ASM
    if (n4 > 0) {
      Rows4Vfp(x, n4, w0, w1, w2, w3, s);
      i = n4;
    }
#endif
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
    for (int i = 0; i < n_in; ++i) dx[i] = dx[i] + w_row[i] * d;
  }
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
