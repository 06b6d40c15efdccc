// Unit tests for micro_kernels, in plain C++17 with no test framework.
//
//   micro_kernels_tests                          kernel, policy, SGD and loss tests
//   micro_kernels_tests model.tflite [m2.tflite] also the Trainer tests on real models
//
// model.tflite: Keras Input(4) -> Dense(3, relu) -> Dense(2, softmax), sparse
// categorical cross-entropy, SGD(0.1), converted with tflm_train.convert.
// m2.tflite (optional): the same network with SGD(0.1, momentum=0.9,
// weight_decay=0.01, CosineDecay(100, alpha=0.1, warmup 5 from 0.01)), batch 4.
// tests/test_cpp_unit.py builds both and runs this binary.
//
// Prints one PASS/FAIL line per test and ends with "N passed, M failed"; the
// exit status is non-zero when any test fails.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cfloat>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/activations.h"
#include "kernels/conv.h"
#include "kernels/fully_connected.h"
#include "kernels/loss.h"
#include "kernels/pad_add.h"
#include "kernels/pooling.h"
#include "kernels/top_k.h"
#include "model_reader.h"
#include "sgd.h"
#include "sparsity_policy.h"
#include "tflm_train/status.h"
#include "tflm_train/trainer.h"

using tflm_train::PolicyKind;
using tflm_train::PolicyParams;
using tflm_train::Status;
using tflm_train::Trainer;
using tflm_train::TrainerOptions;
namespace kernels = tflm_train::kernels;

// ---------------------------------------------------------------------------
// Heap-allocation counting: these definitions interpose glibc's allocator for
// the whole process (libstdc++'s operator new calls malloc too).
// ---------------------------------------------------------------------------
static volatile unsigned long g_heap_calls = 0;
extern "C" void* __libc_malloc(size_t size);
extern "C" void* __libc_calloc(size_t count, size_t size);
extern "C" void* __libc_realloc(void* ptr, size_t size);
extern "C" void* __libc_memalign(size_t alignment, size_t size);
extern "C" void* malloc(size_t size) noexcept {
  g_heap_calls = g_heap_calls + 1;
  return __libc_malloc(size);
}
extern "C" void* calloc(size_t count, size_t size) noexcept {
  g_heap_calls = g_heap_calls + 1;
  return __libc_calloc(count, size);
}
extern "C" void* realloc(void* ptr, size_t size) noexcept {
  g_heap_calls = g_heap_calls + 1;
  return __libc_realloc(ptr, size);
}
extern "C" void* aligned_alloc(size_t alignment, size_t size) noexcept {
  g_heap_calls = g_heap_calls + 1;
  return __libc_memalign(alignment, size);
}

// ---------------------------------------------------------------------------
// A tiny harness.
// ---------------------------------------------------------------------------
static int g_check_failures = 0;  // in the running test
static int g_printed_failures = 0;

static void ReportFailure(const char* file, int line, const char* expr, const char* detail) {
  ++g_check_failures;
  if (++g_printed_failures <= 12) {
    printf("    %s:%d: CHECK(%s) failed%s%s\n", file, line, expr, detail[0] ? ": " : "", detail);
  } else if (g_printed_failures == 13) {
    printf("    ... (further failures in this test not shown)\n");
  }
}

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) ReportFailure(__FILE__, __LINE__, #cond, "");        \
  } while (0)

