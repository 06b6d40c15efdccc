#include "kernels/fast/sgd_update.h"

#include "kernels/fast/mul_add.h"
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
      wi = MulSub(wi, gi, s.lr);
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
      wi = MulSub(wi, gi, s.lr);
    }
    w[i] = wi;
  }
}

#if TFLM_TRAIN_VFP_ASM
// Columns [0, n4) of PlainRows4 (n4 a positive multiple of 4) on a Cortex-M4F:
// per four columns one VLDM of x, and per row one VLDM and one VSTM of its four
// weights, four VMUL (t = d_r * x[i]) and four VMLS (w -= t * lr, the product
// rounded first: the reference's two roundings and subtraction).
void PlainRows4Vfp(float lr, const float* x, int n4, float d0, float d1, float d2, float d3, float* w0,
                   float* w1, float* w2, float* w3) {
  int blocks = n4 >> 2;
#define TFLM_TRAIN_SGD_ROW(W, D)                \
  "vldm %[" W "], {s4-s7}\n\t"                  \
  "vmul.f32 s8, %[" D "], s0\n\t"               \
  "vmul.f32 s9, %[" D "], s1\n\t"               \
  "vmul.f32 s10, %[" D "], s2\n\t"              \
  "vmul.f32 s11, %[" D "], s3\n\t"              \
  "vmls.f32 s4, s8, %[lr]\n\t"                  \
  "vmls.f32 s5, s9, %[lr]\n\t"                  \
  "vmls.f32 s6, s10, %[lr]\n\t"                 \
  "vmls.f32 s7, s11, %[lr]\n\t"                 \
  "vstmia %[" W "]!, {s4-s7}\n\t"
  __asm__ volatile(
      "1:\n\t"
      "vldmia %[x]!, {s0-s3}\n\t"
      TFLM_TRAIN_SGD_ROW("w0", "d0")
      TFLM_TRAIN_SGD_ROW("w1", "d1")
      TFLM_TRAIN_SGD_ROW("w2", "d2")
      TFLM_TRAIN_SGD_ROW("w3", "d3")
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [n] "+r"(blocks)
      : [d0] "t"(d0), [d1] "t"(d1), [d2] "t"(d2), [d3] "t"(d3), [lr] "t"(lr)
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "cc", "memory");
#undef TFLM_TRAIN_SGD_ROW
}
#endif

// w_r[i] -= (d_r * x[i]) * lr for four rows, sharing the load of x[i].
void PlainRows4(float lr, const float* x, int n, float d0, float d1, float d2, float d3, float* w0, float* w1,
                float* w2, float* w3) {
  int i = 0;
#if TFLM_TRAIN_VFP_ASM
  i = n & ~3;
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
    const float p00 = MulSub(w0[i], d0 * x0, lr), p01 = MulSub(w0[i + 1], d0 * x1, lr);
    const float p10 = MulSub(w1[i], d1 * x0, lr), p11 = MulSub(w1[i + 1], d1 * x1, lr);
    const float p20 = MulSub(w2[i], d2 * x0, lr), p21 = MulSub(w2[i + 1], d2 * x1, lr);
    const float p30 = MulSub(w3[i], d3 * x0, lr), p31 = MulSub(w3[i + 1], d3 * x1, lr);
    w0[i] = p00; w0[i + 1] = p01;
    w1[i] = p10; w1[i + 1] = p11;
    w2[i] = p20; w2[i + 1] = p21;
    w3[i] = p30; w3[i + 1] = p31;
  }
  if (i < n) {
    const float xi = x[i];
    w0[i] = MulSub(w0[i], d0 * xi, lr);
    w1[i] = MulSub(w1[i], d1 * xi, lr);
    w2[i] = MulSub(w2[i], d2 * xi, lr);
    w3[i] = MulSub(w3[i], d3 * xi, lr);
  }
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
  const bool skip_zero_rows = XHasNoSignBit(x, n_in);
  int32_t block[4];
  int m = 0;
  for (int r = 0; r < num_rows; ++r) {
    const int32_t o = rows != nullptr ? rows[r] : r;
    if (skip_zero_rows && FloatBits(delta[o]) == 0u) continue;  // +0: changes no weight
    block[m++] = o;
    if (m < 4) continue;
    PlainRows4(lr, x, n_in, delta[block[0]], delta[block[1]], delta[block[2]], delta[block[3]],
               w + block[0] * n_in, w + block[1] * n_in, w + block[2] * n_in, w + block[3] * n_in);
    m = 0;
  }
  for (int j = 0; j < m; ++j) {
    const float d = delta[block[j]];
    float* w_row = w + block[j] * n_in;
    for (int i = 0; i < n_in; ++i) w_row[i] = MulSub(w_row[i], d * x[i], lr);
  }
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
