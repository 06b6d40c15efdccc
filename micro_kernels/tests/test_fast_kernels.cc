// The optimized kernels (kernels/fast/) against the reference kernels they must
// match (kernels/*.h, sgd.h, kernels/top_k.h) on many random shapes. They keep
// the reference's summation order, so every result must be bit-identical
// (compared with memcmp, which also tells +0 from -0; the SGD of kept rows
// ignores the sign of a NaN, see SameUpToNaNSign); running a fast kernel twice
// on the same inputs must give the same bits too.
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/average_pool.h"
#include "kernels/conv_2d.h"
#include "kernels/depthwise_conv_2d.h"
#include "kernels/fast/average_pool.h"
#include "kernels/fast/conv_2d.h"
#include "kernels/fast/depthwise_conv_2d.h"
#include "kernels/fast/fully_connected.h"
#include "kernels/fast/max_pool.h"
#include "kernels/fast/scan.h"
#include "kernels/fast/sgd_update.h"
#include "kernels/fast/top_k.h"
#include "kernels/fully_connected.h"
#include "kernels/max_pool.h"
#include "kernels/scan.h"
#include "kernels/top_k.h"
#include "sgd.h"
#include "test_harness.h"

namespace kernels = tflm_train::kernels;
namespace fast = tflm_train::kernels::fast;
using kernels::FusedAct;
using test::Lcg;

static std::vector<float> Random(Lcg& rng, size_t n, float zero_share = 0.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.Uniform(0.0f, 1.0f) < zero_share ? 0.0f : rng.Uniform(-1.0f, 1.0f);
  return v;
}

static bool Same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Same bits, except for the sign of a NaN. IEEE 754 leaves a NaN result's sign
// to the implementation, and equivalent instructions differ: GCC at -Os computes
// the reference's w - (g * lr) with VMLS, which negates the NaN product, where
// the fast loops' VSUB keeps its sign.
static bool SameUpToNaNSign(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    uint32_t x, y;
    memcpy(&x, &a[i], sizeof(x));
    memcpy(&y, &b[i], sizeof(y));
    if (std::isnan(a[i]) && std::isnan(b[i])) x &= 0x7FFFFFFFu, y &= 0x7FFFFFFFu;
    if (x != y) return false;
  }
  return true;
}

static FusedAct RandomAct(Lcg& rng) { return static_cast<FusedAct>(rng.Int(0, 2)); }

// Each of 0..n-1 kept with chance `chance` in `out_of`, in ascending order.
static std::vector<int32_t> KeepEach(Lcg& rng, int n, int chance, int out_of) {
  std::vector<int32_t> kept;
  for (int i = 0; i < n; ++i) {
    if (rng.Int(0, out_of - 1) < chance) kept.push_back(i);
  }
  return kept;
}

// Errors of n rows for the row loops: 40% zeros; none; one zero in a random row
// (the M4F's whole-matrix loop then stops part way); tiny ones (products of a few
// underflow to 0, which stops it too); or an infinity and a NaN beside a zero.
static std::vector<float> RowErrors(Lcg& rng, int n) {
  const int kind = rng.Int(0, 4);
  std::vector<float> delta = Random(rng, n, kind == 0 ? 0.4f : 0.0f);
  if (kind == 2) delta[rng.Int(0, n - 1)] = 0.0f;
  if (kind == 3) {
    for (auto& v : delta) v *= 1e-12f;
  }
  if (kind == 4) {
    delta[rng.Int(0, n - 1)] = rng.Coin() ? INFINITY : -INFINITY;
    delta[rng.Int(0, n - 1)] = NAN;
    delta[rng.Int(0, n - 1)] = 0.0f;
  }
  return delta;
}

// An ascending random subset of [0, n) (null-equivalent when all are kept).
static std::vector<int32_t> RandomKept(Lcg& rng, int n) {
  const int share = rng.Int(0, 4);  // 0: none ... 4: all
  return KeepEach(rng, n, share, 4);
}

TEST(FullyConnectedForwardBitIdentical) {
  Lcg rng(11);
  for (int trial = 0; trial < 400; ++trial) {
    const int n_in = rng.Int(1, 70), n_out = rng.Int(1, 19);
    const auto x = Random(rng, n_in), w = Random(rng, n_in * n_out), b = Random(rng, n_out);
    const FusedAct act = RandomAct(rng);
    const float* bias = rng.Coin() ? b.data() : nullptr;
    std::vector<float> ref(n_out), got(n_out), again(n_out);
    kernels::FullyConnected(x.data(), n_in, w.data(), bias, n_out, act, ref.data());
    fast::FullyConnected(x.data(), n_in, w.data(), bias, n_out, act, got.data());
    fast::FullyConnected(x.data(), n_in, w.data(), bias, n_out, act, again.data());
    CHECK_MSG(Same(ref, got), "trial %d n_in %d n_out %d", trial, n_in, n_out);
    CHECK(Same(got, again));
  }
}

