// The losses (kernels/loss.h): values and gradients against float64 finite
// differences, the correct flags, and the stable forms at extreme logits.
#include <math.h>

#include <algorithm>
#include <vector>

#include "kernels/logistic.h"
#include "kernels/loss.h"
#include "kernels/softmax.h"
#include "test_harness.h"

namespace kernels = tflm_train::kernels;
using test::Lcg;

static void SoftmaxD(const double* z, int n, double* p) {
  double m = z[0];
  for (int i = 1; i < n; ++i) m = std::max(m, z[i]);
  double s = 0.0;
  for (int i = 0; i < n; ++i) s += exp(z[i] - m);
  for (int i = 0; i < n; ++i) p[i] = exp(z[i] - m) / s;
}

// The loss in float64 as a function of what the gradient is taken w.r.t.:
// logits for the cross-entropies, outputs for MSE.
static double ReferenceLoss(kernels::LossKind kind, const double* v, int n, const float* target) {
  switch (kind) {
    case kernels::LossKind::kSparseCategoricalCrossentropy: {
      std::vector<double> p(n);
      SoftmaxD(v, n, p.data());
      return -log(p[static_cast<int>(target[0])]);
    }
    case kernels::LossKind::kCategoricalCrossentropy: {
      std::vector<double> p(n);
      SoftmaxD(v, n, p.data());
      double l = 0.0;
      for (int i = 0; i < n; ++i) l -= target[i] * log(p[i]);
      return l;
    }
    case kernels::LossKind::kMeanSquaredError: {
      double l = 0.0;
      for (int i = 0; i < n; ++i) l += (v[i] - target[i]) * (v[i] - target[i]);
      return l / n;
    }
    case kernels::LossKind::kBinaryCrossentropy: {
      double l = 0.0;
      for (int i = 0; i < n; ++i) {
        const double s = 1.0 / (1.0 + exp(-v[i]));
        l -= target[i] * log(s) + (1.0 - target[i]) * log(1.0 - s);
      }
      return l / n;
    }
  }
  return 0.0;
}

TEST(LossesAgainstFiniteDifferences) {
  Lcg rng(2024);
  const kernels::LossKind kinds[] = {
      kernels::LossKind::kSparseCategoricalCrossentropy, kernels::LossKind::kCategoricalCrossentropy,
      kernels::LossKind::kMeanSquaredError, kernels::LossKind::kBinaryCrossentropy};
  for (kernels::LossKind kind : kinds) {
    int bad_value = 0, bad_grad = 0;
    for (int iter = 0; iter < 200; ++iter) {
      const int n = rng.Int(1, 8);
      std::vector<float> z(n), out(n), target(n), grad(n, 123.0f);
      for (int i = 0; i < n; ++i) z[i] = rng.Uniform(-4.0f, 4.0f);
      switch (kind) {
        case kernels::LossKind::kSparseCategoricalCrossentropy:
          kernels::Softmax(z.data(), 1, n, out.data());
          target[0] = static_cast<float>(rng.Int(0, n - 1));
          break;
        case kernels::LossKind::kCategoricalCrossentropy: {
          kernels::Softmax(z.data(), 1, n, out.data());
          if (iter % 2 == 0) {  // one-hot
            for (int i = 0; i < n; ++i) target[i] = 0.0f;
            target[rng.Int(0, n - 1)] = 1.0f;
          } else {  // a distribution
            double sum = 0.0;
            for (int i = 0; i < n; ++i) sum += (target[i] = rng.Uniform(0.0f, 1.0f) + 0.01f);
            for (int i = 0; i < n; ++i) target[i] = static_cast<float>(target[i] / sum);
          }
          break;
        }
        case kernels::LossKind::kMeanSquaredError:
          for (int i = 0; i < n; ++i) {
            out[i] = rng.Uniform(-3.0f, 3.0f);
            target[i] = rng.Uniform(-3.0f, 3.0f);
          }
          break;
        case kernels::LossKind::kBinaryCrossentropy:
          kernels::Logistic(z.data(), n, out.data());
          for (int i = 0; i < n; ++i) {
            target[i] = iter % 3 == 0 ? rng.Uniform(0.0f, 1.0f) : static_cast<float>(rng.Int(0, 1));
          }
          break;
      }
      float correct = -1.0f;
      const float loss = kernels::LossAndGradient(kind, z.data(), out.data(), n, target.data(),
                                                  grad.data(), &correct);
      const bool wrt_output = kind == kernels::LossKind::kMeanSquaredError;
      std::vector<double> v(n);
      for (int i = 0; i < n; ++i) v[i] = wrt_output ? out[i] : z[i];
      const double ref = ReferenceLoss(kind, v.data(), n, target.data());
      if (!(fabs(loss - ref) <= 1e-5 * (1.0 + fabs(ref)))) {
        ++bad_value;
        CHECK_MSG(false, "loss %d n %d: %.9g vs float64 %.9g", static_cast<int>(kind), n, loss, ref);
      }
      for (int i = 0; i < n; ++i) {
        const double h = 1e-5;
        std::vector<double> vp = v, vm = v;
        vp[i] += h;
        vm[i] -= h;
        const double fd = (ReferenceLoss(kind, vp.data(), n, target.data()) -
                           ReferenceLoss(kind, vm.data(), n, target.data())) / (2 * h);
        if (!(fabs(grad[i] - fd) <= 1e-5 * (1.0 + fabs(fd)))) {
          ++bad_grad;
          CHECK_MSG(false, "loss %d n %d grad[%d] %.9g vs finite difference %.9g",
                    static_cast<int>(kind), n, i, grad[i], fd);
        }
      }
      CHECK(correct >= 0.0f && correct <= 1.0f);
    }
    CHECK_MSG(bad_value == 0 && bad_grad == 0, "loss %d: %d bad values, %d bad gradients",
              static_cast<int>(kind), bad_value, bad_grad);
  }
}

