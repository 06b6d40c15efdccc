// The convolution and pooling kernels (kernels/conv_2d.h, depthwise_conv_2d.h,
// max_pool.h, average_pool.h, conv_shape.h) on random TFLite geometries: forward
// against a float64 loop over explicit padding, the one-pass gradients (sparse
// equals masked dense, adjoint of forward, either output null), pooling routing
// and averaging, and the bias gradient.
#include <math.h>
#include <stdint.h>

#include <algorithm>
#include <vector>

#include "kernels/average_pool.h"
#include "kernels/conv_2d.h"
#include "kernels/conv_shape.h"
#include "kernels/depthwise_conv_2d.h"
#include "kernels/max_pool.h"
#include "test_harness.h"

namespace kernels = tflm_train::kernels;
using test::Lcg;

// A random geometry with TFLite's SAME or VALID output size and leading padding.
static kernels::ConvShape RandomConvShape(Lcg& rng, bool depthwise) {
  kernels::ConvShape s{};
  s.in_h = rng.Int(3, 8);
  s.in_w = rng.Int(3, 8);
  s.in_c = rng.Int(1, 3);
  s.depth_multiplier = depthwise ? rng.Int(1, 3) : 1;
  s.out_c = depthwise ? s.in_c * s.depth_multiplier : rng.Int(1, 4);
  s.filter_h = rng.Int(1, 3);
  s.filter_w = rng.Int(1, 3);
  s.stride_h = rng.Int(1, 2);
  s.stride_w = rng.Int(1, 2);
  s.dilation_h = rng.Int(1, 2);
  s.dilation_w = rng.Int(1, 2);
  const bool same = rng.Coin();
  const int32_t eff_h = (s.filter_h - 1) * s.dilation_h + 1, eff_w = (s.filter_w - 1) * s.dilation_w + 1;
  if (same || eff_h > s.in_h || eff_w > s.in_w) {
    s.out_h = (s.in_h + s.stride_h - 1) / s.stride_h;
    s.out_w = (s.in_w + s.stride_w - 1) / s.stride_w;
    s.pad_top = std::max(0, ((s.out_h - 1) * s.stride_h + eff_h - s.in_h) / 2);
    s.pad_left = std::max(0, ((s.out_w - 1) * s.stride_w + eff_w - s.in_w) / 2);
  } else {
    s.out_h = (s.in_h - eff_h) / s.stride_h + 1;
    s.out_w = (s.in_w - eff_w) / s.stride_w + 1;
  }
  return s;
}

static std::vector<float> RandomVector(Lcg& rng, size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.Uniform(-1.0f, 1.0f);
  return v;
}

static size_t WeightCount(const kernels::ConvShape& s, bool depthwise) {
  return depthwise ? static_cast<size_t>(s.filter_h * s.filter_w * s.out_c)
                   : static_cast<size_t>(s.out_c * s.filter_h * s.filter_w * s.in_c);
}

// The convolutions in float64 straight from the definition: the input zero-padded
// by pad_top/pad_left (and whatever the window needs past the end), then a dot
// product per output element.
static double NaiveConv(const std::vector<float>& x, const std::vector<float>& w, const kernels::ConvShape& s,
                        bool depthwise, int32_t oy, int32_t ox, int32_t oc) {
  double acc = 0.0;
  for (int32_t ky = 0; ky < s.filter_h; ++ky) {
    for (int32_t kx = 0; kx < s.filter_w; ++kx) {
      const int32_t iy = oy * s.stride_h + ky * s.dilation_h - s.pad_top;
      const int32_t ix = ox * s.stride_w + kx * s.dilation_w - s.pad_left;
      if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;  // a padded zero
      if (depthwise) {
        const int32_t ic = oc / s.depth_multiplier;
        acc += static_cast<double>(x[(iy * s.in_w + ix) * s.in_c + ic]) * w[(ky * s.filter_w + kx) * s.out_c + oc];
      } else {
        for (int32_t ic = 0; ic < s.in_c; ++ic) {
          acc += static_cast<double>(x[(iy * s.in_w + ix) * s.in_c + ic]) *
                 w[((oc * s.filter_h + ky) * s.filter_w + kx) * s.in_c + ic];
        }
      }
    }
  }
  return acc;
}