#define CHECK_MSG(cond, ...)                                          \
  do {                                                                \
    if (!(cond)) {                                                    \
      char detail_[600];                                              \
      snprintf(detail_, sizeof(detail_), __VA_ARGS__);                \
      ReportFailure(__FILE__, __LINE__, #cond, detail_);              \
    }                                                                 \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                             \
  do {                                                                                    \
    const double a_ = static_cast<double>(a), b_ = static_cast<double>(b);                \
    if (!(fabs(a_ - b_) <= static_cast<double>(tol))) {                                   \
      char detail_[300];                                                                  \
      snprintf(detail_, sizeof(detail_), "%s = %.9g, %s = %.9g, |diff| = %.3g > %.3g", #a, \
               a_, #b, b_, fabs(a_ - b_), static_cast<double>(tol));                      \
      ReportFailure(__FILE__, __LINE__, #a " ~= " #b, detail_);                           \
    }                                                                                     \
  } while (0)

#define CHECK_STATUS(expr, expected)                                                      \
  do {                                                                                    \
    const Status got_ = (expr);                                                           \
    if (got_ != (expected)) {                                                             \
      char detail_[200];                                                                  \
      snprintf(detail_, sizeof(detail_), "got k%s, expected k%s",                         \
               tflm_train::StatusName(got_), tflm_train::StatusName(expected));           \
      ReportFailure(__FILE__, __LINE__, #expr, detail_);                                  \
    }                                                                                     \
  } while (0)

// Fixed-seed 64-bit LCG (Knuth's MMIX constants).
struct Lcg {
  uint64_t state;
  explicit Lcg(uint64_t seed) : state(seed) {}
  uint32_t Next() {  // 31 random bits
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  }
  int Int(int lo, int hi) { return lo + static_cast<int>(Next() % static_cast<uint32_t>(hi - lo + 1)); }
  float Uniform(float lo, float hi) {
    return lo + (hi - lo) * (static_cast<float>(Next()) / 2147483648.0f);
  }
  bool Coin() { return (Next() & 1u) != 0; }
};

// ---------------------------------------------------------------------------
// Top-k selection.
// ---------------------------------------------------------------------------

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

static void TestTopKMatchesBruteForce() {
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

static void TestTopKSignedTiesLowerIndexWins() {
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

static void TestTopKAllRowsWhenKEqualsN() {
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

static void TestTopKComparisonsLinear() {
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

// ---------------------------------------------------------------------------
// Sparsity policy.
// ---------------------------------------------------------------------------

static PolicyParams Policy(PolicyKind kind) {
  PolicyParams p;
  p.kind = kind;
  return p;
}

static void TestPolicyFullAndStatic() {
  PolicyParams full = Policy(PolicyKind::kFull);
  CHECK(tflm_train::KeptOutputs(full, 10, 0, 0.5f, 1.0f) == 10);
  CHECK(tflm_train::KeptOutputs(full, 1, 3, 0.0f, 0.0f) == 1);
  CHECK(tflm_train::KeptOutputs(full, 77, 5, 1e9f, 1.0f) == 77);

  PolicyParams st = Policy(PolicyKind::kStaticTopK);
  st.ratio = 0.3f;
  CHECK(tflm_train::KeptOutputs(st, 10, 0, 0.0f, 0.0f) == 3);
  CHECK(tflm_train::KeptOutputs(st, 10, 4, 9.0f, 1.0f) == 3);  // position and error do not matter
  st.ratio = 0.25f;
  CHECK(tflm_train::KeptOutputs(st, 10, 0, 0.0f, 0.0f) == 3);  // roundf(2.5) = 3
  CHECK(tflm_train::KeptOutputs(st, 2, 0, 0.0f, 0.0f) == 1);   // roundf(0.5) = 1
  st.ratio = 0.5f;
  CHECK(tflm_train::KeptOutputs(st, 3, 0, 0.0f, 0.0f) == 2);   // roundf(1.5) = 2
  CHECK(tflm_train::KeptOutputs(st, 5, 0, 0.0f, 0.0f) == 3);   // roundf(2.5) = 3
  st.ratio = 0.01f;
  CHECK(tflm_train::KeptOutputs(st, 10, 0, 0.0f, 0.0f) == 1);  // 0 clamps to 1
  st.ratio = 1.0f;
  CHECK(tflm_train::KeptOutputs(st, 10, 0, 0.0f, 0.0f) == 10);
  CHECK(tflm_train::KeptOutputs(st, 1, 0, 0.0f, 0.0f) == 1);
}

static void TestPolicyTinyProp() {
  for (PolicyKind kind : {PolicyKind::kTinyProp, PolicyKind::kTinyPropV2}) {
    PolicyParams p = Policy(kind);
    p.s_min = 0.25f;  // exactly representable, so the half-way cases are exact
    p.s_max = 0.75f;
    // Y/Ymax = 0.5: S = 0.25 + 0.5 * 0.5 = 0.5 at position 0, 0.25 at 1, 0.125 at 2.
    CHECK(tflm_train::KeptOutputs(p, 10, 0, 0.5f, 1.0f) == 5);
    CHECK(tflm_train::KeptOutputs(p, 10, 1, 0.5f, 1.0f) == 3);    // roundf(2.5) = 3 (half away from 0)
    CHECK(tflm_train::KeptOutputs(p, 100, 2, 0.5f, 1.0f) == 13);  // 12.5 -> 13
    CHECK(tflm_train::KeptOutputs(p, 10, 2, 0.5f, 1.0f) == 1);    // 1.25 -> 1
    CHECK(tflm_train::KeptOutputs(p, 6, 0, 0.5f, 1.0f) == 3);     // 3.0
    CHECK(tflm_train::KeptOutputs(p, 10, 0, 0.25f, 0.5f) == 5);   // only the ratio matters
    // The defaults S_min 0.1, S_max 0.9 in float32 (docs/algorithm.md: float32, fixed
    // order): 0.9f - 0.1f = 0.79999995f, so S = 0.49999997f, not 0.5, and at
    // position 1 S*n = 2.4999998 rounds to 2 (exact arithmetic would give 3).
    PolicyParams d = Policy(kind);
    const float s0 = (d.s_min + (d.s_max - d.s_min) * 0.5f);
    CHECK(s0 < 0.5f);
    CHECK(tflm_train::KeptOutputs(d, 10, 0, 0.5f, 1.0f) == 5);
    CHECK(tflm_train::KeptOutputs(d, 10, 1, 0.5f, 1.0f) == 2);
    CHECK(tflm_train::KeptOutputs(d, 10, 1, 0.5f, 1.0f) == static_cast<int32_t>(roundf(s0 * 0.5f * 10.0f)));
    p = d;
    CHECK(tflm_train::KeptOutputs(p, 100, 0, 2.0f, 4.0f) == 50);  // only the ratio matters
    CHECK(tflm_train::KeptOutputs(p, 100, 0, 1.0f, 1.0f) == 90);  // Y = Ymax: S = s_max
    // Ymax == 0: ratio 0, S = s_min (no division by zero).
    CHECK(tflm_train::KeptOutputs(p, 100, 0, 5.0f, 0.0f) == 10);
    CHECK(tflm_train::KeptOutputs(p, 100, 1, 0.0f, 0.0f) == 5);
    // Clamping to [1, n].
    CHECK(tflm_train::KeptOutputs(p, 10, 6, 0.0f, 1.0f) == 1);    // tiny S
    CHECK(tflm_train::KeptOutputs(p, 10, 0, 5.0f, 1.0f) == 10);   // Y > Ymax: S = 4.1
    PolicyParams all = p;
    all.s_min = all.s_max = 1.0f;
    CHECK(tflm_train::KeptOutputs(all, 7, 0, 0.3f, 1.0f) == 7);
    PolicyParams none = p;
    none.s_min = none.s_max = 0.0f;
    CHECK(tflm_train::KeptOutputs(none, 7, 0, 0.3f, 1.0f) == 1);
    PolicyParams z1 = p;
    z1.zeta = 1.0f;
    CHECK(tflm_train::KeptOutputs(z1, 10, 5, 0.5f, 1.0f) == 5);   // no damping
  }
}

static void TestPolicyYmaxAndTotalError() {
  const float d[] = {0.5f, -1.5f, 0.0f, 2.0f};
  CHECK(tflm_train::TotalError(d, 4) == 4.0f);
  CHECK(tflm_train::TotalError(d, 0) == 0.0f);
  PolicyParams p = Policy(PolicyKind::kTinyProp);
  float ymax = 0.0f;
  CHECK(tflm_train::UpdateYmax(p, 2.0f, &ymax) == 2.0f && ymax == 2.0f);
  CHECK(tflm_train::UpdateYmax(p, 1.0f, &ymax) == 2.0f && ymax == 2.0f);  // no decay
  CHECK(tflm_train::UpdateYmax(p, 3.0f, &ymax) == 3.0f && ymax == 3.0f);
  p.ymax_decay = 0.5f;
  ymax = 2.0f;
  CHECK(tflm_train::UpdateYmax(p, 0.5f, &ymax) == 1.0f && ymax == 1.0f);  // decayed first
  CHECK(tflm_train::UpdateYmax(p, 0.75f, &ymax) == 0.75f && ymax == 0.75f);  // 0.5 < 0.75
  CHECK(tflm_train::UpdateYmax(p, 0.25f, &ymax) == 0.375f && ymax == 0.375f);
}

static void TestPolicyGate() {
  PolicyParams v2 = Policy(PolicyKind::kTinyPropV2);  // d_min 0, d_max 1, beta 1, tau 0.5
  CHECK(tflm_train::GateTrains(v2, 0.6f, 1.0f));
  CHECK(!tflm_train::GateTrains(v2, 0.5f, 1.0f));   // D = tau: not strictly greater
  CHECK(tflm_train::GateTrains(v2, 3.0f, 4.0f));
  CHECK(!tflm_train::GateTrains(v2, 0.1f, 1.0f));
  CHECK(!tflm_train::GateTrains(v2, 1.0f, 0.0f));   // Ymax 0: alpha 0, D = 0
  PolicyParams custom = v2;
  custom.d_min = 0.2f;
  custom.d_max = 0.8f;
  CHECK(!tflm_train::GateTrains(custom, 0.5f, 1.0f));  // D = 0.5
  CHECK(tflm_train::GateTrains(custom, 0.6f, 1.0f));   // D = 0.56
  custom.beta = 2.0f;
  CHECK(tflm_train::GateTrains(custom, 0.25f, 1.0f));  // D = (0.2 + 0.15) * 2 = 0.7
  custom.tau = -1.0f;
  CHECK(tflm_train::GateTrains(custom, 0.0f, 0.0f));
  for (PolicyKind kind : {PolicyKind::kFull, PolicyKind::kStaticTopK, PolicyKind::kTinyProp}) {
    PolicyParams p = Policy(kind);
    p.tau = 100.0f;
    CHECK(tflm_train::GateTrains(p, 0.0f, 1.0f));
    CHECK(tflm_train::GateTrains(p, 0.0f, 0.0f));
  }
}

static void TestCheckPolicy() {
  for (PolicyKind kind : {PolicyKind::kFull, PolicyKind::kStaticTopK, PolicyKind::kTinyProp,
                          PolicyKind::kTinyPropV2}) {
    CHECK_MSG(tflm_train::CheckPolicy(Policy(kind)) == nullptr, "kind %d defaults rejected",
              static_cast<int>(kind));
  }
  PolicyParams bad_kind;
  bad_kind.kind = static_cast<PolicyKind>(4);
  CHECK(tflm_train::CheckPolicy(bad_kind) != nullptr);
  bad_kind.kind = static_cast<PolicyKind>(255);
  CHECK(tflm_train::CheckPolicy(bad_kind) != nullptr);

  PolicyParams st = Policy(PolicyKind::kStaticTopK);
  for (float r : {0.0f, -0.5f, 1.5f, NAN, INFINITY}) {
    st.ratio = r;
    CHECK_MSG(tflm_train::CheckPolicy(st) != nullptr, "StaticTopK ratio %g accepted", r);
  }
  st.ratio = 1.0f;
  CHECK(tflm_train::CheckPolicy(st) == nullptr);
  st.ratio = 0.001f;
  CHECK(tflm_train::CheckPolicy(st) == nullptr);

  for (PolicyKind kind : {PolicyKind::kTinyProp, PolicyKind::kTinyPropV2}) {
    const PolicyParams ok = Policy(kind);
    auto rejects = [&](void (*edit)(PolicyParams*)) {
      PolicyParams p = ok;
      edit(&p);
      return tflm_train::CheckPolicy(p) != nullptr;
    };
    CHECK(rejects([](PolicyParams* p) { p->s_min = 0.95f; }));  // s_min > s_max
    CHECK(rejects([](PolicyParams* p) { p->s_min = -0.1f; }));
    CHECK(rejects([](PolicyParams* p) { p->s_max = 1.1f; }));
    CHECK(rejects([](PolicyParams* p) { p->s_min = NAN; }));
    CHECK(rejects([](PolicyParams* p) { p->zeta = 0.0f; }));
    CHECK(rejects([](PolicyParams* p) { p->zeta = 1.5f; }));
    CHECK(rejects([](PolicyParams* p) { p->zeta = NAN; }));
    CHECK(rejects([](PolicyParams* p) { p->ymax_decay = 0.0f; }));
    CHECK(rejects([](PolicyParams* p) { p->ymax_decay = 1.01f; }));
    CHECK(!rejects([](PolicyParams* p) { p->s_min = p->s_max = 0.0f; }));
    CHECK(!rejects([](PolicyParams* p) { p->s_min = p->s_max = 1.0f; }));
    CHECK(!rejects([](PolicyParams* p) { p->zeta = 1.0f; }));
  }
  PolicyParams v2 = Policy(PolicyKind::kTinyPropV2);
  v2.tau = INFINITY;
  CHECK(tflm_train::CheckPolicy(v2) != nullptr);
  v2 = Policy(PolicyKind::kTinyPropV2);
  v2.beta = NAN;
  CHECK(tflm_train::CheckPolicy(v2) != nullptr);
  v2 = Policy(PolicyKind::kTinyPropV2);
  v2.d_min = -INFINITY;
  CHECK(tflm_train::CheckPolicy(v2) != nullptr);
  v2 = Policy(PolicyKind::kTinyPropV2);
  v2.tau = -3.0f;  // any finite tau is allowed
  CHECK(tflm_train::CheckPolicy(v2) == nullptr);
}

// ---------------------------------------------------------------------------
// SGD and learning-rate schedules.
// ---------------------------------------------------------------------------

static void TestSgdPlain() {
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

static void TestSgdMomentum() {
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

static void TestSgdWeightDecay() {
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

static void TestSgdRankOne() {
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

static void TestSchedules() {
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

// ---------------------------------------------------------------------------
// Losses.
// ---------------------------------------------------------------------------

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

static void TestLossesAgainstFiniteDifferences() {
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

static void TestLossCorrectFlags() {
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

static void TestLossExtremeLogits() {
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

// ---------------------------------------------------------------------------
// Fully connected and activations.
// ---------------------------------------------------------------------------

static void TestFullyConnectedForward() {
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

static void TestFullyConnectedInputGradSubset() {
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

static void TestFullyConnectedAccumulateGrad() {
  Lcg rng(7);
  const int n_in = 4, n_out = 6;
  std::vector<float> x(n_in), delta(n_out), gw(n_in * n_out), gb(n_out);
  for (auto& v : x) v = rng.Uniform(-1.0f, 1.0f);
  for (auto& v : delta) v = rng.Uniform(-1.0f, 1.0f);
  for (auto& v : gw) v = rng.Uniform(-1.0f, 1.0f);
  for (auto& v : gb) v = rng.Uniform(-1.0f, 1.0f);
  const std::vector<float> gw0 = gw, gb0 = gb;
  const int32_t rows[] = {1, 4};
  kernels::FullyConnectedAccumulateGrad(x.data(), n_in, delta.data(), rows, 2, gw.data());
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
  kernels::FullyConnectedAccumulateGrad(x.data(), n_in, delta.data(), rows, 2, gw.data());
  CHECK_NEAR(gw[1 * n_in + 2], gw0[1 * n_in + 2] + 2.0 * delta[1] * x[2], 1e-6);
  CHECK_NEAR(gb[3], gb0[3] + delta[3], 1e-6);
}

// ---------------------------------------------------------------------------
// Convolution, pooling, padding and Add kernels.
// ---------------------------------------------------------------------------

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

// Backward over a subset of kept outputs equals backward over every output with
// the others' errors zeroed, for both the weight and the input gradient.
static void TestConvBackwardSubsetEqualsMaskedDense() {
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
      kernels::DepthwiseConv2DBackward(x.data(), w.data(), s, delta.data(), kept.data(), k, gw_sparse.data(),
                                       dx_sparse.data());
      kernels::DepthwiseConv2DBackward(x.data(), w.data(), s, masked.data(), nullptr, n_out, gw_dense.data(),
                                       dx_dense.data());
    } else {
      kernels::Conv2DBackward(x.data(), w.data(), s, delta.data(), kept.data(), k, gw_sparse.data(),
                              dx_sparse.data());
      kernels::Conv2DBackward(x.data(), w.data(), s, masked.data(), nullptr, n_out, gw_dense.data(),
                              dx_dense.data());
    }
    // Adding zeros changes nothing, so the two agree exactly.
    CHECK_MSG(gw_sparse == gw_dense, "trial %d weight gradient", trial);
    CHECK_MSG(dx_sparse == dx_dense, "trial %d input gradient", trial);
  }
}

// The input gradient is the adjoint of the forward map: <conv(x), d> == <x, conv^T(d)>,
// and the weight gradient the adjoint in w: <conv_w(x), d> == <w, grad_w(d)> (no bias).
static void TestConvBackwardIsAdjointOfForward() {
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
      kernels::DepthwiseConv2DBackward(x.data(), w.data(), s, d.data(), nullptr, static_cast<int32_t>(n_out),
                                       gw.data(), dx.data());
    } else {
      kernels::Conv2D(x.data(), s, w.data(), nullptr, kernels::FusedAct::kNone, y.data());
      kernels::Conv2DBackward(x.data(), w.data(), s, d.data(), nullptr, static_cast<int32_t>(n_out), gw.data(),
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

// Average pooling, Mean and Pad are linear: their backward is the adjoint.
static void TestPoolMeanPadBackwardAreAdjoints() {
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
    kernels::AveragePool(x.data(), s, kernels::FusedAct::kNone, y.data());
    kernels::AveragePoolBackward(s, d.data(), dx.data());
    double yd = 0.0, xdx = 0.0;
    for (size_t i = 0; i < n_out; ++i) yd += static_cast<double>(y[i]) * d[i];
    for (size_t i = 0; i < n_in; ++i) xdx += static_cast<double>(x[i]) * dx[i];
    CHECK_NEAR(yd, xdx, 1e-4);

    const int32_t positions = s.in_h * s.in_w;
    std::vector<float> mean(static_cast<size_t>(s.in_c)), dmean(n_in, 0.0f);
    const std::vector<float> dm = RandomVector(rng, static_cast<size_t>(s.in_c));
    kernels::Mean(x.data(), positions, s.in_c, mean.data());
    kernels::MeanBackward(dm.data(), positions, s.in_c, dmean.data());
    double md = 0.0, xdm = 0.0;
    for (int32_t c = 0; c < s.in_c; ++c) md += static_cast<double>(mean[c]) * dm[c];
    for (size_t i = 0; i < n_in; ++i) xdm += static_cast<double>(x[i]) * dmean[i];
    CHECK_NEAR(md, xdm, 1e-5);

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
    kernels::PadBackward(pd.data(), p, pdx.data());
    double pyd = 0.0, pxd = 0.0, total = 0.0;
    for (size_t i = 0; i < pn_out; ++i) {
      pyd += static_cast<double>(py[i]) * pd[i];
      total += py[i];
    }
    for (size_t i = 0; i < pn_in; ++i) {
      pxd += static_cast<double>(px[i]) * pdx[i];
      total -= px[i];
    }
    CHECK_NEAR(pyd, pxd, 1e-5);
    CHECK_NEAR(total, 0.0, 1e-4);  // the padding is zeros: nothing else was written
  }
}

// Max pooling sends each error to the first maximum of its window, padded taps excluded.
static void TestMaxPoolRoutesToFirstMaximum() {
  kernels::ConvShape s{};
  s.in_h = 2; s.in_w = 3; s.in_c = 1; s.out_c = 1;
  s.filter_h = 2; s.filter_w = 2; s.stride_h = 2; s.stride_w = 2;
  s.dilation_h = s.dilation_w = 1;
  s.out_h = 1; s.out_w = 2;  // SAME: the second window covers column 2 and a padded column
  s.pad_top = 0; s.pad_left = 0;
  const float x[6] = {-5.0f, 3.0f, -7.0f,
                      3.0f, 1.0f, -8.0f};
  float y[2];
  kernels::MaxPool(x, s, kernels::FusedAct::kNone, y);
  CHECK(y[0] == 3.0f && y[1] == -7.0f);  // the padded tap never wins, even over -7
  const float dy[2] = {1.5f, 2.5f};
  float dx[6] = {};
  kernels::MaxPoolBackward(x, s, dy, dx);
  CHECK(dx[1] == 1.5f && dx[3] == 0.0f);  // tie between x[1] and x[3]: the first in scan order
  CHECK(dx[2] == 2.5f && dx[0] == 0.0f && dx[4] == 0.0f && dx[5] == 0.0f);
}

static void TestAddAndBiasGrad() {
  const float a[4] = {1.0f, -2.0f, 3.0f, 7.0f}, b[4] = {0.5f, 1.0f, -4.0f, 0.0f};
  float y[4];
  kernels::Add(a, b, 4, kernels::FusedAct::kRelu6, y);
  CHECK(y[0] == 1.5f && y[1] == 0.0f && y[2] == 0.0f && y[3] == 6.0f);
  const float delta[6] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};  // 3 positions x 2 channels
  float gb[2] = {0.5f, 0.0f};
  kernels::BiasGrad(delta, 3, 2, gb);
  CHECK(gb[0] == 9.5f && gb[1] == 12.0f);
}

static void TestActivationBackward() {
  // Fused ReLU / ReLU6 zero the error where the output sits at a kink or beyond.
  const float y[] = {0.0f, 1.0f, 6.0f, 3.0f, 0.0f};
  float d1[] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  kernels::FusedActBackwardInPlace(kernels::FusedAct::kRelu, y, 5, d1);
  CHECK(d1[0] == 0.0f && d1[1] == 2.0f && d1[2] == 3.0f && d1[3] == 4.0f && d1[4] == 0.0f);
  float d2[] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  kernels::FusedActBackwardInPlace(kernels::FusedAct::kRelu6, y, 5, d2);
  CHECK(d2[0] == 0.0f && d2[1] == 2.0f && d2[2] == 0.0f && d2[3] == 4.0f && d2[4] == 0.0f);
  float d3[] = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  kernels::FusedActBackwardInPlace(kernels::FusedAct::kNone, y, 5, d3);
  CHECK(d3[0] == 1.0f && d3[4] == 5.0f);
  // Standalone ops accumulate.
  const float dy[] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  float dx[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  kernels::FusedActBackward(kernels::FusedAct::kRelu, y, dy, 5, dx);
  CHECK(dx[0] == 0.5f && dx[1] == 1.5f && dx[2] == 1.5f && dx[3] == 1.5f && dx[4] == 0.5f);
  float dx6[] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  kernels::FusedActBackward(kernels::FusedAct::kRelu6, y, dy, 5, dx6);
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

static void TestSmoothActivationsAgainstFiniteDifferences() {
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
        kernels::SoftmaxBackward(y.data(), dy.data(), rows, depth, dx.data());
        for (int r = 0; r < rows; ++r) {
          double s = 0.0;
          for (int i = 0; i < depth; ++i) s += y[r * depth + i];
          CHECK_NEAR(s, 1.0, 1e-6);
        }
      } else if (which == 1) {
        kernels::Logistic(x.data(), n, y.data());
        kernels::LogisticBackward(y.data(), dy.data(), n, dx.data());
      } else {
        kernels::Tanh(x.data(), n, y.data());
        kernels::TanhBackward(y.data(), dy.data(), n, dx.data());
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

static void TestStatusNames() {
  CHECK(strcmp(tflm_train::StatusName(Status::kOk), "Ok") == 0);
  CHECK(strcmp(tflm_train::StatusName(Status::kArenaTooSmall), "ArenaTooSmall") == 0);
  CHECK(strcmp(tflm_train::StatusName(Status::kNotInitialized), "NotInitialized") == 0);
  CHECK(strcmp(tflm_train::StatusName(static_cast<Status>(99)), "Unknown") == 0);
}

static void TestAllocationCounterWorks() {
  // The interposed malloc must see allocations, or the no-heap checks mean nothing.
  const unsigned long before = g_heap_calls;
  void* volatile p = malloc(32);
  free(p);
  std::vector<int>* v = new std::vector<int>(100);
  delete v;
  CHECK_MSG(g_heap_calls - before >= 3, "counted %lu allocations", g_heap_calls - before);
}

// ---------------------------------------------------------------------------
// Trainer, on real models (paths from the command line).
// ---------------------------------------------------------------------------

static std::vector<uint8_t> g_model;     // argv[1]
static std::vector<uint8_t> g_momentum;  // argv[2], optional

// Bytes at a 16-byte aligned address (plus `offset`), owned.
class Bytes {
 public:
  Bytes(const uint8_t* src, size_t size, size_t offset = 0) : storage_(size + 64, 0), size_(size) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(storage_.data());
    data_ = reinterpret_cast<uint8_t*>((p + 15) & ~static_cast<uintptr_t>(15)) + offset;
    if (src != nullptr && size > 0 && size < storage_.size()) memcpy(data_, src, size);
  }
  explicit Bytes(size_t size) : Bytes(nullptr, size) {}
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  uint8_t* data() { return data_; }
  size_t size() const { return size_; }
  bool Same(const Bytes& other) const {
    return size_ == other.size_ && memcmp(data_, other.data_, size_) == 0;
  }

 private:
  std::vector<uint8_t> storage_;
  uint8_t* data_;
  size_t size_;
};

// A model copy with an initialized trainer over an exactly sized arena.
struct Session {
  Bytes model;
  Bytes arena;
  Trainer trainer;
  Status init;
  Session(const std::vector<uint8_t>& src, const TrainerOptions& options = TrainerOptions())
      : model(src.data(), src.size()), arena(Required(src, options)) {
    init = trainer.Init(model.data(), model.size(), arena.data(), arena.size(), options);
  }
  static size_t Required(const std::vector<uint8_t>& src, const TrainerOptions& options) {
    Bytes copy(src.data(), src.size());
    Trainer t;
    t.Init(copy.data(), copy.size(), nullptr, 0, options);
    return t.arena_report().required_bytes;
  }
};

// The trainable layers of a model, read from its plan (pointers into the bytes).
struct LayerView {
  float* w;
  float* b;
  int n_in, n_out;
  kernels::FusedAct act;
};
struct ModelFacts {
  bool ok = false;
  std::vector<LayerView> layers;
  float lr = 0, momentum = 0, weight_decay = 0, alpha = 0, warmup_initial = 0;
  uint8_t schedule = 0;
  uint32_t decay_steps = 0, warmup_steps = 0, batch_size = 0, planned_arena = 0;
  PolicyParams policy;
};

static ModelFacts ReadFacts(uint8_t* model, size_t size) {
  ModelFacts f;
  char why_buffer[200];
  tflm_train::Message why(why_buffer, sizeof(why_buffer));
  tflm_train::ModelView view;
  if (tflm_train::ReadModel(model, size, &view, &why) != Status::kOk) return f;
  const auto* p = view.plan;
  for (const auto* op : *p->ops()) {
    if (op->kind() != tflm_train::plan::OpKind::FullyConnected) continue;
    if (!op->trainable()) return f;  // the test models train every layer
    const auto* wt = tflm_train::TensorAt(view, op->weights());
    LayerView l;
    l.n_out = wt->shape()->Get(0);
    l.n_in = wt->shape()->Get(1);
    l.w = tflm_train::ConstantData(view, model, op->weights(), int64_t{l.n_out} * l.n_in, &why);
    l.b = op->bias() >= 0 ? tflm_train::ConstantData(view, model, op->bias(), l.n_out, &why) : nullptr;
    l.act = static_cast<kernels::FusedAct>(op->activation());
    if (l.w == nullptr) return f;
    f.layers.push_back(l);
  }
  const auto* o = p->optimizer();
  f.lr = o->learning_rate();
  f.momentum = o->momentum();
  f.weight_decay = o->weight_decay();
  f.schedule = static_cast<uint8_t>(o->schedule());
  f.decay_steps = o->decay_steps();
  f.warmup_steps = o->warmup_steps();
  f.alpha = o->alpha();
  f.warmup_initial = o->warmup_initial();
  f.batch_size = p->batch_size();
  f.planned_arena = p->memory() != nullptr ? p->memory()->arena_bytes() : 0;
  if (p->policy() != nullptr) {
    f.policy.kind = static_cast<PolicyKind>(p->policy()->kind());
    f.policy.ratio = p->policy()->ratio();
  }
  f.ok = p->loss() == tflm_train::plan::LossKind::SparseCategoricalCrossentropy;
  return f;
}

// An independent float32 re-implementation of the trainer's step for
// Dense stacks ending in Softmax with sparse categorical cross-entropy:
// forward, p - onehot, sparse backward through kept rows (old weights), then
// Keras SGD. The top-k is the brute-force reference.
struct ReferenceTrainer {
  std::vector<LayerView> layers;  // into the reference's own copy of the model
  PolicyParams policy;
  float momentum, weight_decay;
  bool accumulate;
  std::vector<std::vector<float>> vw, vb, gw, gb;
  std::vector<float> ymax;

  ReferenceTrainer(const ModelFacts& f, const PolicyParams& pol, bool acc)
      : layers(f.layers), policy(pol), momentum(f.momentum), weight_decay(f.weight_decay), accumulate(acc) {
    for (const auto& l : layers) {
      vw.emplace_back(static_cast<size_t>(l.n_out) * l.n_in, 0.0f);
      vb.emplace_back(l.n_out, 0.0f);
      gw.emplace_back(static_cast<size_t>(l.n_out) * l.n_in, 0.0f);
      gb.emplace_back(l.n_out, 0.0f);
      ymax.push_back(0.0f);
    }
  }

  void Update(float* w, float* v, const float* g, float scale, int n, float lr) const {
    for (int i = 0; i < n; ++i) {
      float wi = w[i];
      if (weight_decay != 0.0f) wi = wi - wi * weight_decay * lr;
      const float gi = g[i] * scale;
      if (momentum > 0.0f) {
        v[i] = -gi * lr + v[i] * momentum;
        wi = wi + v[i];
      } else {
        wi = wi - gi * lr;
      }
      w[i] = wi;
    }
  }

  // One batch; returns the number of samples trained (not skipped).
  int Step(const float* xs, int input_len, const float* labels, int num, float lr,
           std::vector<std::vector<int>>* ks) {
    const int L = static_cast<int>(layers.size());
    int trained = 0;
    ks->assign(num, std::vector<int>(L, 0));
    for (int s = 0; s < num; ++s) {
      std::vector<std::vector<float>> acts(L + 1);
      acts[0].assign(xs + s * input_len, xs + (s + 1) * input_len);
      for (int l = 0; l < L; ++l) {
        const LayerView& ly = layers[l];
        acts[l + 1].resize(ly.n_out);
        // The forward kernel (checked against a naive sum in fc_forward_vs_naive)
        // fixes the summation order, so the reference reproduces its rounding.
        kernels::FullyConnected(acts[l].data(), ly.n_in, ly.w, ly.b, ly.n_out, ly.act, acts[l + 1].data());
      }
      const std::vector<float>& z = acts[L];
      std::vector<float> p(z.size());
      kernels::Softmax(z.data(), 1, static_cast<int>(z.size()), p.data());
      std::vector<std::vector<float>> delta(L);
      std::vector<std::vector<int32_t>> rows(L);
      delta[L - 1] = p;
      delta[L - 1][static_cast<int>(labels[s])] -= 1.0f;
      bool skipped = false;
      for (int l = L - 1; l >= 0; --l) {
        const LayerView& ly = layers[l];
        std::vector<float>& d = delta[l];
        if (ly.act == kernels::FusedAct::kRelu) {
          for (int o = 0; o < ly.n_out; ++o) if (!(acts[l + 1][o] > 0.0f)) d[o] = 0.0f;
        }
        float y = 0.0f;
        for (float v : d) y += fabsf(v);
        const float decayed = ymax[l] * policy.ymax_decay;
        ymax[l] = y > decayed ? y : decayed;
        const int position = L - 1 - l;
        if (position == 0 && policy.kind == PolicyKind::kTinyPropV2) {
          const float alpha = ymax[l] > 0.0f ? y / ymax[l] : 0.0f;
          const float dd = (policy.d_min + alpha * (policy.d_max - policy.d_min)) * policy.beta;
          if (!(dd > policy.tau)) {
            skipped = true;
            break;
          }
        }
        const int k = tflm_train::KeptOutputs(policy, ly.n_out, position, y, ymax[l]);
        (*ks)[s][l] = k;
        rows[l] = ReferenceTopK(d.data(), ly.n_out, k);
        if (accumulate) {
          for (int32_t o : rows[l]) {
            for (int i = 0; i < ly.n_in; ++i) gw[l][o * ly.n_in + i] += d[o] * acts[l][i];
          }
          for (int o = 0; o < ly.n_out; ++o) gb[l][o] += d[o];
        }
        if (l > 0) {
          delta[l - 1].assign(layers[l - 1].n_out, 0.0f);
          for (int32_t o : rows[l]) {
            for (int i = 0; i < ly.n_in; ++i) delta[l - 1][i] += ly.w[o * ly.n_in + i] * d[o];
          }
        }
      }
      if (skipped) continue;
      ++trained;
      if (accumulate) continue;
      const bool every_row = momentum != 0.0f || weight_decay != 0.0f;
      for (int l = 0; l < L; ++l) {
        const LayerView& ly = layers[l];
        std::vector<float> g(ly.n_in);
        for (int o = 0; o < ly.n_out; ++o) {
          const bool kept = std::find(rows[l].begin(), rows[l].end(), o) != rows[l].end();
          if (!kept && !every_row) continue;
          const float d = kept ? delta[l][o] : 0.0f;
          for (int i = 0; i < ly.n_in; ++i) g[i] = d * acts[l][i];
          Update(ly.w + o * ly.n_in, vw[l].data() + o * ly.n_in, g.data(), 1.0f, ly.n_in, lr);
        }
        if (ly.b) Update(ly.b, vb[l].data(), delta[l].data(), 1.0f, ly.n_out, lr);
      }
    }
    if (accumulate && trained > 0) {
      const float scale = 1.0f / static_cast<float>(trained);
      for (int l = 0; l < L; ++l) {
        const LayerView& ly = layers[l];
        Update(ly.w, vw[l].data(), gw[l].data(), scale, ly.n_out * ly.n_in, lr);
        if (ly.b) Update(ly.b, vb[l].data(), gb[l].data(), scale, ly.n_out, lr);
      }
    }
    if (accumulate) {
      for (auto& v : gw) std::fill(v.begin(), v.end(), 0.0f);
      for (auto& v : gb) std::fill(v.begin(), v.end(), 0.0f);
    }
    return trained;
  }
};

static double MaxWeightDiff(const std::vector<LayerView>& a, const std::vector<LayerView>& b) {
  double worst = 0.0;
  for (size_t l = 0; l < a.size(); ++l) {
    for (int i = 0; i < a[l].n_out * a[l].n_in; ++i) {
      worst = std::max(worst, fabs(static_cast<double>(a[l].w[i]) - b[l].w[i]) / (1.0 + fabs(b[l].w[i])));
    }
    for (int o = 0; a[l].b && o < a[l].n_out; ++o) {
      worst = std::max(worst, fabs(static_cast<double>(a[l].b[o]) - b[l].b[o]) / (1.0 + fabs(b[l].b[o])));
    }
  }
  return worst;
}

static bool NeedModel() {
  if (!g_model.empty()) return true;
  CHECK_MSG(false, "no model path given");
  return false;
}

static void MakeSamples(Lcg& rng, int count, int input_len, int classes, std::vector<float>* x,
                        std::vector<float>* y) {
  x->resize(static_cast<size_t>(count) * input_len);
  y->resize(count);
  for (auto& v : *x) v = rng.Uniform(-2.0f, 2.0f);
  for (auto& v : *y) v = static_cast<float>(rng.Int(0, classes - 1));
}

static void TestTrainerArenaSizing() {
  if (!NeedModel()) return;
  Bytes model(g_model.data(), g_model.size());
  Trainer t;
  CHECK_STATUS(t.Init(model.data(), model.size(), nullptr, 0), Status::kArenaTooSmall);
  const tflm_train::ArenaReport r = t.arena_report();
  CHECK(r.required_bytes > 0);
  CHECK(r.activation_bytes > 0 && r.gradient_bytes > 0 && r.scratch_bytes > 0 && r.bookkeeping_bytes > 0);
  CHECK(r.optimizer_bytes == 0);  // no momentum
  CHECK_MSG(r.bookkeeping_bytes + r.activation_bytes + r.gradient_bytes + r.optimizer_bytes +
                    r.scratch_bytes == r.required_bytes,
            "parts %zu+%zu+%zu+%zu+%zu vs required %zu", r.bookkeeping_bytes, r.activation_bytes,
            r.gradient_bytes, r.optimizer_bytes, r.scratch_bytes, r.required_bytes);
  CHECK(strlen(t.error_message()) > 0);
  const ModelFacts facts = ReadFacts(model.data(), model.size());
  CHECK(facts.ok);
  CHECK_MSG(facts.planned_arena == r.required_bytes, "plan's memory says %u, Init measured %zu",
            facts.planned_arena, r.required_bytes);
  const size_t need = r.required_bytes;

  Bytes arena(need + 64);
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), 0), Status::kArenaTooSmall);
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need - 1), Status::kArenaTooSmall);
  CHECK(t.arena_report().required_bytes == need);
  float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, out[2];
  CHECK_STATUS(t.Predict(x, 4, out, 2), Status::kNotInitialized);  // failed Init leaves it unusable
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need), Status::kOk);
  CHECK(strlen(t.error_message()) == 0);
  CHECK(t.arena_report().required_bytes == need);
  CHECK_STATUS(t.Predict(x, 4, out, 2), Status::kOk);
  // A larger arena is fine too.
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need + 64), Status::kOk);
  CHECK(t.input_size() == 4 && t.output_size() == 2 && t.target_size() == 1);
  CHECK(t.num_trainable_layers() == 2 && t.layer_outputs(0) == 3 && t.layer_outputs(1) == 2);
  CHECK(t.layer_outputs(2) == 0 && t.layer_outputs(-1) == 0);
  CHECK(t.batch_size() == 1);
  CHECK(t.policy().kind == PolicyKind::kFull);
  CHECK(t.LearningRate() == 0.1f);
}

static void TestTrainerRejectsMisalignment() {
  if (!NeedModel()) return;
  Bytes model(g_model.data(), g_model.size());
  Trainer t;
  t.Init(model.data(), model.size(), nullptr, 0);
  const size_t need = t.arena_report().required_bytes;
  Bytes arena(need + 64);
  for (size_t off : {1, 2, 4, 8}) {
    CHECK_STATUS(t.Init(model.data(), model.size(), arena.data() + off, need), Status::kInvalidArgument);
  }
  for (size_t off : {1, 2}) {
    Bytes shifted(g_model.data(), g_model.size(), off);
    CHECK_STATUS(t.Init(shifted.data(), shifted.size(), arena.data(), need), Status::kInvalidArgument);
  }
  CHECK_STATUS(t.Init(nullptr, model.size(), arena.data(), need), Status::kInvalidArgument);
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need), Status::kOk);
}

static void TestTrainerRejectsBadModels() {
  if (!NeedModel()) return;
  Trainer t;
  Bytes arena(1 << 16);
  const size_t n = g_model.size();
  for (size_t len : {size_t{0}, size_t{4}, size_t{8}, size_t{16}, n / 4, n / 2, n - 200}) {
    Bytes cut(g_model.data(), len);
    CHECK_STATUS(t.Init(cut.data(), len, arena.data(), arena.size()), Status::kInvalidModel);
    if (len >= 8) {
      // A truncated copy followed by zeros (not just a short length).
      Bytes zeros(n);
      memcpy(zeros.data(), g_model.data(), len);
      const Status s = t.Init(zeros.data(), n, arena.data(), arena.size());
      CHECK_MSG(s != Status::kOk, "model cut to %zu bytes and zero-padded initialized", len);
    }
  }
  // Every truncation must fail cleanly (no crash, never a half-read model).
  int accepted = 0;
  size_t shortest = n;
  for (size_t len = 0; len < n; ++len) {
    Bytes cut(g_model.data(), len);
    if (t.Init(cut.data(), len, arena.data(), arena.size()) == Status::kOk) {
      ++accepted;
      shortest = std::min(shortest, len);
    }
  }
  // A cut may only be accepted when it removes bytes the trainer never reads
  // (the operator codes, outside the subset schema it verifies): everything it
  // uses must lie inside the cut.
  for (size_t len = shortest; len < n; ++len) {
    Bytes cut(g_model.data(), len);
    if (t.Init(cut.data(), len, arena.data(), arena.size()) != Status::kOk) continue;
    const ModelFacts f = ReadFacts(cut.data(), len);
    CHECK(f.ok);
    for (const LayerView& l : f.layers) {
      CHECK(reinterpret_cast<uint8_t*>(l.w + l.n_out * l.n_in) <= cut.data() + len);
      CHECK(l.b == nullptr || reinterpret_cast<uint8_t*>(l.b + l.n_out) <= cut.data() + len);
    }
  }
  CHECK(shortest > n / 2);
  printf("    %d truncations (the last %zu bytes: operator codes) still initialize\n", accepted,
         n - shortest);
  // Not a .tflite at all.
  Bytes junk(n);
  for (size_t i = 0; i < n; ++i) junk.data()[i] = static_cast<uint8_t>(i * 31 + 7);
  CHECK_STATUS(t.Init(junk.data(), n, arena.data(), arena.size()), Status::kInvalidModel);
  // Without the "tflm_train" metadata entry: kMissingPlan.
  Bytes renamed(g_model.data(), n);
  int renamed_count = 0;
  for (size_t i = 0; i + 10 <= n; ++i) {
    if (memcmp(renamed.data() + i, "tflm_train", 10) == 0) {
      renamed.data()[i] = 'x';
      ++renamed_count;
    }
  }
  CHECK(renamed_count >= 1);
  CHECK_STATUS(t.Init(renamed.data(), n, arena.data(), arena.size()), Status::kMissingPlan);
  // Bad options.
  Bytes model(g_model.data(), n);
  TrainerOptions big_batch;
  big_batch.batch_size = 70000;
  CHECK_STATUS(t.Init(model.data(), n, arena.data(), arena.size(), big_batch), Status::kInvalidArgument);
  TrainerOptions bad_policy;
  bad_policy.override_policy = true;
  bad_policy.policy.kind = PolicyKind::kStaticTopK;
  bad_policy.policy.ratio = 0.0f;
  CHECK_STATUS(t.Init(model.data(), n, arena.data(), arena.size(), bad_policy), Status::kInvalidArgument);
  CHECK(strlen(t.error_message()) > 0);
  CHECK_STATUS(t.Init(model.data(), n, arena.data(), arena.size()), Status::kOk);
}

static void TestTrainerPredict() {
  if (!NeedModel()) return;
  Session s(g_model);
  CHECK_STATUS(s.init, Status::kOk);
  Lcg rng(31);
  for (int iter = 0; iter < 20; ++iter) {
    float x[4], out[2] = {-1.0f, -1.0f};
    for (float& v : x) v = rng.Uniform(-5.0f, 5.0f);
    CHECK_STATUS(s.trainer.Predict(x, 4, out, 2), Status::kOk);
    CHECK_NEAR(out[0] + out[1], 1.0, 1e-6);
    CHECK(out[0] >= 0.0f && out[0] <= 1.0f && out[1] >= 0.0f && out[1] <= 1.0f);
    // Matches the reference forward pass.
    const ModelFacts f = ReadFacts(s.model.data(), s.model.size());
    std::vector<float> a(x, x + 4);
    for (const auto& l : f.layers) {
      std::vector<float> b(l.n_out);
      kernels::FullyConnected(a.data(), l.n_in, l.w, l.b, l.n_out, l.act, b.data());
      a = b;
    }
    float p[2];
    kernels::Softmax(a.data(), 1, 2, p);
    CHECK(p[0] == out[0] && p[1] == out[1]);
  }
  float x[4] = {0, 0, 0, 0}, out[3];
  CHECK_STATUS(s.trainer.Predict(x, 3, out, 2), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.Predict(x, 4, out, 3), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.Predict(x, 4, nullptr, 2), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.Predict(nullptr, 4, out, 2), Status::kInvalidArgument);
  x[2] = INFINITY;
  CHECK_STATUS(s.trainer.Predict(x, 4, out, 2), Status::kBadInput);
  Trainer fresh;
  CHECK_STATUS(fresh.Predict(x, 4, out, 2), Status::kNotInitialized);
  tflm_train::StepResult r;
  const float label = 0.0f;
  CHECK_STATUS(fresh.TrainStep(x, 4, &label, 1, 1, &r, nullptr), Status::kNotInitialized);
  uint8_t state[8];
  CHECK_STATUS(fresh.SaveState(state, sizeof(state)), Status::kNotInitialized);
  CHECK_STATUS(fresh.LoadState(state, sizeof(state)), Status::kNotInitialized);
}

static void TestTrainerRejectsBadSamples() {
  if (!NeedModel()) return;
  Session s(g_model);
  CHECK_STATUS(s.init, Status::kOk);
  const Bytes before(s.model.data(), s.model.size());
  const float x[4] = {0.5f, -1.0f, 0.25f, 1.0f};
  tflm_train::StepResult r;
  for (float label : {2.0f, 3.0f, -1.0f, 0.5f, 1.0001f, NAN, INFINITY, -INFINITY, 1e9f}) {
    CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 1, &r, nullptr), Status::kBadLabel);
    CHECK(strlen(s.trainer.error_message()) > 0);
  }
  const float label = 1.0f;
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    for (int at = 0; at < 4; ++at) {
      float xb[4] = {0.5f, -1.0f, 0.25f, 1.0f};
      xb[at] = bad;
      CHECK_STATUS(s.trainer.TrainStep(xb, 4, &label, 1, 1, &r, nullptr), Status::kBadInput);
    }
  }
  CHECK_STATUS(s.trainer.TrainStep(x, 3, &label, 1, 1, &r, nullptr), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 2, 1, &r, nullptr), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 0, &r, nullptr), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 2, &r, nullptr), Status::kInvalidArgument);  // batch 1
  CHECK_STATUS(s.trainer.TrainStep(x, 4, nullptr, 1, 1, &r, nullptr), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 1, nullptr, nullptr), Status::kInvalidArgument);
  float loss, correct;
  const float bad_label = 5.0f;
  CHECK_STATUS(s.trainer.EvaluateSample(x, 4, &bad_label, 1, &loss, &correct), Status::kBadLabel);
  CHECK(before.Same(s.model));  // nothing trained, nothing written
  CHECK(s.trainer.counters().steps == 0 && s.trainer.counters().samples == 0);
  // A bad sample anywhere in a batch trains nothing.
  TrainerOptions batch3;
  batch3.batch_size = 3;
  Session b(g_model, batch3);
  CHECK_STATUS(b.init, Status::kOk);
  const Bytes b_before(b.model.data(), b.model.size());
  float xs[12] = {0.5f, -1.0f, 0.25f, 1.0f, 0.1f, 0.2f, 0.3f, 0.4f, 1, 2, 3, 4};
  float ys[3] = {0.0f, 1.0f, 7.0f};
  CHECK_STATUS(b.trainer.TrainStep(xs, 4, ys, 1, 3, &r, nullptr), Status::kBadLabel);
  ys[2] = 1.0f;
  xs[9] = NAN;
  CHECK_STATUS(b.trainer.TrainStep(xs, 4, ys, 1, 3, &r, nullptr), Status::kBadInput);
  CHECK(b_before.Same(b.model));
  xs[9] = 2.0f;
  CHECK_STATUS(b.trainer.TrainStep(xs, 4, ys, 1, 3, &r, nullptr), Status::kOk);
  CHECK(!b_before.Same(b.model));
  CHECK(r.samples == 3 && r.trained == 3 && r.updated);
}

static void TestTrainerLearnsOneSample() {
  if (!NeedModel()) return;
  Session s(g_model);
  CHECK_STATUS(s.init, Status::kOk);
  const float x[4] = {0.5f, -1.0f, 0.25f, 1.0f};
  const float label = 1.0f;
  float loss0 = 0, correct0 = 0;
  CHECK_STATUS(s.trainer.EvaluateSample(x, 4, &label, 1, &loss0, &correct0), Status::kOk);
  CHECK(loss0 > 0.0f && isfinite(loss0));
  tflm_train::StepResult r;
  tflm_train::SampleResult per[1];
  float first_step_loss = -1.0f, last = 0.0f;
  for (int i = 0; i < 20; ++i) {
    CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 1, &r, per), Status::kOk);
    if (i == 0) first_step_loss = r.loss;
    last = r.loss;
    CHECK(r.samples == 1 && r.trained == 1 && r.skipped == 0 && r.updated);
    CHECK(r.learning_rate == 0.1f);
    CHECK(per[0].num_layers == 2 && per[0].k[0] == 3 && per[0].k[1] == 2 && !per[0].skipped);
    CHECK(per[0].forward_macs == 4 * 3 + 3 * 2 && r.forward_macs == per[0].forward_macs);
    CHECK(per[0].loss == r.loss);
  }
  CHECK(first_step_loss == loss0);  // the step reports the loss before its update
  float loss1 = 0, correct1 = 0;
  CHECK_STATUS(s.trainer.EvaluateSample(x, 4, &label, 1, &loss1, &correct1), Status::kOk);
  CHECK_MSG(loss1 < loss0, "loss %.6g -> %.6g after 20 steps", loss0, loss1);
  CHECK_MSG(loss1 < 0.5f * loss0, "loss only went from %.6g to %.6g", loss0, loss1);
  CHECK(last < first_step_loss);
  CHECK(correct1 == 1.0f);
  const tflm_train::Counters& c = s.trainer.counters();
  CHECK(c.steps == 20 && c.updates == 20 && c.samples == 20 && c.trained == 20 && c.skipped == 0);
  CHECK(c.forward_macs == 20u * 18u);
  // The trained bytes are still a valid trainable model, and predict the same.
  Bytes copy(s.model.data(), s.model.size());
  Trainer again;
  Bytes arena(s.arena.size());
  CHECK_STATUS(again.Init(copy.data(), copy.size(), arena.data(), arena.size()), Status::kOk);
  float o1[2], o2[2];
  CHECK_STATUS(s.trainer.Predict(x, 4, o1, 2), Status::kOk);
  CHECK_STATUS(again.Predict(x, 4, o2, 2), Status::kOk);
  CHECK(o1[0] == o2[0] && o1[1] == o2[1]);
}

