// The elementwise and fully-connected kernels (kernels/fully_connected.h,
// activations.h, softmax.h, logistic.h, tanh.h, elementwise.h, mean.h, pad.h):
// forward against float64 definitions, gradients against finite differences or
// as adjoints of the forward map, and the row-subset (sparse) gradients.
#include <math.h>
#include <stdint.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/activations.h"
#include "kernels/conv_shape.h"
#include "kernels/elementwise.h"
#include "kernels/fully_connected.h"
#include "kernels/logistic.h"
#include "kernels/mean.h"
#include "kernels/pad.h"
#include "kernels/softmax.h"
#include "kernels/tanh.h"
#include "test_harness.h"

namespace kernels = tflm_train::kernels;
using test::Lcg;

static std::vector<float> RandomVector(Lcg& rng, size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.Uniform(-1.0f, 1.0f);
  return v;
}

static double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

TEST(FullyConnectedForward) {
  Lcg rng(5);
  for (int iter = 0; iter < 60; ++iter) {
    const int n_in = rng.Int(1, 17), n_out = rng.Int(1, 13);
    const auto act = static_cast<kernels::FusedAct>(iter % 3);
    const bool with_bias = iter % 4 != 3;
    std::vector<float> x(n_in), w(n_in * n_out), b(n_out), y(n_out);
    for (auto& v : x) v = rng.Uniform(-3.0f, 3.0f);
    for (auto& v : w) v = rng.Uniform(-2.0f, 2.0f);
    for (auto& v : b) v = rng.Uniform(-2.0f, 2.0f);
    kernels::FullyConnected(x.data(), n_in, w.data(), with_bias ? b.data() : nullptr, n_out, act,
                            y.data());
    for (int o = 0; o < n_out; ++o) {
      double z = with_bias ? b[o] : 0.0;
      for (int i = 0; i < n_in; ++i) z += static_cast<double>(w[o * n_in + i]) * x[i];
      if (act == kernels::FusedAct::kRelu) z = std::max(z, 0.0);
      if (act == kernels::FusedAct::kRelu6) z = std::min(std::max(z, 0.0), 6.0);
      CHECK_NEAR(y[o], z, 1e-5 * (1.0 + fabs(z)));
    }
  }
  CHECK(kernels::ApplyFusedAct(kernels::FusedAct::kRelu6, 7.5f) == 6.0f);
  CHECK(kernels::ApplyFusedAct(kernels::FusedAct::kRelu6, -1.0f) == 0.0f);
  CHECK(kernels::ApplyFusedAct(kernels::FusedAct::kRelu, -1.0f) == 0.0f);
  CHECK(kernels::ApplyFusedAct(kernels::FusedAct::kNone, -1.0f) == -1.0f);
}

TEST(FullyConnectedInputGradRowSubset) {
  Lcg rng(6);
  const int n_in = 5, n_out = 7;
  std::vector<float> w(n_in * n_out), delta(n_out), dx(n_in), start(n_in);
  for (auto& v : w) v = rng.Uniform(-1.0f, 1.0f);
  for (auto& v : delta) v = rng.Uniform(-1.0f, 1.0f);
  for (int i = 0; i < n_in; ++i) dx[i] = start[i] = rng.Uniform(-1.0f, 1.0f);  // accumulates
  const int32_t rows[] = {0, 2, 5};
  kernels::FullyConnectedInputGrad(w.data(), n_in, delta.data(), rows, 3, dx.data());
  for (int i = 0; i < n_in; ++i) {
    double want = start[i];
    for (int32_t o : rows) want += static_cast<double>(w[o * n_in + i]) * delta[o];
    CHECK_NEAR(dx[i], want, 1e-6);
  }
  // All rows: the dense transpose product.
  std::vector<int32_t> all(n_out);
  std::iota(all.begin(), all.end(), 0);
  std::fill(dx.begin(), dx.end(), 0.0f);
  kernels::FullyConnectedInputGrad(w.data(), n_in, delta.data(), all.data(), n_out, dx.data());
  for (int i = 0; i < n_in; ++i) {
    double want = 0.0;
    for (int o = 0; o < n_out; ++o) want += static_cast<double>(w[o * n_in + i]) * delta[o];
    CHECK_NEAR(dx[i], want, 1e-6);
  }
  // No rows: untouched.
  std::vector<float> before = dx;
  kernels::FullyConnectedInputGrad(w.data(), n_in, delta.data(), rows, 0, dx.data());
  CHECK(before == dx);
}