// Small layers (the MLP's 32x16 and 16x10 and their like: n_in and n_out below
// and around multiples of 4, n_in 0 included) whose values are often +0, -0 or
// a NaN: the sums' starting +0, the tail columns' sum, RELU's v > 0 ? v : +0 (for
// -0 and NaN) and the missing bias must all come out as the reference's bits.
TEST(FullyConnectedForwardSmallSignedZerosBitIdentical) {
  Lcg rng(29);
  const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f, -1.0f};
  for (int trial = 0; trial < 600; ++trial) {
    const int n_in = rng.Int(0, 37), n_out = rng.Int(1, 18);
    const float special_share = rng.Int(0, 2) * 0.4f;  // 0, 0.4 or 0.8 of the values
    auto pick = [&](size_t n) {
      std::vector<float> v = Random(rng, n);
      for (auto& e : v) {
        if (rng.Uniform(0.0f, 1.0f) < special_share) e = specials[rng.Int(0, trial % 3 == 0 ? 4 : 1)];
      }
      return v;
    };
    const auto x = pick(n_in), w = pick(static_cast<size_t>(n_in) * n_out), b = pick(n_out);
    const FusedAct act = RandomAct(rng);
    const float* bias = rng.Coin() ? b.data() : nullptr;
    std::vector<float> ref(n_out), got(n_out, 7.0f);
    kernels::FullyConnected(x.data(), n_in, w.data(), bias, n_out, act, ref.data());
    fast::FullyConnected(x.data(), n_in, w.data(), bias, n_out, act, got.data());
    CHECK_MSG(Same(ref, got), "trial %d n_in %d n_out %d act %d bias %d", trial, n_in, n_out,
              static_cast<int>(act), bias != nullptr);
  }
}

// The trainer's scans: AllFinite's answer and MaxAbs's bits (a NaN anywhere, an
// Inf, -0, huge and tiny values, lengths around the SSE blocks of eight).
TEST(ScansSameAsReference) {
  Lcg rng(31);
  const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), FLT_MAX, -FLT_MAX, FLT_MIN, -1e-40f};
  const int num_specials = static_cast<int>(sizeof(specials) / sizeof(specials[0]));
  for (int trial = 0; trial < 2000; ++trial) {
    const int n = rng.Int(0, 40) + (trial % 5 == 0 ? rng.Int(0, 800) : 0);
    std::vector<float> v = Random(rng, static_cast<size_t>(n));
    const float scale = rng.Coin() ? 1.0f : 1e30f;
    for (auto& e : v) e *= scale;
    const int num_special = rng.Int(0, 3);
    for (int s = 0; s < num_special && n > 0; ++s) v[rng.Int(0, n - 1)] = specials[rng.Int(0, num_specials - 1)];
    CHECK_MSG(kernels::AllFinite(v.data(), v.size()) == fast::AllFinite(v.data(), v.size()), "trial %d n %d",
              trial, n);
    const float ref = kernels::MaxAbs(v.data(), n), got = fast::MaxAbs(v.data(), n);
    CHECK_MSG(memcmp(&ref, &got, sizeof(float)) == 0, "trial %d n %d", trial, n);
  }
}

TEST(FullyConnectedInputGradBitIdentical) {
  Lcg rng(12);
  for (int trial = 0; trial < 400; ++trial) {
    // Half the time whole blocks of four inputs (the M4F's assembly loops).
    const int n_in = rng.Coin() ? 4 * rng.Int(1, 10) : rng.Int(1, 40), n_out = rng.Int(1, 23);
    const auto w = Random(rng, n_in * n_out), delta = RowErrors(rng, n_out), dx0 = Random(rng, n_in, 0.3f);
    const std::vector<int32_t> kept = RandomKept(rng, n_out);
    const bool all = rng.Int(0, 3) == 0;
    const int32_t* rows = all ? nullptr : kept.data();
    const int num = all ? n_out : static_cast<int>(kept.size());
    std::vector<float> ref = dx0, got = dx0;
    kernels::FullyConnectedInputGrad(w.data(), n_in, delta.data(), rows, num, ref.data());
    fast::FullyConnectedInputGrad(w.data(), n_in, delta.data(), rows, num, got.data());
    CHECK_MSG(Same(ref, got), "trial %d", trial);
  }
}

TEST(SgdUpdatesBitIdentical) {
  Lcg rng(13);
  for (int trial = 0; trial < 400; ++trial) {
    const int n = rng.Int(1, 50);
    tflm_train::SgdStep step{rng.Uniform(0.001f, 0.5f), rng.Coin() ? 0.0f : rng.Uniform(0.1f, 0.95f),
                             rng.Coin() ? 0.0f : rng.Uniform(0.0001f, 0.1f)};
    const float g_scale = rng.Coin() ? 1.0f : rng.Uniform(0.1f, 1.0f);
    const auto g = Random(rng, n), w0 = Random(rng, n, 0.1f), v0 = Random(rng, n), x = Random(rng, n, 0.2f);
    const bool momentum = step.momentum != 0.0f;
    const float* gp = rng.Int(0, 7) == 0 ? nullptr : g.data();
    std::vector<float> w_ref = w0, w_got = w0, v_ref = v0, v_got = v0;
    tflm_train::SgdUpdate(step, gp, g_scale, n, w_ref.data(), momentum ? v_ref.data() : nullptr);
    fast::SgdUpdate(step, gp, g_scale, n, w_got.data(), momentum ? v_got.data() : nullptr);
    CHECK_MSG(Same(w_ref, w_got) && Same(v_ref, v_got), "dense trial %d", trial);
    const float delta = rng.Coin() ? 0.0f : rng.Uniform(-1.0f, 1.0f);
    w_ref = w0, w_got = w0, v_ref = v0, v_got = v0;
    tflm_train::SgdUpdateRankOne(step, delta, x.data(), n, w_ref.data(), momentum ? v_ref.data() : nullptr);
    fast::SgdUpdateRankOne(step, delta, x.data(), n, w_got.data(), momentum ? v_got.data() : nullptr);
    CHECK_MSG(Same(w_ref, w_got) && Same(v_ref, v_got), "rank-one trial %d", trial);
  }
}

