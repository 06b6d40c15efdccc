#include "kernels/fast/sgd_update.h"

#include <stdint.h>

#include "kernels/fast/all_rows_vfp.h"
#include "kernels/fast/platform.h"
#include "kernels/fast/zero.h"

namespace tflm_train {
namespace kernels {
namespace fast {
namespace {

// One loop per combination of the options, so none is tested per weight. The
// expressions are the reference's, term for term.
template <bool kDecay, bool kMomentum, bool kScale>
void DenseLoop(const SgdStep& s, const float* g, float g_scale, int n, float* w, float* velocity) {
  const float decay = s.weight_decay * s.lr;
  for (int i = 0; i < n; ++i) {
    float wi = w[i];
    if (kDecay) wi = wi - wi * decay;
    const float gi = kScale ? g[i] * g_scale : g[i];
    if (kMomentum) {
      velocity[i] = -gi * s.lr + velocity[i] * s.momentum;
      wi = wi + velocity[i];
    } else {
      wi = wi - gi * s.lr;
    }
    w[i] = wi;
  }
}

template <bool kDecay, bool kMomentum>
void RankOneLoop(const SgdStep& s, float delta, const float* x, int n, float* w, float* velocity) {
  const float decay = s.weight_decay * s.lr;
  for (int i = 0; i < n; ++i) {
    float wi = w[i];
    if (kDecay) wi = wi - wi * decay;
    const float gi = delta * x[i];
    if (kMomentum) {
      velocity[i] = -gi * s.lr + velocity[i] * s.momentum;
      wi = wi + velocity[i];
    } else {
      wi = wi - gi * s.lr;
    }
    w[i] = wi;
  }
}

#if TFLM_TRAIN_VFP_ASM
// Columns [0, n8) of PlainRows4 (n8 a positive multiple of 8) on a Cortex-M4F:
// per eight columns one VLDM of x, and per row one VLDM and one VSTM of its eight
// weights and, per weight, the reference's VMUL (d_r * x[i]), VMUL (* lr) and VSUB.
// x's eight values live in s8-s15, a row's weights in s16-s23 and its products
// in s24-s31, leaving s0-s7 to d_r and lr where the calling convention passes
// them (no moves before the loop).
#define TFLM_TRAIN_SGD_ROW_IN(W, D)                                                   \
  "vldm %[" W "], {s16-s23}\n\t"                                                      \
  "vmul.f32 s24, " D ", s8\n\t" "vmul.f32 s25, " D ", s9\n\t"                         \
  "vmul.f32 s26, " D ", s10\n\t" "vmul.f32 s27, " D ", s11\n\t"                       \
  "vmul.f32 s28, " D ", s12\n\t" "vmul.f32 s29, " D ", s13\n\t"                       \
  "vmul.f32 s30, " D ", s14\n\t" "vmul.f32 s31, " D ", s15\n\t"                       \
  "vmul.f32 s24, s24, %[lr]\n\t" "vmul.f32 s25, s25, %[lr]\n\t"                       \
  "vmul.f32 s26, s26, %[lr]\n\t" "vmul.f32 s27, s27, %[lr]\n\t"                       \
  "vmul.f32 s28, s28, %[lr]\n\t" "vmul.f32 s29, s29, %[lr]\n\t"                       \
  "vmul.f32 s30, s30, %[lr]\n\t" "vmul.f32 s31, s31, %[lr]\n\t"                       \
  "vsub.f32 s16, s16, s24\n\t" "vsub.f32 s17, s17, s25\n\t"                           \
  "vsub.f32 s18, s18, s26\n\t" "vsub.f32 s19, s19, s27\n\t"                           \
  "vsub.f32 s20, s20, s28\n\t" "vsub.f32 s21, s21, s29\n\t"                           \
  "vsub.f32 s22, s22, s30\n\t" "vsub.f32 s23, s23, s31\n\t"                           \
  "vstmia %[" W "]!, {s16-s23}\n\t"
// The error D an operand, or (TFLM_TRAIN_SGD_ROW_IN) a register named in the asm.
#define TFLM_TRAIN_SGD_ROW(W, D) TFLM_TRAIN_SGD_ROW_IN(W, "%[" D "]")
// The loop over blocks of eight columns around the rows' ROWS.
#define TFLM_TRAIN_SGD_LOOP(ROWS)   \
  "1:\n\t"                          \
  "vldmia %[x]!, {s8-s15}\n\t"      \
  ROWS                              \
  "subs %[n], %[n], #1\n\t"         \
  "bne 1b\n\t"
#define TFLM_TRAIN_SGD_CLOBBERS                                                                               \
  "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", \
      "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31", "cc", "memory"
void PlainRows4Vfp(float lr, const float* x, int n8, float d0, float d1, float d2, float d3, float* w0,
                   float* w1, float* w2, float* w3) {
  int blocks = n8 >> 3;
  __asm__ volatile(
      TFLM_TRAIN_SGD_LOOP(TFLM_TRAIN_SGD_ROW("w0", "d0") TFLM_TRAIN_SGD_ROW("w1", "d1")
                          TFLM_TRAIN_SGD_ROW("w2", "d2") TFLM_TRAIN_SGD_ROW("w3", "d3"))
      : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [n] "+r"(blocks)
      : [d0] "t"(d0), [d1] "t"(d1), [d2] "t"(d2), [d3] "t"(d3), [lr] "t"(lr)
      : TFLM_TRAIN_SGD_CLOBBERS);
}

// The same for two rows and for one (the rows left over from the groups of four).
void PlainRows2Vfp(float lr, const float* x, int n8, float d0, float d1, float* w0, float* w1) {
  int blocks = n8 >> 3;
  __asm__ volatile(
      TFLM_TRAIN_SGD_LOOP(TFLM_TRAIN_SGD_ROW("w0", "d0") TFLM_TRAIN_SGD_ROW("w1", "d1"))
      : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [n] "+r"(blocks)
      : [d0] "t"(d0), [d1] "t"(d1), [lr] "t"(lr)
      : TFLM_TRAIN_SGD_CLOBBERS);
}
void PlainRows1Vfp(float lr, const float* x, int n8, float d0, float* w0) {
  int blocks = n8 >> 3;
  __asm__ volatile(
      TFLM_TRAIN_SGD_LOOP(TFLM_TRAIN_SGD_ROW("w0", "d0"))
      : [x] "+r"(x), [w0] "+r"(w0), [n] "+r"(blocks)
      : [d0] "t"(d0), [lr] "t"(lr)
      : TFLM_TRAIN_SGD_CLOBBERS);
}

// Every row in turn (n_in a positive multiple of 8) on a Cortex-M4F in one asm,
// up to the first group with a +-0 error: TFLM_TRAIN_ALL_ROWS (all_rows_vfp.h)
// around PlainRows4Vfp's loops. Returns the rows done.
int PlainAllVfp(float lr, const float* delta, int num_rows, const float* x, int n_in, float* w) {
  const int stride = n_in * static_cast<int>(sizeof(float));
  // The first group's rows as addresses (integers: for fewer than four rows some
  // lie past the matrix, which the asm never reads and C++ may not point to).
  uintptr_t w0 = reinterpret_cast<uintptr_t>(w);
  uintptr_t w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride;
  const float* d = delta;
  int groups, n;
  __asm__ volatile(
      TFLM_TRAIN_ALL_ROWS("x", "5",
          TFLM_TRAIN_SGD_LOOP(TFLM_TRAIN_SGD_ROW_IN("w0", "s0") TFLM_TRAIN_SGD_ROW_IN("w1", "s1")
                              TFLM_TRAIN_SGD_ROW_IN("w2", "s2") TFLM_TRAIN_SGD_ROW_IN("w3", "s3")),
          TFLM_TRAIN_SGD_LOOP(TFLM_TRAIN_SGD_ROW_IN("w0", "s0") TFLM_TRAIN_SGD_ROW_IN("w1", "s1")),
          TFLM_TRAIN_SGD_LOOP(TFLM_TRAIN_SGD_ROW_IN("w0", "s0")))
      : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [d] "+r"(d),
        [g] "=&r"(groups), [n] "=&r"(n)
      : [stride] "r"(stride), [rows] "r"(num_rows), [lr] "t"(lr)
      : "s0", "s1", "s2", "s3", "s4", "s5", TFLM_TRAIN_SGD_CLOBBERS);
  return static_cast<int>(d - delta);
}
#undef TFLM_TRAIN_SGD_ROW_IN
#undef TFLM_TRAIN_SGD_ROW
#undef TFLM_TRAIN_SGD_LOOP
#undef TFLM_TRAIN_SGD_CLOBBERS
#endif

// w_r[i] -= (d_r * x[i]) * lr for four rows, sharing the load of x[i].
void PlainRows4(float lr, const float* x, int n, float d0, float d1, float d2, float d3, float* w0, float* w1,
                float* w2, float* w3) {
  int i = 0;
#if TFLM_TRAIN_VFP_ASM
  i = n & ~7;
  if (i > 0) PlainRows4Vfp(lr, x, i, d0, d1, d2, d3, w0, w1, w2, w3);
#elif TFLM_TRAIN_SSE
  const __m128 lr4 = _mm_set1_ps(lr);
  const __m128 e0 = _mm_set1_ps(d0), e1 = _mm_set1_ps(d1), e2 = _mm_set1_ps(d2), e3 = _mm_set1_ps(d3);
  for (; i + 4 <= n; i += 4) {
    const __m128 xv = _mm_loadu_ps(x + i);
    _mm_storeu_ps(w0 + i, _mm_sub_ps(_mm_loadu_ps(w0 + i), _mm_mul_ps(_mm_mul_ps(e0, xv), lr4)));
    _mm_storeu_ps(w1 + i, _mm_sub_ps(_mm_loadu_ps(w1 + i), _mm_mul_ps(_mm_mul_ps(e1, xv), lr4)));
    _mm_storeu_ps(w2 + i, _mm_sub_ps(_mm_loadu_ps(w2 + i), _mm_mul_ps(_mm_mul_ps(e2, xv), lr4)));
    _mm_storeu_ps(w3 + i, _mm_sub_ps(_mm_loadu_ps(w3 + i), _mm_mul_ps(_mm_mul_ps(e3, xv), lr4)));
  }
#endif
  for (; i + 2 <= n; i += 2) {
    const float x0 = x[i], x1 = x[i + 1];
    const float p00 = w0[i] - (d0 * x0) * lr, p01 = w0[i + 1] - (d0 * x1) * lr;
    const float p10 = w1[i] - (d1 * x0) * lr, p11 = w1[i + 1] - (d1 * x1) * lr;
    const float p20 = w2[i] - (d2 * x0) * lr, p21 = w2[i + 1] - (d2 * x1) * lr;
    const float p30 = w3[i] - (d3 * x0) * lr, p31 = w3[i + 1] - (d3 * x1) * lr;
    w0[i] = p00; w0[i + 1] = p01;
    w1[i] = p10; w1[i + 1] = p11;
    w2[i] = p20; w2[i + 1] = p21;
    w3[i] = p30; w3[i + 1] = p31;
  }
  if (i < n) {
    const float xi = x[i];
    w0[i] = w0[i] - (d0 * xi) * lr;
    w1[i] = w1[i] - (d1 * xi) * lr;
    w2[i] = w2[i] - (d2 * xi) * lr;
    w3[i] = w3[i] - (d3 * xi) * lr;
  }
}

// w_r[i] -= (d_r * x[i]) * lr for one row and for two.
void PlainRow(float lr, const float* x, int n, float d, float* w) {
  int i = 0;
#if TFLM_TRAIN_VFP_ASM
  i = n & ~7;
  if (i > 0) PlainRows1Vfp(lr, x, i, d, w);
#endif
  for (; i < n; ++i) w[i] = w[i] - (d * x[i]) * lr;
}
void PlainRows2(float lr, const float* x, int n, float d0, float d1, float* w0, float* w1) {
  int i = 0;
#if TFLM_TRAIN_VFP_ASM
  i = n & ~7;
  if (i > 0) PlainRows2Vfp(lr, x, i, d0, d1, w0, w1);
#endif
  PlainRow(lr, x + i, n - i, d0, w0 + i);
  PlainRow(lr, x + i, n - i, d1, w1 + i);
}

}  // namespace

void SgdUpdate(const SgdStep& s, const float* g, float g_scale, int n, float* w, float* velocity) {
  if (g == nullptr) {  // a zero gradient: rare, the reference loop does
    tflm_train::SgdUpdate(s, g, g_scale, n, w, velocity);
    return;
  }
  const bool decay = s.weight_decay != 0.0f;
  // g * 1.0f == g exactly, so a unit scale need not be multiplied.
  const bool scale = g_scale != 1.0f;
  if (velocity != nullptr) {
    if (decay) {
      scale ? DenseLoop<true, true, true>(s, g, g_scale, n, w, velocity)
            : DenseLoop<true, true, false>(s, g, g_scale, n, w, velocity);
    } else {
      scale ? DenseLoop<false, true, true>(s, g, g_scale, n, w, velocity)
            : DenseLoop<false, true, false>(s, g, g_scale, n, w, velocity);
    }
  } else {
    if (decay) {
      scale ? DenseLoop<true, false, true>(s, g, g_scale, n, w, velocity)
            : DenseLoop<true, false, false>(s, g, g_scale, n, w, velocity);
    } else {
      scale ? DenseLoop<false, false, true>(s, g, g_scale, n, w, velocity)
            : DenseLoop<false, false, false>(s, g, g_scale, n, w, velocity);
    }
  }
}

void SgdUpdateRankOne(const SgdStep& s, float delta, const float* x, int n, float* w, float* velocity) {
  const bool decay = s.weight_decay != 0.0f;
  if (velocity != nullptr) {
    decay ? RankOneLoop<true, true>(s, delta, x, n, w, velocity)
          : RankOneLoop<false, true>(s, delta, x, n, w, velocity);
  } else {
    decay ? RankOneLoop<true, false>(s, delta, x, n, w, velocity)
          : RankOneLoop<false, false>(s, delta, x, n, w, velocity);
  }
}

void SgdRankOneRows(float lr, const float* delta, const int32_t* rows, int num_rows, const float* x, int n_in,
                    float* w) {
  int r = 0;
#if TFLM_TRAIN_VFP_ASM
  // Every row listed: one assembly loop, up to the first group with a zero error.
  if (n_in > 0 && (n_in & 7) == 0 && ListsEveryRow(rows, num_rows)) {
    r = PlainAllVfp(lr, delta, num_rows, x, n_in, w);
    if (r == num_rows) return;
  }
#endif
  int skip_zero_rows = -1;  // XHasNoSignBit(x), found at the first +0 error
  int32_t block[4];
  int m = 0;
  while (r < num_rows) {
    // Four rows at once when none of their errors is +0 (rows are independent,
    // so updating them in another grouping gives the same bits).
    if (m == 0 && r + 4 <= num_rows) {
      const int32_t o0 = rows != nullptr ? rows[r] : r, o1 = rows != nullptr ? rows[r + 1] : r + 1;
      const int32_t o2 = rows != nullptr ? rows[r + 2] : r + 2, o3 = rows != nullptr ? rows[r + 3] : r + 3;
      const float e0 = delta[o0], e1 = delta[o1], e2 = delta[o2], e3 = delta[o3];
      if (FloatBits(e0) != 0u && FloatBits(e1) != 0u && FloatBits(e2) != 0u && FloatBits(e3) != 0u) {
        PlainRows4(lr, x, n_in, e0, e1, e2, e3, w + o0 * n_in, w + o1 * n_in, w + o2 * n_in, w + o3 * n_in);
        r += 4;
        continue;
      }
    }
    const int32_t o = rows != nullptr ? rows[r] : r;
    ++r;
    if (FloatBits(delta[o]) == 0u) {  // +0: changes no weight when no x[i] has a sign bit
      if (skip_zero_rows < 0) skip_zero_rows = XHasNoSignBit(x, n_in) ? 1 : 0;
      if (skip_zero_rows != 0) continue;
    }
    block[m++] = o;
    if (m < 4) continue;
    PlainRows4(lr, x, n_in, delta[block[0]], delta[block[1]], delta[block[2]], delta[block[3]],
               w + block[0] * n_in, w + block[1] * n_in, w + block[2] * n_in, w + block[3] * n_in);
    m = 0;
  }
  int j = 0;
  if (m >= 2) {
    PlainRows2(lr, x, n_in, delta[block[0]], delta[block[1]], w + block[0] * n_in, w + block[1] * n_in);
    j = 2;
  }
  if (j < m) PlainRow(lr, x, n_in, delta[block[j]], w + block[j] * n_in);
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