// Trains `steps` batches with the trainer and the reference side by side.
static void CompareWithReference(const std::vector<uint8_t>& src, const TrainerOptions& options,
                                 int steps, int batch, uint64_t seed, const char* label) {
  Session s(src, options);
  CHECK_MSG(s.init == Status::kOk, "%s: Init %s", label, tflm_train::StatusName(s.init));
  if (s.init != Status::kOk) return;
  Bytes ref_bytes(src.data(), src.size());
  const ModelFacts tf = ReadFacts(s.model.data(), s.model.size());
  const ModelFacts rf = ReadFacts(ref_bytes.data(), ref_bytes.size());
  CHECK(tf.ok && rf.ok);
  if (!tf.ok || !rf.ok) return;
  const PolicyParams policy = options.override_policy ? options.policy : s.trainer.policy();
  ReferenceTrainer ref(rf, policy, s.trainer.batch_size() > 1);
  Lcg rng(seed);
  const int L = static_cast<int>(rf.layers.size());
  int trained_total = 0, skipped_total = 0;
  double worst = 0.0;
  for (int step = 0; step < steps; ++step) {
    const int num = batch > 1 ? rng.Int(1, batch) : 1;
    std::vector<float> xs, ys;
    MakeSamples(rng, num, 4, 2, &xs, &ys);
    const float lr = tflm_train::ScheduledLearningRate(rf.schedule, rf.lr, static_cast<uint64_t>(step),
                                                       rf.decay_steps, rf.warmup_steps, rf.alpha,
                                                       rf.warmup_initial);
    CHECK_MSG(s.trainer.LearningRate() == lr, "%s step %d: LearningRate %.9g vs %.9g", label, step,
              s.trainer.LearningRate(), lr);
    tflm_train::StepResult r;
    std::vector<tflm_train::SampleResult> per(num);
    const Status st = s.trainer.TrainStep(xs.data(), 4, ys.data(), 1, num, &r, per.data());
    CHECK_MSG(st == Status::kOk, "%s step %d: %s (%s)", label, step, tflm_train::StatusName(st),
              s.trainer.error_message());
    std::vector<std::vector<int>> ks;
    const int trained = ref.Step(xs.data(), 4, ys.data(), num, lr, &ks);
    CHECK_MSG(static_cast<int>(r.trained) == trained, "%s step %d: trained %u vs reference %d", label,
              step, r.trained, trained);
    CHECK(static_cast<int>(r.samples) == num && static_cast<int>(r.skipped) == num - trained);
    CHECK(r.updated == (trained > 0));
    CHECK(r.learning_rate == lr);
    uint64_t backward_total = 0, selection_total = 0;
    for (int i = 0; i < num; ++i) {
      // docs/algorithm.md effort: weight gradient k*n_in per layer, plus input
      // gradient k*n_in for all but the first trainable layer.
      uint64_t macs = 0;
      bool all_rows = true;
      for (int l = 0; l < L; ++l) {
        CHECK_MSG(per[i].k[l] == ks[i][l], "%s step %d sample %d layer %d: k %d vs reference %d", label,
                  step, i, l, per[i].k[l], ks[i][l]);
        macs += static_cast<uint64_t>(ks[i][l]) * rf.layers[l].n_in * (l > 0 ? 2 : 1);
        all_rows = all_rows && ks[i][l] == rf.layers[l].n_out;
      }
      CHECK_MSG(per[i].backward_macs == macs, "%s step %d sample %d: backward MACs %llu vs %llu", label,
                step, i, static_cast<unsigned long long>(per[i].backward_macs),
                static_cast<unsigned long long>(macs));
      CHECK(per[i].forward_macs == 4 * 3 + 3 * 2);
      CHECK(per[i].skipped == (ks[i][L - 1] == 0));
      CHECK(per[i].num_layers == L);
      if (all_rows) CHECK(per[i].selection_ops == 0);  // k == n needs no selection
      if (!all_rows && !per[i].skipped) CHECK(per[i].selection_ops > 0);
      backward_total += per[i].backward_macs;
      selection_total += per[i].selection_ops;
    }
    CHECK(r.backward_macs == backward_total && r.selection_ops == selection_total);
    for (int l = 0; l < L; ++l) {
      CHECK_MSG(s.trainer.layer_ymax(l) == ref.ymax[l], "%s step %d layer %d: ymax %.9g vs %.9g", label,
                step, l, s.trainer.layer_ymax(l), ref.ymax[l]);
    }
    const double diff = MaxWeightDiff(tf.layers, rf.layers);
    worst = std::max(worst, diff);
    CHECK_MSG(diff <= 1e-6, "%s step %d: weights differ from the reference by %.3g", label, step, diff);
    trained_total += trained;
    skipped_total += num - trained;
  }
  printf("    %s: %d steps, %d trained, %d skipped, max weight diff %.3g\n", label, steps, trained_total,
         skipped_total, worst);
}