// Plain SGD of kept rows, including zero errors, -0 weights and inputs with and
// without sign bits (when a +0 row may be skipped).
TEST(SgdRankOneRowsBitIdentical) {
  Lcg rng(14);
  for (int trial = 0; trial < 400; ++trial) {
    // Half the time whole blocks of eight inputs (the M4F's assembly loops).
    const int n_in = rng.Coin() ? 8 * rng.Int(1, 4) : rng.Int(1, 37), n_out = rng.Int(1, 21);
    const float lr = rng.Uniform(0.001f, 0.5f);
    auto x = Random(rng, n_in, 0.3f);
    const int x_kind = rng.Int(0, 2);
    for (auto& v : x) {
      if (x_kind == 0) v = v < 0.0f ? -v : v;   // no sign bit: +0 rows are skipped
      if (x_kind == 1 && v == 0.0f) v = -0.0f;  // -0 inputs: no skipping
    }
    auto w0 = Random(rng, n_in * n_out, 0.1f);
    for (auto& v : w0) if (v == 0.0f && rng.Coin()) v = -0.0f;
    auto delta = RowErrors(rng, n_out);
    for (auto& v : delta) if (v == 0.0f && rng.Int(0, 3) == 0) v = -0.0f;
    const std::vector<int32_t> kept = rng.Int(0, 3) == 0 ? KeepEach(rng, n_out, 1, 1) : RandomKept(rng, n_out);
    std::vector<float> ref = w0, got = w0;
    for (int32_t o : kept) {
      tflm_train::SgdUpdateRankOne(tflm_train::SgdStep{lr, 0.0f, 0.0f}, delta[o], x.data(), n_in,
                                   ref.data() + o * n_in, nullptr);
    }
    // Every row kept: as a list, or as null.
    const bool all_null = static_cast<int>(kept.size()) == n_out && rng.Coin();
    fast::SgdRankOneRows(lr, delta.data(), all_null ? nullptr : kept.data(), static_cast<int>(kept.size()), x.data(),
                         n_in, got.data());
    CHECK_MSG(SameUpToNaNSign(ref, got), "trial %d x_kind %d", trial, x_kind);
  }
}

// The output size and padding of s, SAME or VALID as TFLite sizes them (VALID
// only where the dilated filter fits), picked at random.
static void SizeOutput(Lcg& rng, kernels::ConvShape* s) {
  const int32_t eff_h = (s->filter_h - 1) * s->dilation_h + 1, eff_w = (s->filter_w - 1) * s->dilation_w + 1;
  if (rng.Coin() || eff_h > s->in_h || eff_w > s->in_w) {
    s->out_h = (s->in_h + s->stride_h - 1) / s->stride_h;
    s->out_w = (s->in_w + s->stride_w - 1) / s->stride_w;
    s->pad_top = std::max<int32_t>(0, ((s->out_h - 1) * s->stride_h + eff_h - s->in_h) / 2);
    s->pad_left = std::max<int32_t>(0, ((s->out_w - 1) * s->stride_w + eff_w - s->in_w) / 2);
  } else {
    s->out_h = (s->in_h - eff_h) / s->stride_h + 1;
    s->out_w = (s->in_w - eff_w) / s->stride_w + 1;
  }
}

// A gradient test's inputs over n_out outputs: errors (0.4 of them zero),
// starting gradients (+0 or random), a kept list (null a quarter of the time)
// and which gradients to compute: 0 both, 1 weights only, 2 input only.
struct GradCase {
  std::vector<float> delta, gw0, dx0;
  std::vector<int32_t> kept;
  bool all;
  int32_t num;
  int which;
  const int32_t* kept_or_null() const { return all ? nullptr : kept.data(); }
};
static GradCase RandomGradCase(Lcg& rng, int n_out, size_t n_w, size_t n_x) {
  GradCase c;
  c.delta = Random(rng, n_out, 0.4f);
  const bool start_zero = rng.Coin();
  c.gw0 = start_zero ? std::vector<float>(n_w, 0.0f) : Random(rng, n_w);
  c.dx0 = start_zero ? std::vector<float>(n_x, 0.0f) : Random(rng, n_x);
  c.kept = RandomKept(rng, n_out);
  c.all = rng.Int(0, 3) == 0;
  c.num = c.all ? n_out : static_cast<int32_t>(c.kept.size());
  c.which = rng.Int(0, 2);
  return c;
}

// Errors with zero_share zeros, and one in `out_of` a -0, one an infinity.
static std::vector<float> RandomErrors(Lcg& rng, int n, float zero_share, int out_of) {
  std::vector<float> delta = Random(rng, n, zero_share);
  for (auto& d : delta) {
    const int pick = rng.Int(0, out_of - 1);
    if (pick == 0) d = -0.0f;
    if (pick == 1) d = rng.Coin() ? INFINITY : -INFINITY;
  }
  return delta;
}

// Strides 1 or 2, dilation 2 a quarter of the time, then SizeOutput.
static void RandomStepsAndSize(Lcg& rng, kernels::ConvShape* s) {
  s->stride_h = rng.Int(1, 2);
  s->stride_w = rng.Int(1, 2);
  s->dilation_h = rng.Int(0, 3) == 0 ? 2 : 1;
  s->dilation_w = rng.Int(0, 3) == 0 ? 2 : 1;
  s->depth_multiplier = 1;
  SizeOutput(rng, s);
}

// Both CONV_2D gradient kernels from the same starting gradients (a null gw or
// dx side left out): true when their weight and input gradients have the same bits.
static bool SameConvGrads(const std::vector<float>& x, const std::vector<float>& w, const kernels::ConvShape& s,
                          const std::vector<float>& delta, const int32_t* kept, int32_t num,
                          const std::vector<float>& gw0, const std::vector<float>& dx0, bool with_gw, bool with_dx) {
  std::vector<float> gw_ref = gw0, gw_got = gw0, dx_ref = dx0, dx_got = dx0;
  kernels::Conv2DWeightAndInputGrad(x.data(), w.data(), s, delta.data(), kept, num,
                                    with_gw ? gw_ref.data() : nullptr, with_dx ? dx_ref.data() : nullptr);
  fast::Conv2DWeightAndInputGrad(x.data(), w.data(), s, delta.data(), kept, num, with_gw ? gw_got.data() : nullptr,
                                 with_dx ? dx_got.data() : nullptr);
  return Same(gw_ref, gw_got) && Same(dx_ref, dx_got);
}

