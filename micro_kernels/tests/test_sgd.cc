// SGD as Keras applies it (sgd.h): plain, momentum, weight decay first, the
// rank-one row update equal to the dense one; and the learning-rate schedules
// against float64 Keras formulas.
#include <math.h>
#include <stdint.h>

#include <algorithm>

#include "sgd.h"
#include "test_harness.h"

using test::Lcg;

TEST(SgdPlain) {
  float w[] = {1.0f, -2.0f, 0.5f};
  const float g[] = {0.5f, 1.0f, -2.0f};
  tflm_train::SgdUpdate({0.1f, 0.0f, 0.0f}, g, 1.0f, 3, w, nullptr);
  CHECK_NEAR(w[0], 0.95, 1e-6);
  CHECK_NEAR(w[1], -2.1, 1e-6);
  CHECK_NEAR(w[2], 0.7, 1e-6);
  // g_scale multiplies the gradient (batch mean).
  float w2[] = {1.0f, -2.0f, 0.5f};
  tflm_train::SgdUpdate({0.1f, 0.0f, 0.0f}, g, 0.25f, 3, w2, nullptr);
  CHECK_NEAR(w2[0], 1.0 - 0.1 * 0.125, 1e-6);
  CHECK_NEAR(w2[1], -2.0 - 0.1 * 0.25, 1e-6);
  CHECK_NEAR(w2[2], 0.5 + 0.1 * 0.5, 1e-6);
  // A null gradient is zero: nothing moves without decay.
  float w3[] = {1.0f, -2.0f};
  tflm_train::SgdUpdate({0.1f, 0.0f, 0.0f}, nullptr, 1.0f, 2, w3, nullptr);
  CHECK(w3[0] == 1.0f && w3[1] == -2.0f);
}

TEST(SgdMomentum) {
  // Keras: v <- m*v - lr*g; w <- w + v, two steps.
  const double lr = 0.1, m = 0.9;
  float w[] = {1.0f, -1.0f};
  float v[] = {0.0f, 0.0f};
  const float g1[] = {0.5f, -2.0f}, g2[] = {1.0f, 1.0f};
  tflm_train::SgdUpdate({0.1f, 0.9f, 0.0f}, g1, 1.0f, 2, w, v);
  double v0 = -lr * 0.5, v1 = -lr * -2.0;
  double w0 = 1.0 + v0, w1 = -1.0 + v1;
  CHECK_NEAR(v[0], v0, 1e-6);
  CHECK_NEAR(v[1], v1, 1e-6);
  CHECK_NEAR(w[0], w0, 1e-6);
  CHECK_NEAR(w[1], w1, 1e-6);
  tflm_train::SgdUpdate({0.1f, 0.9f, 0.0f}, g2, 1.0f, 2, w, v);
  v0 = m * v0 - lr * 1.0;
  v1 = m * v1 - lr * 1.0;
  w0 += v0;
  w1 += v1;
  CHECK_NEAR(v[0], v0, 1e-6);
  CHECK_NEAR(v[1], v1, 1e-6);
  CHECK_NEAR(w[0], w0, 1e-6);   // 1 - 0.05 - 0.145 = 0.805
  CHECK_NEAR(w[1], w1, 1e-6);   // -1 + 0.2 + 0.08 = -0.72
  CHECK_NEAR(w[0], 0.805, 1e-6);
  CHECK_NEAR(w[1], -0.72, 1e-6);
  // A zero gradient still coasts on the velocity.
  tflm_train::SgdUpdate({0.1f, 0.9f, 0.0f}, nullptr, 1.0f, 2, w, v);
  CHECK_NEAR(w[0], w0 + m * v0, 1e-6);
}