static void TestTrainerMatchesReference() {
  if (!NeedModel()) return;
  TrainerOptions full;
  CompareWithReference(g_model, full, 25, 1, 1, "Full");
  TrainerOptions topk;
  topk.override_policy = true;
  topk.policy.kind = PolicyKind::kStaticTopK;
  topk.policy.ratio = 0.5f;
  CompareWithReference(g_model, topk, 25, 1, 2, "StaticTopK(0.5)");
  TrainerOptions tp;
  tp.override_policy = true;
  tp.policy.kind = PolicyKind::kTinyProp;
  tp.policy.ymax_decay = 0.9f;
  CompareWithReference(g_model, tp, 40, 1, 3, "TinyProp(decay 0.9)");
  TrainerOptions v2;
  v2.override_policy = true;
  v2.policy.kind = PolicyKind::kTinyPropV2;
  CompareWithReference(g_model, v2, 40, 1, 4, "TinyPropV2");
  TrainerOptions full_batch = full;
  full_batch.batch_size = 4;
  CompareWithReference(g_model, full_batch, 20, 4, 5, "Full batch 4");
  TrainerOptions v2_batch = v2;
  v2_batch.batch_size = 5;
  CompareWithReference(g_model, v2_batch, 20, 5, 6, "TinyPropV2 batch 5");
  TrainerOptions tp_batch = tp;
  tp_batch.batch_size = 3;
  CompareWithReference(g_model, tp_batch, 20, 3, 7, "TinyProp batch 3");
}