// A random CONV_2D geometry (SAME or VALID as TFLite sizes them), wide enough to
// reach the blocked paths: channels up to 10, filters up to 4, strides and
// dilations up to 2.
static kernels::ConvShape RandomConvShape(Lcg& rng) {
  kernels::ConvShape s{};
  s.in_h = rng.Int(1, 9);
  s.in_w = rng.Int(1, 9);
  s.in_c = rng.Int(0, 2) == 0 ? 1 : rng.Int(1, 10);
  s.out_c = rng.Int(1, 10);
  s.filter_h = rng.Int(1, 4);
  s.filter_w = rng.Int(1, 4);
  s.stride_h = rng.Int(1, 2);
  s.stride_w = rng.Int(1, 2);
  s.dilation_h = rng.Int(1, 2);
  s.dilation_w = rng.Int(1, 2);
  s.depth_multiplier = 1;
  SizeOutput(rng, &s);
  return s;
}

TEST(Conv2DForwardBitIdentical) {
  Lcg rng(15);
  for (int trial = 0; trial < 1500; ++trial) {
    const kernels::ConvShape s = RandomConvShape(rng);
    const auto x = Random(rng, s.in_h * s.in_w * s.in_c);
    const auto w = Random(rng, s.out_c * s.filter_h * s.filter_w * s.in_c);
    const auto b = Random(rng, s.out_c);
    const float* bias = rng.Coin() ? b.data() : nullptr;
    const FusedAct act = RandomAct(rng);
    const size_t n_out = static_cast<size_t>(s.out_h * s.out_w * s.out_c);
    std::vector<float> ref(n_out), got(n_out), again(n_out);
    kernels::Conv2D(x.data(), s, w.data(), bias, act, ref.data());
    fast::Conv2D(x.data(), s, w.data(), bias, act, got.data());
    fast::Conv2D(x.data(), s, w.data(), bias, act, again.data());
    CHECK_MSG(Same(ref, got), "trial %d in %dx%dx%d out %dx%dx%d f %dx%d s %d,%d d %d,%d", trial, s.in_h, s.in_w,
              s.in_c, s.out_h, s.out_w, s.out_c, s.filter_h, s.filter_w, s.stride_h, s.stride_w, s.dilation_h,
              s.dilation_w);
    CHECK(Same(got, again));
  }
}

// Both gradients over random kept lists (with zero errors among them, which the
// fast kernel skips), from nonzero starting accumulators, with either output off.
TEST(Conv2DGradientsBitIdentical) {
  Lcg rng(16);
  for (int trial = 0; trial < 1500; ++trial) {
    const kernels::ConvShape s = RandomConvShape(rng);
    const int n_out = s.out_h * s.out_w * s.out_c;
    const auto x = Random(rng, s.in_h * s.in_w * s.in_c, 0.2f);
    const auto w = Random(rng, s.out_c * s.filter_h * s.filter_w * s.in_c);
    const GradCase c = RandomGradCase(rng, n_out, w.size(), x.size());
    CHECK_MSG(SameConvGrads(x, w, s, c.delta, c.kept_or_null(), c.num, c.gw0, c.dx0, c.which != 2, c.which != 1),
              "trial %d which %d in %dx%dx%d out %dx%dx%d f %dx%d", trial, c.which, s.in_h, s.in_w, s.in_c, s.out_h,
              s.out_w, s.out_c, s.filter_h, s.filter_w);
  }
}

// A first layer's shape for the weight gradient alone: one input channel (3x3
// filters half the time), or the other tap layouts with their own loops (3x1
// filters over 3 channels, 16 contiguous taps), or 2x2x4 (16 taps in two rows);
// strides and dilations up to 2, SAME or VALID, images up to 12x12.
static kernels::ConvShape RandomFirstLayerShape(Lcg& rng) {
  kernels::ConvShape s{};
  s.in_h = rng.Int(1, 12);
  s.in_w = rng.Int(1, 12);
  s.out_c = rng.Int(1, 16);
  switch (rng.Int(0, 5)) {
    case 0:
    case 1:
      s.in_c = 1;
      s.filter_h = rng.Coin() ? 3 : rng.Int(1, 5);
      s.filter_w = rng.Coin() ? 3 : rng.Int(1, 5);
      break;
    case 2:
      s.in_c = 3; s.filter_h = 3; s.filter_w = 1;
      break;
    case 3:
      s.in_c = 16; s.filter_h = 1; s.filter_w = 1;
      break;
    case 4:
      s.in_c = rng.Coin() ? 8 : 4; s.filter_h = 1; s.filter_w = 16 / s.in_c;
      break;
    default:
      s.in_c = 4; s.filter_h = 2; s.filter_w = 2;
      break;
  }
  RandomStepsAndSize(rng, &s);
  return s;
}

// Kept elements chosen pixel by pixel: all of a pixel's channels, none, or a
// random subset, so that runs of whole pixels alternate with partial ones.
static std::vector<int32_t> RandomKeptPixels(Lcg& rng, int pixels, int channels) {
  std::vector<int32_t> kept;
  const int whole_share = rng.Int(0, 4);  // of 4
  for (int px = 0; px < pixels; ++px) {
    const int mode = rng.Int(0, 3) < whole_share ? 1 : rng.Int(0, 2) == 0 ? 0 : 2;
    for (int c = 0; c < channels; ++c) {
      if (mode == 1 || (mode == 2 && rng.Coin())) kept.push_back(px * channels + c);
    }
  }
  return kept;
}