TEST(SgdWeightDecay) {
  // Keras: w <- w - w*wd*lr first, then the gradient step with the same g.
  const double lr = 0.1, wd = 0.01;
  float w[] = {2.0f, -4.0f};
  const float g[] = {1.0f, 0.5f};
  tflm_train::SgdUpdate({0.1f, 0.0f, 0.01f}, g, 1.0f, 2, w, nullptr);
  CHECK_NEAR(w[0], (2.0 - 2.0 * wd * lr) - lr * 1.0, 1e-6);   // 1.898
  CHECK_NEAR(w[1], (-4.0 + 4.0 * wd * lr) - lr * 0.5, 1e-6);  // -4.046
  // With momentum: decay, then v <- m*v - lr*g; w <- w + v.
  float w2[] = {2.0f};
  float v2[] = {0.5f};
  tflm_train::SgdUpdate({0.1f, 0.9f, 0.01f}, g, 1.0f, 1, w2, v2);
  const double vv = 0.9 * 0.5 - lr * 1.0;
  CHECK_NEAR(v2[0], vv, 1e-6);
  CHECK_NEAR(w2[0], (2.0 - 2.0 * wd * lr) + vv, 1e-6);
  // Decay alone (null gradient) shrinks the weights.
  float w3[] = {3.0f};
  tflm_train::SgdUpdate({0.5f, 0.0f, 0.1f}, nullptr, 1.0f, 1, w3, nullptr);
  CHECK_NEAR(w3[0], 3.0 - 3.0 * 0.1 * 0.5, 1e-6);
}

TEST(SgdRankOne) {
  // SgdUpdateRankOne(delta, x) == SgdUpdate(g = delta * x), for all three modes.
  Lcg rng(99);
  const tflm_train::SgdStep steps[] = {{0.1f, 0.0f, 0.0f}, {0.05f, 0.9f, 0.0f}, {0.2f, 0.5f, 0.01f},
                                       {0.3f, 0.0f, 0.02f}};
  for (const auto& s : steps) {
    const int n = 7;
    float x[n], g[n], wa[n], wb[n], va[n], vb[n];
    const float delta = rng.Uniform(-2.0f, 2.0f);
    for (int i = 0; i < n; ++i) {
      x[i] = rng.Uniform(-1.0f, 1.0f);
      g[i] = delta * x[i];
      wa[i] = wb[i] = rng.Uniform(-1.0f, 1.0f);
      va[i] = vb[i] = rng.Uniform(-0.1f, 0.1f);
    }
    float* vel_a = s.momentum != 0.0f ? va : nullptr;
    float* vel_b = s.momentum != 0.0f ? vb : nullptr;
    for (int step = 0; step < 3; ++step) {
      tflm_train::SgdUpdateRankOne(s, delta, x, n, wa, vel_a);
      tflm_train::SgdUpdate(s, g, 1.0f, n, wb, vel_b);
    }
    for (int i = 0; i < n; ++i) {
      CHECK(wa[i] == wb[i]);
      CHECK(va[i] == vb[i]);
    }
  }
  // Hand-computed: delta 2, x = (1, -0.5), lr 0.1: w - 0.1 * 2 * x.
  float w[] = {1.0f, 1.0f};
  const float x[] = {1.0f, -0.5f};
  tflm_train::SgdUpdateRankOne({0.1f, 0.0f, 0.0f}, 2.0f, x, 2, w, nullptr);
  CHECK_NEAR(w[0], 0.8, 1e-6);
  CHECK_NEAR(w[1], 1.1, 1e-6);
}

static double ReferenceRate(bool cosine, double peak, uint64_t step, uint32_t decay, uint32_t warmup,
                            double alpha, double initial) {
  if (!cosine) return peak;
  const double t = static_cast<double>(step);
  if (warmup > 0 && t < warmup) return (peak - initial) * (t / warmup) + initial;
  const double s = std::min(t - warmup, static_cast<double>(decay));
  const double c = 0.5 * (1.0 + cos(M_PI * s / decay));
  return peak * ((1.0 - alpha) * c + alpha);
}