static void TestTrainerMomentumMatchesReference() {
  if (g_momentum.empty()) {
    CHECK_MSG(false, "no momentum model path given");
    return;
  }
  Bytes m(g_momentum.data(), g_momentum.size());
  const ModelFacts f = ReadFacts(m.data(), m.size());
  CHECK(f.ok);
  CHECK(f.momentum == 0.9f && f.weight_decay == 0.01f && f.schedule == 1 && f.decay_steps == 100 &&
        f.warmup_steps == 5 && f.batch_size == 4);
  CHECK_NEAR(f.lr, 0.1, 1e-7);
  CHECK_NEAR(f.alpha, 0.1, 1e-7);
  CHECK_NEAR(f.warmup_initial, 0.01, 1e-9);
  TrainerOptions plan_defaults;  // batch 4 from the plan: accumulated updates
  CompareWithReference(g_momentum, plan_defaults, 30, 4, 11, "momentum+decay+cosine batch 4");
  TrainerOptions direct;
  direct.batch_size = 1;  // direct updates of every row (momentum)
  CompareWithReference(g_momentum, direct, 30, 1, 12, "momentum+decay+cosine batch 1");
  TrainerOptions sparse = direct;
  sparse.override_policy = true;
  sparse.policy.kind = PolicyKind::kStaticTopK;
  sparse.policy.ratio = 0.34f;
  CompareWithReference(g_momentum, sparse, 30, 1, 13, "momentum StaticTopK(0.34) batch 1");
  TrainerOptions sparse_batch = sparse;
  sparse_batch.batch_size = 4;
  CompareWithReference(g_momentum, sparse_batch, 30, 4, 14, "momentum StaticTopK(0.34) batch 4");
  // The schedule the trainer follows, against float64 Keras.
  Session s(g_momentum, direct);
  CHECK_STATUS(s.init, Status::kOk);
  tflm_train::StepResult r;
  const float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, y = 1.0f;
  for (int step = 0; step < 120; ++step) {
    const double want = ReferenceRate(true, f.lr, step, 100, 5, f.alpha, f.warmup_initial);
    CHECK_MSG(fabs(s.trainer.LearningRate() - want) <= 1e-6 * want, "step %d: %.9g vs %.9g", step,
              s.trainer.LearningRate(), want);
    CHECK_STATUS(s.trainer.TrainStep(x, 4, &y, 1, 1, &r, nullptr), Status::kOk);
  }
}