TEST(ConvForwardMatchesNaive) {
  Lcg rng(29);
  for (int trial = 0; trial < 200; ++trial) {
    const bool depthwise = trial % 2 == 1;
    const kernels::ConvShape s = RandomConvShape(rng, depthwise);
    const auto act = static_cast<kernels::FusedAct>(trial % 3);
    const bool with_bias = trial % 4 != 3;
    const std::vector<float> x = RandomVector(rng, static_cast<size_t>(s.in_h * s.in_w * s.in_c));
    const std::vector<float> w = RandomVector(rng, WeightCount(s, depthwise));
    const std::vector<float> b = RandomVector(rng, static_cast<size_t>(s.out_c));
    std::vector<float> y(static_cast<size_t>(s.out_h * s.out_w * s.out_c), 99.0f);
    if (depthwise) {
      kernels::DepthwiseConv2D(x.data(), s, w.data(), with_bias ? b.data() : nullptr, act, y.data());
    } else {
      kernels::Conv2D(x.data(), s, w.data(), with_bias ? b.data() : nullptr, act, y.data());
    }
    int bad = 0;
    for (int32_t oy = 0; oy < s.out_h; ++oy) {
      for (int32_t ox = 0; ox < s.out_w; ++ox) {
        for (int32_t oc = 0; oc < s.out_c; ++oc) {
          double z = NaiveConv(x, w, s, depthwise, oy, ox, oc) + (with_bias ? b[oc] : 0.0);
          if (act == kernels::FusedAct::kRelu) z = std::max(z, 0.0);
          if (act == kernels::FusedAct::kRelu6) z = std::min(std::max(z, 0.0), 6.0);
          const float got = y[(oy * s.out_w + ox) * s.out_c + oc];
          if (!(fabs(got - z) <= 1e-5 * (1.0 + fabs(z)))) ++bad;
        }
      }
    }
    CHECK_MSG(bad == 0, "trial %d (%s): %d outputs differ from the float64 definition", trial,
              depthwise ? "depthwise" : "conv", bad);
  }
}

// Either gradient alone is exactly what the one pass computes with both; x is not
// read when the weight gradient is not wanted.
TEST(ConvGradEitherOutputMayBeNull) {
  Lcg rng(43);
  for (int trial = 0; trial < 100; ++trial) {
    const bool depthwise = trial % 2 == 1;
    const kernels::ConvShape s = RandomConvShape(rng, depthwise);
    const int32_t n_out = s.out_h * s.out_w * s.out_c;
    const size_t n_w = WeightCount(s, depthwise);
    const std::vector<float> x = RandomVector(rng, static_cast<size_t>(s.in_h * s.in_w * s.in_c));
    const std::vector<float> w = RandomVector(rng, n_w);
    const std::vector<float> delta = RandomVector(rng, static_cast<size_t>(n_out));
    std::vector<float> gw_both(n_w, 0.5f), dx_both(x.size(), 0.25f), gw_only(n_w, 0.5f), dx_only(x.size(), 0.25f);
    auto grad = depthwise ? kernels::DepthwiseConv2DWeightAndInputGrad : kernels::Conv2DWeightAndInputGrad;
    grad(x.data(), w.data(), s, delta.data(), nullptr, n_out, gw_both.data(), dx_both.data());
    grad(x.data(), w.data(), s, delta.data(), nullptr, n_out, gw_only.data(), nullptr);
    grad(nullptr, w.data(), s, delta.data(), nullptr, n_out, nullptr, dx_only.data());
    CHECK_MSG(gw_both == gw_only, "trial %d: weight gradient alone differs", trial);
    CHECK_MSG(dx_both == dx_only, "trial %d: input gradient alone differs", trial);
    grad(x.data(), w.data(), s, delta.data(), nullptr, n_out, nullptr, nullptr);  // nothing to do
  }
}

// TFLite divides by the in-bounds taps only: a corner window of a SAME 3x3 pool
// over a 2x2 input averages 4 values, not 9.
TEST(AveragePoolDividesByInBoundsTaps) {
  kernels::ConvShape s{};
  s.in_h = 2; s.in_w = 2; s.in_c = 1; s.out_c = 1;
  s.filter_h = 3; s.filter_w = 3; s.stride_h = 1; s.stride_w = 1;
  s.dilation_h = s.dilation_w = 1;
  s.out_h = 2; s.out_w = 2; s.pad_top = 1; s.pad_left = 1;
  const float x[4] = {1.0f, 2.0f, 3.0f, 6.0f};
  float y[4];
  kernels::AveragePool2D(x, s, kernels::FusedAct::kNone, y);
  for (float v : y) CHECK(v == 3.0f);
  CHECK(kernels::WindowCount(s, 0, 0) == 4);
  const float dy[4] = {4.0f, 0.0f, 0.0f, 0.0f};
  float dx[4] = {};
  kernels::AveragePool2DInputGrad(s, dy, dx);
  for (float v : dx) CHECK(v == 1.0f);
  kernels::AveragePool2D(x, s, kernels::FusedAct::kRelu6, y);  // the fused activation applies
  CHECK(y[0] == 3.0f);
  const float big[4] = {10.0f, 10.0f, 10.0f, 10.0f};
  kernels::AveragePool2D(big, s, kernels::FusedAct::kRelu6, y);
  CHECK(y[3] == 6.0f);
}

