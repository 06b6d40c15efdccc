// Top-k selection by magnitude (kernels/top_k.h) against a brute-force sort:
// every (n, k) for small n, random sizes, signed and zero ties, extremes, and
// the comparison count staying linear in n.
#include <float.h>
#include <math.h>
#include <stdint.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/top_k.h"
#include "test_harness.h"

namespace kernels = tflm_train::kernels;
using test::Lcg;

// Brute force: sort by |v| descending, ties by lower index; keep k; ascending.
static std::vector<int32_t> ReferenceTopK(const float* v, int n, int k) {
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [v](int32_t a, int32_t b) {
    const float fa = fabsf(v[a]), fb = fabsf(v[b]);
    if (fa != fb) return fa > fb;
    return a < b;
  });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

static void FillValues(Lcg& rng, int mode, int n, float* v) {
  const float base = rng.Uniform(0.1f, 2.0f);
  for (int i = 0; i < n; ++i) {
    const float sign = rng.Coin() ? 1.0f : -1.0f;
    switch (mode) {
      case 0: v[i] = rng.Uniform(-1.0f, 1.0f); break;                          // distinct
      case 1: v[i] = 0.5f * static_cast<float>(rng.Int(-3, 3)); break;         // heavy ties
      case 2: v[i] = sign * base; break;                                       // one magnitude
      case 3: v[i] = rng.Int(0, 2) == 0 ? sign * 0.25f : sign * base; break;   // two magnitudes
      case 4: v[i] = sign * static_cast<float>(i / 3); break;                  // ascending, ties
      case 5: v[i] = sign * static_cast<float>((n - i) / 4); break;            // descending, ties
      case 6: v[i] = rng.Int(0, 9) == 0 ? rng.Uniform(-1.0f, 1.0f) : (rng.Coin() ? 0.0f : -0.0f); break;
      default: {                                                               // extremes
        const float pool[] = {FLT_MAX, FLT_MIN, 1e-40f, 0.0f, 1.0f, 3.0e38f, 1e-45f};
        v[i] = sign * pool[rng.Int(0, 6)];
        break;
      }
    }
  }
}

static bool RunTopKCase(const float* v, int n, int k, uint64_t* comparisons_out) {
  const int kGuard = 4;
  const int32_t kCanary = -77;
  std::vector<int32_t> index(n + kGuard, kCanary), rows(n + kGuard, kCanary);
  std::vector<uint8_t> mask(n + kGuard, 0xAB);
  const uint64_t comparisons =
      kernels::SelectTopKRows(v, n, k, index.data(), mask.data(), rows.data());
  if (comparisons_out != nullptr) *comparisons_out = comparisons;
  const std::vector<int32_t> expected = ReferenceTopK(v, n, k);
  bool ok = true;
  for (int i = 0; i < k; ++i) ok = ok && rows[i] == expected[i];
  for (int i = 1; i < k; ++i) ok = ok && rows[i - 1] < rows[i];
  for (int i = k; i < n + kGuard; ++i) ok = ok && rows[i] == kCanary;  // writes exactly k rows
  for (int i = n; i < n + kGuard; ++i) ok = ok && index[i] == kCanary && mask[i] == 0xAB;
  if (k == n) ok = ok && comparisons == 0;
  return ok;
}

TEST(TopKMatchesBruteForce) {
  Lcg rng(12345);
  int cases = 0, failures = 0;
  std::vector<float> v(300);
  // Every (n, k) for small n, in every value mode.
  for (int mode = 0; mode < 8; ++mode) {
    for (int n = 1; n <= 12; ++n) {
      for (int k = 1; k <= n; ++k) {
        for (int rep = 0; rep < 3; ++rep) {
          FillValues(rng, mode, n, v.data());
          ++cases;
          if (!RunTopKCase(v.data(), n, k, nullptr)) {
            ++failures;
            CHECK_MSG(false, "mode %d n %d k %d", mode, n, k);
          }
        }
      }
    }
  }
  // Random sizes 1..300 and k 1..n.
  for (int iter = 0; iter < 6000; ++iter) {
    const int mode = rng.Int(0, 7);
    const int n = rng.Int(1, 300);
    int k = rng.Int(1, n);
    if (iter % 10 == 0) k = n;
    if (iter % 10 == 1) k = 1;
    if (iter % 10 == 2) k = n > 1 ? n - 1 : 1;
    FillValues(rng, mode, n, v.data());
    ++cases;
    if (!RunTopKCase(v.data(), n, k, nullptr)) {
      ++failures;
      CHECK_MSG(false, "iteration %d mode %d n %d k %d", iter, mode, n, k);
    }
  }
  CHECK_MSG(failures == 0, "%d of %d cases differ from the brute-force reference", failures, cases);
}