TEST(FullyConnectedWeightGrad) {
  Lcg rng(7);
  const int n_in = 4, n_out = 6;
  std::vector<float> x(n_in), delta(n_out), gw(n_in * n_out), gb(n_out);
  for (auto& v : x) v = rng.Uniform(-1.0f, 1.0f);
  for (auto& v : delta) v = rng.Uniform(-1.0f, 1.0f);
  for (auto& v : gw) v = rng.Uniform(-1.0f, 1.0f);
  for (auto& v : gb) v = rng.Uniform(-1.0f, 1.0f);
  const std::vector<float> gw0 = gw, gb0 = gb;
  const int32_t rows[] = {1, 4};
  kernels::FullyConnectedWeightGrad(x.data(), n_in, delta.data(), rows, 2, gw.data());
  kernels::BiasGrad(delta.data(), 1, n_out, gb.data());
  for (int o = 0; o < n_out; ++o) {
    const bool kept = o == 1 || o == 4;
    for (int i = 0; i < n_in; ++i) {
      if (kept) {
        CHECK_NEAR(gw[o * n_in + i], gw0[o * n_in + i] + static_cast<double>(delta[o]) * x[i], 1e-6);
      } else {
        CHECK(gw[o * n_in + i] == gw0[o * n_in + i]);  // other rows untouched
      }
    }
    CHECK_NEAR(gb[o], gb0[o] + delta[o], 1e-6);  // bias: dense
  }
  // Twice accumulates twice.
  kernels::FullyConnectedWeightGrad(x.data(), n_in, delta.data(), rows, 2, gw.data());
  CHECK_NEAR(gw[1 * n_in + 2], gw0[1 * n_in + 2] + 2.0 * delta[1] * x[2], 1e-6);
  CHECK_NEAR(gb[3], gb0[3] + delta[3], 1e-6);
}

// Mean and Pad are linear: their input gradients are the adjoints of the forward maps.
TEST(MeanAndPadGradsAreAdjoints) {
  Lcg rng(41);
  for (int trial = 0; trial < 100; ++trial) {
    const int32_t positions = rng.Int(1, 40), channels = rng.Int(1, 5);
    const std::vector<float> x = RandomVector(rng, static_cast<size_t>(positions * channels));
    const std::vector<float> dm = RandomVector(rng, static_cast<size_t>(channels));
    std::vector<float> mean(static_cast<size_t>(channels)), dmean(x.size(), 0.0f);
    kernels::Mean(x.data(), positions, channels, mean.data());
    kernels::MeanInputGrad(dm.data(), positions, channels, dmean.data());
    CHECK_NEAR(Dot(mean, dm), Dot(x, dmean), 1e-5);
    for (int32_t c = 0; c < channels; ++c) {
      double want = 0.0;
      for (int32_t p = 0; p < positions; ++p) want += x[p * channels + c];
      CHECK_NEAR(mean[c], want / positions, 1e-5);
    }

    kernels::PadShape p{};
    for (int a = 0; a < 4; ++a) {
      p.in[a] = a == 0 ? 1 : rng.Int(1, 4);
      p.before[a] = a == 0 ? 0 : rng.Int(0, 2);
      p.after[a] = a == 0 ? 0 : rng.Int(0, 2);
    }
    const size_t pn_in = static_cast<size_t>(p.in[1] * p.in[2] * p.in[3]);
    const size_t pn_out = static_cast<size_t>(kernels::PaddedDim(p, 1) * kernels::PaddedDim(p, 2) *
                                              kernels::PaddedDim(p, 3));
    const std::vector<float> px = RandomVector(rng, pn_in);
    const std::vector<float> pd = RandomVector(rng, pn_out);
    std::vector<float> py(pn_out, 9.0f), pdx(pn_in, 0.0f);
    kernels::Pad(px.data(), p, static_cast<int32_t>(pn_out), py.data());
    kernels::PadInputGrad(pd.data(), p, pdx.data());
    double total = 0.0;
    for (float v : py) total += v;
    for (float v : px) total -= v;
    CHECK_NEAR(Dot(py, pd), Dot(px, pdx), 1e-5);
    CHECK_NEAR(total, 0.0, 1e-4);  // the padding is zeros: nothing else was written
    // Input element (0, b, c, d) lands at its padded index.
    CHECK(py[kernels::PaddedIndex(p, 0, p.in[1] - 1, 0, p.in[3] - 1)] ==
          px[((p.in[1] - 1) * p.in[2]) * p.in[3] + p.in[3] - 1]);
  }
}