TEST(BiasGradSumsPositions) {
  const float delta[6] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};  // 3 positions x 2 channels
  float gb[2] = {0.5f, 0.0f};
  kernels::BiasGrad(delta, 3, 2, gb);
  CHECK(gb[0] == 9.5f && gb[1] == 12.0f);
  kernels::BiasGrad(delta, 0, 2, gb);  // no positions: unchanged
  CHECK(gb[0] == 9.5f && gb[1] == 12.0f);
}

// Backward over a subset of kept outputs equals backward over every output with
// the others' errors zeroed, for both the weight and the input gradient.
TEST(ConvGradSubsetEqualsMaskedDense) {
  Lcg rng(31);
  for (int trial = 0; trial < 200; ++trial) {
    const bool depthwise = trial % 2 == 1;
    const kernels::ConvShape s = RandomConvShape(rng, depthwise);
    const int32_t n_out = s.out_h * s.out_w * s.out_c;
    const size_t n_w = depthwise ? static_cast<size_t>(s.filter_h * s.filter_w * s.out_c)
                                 : static_cast<size_t>(s.out_c * s.filter_h * s.filter_w * s.in_c);
    const std::vector<float> x = RandomVector(rng, static_cast<size_t>(s.in_h * s.in_w * s.in_c));
    const std::vector<float> w = RandomVector(rng, n_w);
    const std::vector<float> delta = RandomVector(rng, static_cast<size_t>(n_out));
    std::vector<int32_t> kept;
    std::vector<float> masked(delta.size(), 0.0f);
    for (int32_t e = 0; e < n_out; ++e) {
      if (rng.Coin()) {
        kept.push_back(e);
        masked[e] = delta[e];
      }
    }
    std::vector<float> gw_sparse(n_w, 0.0f), gw_dense(n_w, 0.0f);
    std::vector<float> dx_sparse(x.size(), 0.0f), dx_dense(x.size(), 0.0f);
    const int32_t k = static_cast<int32_t>(kept.size());
    if (depthwise) {
      kernels::DepthwiseConv2DWeightAndInputGrad(x.data(), w.data(), s, delta.data(), kept.data(), k, gw_sparse.data(),
                                       dx_sparse.data());
      kernels::DepthwiseConv2DWeightAndInputGrad(x.data(), w.data(), s, masked.data(), nullptr, n_out, gw_dense.data(),
                                       dx_dense.data());
    } else {
      kernels::Conv2DWeightAndInputGrad(x.data(), w.data(), s, delta.data(), kept.data(), k, gw_sparse.data(),
                              dx_sparse.data());
      kernels::Conv2DWeightAndInputGrad(x.data(), w.data(), s, masked.data(), nullptr, n_out, gw_dense.data(),
                              dx_dense.data());
    }
    // Adding zeros changes nothing, so the two agree exactly.
    CHECK_MSG(gw_sparse == gw_dense, "trial %d weight gradient", trial);
    CHECK_MSG(dx_sparse == dx_dense, "trial %d input gradient", trial);
  }
}

// The input gradient is the adjoint of the forward map: <conv(x), d> == <x, conv^T(d)>,
// and the weight gradient the adjoint in w: <conv_w(x), d> == <w, grad_w(d)> (no bias).
TEST(ConvGradIsAdjointOfForward) {
  Lcg rng(37);
  for (int trial = 0; trial < 100; ++trial) {
    const bool depthwise = trial % 2 == 1;
    const kernels::ConvShape s = RandomConvShape(rng, depthwise);
    const size_t n_out = static_cast<size_t>(s.out_h * s.out_w * s.out_c);
    const size_t n_w = depthwise ? static_cast<size_t>(s.filter_h * s.filter_w * s.out_c)
                                 : static_cast<size_t>(s.out_c * s.filter_h * s.filter_w * s.in_c);
    const std::vector<float> x = RandomVector(rng, static_cast<size_t>(s.in_h * s.in_w * s.in_c));
    const std::vector<float> w = RandomVector(rng, n_w);
    const std::vector<float> d = RandomVector(rng, n_out);
    std::vector<float> y(n_out), dx(x.size(), 0.0f), gw(n_w, 0.0f);
    if (depthwise) {
      kernels::DepthwiseConv2D(x.data(), s, w.data(), nullptr, kernels::FusedAct::kNone, y.data());
      kernels::DepthwiseConv2DWeightAndInputGrad(x.data(), w.data(), s, d.data(), nullptr, static_cast<int32_t>(n_out),
                                       gw.data(), dx.data());
    } else {
      kernels::Conv2D(x.data(), s, w.data(), nullptr, kernels::FusedAct::kNone, y.data());
      kernels::Conv2DWeightAndInputGrad(x.data(), w.data(), s, d.data(), nullptr, static_cast<int32_t>(n_out), gw.data(),
                              dx.data());
    }
    double yd = 0.0, xdx = 0.0, wgw = 0.0;
    for (size_t i = 0; i < n_out; ++i) yd += static_cast<double>(y[i]) * d[i];
    for (size_t i = 0; i < x.size(); ++i) xdx += static_cast<double>(x[i]) * dx[i];
    for (size_t i = 0; i < n_w; ++i) wgw += static_cast<double>(w[i]) * gw[i];
    CHECK_NEAR(yd, xdx, 1e-4);
    CHECK_NEAR(yd, wgw, 1e-4);
  }
}