// The weight gradient alone (the first layer, dx null) or both gradients on
// those shapes: zero and -0 errors among the kept ones (skipped), now and then
// an infinite error, from +0 or random starting gradients, with null kept lists
// (also cut short).
TEST(Conv2DGradientsFirstLayerBitIdentical) {
  Lcg rng(19);
  for (int trial = 0; trial < 2500; ++trial) {
    const kernels::ConvShape s = RandomFirstLayerShape(rng);
    const int pixels = s.out_h * s.out_w, n_out = pixels * s.out_c;
    const auto x = Random(rng, s.in_h * s.in_w * s.in_c, 0.2f);
    const auto w = Random(rng, s.out_c * s.filter_h * s.filter_w * s.in_c);
    const auto delta = RandomErrors(rng, n_out, rng.Uniform(0.0f, 0.6f), 200);
    const auto gw0 = rng.Coin() ? std::vector<float>(w.size(), 0.0f) : Random(rng, w.size());
    const std::vector<int32_t> kept = RandomKeptPixels(rng, pixels, s.out_c);
    const bool all = rng.Int(0, 2) == 0;
    const int32_t* kp = all ? nullptr : kept.data();
    const int32_t num = all ? (rng.Coin() ? n_out : rng.Int(0, n_out)) : static_cast<int32_t>(kept.size());
    const bool with_dx = rng.Coin();
    const auto dx0 = rng.Coin() ? std::vector<float>(x.size(), 0.0f) : Random(rng, x.size());
    CHECK_MSG(SameConvGrads(x, w, s, delta, kp, num, gw0, dx0, true, with_dx),
              "trial %d dx %d in %dx%dx%d out %dx%dx%d f %dx%d s %d,%d d %d,%d pad %d,%d kept %d", trial, with_dx,
              s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c, s.filter_h, s.filter_w, s.stride_h, s.stride_w,
              s.dilation_h, s.dilation_w, s.pad_top, s.pad_left, all ? -1 : num);
  }
}

// A shape whose rows of taps are spans of a multiple of 8 floats (in_c 8 or 16,
// or 4 with filters two or four columns wide; the both-gradient list loop), any
// stride, dilation and padding, images up to 10x10.
static kernels::ConvShape RandomListShape(Lcg& rng) {
  kernels::ConvShape s{};
  s.in_h = rng.Int(1, 10);
  s.in_w = rng.Int(1, 10);
  s.out_c = rng.Int(1, 20);
  switch (rng.Int(0, 2)) {
    case 0: s.in_c = 8; s.filter_w = rng.Int(1, 3); break;
    case 1: s.in_c = 16; s.filter_w = rng.Int(1, 2); break;
    default: s.in_c = 4; s.filter_w = rng.Coin() ? 2 : 4; break;
  }
  s.filter_h = rng.Int(1, 3);
  RandomStepsAndSize(rng, &s);
  return s;
}

// Kept elements scattered over pixels and channels as TinyProp's top-k leaves
// them: each element kept with the same chance, from ~3% to all.
static std::vector<int32_t> RandomKeptScattered(Lcg& rng, int n) {
  static const int kPercent[] = {3, 10, 30, 30, 60, 95, 100};
  const int percent = kPercent[rng.Int(0, 6)];
  return KeepEach(rng, n, percent, 100);
}

// The gradients over sparse kept lists (never null; also cut short, which moves
// the last kept pixel), on first-layer shapes (weight gradient alone, or both)
// and on the list loop's shapes (both, or one): zero, -0 and infinite errors
// among the kept ones, inputs with zeros, from +0 or random accumulators.
TEST(Conv2DGradientsSparseKeptBitIdentical) {
  Lcg rng(23);
  for (int trial = 0; trial < 3000; ++trial) {
    const bool first_layer = rng.Coin();
    const kernels::ConvShape s = first_layer ? RandomFirstLayerShape(rng) : RandomListShape(rng);
    const int n_out = s.out_h * s.out_w * s.out_c;
    const auto x = Random(rng, s.in_h * s.in_w * s.in_c, 0.2f);
    const auto w = Random(rng, s.out_c * s.filter_h * s.filter_w * s.in_c);
    const auto delta = RandomErrors(rng, n_out, rng.Uniform(0.0f, 0.5f), 100);
    const std::vector<int32_t> kept = RandomKeptScattered(rng, n_out);
    const int32_t size = static_cast<int32_t>(kept.size());
    const int32_t num = rng.Int(0, 3) == 0 ? rng.Int(0, size) : size;
    const int which = first_layer ? rng.Int(0, 1) : rng.Int(0, 2);  // 0 weights only, 1 both, 2 input only
    const bool start_zero = rng.Coin();
    const auto gw0 = start_zero ? std::vector<float>(w.size(), 0.0f) : Random(rng, w.size());
    const auto dx0 = start_zero ? std::vector<float>(x.size(), 0.0f) : Random(rng, x.size());
    CHECK_MSG(SameConvGrads(x, w, s, delta, kept.data(), num, gw0, dx0, which != 2, which != 0),
              "trial %d which %d in %dx%dx%d out %dx%dx%d f %dx%d s %d,%d d %d,%d pad %d,%d kept %d of %d", trial,
              which, s.in_h, s.in_w, s.in_c, s.out_h, s.out_w, s.out_c, s.filter_h, s.filter_w, s.stride_h,
              s.stride_w, s.dilation_h, s.dilation_w, s.pad_top, s.pad_left, num, n_out);
  }
}

