#include "kernels/fast/sgd_update.h"

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

// w_r[i] -= (d_r * x[i]) * lr for four rows, sharing the load of x[i].
void PlainRows4(float lr, const float* x, int n, float d0, float d1, float d2, float d3, float* w0, float* w1,
                float* w2, float* w3) {
  int i = 0;
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
    for (int i = 0; i < n_in; ++i) w_row[i] = w_row[i] - (d * x[i]) * lr;
  }
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