// Average pooling is linear: its input gradient is the adjoint of the forward map.
TEST(AveragePoolGradIsAdjoint) {
  Lcg rng(41);
  for (int trial = 0; trial < 100; ++trial) {
    kernels::ConvShape s = RandomConvShape(rng, false);  // re-sized below for pooling: no dilation
    s.dilation_h = s.dilation_w = 1;
    s.out_c = s.in_c;
    const int32_t eff_h = s.filter_h, eff_w = s.filter_w;
    if (s.pad_top == 0 && s.pad_left == 0 && eff_h <= s.in_h && eff_w <= s.in_w) {
      s.out_h = (s.in_h - eff_h) / s.stride_h + 1;
      s.out_w = (s.in_w - eff_w) / s.stride_w + 1;
    } else {
      s.out_h = (s.in_h + s.stride_h - 1) / s.stride_h;
      s.out_w = (s.in_w + s.stride_w - 1) / s.stride_w;
      s.pad_top = std::max(0, ((s.out_h - 1) * s.stride_h + eff_h - s.in_h) / 2);
      s.pad_left = std::max(0, ((s.out_w - 1) * s.stride_w + eff_w - s.in_w) / 2);
    }
    const size_t n_in = static_cast<size_t>(s.in_h * s.in_w * s.in_c);
    const size_t n_out = static_cast<size_t>(s.out_h * s.out_w * s.out_c);
    const std::vector<float> x = RandomVector(rng, n_in);
    const std::vector<float> d = RandomVector(rng, n_out);
    std::vector<float> y(n_out), dx(n_in, 0.0f);
    kernels::AveragePool2D(x.data(), s, kernels::FusedAct::kNone, y.data());
    kernels::AveragePool2DInputGrad(s, d.data(), dx.data());
    double yd = 0.0, xdx = 0.0;
    for (size_t i = 0; i < n_out; ++i) yd += static_cast<double>(y[i]) * d[i];
    for (size_t i = 0; i < n_in; ++i) xdx += static_cast<double>(x[i]) * dx[i];
    CHECK_NEAR(yd, xdx, 1e-4);
  }
}

// Max pooling sends each error to the first maximum of its window, padded taps excluded.
TEST(MaxPoolRoutesToFirstMaximum) {
  kernels::ConvShape s{};
  s.in_h = 2; s.in_w = 3; s.in_c = 1; s.out_c = 1;
  s.filter_h = 2; s.filter_w = 2; s.stride_h = 2; s.stride_w = 2;
  s.dilation_h = s.dilation_w = 1;
  s.out_h = 1; s.out_w = 2;  // SAME: the second window covers column 2 and a padded column
  s.pad_top = 0; s.pad_left = 0;
  const float x[6] = {-5.0f, 3.0f, -7.0f,
                      3.0f, 1.0f, -8.0f};
  float y[2];
  kernels::MaxPool2D(x, s, kernels::FusedAct::kNone, y);
  CHECK(y[0] == 3.0f && y[1] == -7.0f);  // the padded tap never wins, even over -7
  const float dy[2] = {1.5f, 2.5f};
  float dx[6] = {};
  kernels::MaxPool2DInputGrad(x, s, dy, dx);
  CHECK(dx[1] == 1.5f && dx[3] == 0.0f);  // tie between x[1] and x[3]: the first in scan order
  CHECK(dx[2] == 2.5f && dx[0] == 0.0f && dx[4] == 0.0f && dx[5] == 0.0f);
}

int main() { return test::RunAll(); }