// A random DEPTHWISE_CONV_2D geometry: RandomConvShape's with out_c = in_c * m;
// with multiplier 1, a third of the time 8 to 20 channels (the blocks of eight,
// then of four, then single channels).
static kernels::ConvShape RandomDepthwiseShape(Lcg& rng) {
  kernels::ConvShape s = RandomConvShape(rng);
  s.depth_multiplier = rng.Int(0, 2) == 0 ? rng.Int(2, 3) : 1;
  if (s.depth_multiplier == 1 && rng.Int(0, 2) == 0) s.in_c = rng.Int(8, 20);
  s.out_c = s.in_c * s.depth_multiplier;
  return s;
}

TEST(DepthwiseConv2DBitIdentical) {
  Lcg rng(19);
  for (int trial = 0; trial < 1500; ++trial) {
    const kernels::ConvShape s = RandomDepthwiseShape(rng);
    const auto x = Random(rng, s.in_h * s.in_w * s.in_c, 0.2f);
    auto w = Random(rng, s.filter_h * s.filter_w * s.out_c);
    if (rng.Coin()) {
      for (auto& v : w) v *= 8.0f;  // sums past 6, for RELU6
    }
    const auto b = Random(rng, s.out_c);
    const float* bias = rng.Coin() ? b.data() : nullptr;
    const FusedAct act = RandomAct(rng);
    const int n_out = s.out_h * s.out_w * s.out_c;
    std::vector<float> ref(n_out), got(n_out);
    kernels::DepthwiseConv2D(x.data(), s, w.data(), bias, act, ref.data());
    fast::DepthwiseConv2D(x.data(), s, w.data(), bias, act, got.data());
    CHECK_MSG(Same(ref, got), "forward trial %d in %dx%dx%d m %d f %dx%d s %d,%d d %d,%d", trial, s.in_h, s.in_w,
              s.in_c, s.depth_multiplier, s.filter_h, s.filter_w, s.stride_h, s.stride_w, s.dilation_h,
              s.dilation_w);
    // Both gradients over a random kept list, zero errors among them (a quarter of
    // the time nine in ten, so that whole blocks of eight are zero).
    GradCase c = RandomGradCase(rng, n_out, w.size(), x.size());
    if (rng.Int(0, 3) == 0) {
      for (auto& d : c.delta) {
        if (rng.Int(0, 9) != 0) d = 0.0f;
      }
    }
    std::vector<float> gw_ref = c.gw0, gw_got = c.gw0, dx_ref = c.dx0, dx_got = c.dx0;
    kernels::DepthwiseConv2DWeightAndInputGrad(x.data(), w.data(), s, c.delta.data(), c.kept_or_null(), c.num,
                                               c.which == 2 ? nullptr : gw_ref.data(),
                                               c.which == 1 ? nullptr : dx_ref.data());
    fast::DepthwiseConv2DWeightAndInputGrad(x.data(), w.data(), s, c.delta.data(), c.kept_or_null(), c.num,
                                            c.which == 2 ? nullptr : gw_got.data(),
                                            c.which == 1 ? nullptr : dx_got.data());
    CHECK_MSG(Same(gw_ref, gw_got) && Same(dx_ref, dx_got), "gradient trial %d which %d", trial, c.which);
  }
}

// The depthwise forward with special values in x, w and the bias (NaN, infinities,
// signed zeros, 6 and its neighbours, huge values) under every activation: RELU
// and RELU6 take NaN and -0 to +0 as the reference does.
TEST(DepthwiseConv2DForwardSpecialsBitIdentical) {
  Lcg rng(31);
  const float inf = std::numeric_limits<float>::infinity();
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), inf, -inf, 0.0f, -0.0f, 6.0f,
                            nextafterf(6.0f, inf), nextafterf(6.0f, 0.0f), 1e30f, -1e30f};
  for (int trial = 0; trial < 400; ++trial) {
    const kernels::ConvShape s = RandomDepthwiseShape(rng);
    const float special_share = rng.Int(1, 3) * 0.1f;
    auto pick = [&](size_t n) {
      std::vector<float> v = Random(rng, n);
      for (auto& e : v) {
        if (rng.Uniform(0.0f, 1.0f) < special_share) e = specials[rng.Int(0, 9)];
      }
      return v;
    };
    const auto x = pick(static_cast<size_t>(s.in_h * s.in_w * s.in_c));
    const auto w = pick(static_cast<size_t>(s.filter_h * s.filter_w * s.out_c));
    const auto b = pick(static_cast<size_t>(s.out_c));
    const float* bias = rng.Coin() ? b.data() : nullptr;
    const FusedAct act = RandomAct(rng);
    const int n_out = s.out_h * s.out_w * s.out_c;
    std::vector<float> ref(n_out), got(n_out, 7.0f);
    kernels::DepthwiseConv2D(x.data(), s, w.data(), bias, act, ref.data());
    fast::DepthwiseConv2D(x.data(), s, w.data(), bias, act, got.data());
    CHECK_MSG(Same(ref, got), "trial %d in %dx%dx%d m %d act %d bias %d", trial, s.in_h, s.in_w, s.in_c,
              s.depth_multiplier, static_cast<int>(act), bias != nullptr);
  }
}

// Average pooling (in_c == out_c; strides, dilations, SAME windows cut by the
// border), errors with zeros, from zero or nonzero accumulators.
TEST(AveragePoolBitIdentical) {
  Lcg rng(20);
  for (int trial = 0; trial < 1500; ++trial) {
    kernels::ConvShape s = RandomConvShape(rng);
    s.out_c = s.in_c;
    const auto x = Random(rng, s.in_h * s.in_w * s.in_c, 0.2f);
    const FusedAct act = RandomAct(rng);
    const int n_out = s.out_h * s.out_w * s.out_c;
    std::vector<float> ref(n_out), got(n_out);
    kernels::AveragePool2D(x.data(), s, act, ref.data());
    fast::AveragePool2D(x.data(), s, act, got.data());
    CHECK_MSG(Same(ref, got), "forward trial %d in %dx%dx%d f %dx%d s %d,%d d %d,%d", trial, s.in_h, s.in_w,
              s.in_c, s.filter_h, s.filter_w, s.stride_h, s.stride_w, s.dilation_h, s.dilation_w);
    const auto dy = Random(rng, n_out, 0.4f);
    const auto dx0 = rng.Coin() ? std::vector<float>(x.size(), 0.0f) : Random(rng, x.size());
    std::vector<float> dx_ref = dx0, dx_got = dx0;
    kernels::AveragePool2DInputGrad(s, dy.data(), dx_ref.data());
    fast::AveragePool2DInputGrad(s, dy.data(), dx_got.data());
    CHECK_MSG(Same(dx_ref, dx_got), "gradient trial %d", trial);
  }
}