static void TestTrainerBatchTwins() {
  if (!NeedModel()) return;
  // The mean of two identical gradients is that gradient, bit for bit: a batch
  // of twins (accumulated path) must equal one direct step on that sample.
  TrainerOptions batch2;
  batch2.batch_size = 2;
  Session one(g_model), two(g_model, batch2);
  CHECK_STATUS(one.init, Status::kOk);
  CHECK_STATUS(two.init, Status::kOk);
  CHECK(two.trainer.arena_report().gradient_bytes > one.trainer.arena_report().gradient_bytes);
  Lcg rng(21);
  for (int step = 0; step < 10; ++step) {
    std::vector<float> x, y;
    MakeSamples(rng, 1, 4, 2, &x, &y);
    const float xs[8] = {x[0], x[1], x[2], x[3], x[0], x[1], x[2], x[3]};
    const float ys[2] = {y[0], y[0]};
    tflm_train::StepResult r1, r2;
    CHECK_STATUS(one.trainer.TrainStep(x.data(), 4, y.data(), 1, 1, &r1, nullptr), Status::kOk);
    CHECK_STATUS(two.trainer.TrainStep(xs, 4, ys, 1, 2, &r2, nullptr), Status::kOk);
    CHECK(r1.loss == r2.loss && r2.samples == 2 && r2.trained == 2 && r2.correct == 2 * r1.correct);
    CHECK_MSG(one.model.Same(two.model), "step %d: batch of twins differs from one sample", step);
  }
  // And a one-sample batch on the batch trainer equals the direct step too.
  std::vector<float> x, y;
  MakeSamples(rng, 1, 4, 2, &x, &y);
  tflm_train::StepResult r;
  CHECK_STATUS(one.trainer.TrainStep(x.data(), 4, y.data(), 1, 1, &r, nullptr), Status::kOk);
  CHECK_STATUS(two.trainer.TrainStep(x.data(), 4, y.data(), 1, 1, &r, nullptr), Status::kOk);
  CHECK(one.model.Same(two.model));
}