static void CheckRate(uint8_t schedule, float peak, uint64_t step, uint32_t decay, uint32_t warmup,
                      float alpha, float initial) {
  const float got =
      tflm_train::ScheduledLearningRate(schedule, peak, step, decay, warmup, alpha, initial);
  const double want = ReferenceRate(schedule != 0, peak, step, decay, warmup, alpha, initial);
  // 1e-6 relative, plus 1e-7 of the peak: near the end of a decay to alpha = 0,
  // float32's 1 + cos(pi * t) cancels (Keras computes it in float32 too).
  const double tol = 1e-6 * fabs(want) + 1e-7 * fabs(peak);
  CHECK_MSG(fabs(got - want) <= tol,
            "schedule %d peak %g step %llu decay %u warmup %u alpha %g initial %g: got %.9g, want %.9g",
            schedule, peak, static_cast<unsigned long long>(step), decay, warmup, alpha, initial, got,
            want);
}

TEST(SgdSchedules) {
  // Constant.
  for (uint64_t step : {0ull, 1ull, 1000ull, 1ull << 40}) {
    CHECK(tflm_train::ScheduledLearningRate(0, 0.05f, step, 100, 10, 0.5f, 0.01f) == 0.05f);
  }
  // Cosine without warm-up: 0, mid, end, past end.
  for (float alpha : {0.0f, 0.1f, 0.5f, 1.0f}) {
    for (uint64_t step : {0ull, 1ull, 25ull, 50ull, 99ull, 100ull, 101ull, 5000ull, 10000000000ull}) {
      CheckRate(1, 0.1f, step, 100, 0, alpha, 0.0f);
    }
  }
  CHECK(tflm_train::ScheduledLearningRate(1, 0.1f, 0, 100, 0, 0.0f, 0.0f) == 0.1f);
  CHECK_NEAR(tflm_train::ScheduledLearningRate(1, 0.1f, 50, 100, 0, 0.0f, 0.0f), 0.05, 1e-8);
  CHECK_NEAR(tflm_train::ScheduledLearningRate(1, 0.1f, 100, 100, 0, 0.0f, 0.0f), 0.0, 1e-9);
  CHECK_NEAR(tflm_train::ScheduledLearningRate(1, 0.1f, 100, 100, 0, 0.1f, 0.0f), 0.01, 1e-8);
  CHECK(tflm_train::ScheduledLearningRate(1, 0.1f, 100, 100, 0, 0.1f, 0.0f) ==
        tflm_train::ScheduledLearningRate(1, 0.1f, 12345, 100, 0, 0.1f, 0.0f));
  // Cosine with linear warm-up: 0, inside, at the end of warm-up, mid, end, past end.
  for (float initial : {0.0f, 0.01f, 0.2f}) {
    for (float alpha : {0.0f, 0.1f}) {
      for (uint64_t step : {0ull, 1ull, 5ull, 9ull, 10ull, 11ull, 60ull, 109ull, 110ull, 111ull,
                            100000ull}) {
        CheckRate(1, 0.1f, step, 100, 10, alpha, initial);
      }
    }
  }
  CHECK(tflm_train::ScheduledLearningRate(1, 0.1f, 0, 100, 10, 0.1f, 0.01f) == 0.01f);
  CHECK(tflm_train::ScheduledLearningRate(1, 0.1f, 10, 100, 10, 0.1f, 0.01f) == 0.1f);
  CHECK_NEAR(tflm_train::ScheduledLearningRate(1, 0.1f, 5, 100, 10, 0.0f, 0.0f), 0.05, 1e-8);
  CHECK_NEAR(tflm_train::ScheduledLearningRate(1, 0.1f, 60, 100, 10, 0.0f, 0.0f), 0.05, 1e-8);
  CHECK_NEAR(tflm_train::ScheduledLearningRate(1, 0.1f, 1000, 100, 10, 0.1f, 0.0f), 0.01, 1e-8);
  // Odd sizes.
  CheckRate(1, 0.003f, 333, 1000, 7, 0.25f, 0.0005f);
  CheckRate(1, 1.0f, 1, 1, 0, 0.0f, 0.0f);
  CheckRate(1, 1.0f, 2, 3, 1, 0.3f, 0.5f);
}

int main() { return test::RunAll(); }