TEST(LossCorrectFlags) {
  float grad[4], correct = -1.0f;
  const float z[] = {0.5f, 2.0f, -1.0f};
  float p[3];
  kernels::Softmax(z, 1, 3, p);
  float label = 1.0f;
  kernels::LossAndGradient(kernels::LossKind::kSparseCategoricalCrossentropy, z, p, 3, &label, grad,
                           &correct);
  CHECK(correct == 1.0f);
  CHECK_NEAR(grad[1], p[1] - 1.0, 1e-7);
  CHECK_NEAR(grad[0], p[0], 1e-7);
  label = 2.0f;
  kernels::LossAndGradient(kernels::LossKind::kSparseCategoricalCrossentropy, z, p, 3, &label, grad,
                           &correct);
  CHECK(correct == 0.0f);
  const float right[] = {0.0f, 1.0f, 0.0f}, wrong[] = {0.9f, 0.05f, 0.05f};
  kernels::LossAndGradient(kernels::LossKind::kCategoricalCrossentropy, z, p, 3, right, grad, &correct);
  CHECK(correct == 1.0f);
  kernels::LossAndGradient(kernels::LossKind::kCategoricalCrossentropy, z, p, 3, wrong, grad, &correct);
  CHECK(correct == 0.0f);
  // Binary: predicted (s > 0.5) = {1, 0, 1} against {1, 0, 0}: 2 of 3 right.
  const float zb[] = {2.0f, -2.0f, 3.0f}, yb[] = {1.0f, 0.0f, 0.0f};
  float sb[3];
  kernels::Logistic(zb, 3, sb);
  kernels::LossAndGradient(kernels::LossKind::kBinaryCrossentropy, zb, sb, 3, yb, grad, &correct);
  CHECK_NEAR(correct, 2.0 / 3.0, 1e-6);
  const float mo[] = {1.0f, 2.0f}, mt[] = {1.0f, 2.0f};
  const float mse = kernels::LossAndGradient(kernels::LossKind::kMeanSquaredError, nullptr, mo, 2, mt,
                                             grad, &correct);
  CHECK(mse == 0.0f && correct == 0.0f && grad[0] == 0.0f && grad[1] == 0.0f);
}

TEST(LossExtremeLogits) {
  // Stable forms: huge logits give finite, exact-enough losses.
  const float z[] = {1000.0f, -1000.0f, 0.0f};
  float p[3], grad[3], correct;
  kernels::Softmax(z, 1, 3, p);
  float label = 1.0f;
  const float l = kernels::LossAndGradient(kernels::LossKind::kSparseCategoricalCrossentropy, z, p, 3,
                                           &label, grad, &correct);
  CHECK(isfinite(l));
  CHECK_NEAR(l, 2000.0, 1e-3);
  CHECK_NEAR(grad[0], 1.0, 1e-7);
  CHECK_NEAR(grad[1], -1.0, 1e-7);
  CHECK(correct == 0.0f);
  const float zb[] = {100.0f, -100.0f}, yb[] = {0.0f, 0.0f};
  float sb[2];
  kernels::Logistic(zb, 2, sb);
  const float lb = kernels::LossAndGradient(kernels::LossKind::kBinaryCrossentropy, zb, sb, 2, yb, grad,
                                            &correct);
  CHECK(isfinite(lb));
  CHECK_NEAR(lb, 50.0, 1e-4);  // (100 + ~0) / 2
  CHECK_NEAR(grad[0], 0.5, 1e-7);
}

int main() { return test::RunAll(); }