static void TestTrainerGateSkipsEverything() {
  if (!NeedModel()) return;
  TrainerOptions never;
  never.override_policy = true;
  never.policy.kind = PolicyKind::kTinyPropV2;
  never.policy.tau = 10.0f;  // D <= 1 < tau
  Session s(g_model, never);
  CHECK_STATUS(s.init, Status::kOk);
  const Bytes before(s.model.data(), s.model.size());
  const float x[4] = {0.5f, -1.0f, 0.25f, 1.0f}, label = 0.0f;
  tflm_train::StepResult r;
  tflm_train::SampleResult per[1];
  for (int i = 0; i < 5; ++i) {
    CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 1, &r, per), Status::kOk);
    CHECK(!r.updated && r.skipped == 1 && r.trained == 0 && per[0].skipped);
    CHECK(per[0].k[0] == 0 && per[0].k[1] == 0 && r.loss > 0.0f);
  }
  CHECK(before.Same(s.model));
  CHECK(s.trainer.counters().steps == 5 && s.trainer.counters().skipped == 5 &&
        s.trainer.counters().updates == 0);
  CHECK(s.trainer.layer_ymax(1) > 0.0f);  // the output layer's Ymax is still tracked
  s.trainer.ResetPolicyState();
  CHECK(s.trainer.layer_ymax(0) == 0.0f && s.trainer.layer_ymax(1) == 0.0f);
}

// Saves A's state after some steps, loads it into B over a copy of A's bytes;
// then both must train identically.
static void StateRoundTrip(const std::vector<uint8_t>& src, const TrainerOptions& options,
                           const char* label) {
  Session a(src, options);
  CHECK_STATUS(a.init, Status::kOk);
  Lcg rng(55);
  const uint32_t batch = a.trainer.batch_size();
  std::vector<float> xs, ys;
  tflm_train::StepResult r;
  for (int i = 0; i < 7; ++i) {
    MakeSamples(rng, static_cast<int>(batch), 4, 2, &xs, &ys);
    CHECK_STATUS(a.trainer.TrainStep(xs.data(), 4, ys.data(), 1, batch, &r, nullptr), Status::kOk);
  }
  const size_t n = a.trainer.StateBytes();
  CHECK(n > 0);
  std::vector<uint8_t> state(n + 1);
  CHECK_STATUS(a.trainer.SaveState(state.data(), n - 1), Status::kInvalidArgument);
  CHECK_STATUS(a.trainer.SaveState(state.data(), n + 1), Status::kInvalidArgument);
  CHECK_STATUS(a.trainer.SaveState(nullptr, n), Status::kInvalidArgument);
  CHECK_STATUS(a.trainer.SaveState(state.data(), n), Status::kOk);

  Session b(std::vector<uint8_t>(a.model.data(), a.model.data() + a.model.size()), options);
  Session c(std::vector<uint8_t>(a.model.data(), a.model.data() + a.model.size()), options);  // no state
  CHECK_STATUS(b.init, Status::kOk);
  CHECK(b.trainer.StateBytes() == n);
  CHECK_STATUS(b.trainer.LoadState(state.data(), n - 1), Status::kInvalidArgument);
  std::vector<uint8_t> corrupt = state;
  corrupt[0] ^= 0xFF;
  CHECK_STATUS(b.trainer.LoadState(corrupt.data(), n), Status::kInvalidArgument);
  CHECK_STATUS(b.trainer.LoadState(state.data(), n), Status::kOk);
  const tflm_train::Counters& ca = a.trainer.counters();
  const tflm_train::Counters& cb = b.trainer.counters();
  CHECK(ca.steps == cb.steps && ca.samples == cb.samples && ca.trained == cb.trained &&
        ca.forward_macs == cb.forward_macs && ca.selection_ops == cb.selection_ops);
  CHECK(a.trainer.LearningRate() == b.trainer.LearningRate());
  for (int l = 0; l < a.trainer.num_trainable_layers(); ++l) {
    CHECK(a.trainer.layer_ymax(l) == b.trainer.layer_ymax(l));
  }
  std::vector<uint8_t> again(n);
  CHECK_STATUS(b.trainer.SaveState(again.data(), n), Status::kOk);
  CHECK(memcmp(again.data(), state.data(), n) == 0);
  CHECK(a.model.Same(b.model));
  for (int i = 0; i < 5; ++i) {
    MakeSamples(rng, static_cast<int>(batch), 4, 2, &xs, &ys);
    CHECK_STATUS(a.trainer.TrainStep(xs.data(), 4, ys.data(), 1, batch, &r, nullptr), Status::kOk);
    CHECK_STATUS(b.trainer.TrainStep(xs.data(), 4, ys.data(), 1, batch, &r, nullptr), Status::kOk);
    CHECK_STATUS(c.trainer.TrainStep(xs.data(), 4, ys.data(), 1, batch, &r, nullptr), Status::kOk);
  }
  CHECK_MSG(a.model.Same(b.model), "%s: model bytes differ after loading the state", label);
  printf("    %s: %zu state bytes; without the state the weights %s\n", label, n,
         a.model.Same(c.model) ? "happen to match" : "differ (state matters)");
}

static void TestTrainerStateRoundTrip() {
  if (!NeedModel()) return;
  TrainerOptions plain;
  StateRoundTrip(g_model, plain, "Full");
  TrainerOptions tp;
  tp.override_policy = true;
  tp.policy.kind = PolicyKind::kTinyProp;
  tp.policy.ymax_decay = 0.95f;
  StateRoundTrip(g_model, tp, "TinyProp");
  {
    Session s(g_model);
    // magic, version, layer count, momentum flag, parameter count; counters; one Ymax
    // per layer; no velocities.
    CHECK(s.trainer.StateBytes() == 5 * sizeof(uint32_t) + sizeof(tflm_train::Counters) + 2 * sizeof(float));
  }
  {
    // The model array carries its own state: after StoreStateInModel a new Init over
    // the same bytes resumes; restore_state = false starts fresh.
    Session a(g_model);
    CHECK(a.trainer.HasStateInModel());
    Lcg rng(56);
    std::vector<float> xs, ys;
    tflm_train::StepResult r;
    for (int i = 0; i < 5; ++i) {
      MakeSamples(rng, 1, 4, 2, &xs, &ys);
      CHECK_STATUS(a.trainer.TrainStep(xs.data(), 4, ys.data(), 1, 1, &r, nullptr), Status::kOk);
    }
    a.trainer.CountEpoch();
    CHECK_STATUS(a.trainer.StoreStateInModel(), Status::kOk);
    const std::vector<uint8_t> saved(a.model.data(), a.model.data() + a.model.size());
    Session b(saved);
    CHECK_STATUS(b.init, Status::kOk);
    CHECK(b.trainer.counters().steps == 5 && b.trainer.counters().epochs == 1);
    CHECK(b.trainer.LearningRate() == a.trainer.LearningRate());
    TrainerOptions fresh;
    fresh.restore_state = false;
    Session c(saved, fresh);
    CHECK_STATUS(c.init, Status::kOk);
    CHECK(c.trainer.counters().steps == 0 && c.trainer.layer_ymax(0) == 0.0f);
  }
  if (!g_momentum.empty()) {
    TrainerOptions direct;
    direct.batch_size = 1;
    StateRoundTrip(g_momentum, direct, "momentum batch 1");
    TrainerOptions defaults;
    StateRoundTrip(g_momentum, defaults, "momentum batch 4");
    Session s(g_momentum);
    const size_t velocities = (3 * 4 + 3 + 2 * 3 + 2) * sizeof(float);
    CHECK(s.trainer.StateBytes() ==
          5 * sizeof(uint32_t) + sizeof(tflm_train::Counters) + 2 * sizeof(float) + velocities);
    // A state without momentum does not load into a trainer with momentum.
    Session plain_s(g_model);
    std::vector<uint8_t> st(plain_s.trainer.StateBytes());
    CHECK_STATUS(plain_s.trainer.SaveState(st.data(), st.size()), Status::kOk);
    CHECK_STATUS(s.trainer.LoadState(st.data(), st.size()), Status::kInvalidArgument);
  }
}