// Pooling windows (dilation 1, in_c == out_c) with ties and signed zeros, so the
// first-maximum rule matters; errors with zeros, which the fast gradient skips.
TEST(MaxPoolBitIdentical) {
  Lcg rng(18);
  for (int trial = 0; trial < 1500; ++trial) {
    kernels::ConvShape s = RandomConvShape(rng);
    s.dilation_h = s.dilation_w = 1;
    s.out_c = s.in_c = rng.Int(1, 10);
    const int32_t eff_h = s.filter_h, eff_w = s.filter_w;
    if (rng.Coin() || eff_h > s.in_h || eff_w > s.in_w) {
      s.out_h = (s.in_h + s.stride_h - 1) / s.stride_h;
      s.out_w = (s.in_w + s.stride_w - 1) / s.stride_w;
      s.pad_top = std::max<int32_t>(0, ((s.out_h - 1) * s.stride_h + eff_h - s.in_h) / 2);
      s.pad_left = std::max<int32_t>(0, ((s.out_w - 1) * s.stride_w + eff_w - s.in_w) / 2);
    } else {
      s.pad_top = s.pad_left = 0;
      s.out_h = (s.in_h - eff_h) / s.stride_h + 1;
      s.out_w = (s.in_w - eff_w) / s.stride_w + 1;
    }
    std::vector<float> x(s.in_h * s.in_w * s.in_c);
    for (auto& v : x) {
      const int kind = rng.Int(0, 3);
      v = kind == 0 ? 0.0f : kind == 1 ? -0.0f : 0.25f * static_cast<float>(rng.Int(-4, 4));
    }
    const size_t n_out = static_cast<size_t>(s.out_h * s.out_w * s.out_c);
    const FusedAct act = RandomAct(rng);
    std::vector<float> ref(n_out), got(n_out);
    kernels::MaxPool2D(x.data(), s, act, ref.data());
    fast::MaxPool2D(x.data(), s, act, got.data());
    CHECK_MSG(Same(ref, got), "forward trial %d", trial);
    const auto dy = Random(rng, n_out, 0.4f);
    std::vector<float> dx_ref(x.size(), 0.0f), dx_got(x.size(), 0.0f);
    kernels::MaxPool2DInputGrad(x.data(), s, dy.data(), dx_ref.data());
    fast::MaxPool2DInputGrad(x.data(), s, dy.data(), dx_got.data());
    CHECK_MSG(Same(dx_ref, dx_got), "gradient trial %d", trial);
  }
}

// Both top-k kernels on v: true when their first k rows (the kept list) match.
static bool SameTopK(const std::vector<float>& v, int k, uint64_t* fast_comparisons = nullptr) {
  const int n = static_cast<int>(v.size());
  std::vector<int32_t> index(n), ref(n, -1), got(n, -1);
  std::vector<uint8_t> mask(n);
  kernels::SelectTopKRows(v.data(), n, k, index.data(), mask.data(), ref.data());
  const uint64_t ops = fast::SelectTopKRows(v.data(), n, k, index.data(), mask.data(), got.data());
  if (fast_comparisons != nullptr) *fast_comparisons = ops;
  return std::equal(ref.begin(), ref.begin() + k, got.begin());
}

TEST(TopKSameRowsAsReference) {
  Lcg rng(17);
  for (int trial = 0; trial < 3000; ++trial) {
    const int n = rng.Int(1, 300);
    const int k = rng.Int(1, n);
    std::vector<float> v(n);
    const int mode = rng.Int(0, 4);
    for (auto& x : v) {
      switch (mode) {
        case 0: x = rng.Uniform(-1.0f, 1.0f); break;
        case 1: x = 0.5f * static_cast<float>(rng.Int(-3, 3)); break;                  // heavy ties
        case 2: x = rng.Int(0, 2) == 0 ? rng.Uniform(-1.0f, 1.0f) : (rng.Coin() ? 0.0f : -0.0f); break;
        case 3: x = rng.Coin() ? 1.0f : -1.0f; break;                                  // one magnitude
        default: {
          const float pool[] = {FLT_MAX, FLT_MIN, 1e-40f, 0.0f, 1.0f, 1e-45f};
          x = (rng.Coin() ? 1.0f : -1.0f) * pool[rng.Int(0, 5)];
        }
      }
    }
    std::vector<int32_t> index(n), ref(n, -1), got(n, -1);
    std::vector<uint8_t> mask(n);
    kernels::SelectTopKRows(v.data(), n, k, index.data(), mask.data(), ref.data());
    fast::SelectTopKRows(v.data(), n, k, index.data(), mask.data(), got.data());
    CHECK_MSG(ref == got, "trial %d n %d k %d mode %d", trial, n, k, mode);
  }
}