TEST(TopKSignedTiesLowerIndexWins) {
  // |v| ties across signs: -2 at 1 and 2 at 3 and -2 at 5; the lower indices win.
  const float v[] = {1.0f, -2.0f, 0.5f, 2.0f, 0.0f, -2.0f, -0.0f};
  int32_t index[7], rows[7];
  uint8_t mask[7];
  kernels::SelectTopKRows(v, 7, 2, index, mask, rows);
  CHECK(rows[0] == 1 && rows[1] == 3);
  kernels::SelectTopKRows(v, 7, 3, index, mask, rows);
  CHECK(rows[0] == 1 && rows[1] == 3 && rows[2] == 5);
  kernels::SelectTopKRows(v, 7, 4, index, mask, rows);
  CHECK(rows[0] == 0 && rows[1] == 1 && rows[2] == 3 && rows[3] == 5);
  // 0.0 and -0.0 tie: index 4 beats index 6.
  kernels::SelectTopKRows(v, 7, 6, index, mask, rows);
  CHECK(rows[0] == 0 && rows[1] == 1 && rows[2] == 2 && rows[3] == 3 && rows[4] == 4 && rows[5] == 5);
}

TEST(TopKAllRowsWhenKEqualsN) {
  for (int n : {1, 2, 7, 64, 300}) {
    std::vector<float> v(n);
    Lcg rng(static_cast<uint64_t>(n));
    FillValues(rng, 0, n, v.data());
    std::vector<int32_t> index(n), rows(n, -1);
    std::vector<uint8_t> mask(n);
    const uint64_t c = kernels::SelectTopKRows(v.data(), n, n, index.data(), mask.data(), rows.data());
    CHECK_MSG(c == 0, "n %d: %llu comparisons", n, static_cast<unsigned long long>(c));
    for (int i = 0; i < n; ++i) CHECK_MSG(rows[i] == i, "n %d rows[%d] = %d", n, i, rows[i]);
  }
}

TEST(TopKComparisonsLinear) {
  const int n = 10000;
  std::vector<float> v(n);
  std::vector<int32_t> index(n), rows(n);
  std::vector<uint8_t> mask(n);
  Lcg rng(777);
  FillValues(rng, 0, n, v.data());
  for (int k : {1, 10, 100, 2500, 5000, 9000, 9999}) {
    const uint64_t c = kernels::SelectTopKRows(v.data(), n, k, index.data(), mask.data(), rows.data());
    CHECK_MSG(c < 10ull * n, "random n %d k %d: %llu comparisons (>= 10n)", n, k,
              static_cast<unsigned long long>(c));
    CHECK(c > 0);
    const std::vector<int32_t> expected = ReferenceTopK(v.data(), n, k);
    CHECK_MSG(std::equal(expected.begin(), expected.end(), rows.begin()), "random n %d k %d", n, k);
  }
  // Linear growth: 4x the size costs far less than 16x the comparisons.
  std::vector<float> small(2500);
  FillValues(rng, 0, 2500, small.data());
  const uint64_t c_small =
      kernels::SelectTopKRows(small.data(), 2500, 1250, index.data(), mask.data(), rows.data());
  const uint64_t c_large =
      kernels::SelectTopKRows(v.data(), n, n / 2, index.data(), mask.data(), rows.data());
  CHECK_MSG(c_large < 8 * c_small, "n=2500: %llu, n=10000: %llu",
            static_cast<unsigned long long>(c_small), static_cast<unsigned long long>(c_large));
  // Structured inputs common in training (all-zero errors, mostly-zero errors
  // after a ReLU mask, sorted magnitudes) cost more per element (zeros tie and
  // fall back to index order) but must stay linear, not go quadratic.
  for (int mode : {2, 4, 5, 6}) {
    for (int k_kind = 0; k_kind < 3; ++k_kind) {
      uint64_t cost[2] = {0, 0};
      const int sizes[2] = {2500, n};
      for (int which = 0; which < 2; ++which) {
        const int m = sizes[which];
        const int k = k_kind == 0 ? 1 : k_kind == 1 ? m / 2 : m - 1;
        for (int rep = 0; rep < 5; ++rep) {
          FillValues(rng, mode, m, v.data());
          for (int i = 0; i < m && mode == 2; ++i) v[i] = 0.0f;  // all zero
          const uint64_t c =
              kernels::SelectTopKRows(v.data(), m, k, index.data(), mask.data(), rows.data());
          cost[which] += c;
          CHECK_MSG(c < 16ull * m, "mode %d n %d k %d: %llu comparisons", mode, m, k,
                    static_cast<unsigned long long>(c));
          const std::vector<int32_t> expected = ReferenceTopK(v.data(), m, k);
          CHECK_MSG(std::equal(expected.begin(), expected.end(), rows.begin()), "mode %d n %d k %d", mode,
                    m, k);
        }
      }
      CHECK_MSG(cost[1] < 6 * cost[0], "mode %d k kind %d: 4x the size cost %.1fx the comparisons", mode,
                k_kind, static_cast<double>(cost[1]) / static_cast<double>(cost[0] ? cost[0] : 1));
    }
  }
}

int main() { return test::RunAll(); }