static void TestTrainerNoHeapAllocation() {
  if (!NeedModel()) return;
  TrainerOptions batch3;
  batch3.batch_size = 3;
  for (int variant = 0; variant < 3; ++variant) {
    const std::vector<uint8_t>& src = variant == 2 && !g_momentum.empty() ? g_momentum : g_model;
    TrainerOptions opts = variant == 0 ? TrainerOptions() : batch3;
    if (variant == 1) {
      opts.override_policy = true;
      opts.policy.kind = PolicyKind::kTinyPropV2;
      opts.policy.tau = 0.2f;
    }
    Bytes model(src.data(), src.size());
    Bytes arena(Session::Required(src, opts));
    std::vector<uint8_t> state(4096);
    float xs[12] = {0.5f, -1.0f, 0.25f, 1.0f, 0.1f, 0.2f, 0.3f, 0.4f, -1, 2, -3, 4};
    float ys[3] = {1.0f, 0.0f, 1.0f}, out[2], loss, correct;
    tflm_train::StepResult r;
    tflm_train::SampleResult per[3];
    Trainer t;
    const unsigned long start = g_heap_calls;
    Status init = t.Init(model.data(), model.size(), nullptr, 0, opts);
    init = t.Init(model.data(), model.size(), arena.data(), arena.size(), opts);
    const unsigned long after_init = g_heap_calls;
    Status step = Status::kOk;
    const uint32_t batch = t.batch_size() < 3 ? t.batch_size() : 3;
    for (int i = 0; i < 10 && step == Status::kOk; ++i) {
      step = t.TrainStep(xs, 4, ys, 1, batch, &r, (i & 1) ? per : nullptr);
      xs[i % 12] += 0.25f;
    }
    const unsigned long after_steps = g_heap_calls;
    const Status single = t.TrainStep(xs, 4, ys + 1, 1, 1, &r, nullptr);  // one sample, label 0
    ys[2] = 9.0f;
    const Status bad_label = t.TrainStep(xs, 4, ys + 2, 1, 1, &r, nullptr);
    const Status predict = t.Predict(xs, 4, out, 2);
    const Status eval = t.EvaluateSample(xs, 4, ys, 1, &loss, &correct);
    const size_t n = t.StateBytes();
    const Status save = t.SaveState(state.data(), n);
    const Status load = t.LoadState(state.data(), n);
    t.ResetPolicyState();
    const unsigned long end = g_heap_calls;
    CHECK_STATUS(init, Status::kOk);
    CHECK_STATUS(step, Status::kOk);
    CHECK_STATUS(single, Status::kOk);
    CHECK_STATUS(bad_label, Status::kBadLabel);
    CHECK_STATUS(predict, Status::kOk);
    CHECK_STATUS(eval, Status::kOk);
    CHECK_STATUS(save, Status::kOk);
    CHECK_STATUS(load, Status::kOk);
    CHECK_MSG(after_init == start, "variant %d: Init made %lu heap allocations", variant, after_init - start);
    CHECK_MSG(after_steps == after_init, "variant %d: 10 TrainSteps made %lu heap allocations", variant,
              after_steps - after_init);
    CHECK_MSG(end == after_steps, "variant %d: Predict/Evaluate/State made %lu heap allocations", variant,
              end - after_steps);
  }
}

// Runs fn in a child process; true when it exits normally with status 0.
static bool RunsCleanly(const std::function<void()>& fn, int* signal_out) {
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    fn();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  *signal_out = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void TestTrainerAccessorsAfterFailedInit() {
  // The measuring call (arena == nullptr) is the documented way to size the
  // arena; the const accessors must be safe afterwards, for every model.
  for (int which = 0; which < 2; ++which) {
    const std::vector<uint8_t>& src = which == 0 ? g_model : g_momentum;
    if (src.empty()) continue;  // the momentum model is optional
    int sig = 0;
    const bool ok = RunsCleanly(
        [&src]() {
          Bytes model(src.data(), src.size());
          Trainer t;
          if (t.Init(model.data(), model.size(), nullptr, 0) != Status::kArenaTooSmall) _exit(3);
          volatile size_t bytes = t.StateBytes();
          (void)bytes;
          volatile float lr = t.LearningRate();
          (void)lr;
          volatile float ymax = t.layer_ymax(0);
          (void)ymax;
          volatile size_t outs = t.layer_outputs(0);
          (void)outs;
          t.ResetPolicyState();
          uint8_t buf[16];
          if (t.SaveState(buf, sizeof(buf)) != Status::kNotInitialized) _exit(4);
        },
        &sig);
    CHECK_MSG(ok, "%s model: after Init(model, size, nullptr, 0) -> kArenaTooSmall, calling "
              "StateBytes()/accessors %s (signal %d)",
              which == 0 ? "plain" : "momentum", sig ? "crashed" : "failed", sig);
    // The same after a successful Init followed by one that fails for a too-small arena.
    const bool ok2 = RunsCleanly(
        [&src]() {
          Bytes model(src.data(), src.size());
          Trainer t;
          t.Init(model.data(), model.size(), nullptr, 0);
          Bytes arena(t.arena_report().required_bytes);
          if (t.Init(model.data(), model.size(), arena.data(), arena.size()) != Status::kOk) _exit(3);
          if (t.Init(model.data(), model.size(), arena.data(), arena.size() - 1) != Status::kArenaTooSmall) {
            _exit(4);
          }
          volatile size_t bytes = t.StateBytes();
          (void)bytes;
        },
        &sig);
    CHECK_MSG(ok2, "%s model: Init OK, then Init with an arena 1 byte short, then StateBytes() %s "
              "(signal %d)", which == 0 ? "plain" : "momentum", sig ? "crashed" : "failed", sig);
  }
}

// ---------------------------------------------------------------------------

struct TestCase {
  const char* name;
  void (*fn)();
  bool needs_model;
};

static const TestCase kTests[] = {
    {"allocation_counter_works", TestAllocationCounterWorks, false},
    {"status_names", TestStatusNames, false},
    {"top_k_matches_brute_force", TestTopKMatchesBruteForce, false},
    {"top_k_signed_ties_lower_index_wins", TestTopKSignedTiesLowerIndexWins, false},
    {"top_k_k_equals_n_is_all_rows", TestTopKAllRowsWhenKEqualsN, false},
    {"top_k_comparisons_linear", TestTopKComparisonsLinear, false},
    {"policy_full_and_static_top_k", TestPolicyFullAndStatic, false},
    {"policy_tinyprop_kept_outputs", TestPolicyTinyProp, false},
    {"policy_ymax_and_total_error", TestPolicyYmaxAndTotalError, false},
    {"policy_tinypropv2_gate", TestPolicyGate, false},
    {"policy_check_rejects_bad_params", TestCheckPolicy, false},
    {"sgd_plain", TestSgdPlain, false},
    {"sgd_momentum_two_steps", TestSgdMomentum, false},
    {"sgd_weight_decay_first", TestSgdWeightDecay, false},
    {"sgd_rank_one_equals_dense", TestSgdRankOne, false},
    {"sgd_schedules", TestSchedules, false},
    {"loss_value_and_gradient_vs_finite_differences", TestLossesAgainstFiniteDifferences, false},
    {"loss_correct_flags", TestLossCorrectFlags, false},
    {"loss_extreme_logits", TestLossExtremeLogits, false},
    {"fc_forward_vs_naive", TestFullyConnectedForward, false},
    {"fc_input_grad_row_subset", TestFullyConnectedInputGradSubset, false},
    {"fc_accumulate_grad", TestFullyConnectedAccumulateGrad, false},
    {"activation_relu_backward", TestActivationBackward, false},
    {"conv_backward_subset_equals_masked_dense", TestConvBackwardSubsetEqualsMaskedDense, false},
    {"conv_backward_is_adjoint_of_forward", TestConvBackwardIsAdjointOfForward, false},
    {"pool_mean_pad_backward_are_adjoints", TestPoolMeanPadBackwardAreAdjoints, false},
    {"maxpool_routes_to_first_maximum", TestMaxPoolRoutesToFirstMaximum, false},
    {"add_and_bias_grad", TestAddAndBiasGrad, false},
    {"activation_softmax_logistic_tanh_backward_vs_fd", TestSmoothActivationsAgainstFiniteDifferences,
     false},
    {"trainer_arena_sizing", TestTrainerArenaSizing, true},
    {"trainer_rejects_misalignment", TestTrainerRejectsMisalignment, true},
    {"trainer_rejects_bad_models_and_options", TestTrainerRejectsBadModels, true},
    {"trainer_predict", TestTrainerPredict, true},
    {"trainer_rejects_bad_samples_unchanged", TestTrainerRejectsBadSamples, true},
    {"trainer_learns_one_sample", TestTrainerLearnsOneSample, true},
    {"trainer_matches_reference", TestTrainerMatchesReference, true},
    {"trainer_momentum_matches_reference", TestTrainerMomentumMatchesReference, true},
    {"trainer_batch_of_twins_equals_one_sample", TestTrainerBatchTwins, true},
    {"trainer_gate_skips_everything", TestTrainerGateSkipsEverything, true},
    {"trainer_state_round_trip", TestTrainerStateRoundTrip, true},
    {"trainer_no_heap_allocation", TestTrainerNoHeapAllocation, true},
    {"trainer_accessors_after_failed_init", TestTrainerAccessorsAfterFailedInit, true},
};

static bool ReadFile(const char* path, std::vector<uint8_t>* out) {
  FILE* f = fopen(path, "rb");
  if (f == nullptr) return false;
  uint8_t buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out->insert(out->end(), buf, buf + n);
  fclose(f);
  return !out->empty();
}

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc > 1 && !ReadFile(argv[1], &g_model)) {
    printf("cannot read model %s\n", argv[1]);
    return 2;
  }
  if (argc > 2 && !ReadFile(argv[2], &g_momentum)) {
    printf("cannot read model %s\n", argv[2]);
    return 2;
  }
  int passed = 0, failed = 0, skipped = 0;
  for (const TestCase& t : kTests) {
    if (t.needs_model && g_model.empty()) {
      printf("SKIP %s (no model path given)\n", t.name);
      ++skipped;
      continue;
    }
    if (strcmp(t.name, "trainer_momentum_matches_reference") == 0 && g_momentum.empty()) {
      printf("SKIP %s (no momentum model path given)\n", t.name);
      ++skipped;
      continue;
    }
    g_check_failures = 0;
    g_printed_failures = 0;
    t.fn();
    if (g_check_failures == 0) {
      printf("PASS %s\n", t.name);
      ++passed;
    } else {
      printf("FAIL %s (%d checks failed)\n", t.name, g_check_failures);
      ++failed;
    }
  }
  if (skipped > 0) printf("(%d tests skipped)\n", skipped);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