TEST(ElementwiseForward) {
  // Two activations: a + sign * b, then the fused activation.
  const float a[4] = {1.0f, -2.0f, 3.0f, 7.0f}, b[4] = {0.5f, 1.0f, -4.0f, 0.0f};
  float y[4];
  kernels::AddScaled(a, b, 1.0f, 4, kernels::FusedAct::kRelu6, y);
  CHECK(y[0] == 1.5f && y[1] == 0.0f && y[2] == 0.0f && y[3] == 6.0f);
  kernels::AddScaled(a, b, -1.0f, 4, kernels::FusedAct::kNone, y);
  CHECK(y[0] == 0.5f && y[1] == -3.0f && y[2] == 7.0f && y[3] == 7.0f);
  // A constant broadcast along the last axis: 2 rows x 2 channels.
  const float c[2] = {10.0f, -1.0f};
  kernels::AddConstant(a, 1.0f, c, 1.0f, 2, 2, kernels::FusedAct::kNone, y);  // x + c
  CHECK(y[0] == 11.0f && y[1] == -3.0f && y[2] == 13.0f && y[3] == 6.0f);
  kernels::AddConstant(a, 1.0f, c, -1.0f, 2, 2, kernels::FusedAct::kNone, y);  // x - c
  CHECK(y[0] == -9.0f && y[1] == -1.0f && y[2] == -7.0f && y[3] == 8.0f);
  kernels::AddConstant(a, -1.0f, c, 1.0f, 2, 2, kernels::FusedAct::kRelu, y);  // relu(c - x)
  CHECK(y[0] == 9.0f && y[1] == 1.0f && y[2] == 7.0f && y[3] == 0.0f);
  const float one[1] = {2.0f};  // a single value: rows of one
  kernels::AddConstant(a, 1.0f, one, 1.0f, 4, 1, kernels::FusedAct::kNone, y);
  CHECK(y[0] == 3.0f && y[1] == 0.0f && y[2] == 5.0f && y[3] == 9.0f);
  kernels::MulConstant(a, c, 2, 2, kernels::FusedAct::kNone, y);
  CHECK(y[0] == 10.0f && y[1] == 2.0f && y[2] == 30.0f && y[3] == -7.0f);
  kernels::MulConstant(a, c, 2, 2, kernels::FusedAct::kRelu, y);
  CHECK(y[1] == 2.0f && y[3] == 0.0f);
}

// The elementwise gradients are the adjoints of the (linear, act NONE) forward maps.
TEST(ElementwiseGradsAreAdjoints) {
  Lcg rng(47);
  for (int trial = 0; trial < 50; ++trial) {
    const int32_t rows = rng.Int(1, 6), depth = rng.Int(1, 5), n = rows * depth;
    const std::vector<float> x = RandomVector(rng, static_cast<size_t>(n));
    const std::vector<float> c = RandomVector(rng, static_cast<size_t>(depth));
    const std::vector<float> d = RandomVector(rng, static_cast<size_t>(n));
    std::vector<float> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n), 0.0f);
    kernels::MulConstant(x.data(), c.data(), rows, depth, kernels::FusedAct::kNone, y.data());
    kernels::MulConstantInputGrad(d.data(), c.data(), rows, depth, dx.data());
    CHECK_NEAR(Dot(y, d), Dot(x, dx), 1e-5);
    // x - c: the gradient w.r.t. x is +d, w.r.t. (c - x) it is -d.
    for (float sign : {1.0f, -1.0f}) {
      std::vector<float> acc(static_cast<size_t>(n), 0.5f);
      kernels::AddInputGrad(d.data(), sign, n, acc.data());
      for (int32_t i = 0; i < n; ++i) CHECK(acc[i] == 0.5f + sign * d[i]);
    }
  }
}

static void SoftmaxD(const double* z, int n, double* p) {
  double m = z[0];
  for (int i = 1; i < n; ++i) m = std::max(m, z[i]);
  double s = 0.0;
  for (int i = 0; i < n; ++i) s += exp(z[i] - m);
  for (int i = 0; i < n; ++i) p[i] = exp(z[i] - m) / s;
}