// Sizes from 512 up take the sampled bracket; the modes cover its misses (the
// k-th key above or below the bracket), T = 0 with zero ties, channel-strided
// magnitudes (NHWC), one magnitude throughout and k from 1 to n - 1.
TEST(TopKSameRowsAsReferenceLarge) {
  Lcg rng(23);
  for (int trial = 0; trial < 600; ++trial) {
    const int n = rng.Int(500, 6000);
    const int pick = rng.Int(0, 5);
    const int k = pick == 0 ? rng.Int(1, 8) : pick == 1 ? rng.Int(n - 8, n - 1) : rng.Int(1, n - 1);
    std::vector<float> v(n);
    const int mode = rng.Int(0, 6);
    const int channels = 1 << rng.Int(0, 5);
    for (int i = 0; i < n; ++i) {
      float& x = v[i];
      switch (mode) {
        case 0: x = rng.Uniform(-1.0f, 1.0f); break;
        case 1: x = rng.Coin() ? 0.0f : rng.Uniform(-1.0f, 1.0f); break;               // ReLU zeros
        case 2: x = 0.25f * static_cast<float>(rng.Int(-4, 4)); break;                 // heavy ties
        case 3: x = (i % channels == 0 ? 100.0f : 1.0f) * rng.Uniform(-1.0f, 1.0f); break;  // one loud channel
        case 4: x = i < n / 2 ? rng.Uniform(-1.0f, 1.0f) : rng.Uniform(-1e-3f, 1e-3f); break;  // sorted halves
        case 5: x = rng.Int(0, 20) == 0 ? rng.Uniform(-1.0f, 1.0f) : 0.0f; break;      // mostly zeros
        default: x = rng.Coin() ? 0.5f : -0.5f;                                         // one magnitude
      }
    }
    CHECK_MSG(SameTopK(v, k), "trial %d n %d k %d mode %d", trial, n, k, mode);
  }
}

// The sampled bracket spans about two standard deviations of T's rank, so it
// misses T about once in 25 calls on distinct magnitudes and the next bracket,
// on T's side, takes over. 1,000 calls with k anywhere from 2% to 70% of n
// miss on both sides many times (the count is seeded, so the same every run).
TEST(TopKBracketMissesSameRowsAsReference) {
  Lcg rng(31);
  for (int trial = 0; trial < 1000; ++trial) {
    const int n = rng.Int(512, 3000);
    const int k = rng.Int(n / 50, n * 7 / 10);
    std::vector<float> v(n);
    const bool relu = rng.Coin();
    for (auto& x : v) x = relu && rng.Coin() ? 0.0f : rng.Uniform(-1.0f, 1.0f);
    CHECK_MSG(SameTopK(v, k), "trial %d n %d k %d", trial, n, k);
  }
}

// Two magnitudes (a quarter 1.0, the rest 0.5) except `zeros` rows of +0: the
// bracket reaches down to 0.5, so the list has every nonzero row, n - zeros
// entries, many tied at T. With no zero it has no room for the compaction's
// sentinel, with one zero room for the sentinel but not for the pair loop's
// read past it (the C loops run on every platform), with two the assembly
// runs; each then trims the ties past the k-th (larger rows after them move).
TEST(TopKEveryRowListedSameRowsAsReference) {
  Lcg rng(37);
  for (int trial = 0; trial < 60; ++trial) {
    const int n = rng.Int(512, 700);
    const int zeros = trial % 3;
    const int k = rng.Int(1, n - 1);
    std::vector<float> v(n);
    for (auto& x : v) x = (rng.Coin() ? 1.0f : -1.0f) * (rng.Int(0, 3) == 0 ? 1.0f : 0.5f);
    for (int z = 0; z < zeros; ++z) v[z * (n / 2) + rng.Int(0, n / 2 - 1)] = 0.0f;  // distinct rows
    CHECK_MSG(SameTopK(v, k), "trial %d n %d k %d zeros %d", trial, n, k, zeros);
  }
}

// Mixed stress: sizes on both sides of the sampled path (1 to 4000), k = 1,
// k = n - 1 and k = n, magnitudes drawn from a small pool so that equal
// magnitudes of both signs tie, denormals, +0 and -0 runs, and shares of zeros
// from none to almost all. The whole kept list (k entries) must match.
TEST(TopKStressSameRowsAsReference) {
  Lcg rng(29);
  const float pool[] = {0.0f, 1e-45f, 3e-45f, 1e-40f, FLT_MIN, 0.125f, 0.5f, 0.75f, 1.0f, 3.0f, FLT_MAX};
  for (int trial = 0; trial < 1500; ++trial) {
    const int size_kind = rng.Int(0, 3);
    const int n = size_kind == 0 ? rng.Int(1, 8) : size_kind == 1 ? rng.Int(9, 511) : rng.Int(512, 4000);
    const int k_kind = rng.Int(0, 4);
    const int k = k_kind == 0 ? 1 : k_kind == 1 ? n : k_kind == 2 ? (n > 1 ? n - 1 : 1) : rng.Int(1, n);
    const float zero_share = 0.1f * static_cast<float>(rng.Int(0, 9));
    const int pool_size = rng.Int(1, 11);
    const bool from_pool = rng.Coin();
    std::vector<float> v(n);
    for (auto& x : v) {
      const float sign = rng.Coin() ? 1.0f : -1.0f;
      if (rng.Uniform(0.0f, 1.0f) < zero_share) {
        x = sign * 0.0f;
      } else if (from_pool) {
        x = sign * pool[rng.Int(0, pool_size - 1)];
      } else {
        x = sign * rng.Uniform(0.0f, 1.0f) * (rng.Int(0, 9) == 0 ? 1e-39f : 1.0f);  // some denormals
      }
    }
    uint64_t ops = 0;
    CHECK_MSG(SameTopK(v, k, &ops), "trial %d n %d k %d", trial, n, k);
    CHECK_MSG((ops == 0) == (k == n), "trial %d n %d k %d: %llu comparisons", trial, n, k,
              static_cast<unsigned long long>(ops));
  }
}

int main() { return test::RunAll(); }