TEST(FusedActivationGradients) {
  // Fused ReLU / ReLU6 zero the error where the output sits at a kink or beyond.
  const float y[] = {0.0f, 1.0f, 6.0f, 3.0f, 0.0f};
  float d1[] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  kernels::FusedActGradInPlace(kernels::FusedAct::kRelu, y, 5, d1);
  CHECK(d1[0] == 0.0f && d1[1] == 2.0f && d1[2] == 3.0f && d1[3] == 4.0f && d1[4] == 0.0f);
  float d2[] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  kernels::FusedActGradInPlace(kernels::FusedAct::kRelu6, y, 5, d2);
  CHECK(d2[0] == 0.0f && d2[1] == 2.0f && d2[2] == 0.0f && d2[3] == 4.0f && d2[4] == 0.0f);
  float d3[] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  kernels::FusedActGradInPlace(kernels::FusedAct::kNone, y, 5, d3);
  CHECK(d3[0] == 1.0f && d3[4] == 5.0f);
  // Standalone ops accumulate.
  const float dy[] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  float dx[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  kernels::FusedActInputGrad(kernels::FusedAct::kRelu, y, dy, 5, dx);
  CHECK(dx[0] == 0.5f && dx[1] == 1.5f && dx[2] == 1.5f && dx[3] == 1.5f && dx[4] == 0.5f);
  float dx6[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  kernels::FusedActInputGrad(kernels::FusedAct::kRelu6, y, dy, 5, dx6);
  CHECK(dx6[0] == 0.5f && dx6[1] == 1.5f && dx6[2] == 0.5f && dx6[3] == 1.5f && dx6[4] == 0.5f);
  float fw[5];
  const float xin[] = {-1.0f, 0.5f, 9.0f, 6.0f, 0.0f};
  kernels::FusedActForward(kernels::FusedAct::kRelu6, xin, 5, fw);
  CHECK(fw[0] == 0.0f && fw[1] == 0.5f && fw[2] == 6.0f && fw[3] == 6.0f && fw[4] == 0.0f);
}

// f(x) = sum_j dy_j * act(x)_j in float64, for finite differences.
static double ActObjective(int which, const std::vector<double>& x, const float* dy, int rows, int depth) {
  const int n = rows * depth;
  std::vector<double> y(n);
  if (which == 0) {
    for (int r = 0; r < rows; ++r) SoftmaxD(x.data() + r * depth, depth, y.data() + r * depth);
  } else {
    for (int i = 0; i < n; ++i) y[i] = which == 1 ? 1.0 / (1.0 + exp(-x[i])) : tanh(x[i]);
  }
  double f = 0.0;
  for (int i = 0; i < n; ++i) f += dy[i] * y[i];
  return f;
}

TEST(SoftmaxLogisticTanhGradsVsFiniteDifferences) {
  Lcg rng(8);
  const char* names[] = {"Softmax", "Logistic", "Tanh"};
  for (int which = 0; which < 3; ++which) {
    for (int iter = 0; iter < 40; ++iter) {
      const int rows = rng.Int(1, 3), depth = rng.Int(1, 7), n = rows * depth;
      std::vector<float> x(n), y(n), dy(n), dx(n), dx0(n);
      for (int i = 0; i < n; ++i) {
        x[i] = rng.Uniform(-3.0f, 3.0f);
        dy[i] = rng.Uniform(-1.0f, 1.0f);
        dx[i] = dx0[i] = rng.Uniform(-1.0f, 1.0f);  // backward accumulates
      }
      if (which == 0) {
        kernels::Softmax(x.data(), rows, depth, y.data());
        kernels::SoftmaxInputGrad(y.data(), dy.data(), rows, depth, dx.data());
        for (int r = 0; r < rows; ++r) {
          double s = 0.0;
          for (int i = 0; i < depth; ++i) s += y[r * depth + i];
          CHECK_NEAR(s, 1.0, 1e-6);
        }
      } else if (which == 1) {
        kernels::Logistic(x.data(), n, y.data());
        kernels::LogisticInputGrad(y.data(), dy.data(), n, dx.data());
      } else {
        kernels::Tanh(x.data(), n, y.data());
        kernels::TanhInputGrad(y.data(), dy.data(), n, dx.data());
      }
      std::vector<double> xd(x.begin(), x.end());
      for (int i = 0; i < n; ++i) {
        const double h = 1e-5;
        std::vector<double> xp = xd, xm = xd;
        xp[i] += h;
        xm[i] -= h;
        const double fd = (ActObjective(which, xp, dy.data(), rows, depth) -
                           ActObjective(which, xm, dy.data(), rows, depth)) / (2 * h);
        CHECK_MSG(fabs((dx[i] - dx0[i]) - fd) <= 2e-6, "%s rows %d depth %d i %d: %.9g vs %.9g",
                  names[which], rows, depth, i, dx[i] - dx0[i], fd);
      }
    }
  }
  // Softmax is stable for huge inputs.
  const float big[] = {1000.0f, 1000.0f, -1000.0f};
  float p[3];
  kernels::Softmax(big, 1, 3, p);
  CHECK_NEAR(p[0], 0.5, 1e-7);
  CHECK_NEAR(p[1], 0.5, 1e-7);
  CHECK(p[2] == 0.0f);
}

int main() { return test::RunAll(); }
