// A tiny test harness for the micro_kernels unit tests: no framework, no Python.
//
//   TEST(TopKSignedTies) { CHECK(...); CHECK_NEAR(a, b, 1e-6); CHECK_STATUS(s, Status::kOk); }
//   int main() { return test::RunAll(); }
//
// Each test executable is one source file that includes this header once. RunAll
// prints one PASS/FAIL line per test and ends with "N passed, M failed"; its
// result (the exit status) is non-zero when any test failed.
#ifndef TFLM_TRAIN_TESTS_TEST_HARNESS_H_
#define TFLM_TRAIN_TESTS_TEST_HARNESS_H_

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tflm_train/status.h"

namespace test {

struct Case {
  const char* name;
  void (*fn)();
};

constexpr int kMaxCases = 128;
inline Case g_cases[kMaxCases];
inline int g_num_cases = 0;
inline int g_check_failures = 0;    // in the running test
inline int g_printed_failures = 0;  // in the running test

struct Registrar {
  Registrar(const char* name, void (*fn)()) {
    if (g_num_cases < kMaxCases) g_cases[g_num_cases++] = Case{name, fn};
  }
};

inline void ReportFailure(const char* file, int line, const char* expr, const char* detail) {
  ++g_check_failures;
  if (++g_printed_failures <= 12) {
    printf("    %s:%d: CHECK(%s) failed%s%s\n", file, line, expr, detail[0] ? ": " : "", detail);
  } else if (g_printed_failures == 13) {
    printf("    ... (further failures in this test not shown)\n");
  }
}

inline int RunAll() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int passed = 0, failed = 0;
  if (g_num_cases >= kMaxCases) {
    printf("too many tests in one executable (raise test::kMaxCases)\n");
    ++failed;
  }
  for (int i = 0; i < g_num_cases; ++i) {
    g_check_failures = 0;
    g_printed_failures = 0;
    g_cases[i].fn();
    if (g_check_failures == 0) {
      ++passed;
      printf("PASS %s\n", g_cases[i].name);
    } else {
      ++failed;
      printf("FAIL %s (%d failed checks)\n", g_cases[i].name, g_check_failures);
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}

// Fixed-seed 64-bit LCG (Knuth's MMIX constants): the same numbers everywhere.
struct Lcg {
  uint64_t state;
  explicit Lcg(uint64_t seed) : state(seed) {}
  uint32_t Next() {  // 31 random bits
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  }
  int Int(int lo, int hi) { return lo + static_cast<int>(Next() % static_cast<uint32_t>(hi - lo + 1)); }
  float Uniform(float lo, float hi) { return lo + (hi - lo) * (static_cast<float>(Next()) / 2147483648.0f); }
  bool Coin() { return (Next() & 1u) != 0; }
};

}  // namespace test

#define TEST(name)                                                \
  static void name();                                             \
  static const test::Registrar name##_registrar_(#name, name);   \
  static void name()

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) test::ReportFailure(__FILE__, __LINE__, #cond, "");  \
  } while (0)

#define CHECK_MSG(cond, ...)                                          \
  do {                                                                \
    if (!(cond)) {                                                    \
      char detail_[600];                                              \
      snprintf(detail_, sizeof(detail_), __VA_ARGS__);                \
      test::ReportFailure(__FILE__, __LINE__, #cond, detail_);        \
    }                                                                 \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                             \
  do {                                                                                    \
    const double a_ = static_cast<double>(a), b_ = static_cast<double>(b);                \
    if (!(fabs(a_ - b_) <= static_cast<double>(tol))) {                                   \
      char detail_[300];                                                                  \
      snprintf(detail_, sizeof(detail_), "%s = %.9g, %s = %.9g, |diff| = %.3g > %.3g", #a, \
               a_, #b, b_, fabs(a_ - b_), static_cast<double>(tol));                      \
      test::ReportFailure(__FILE__, __LINE__, #a " ~= " #b, detail_);                     \
    }                                                                                     \
  } while (0)

#define CHECK_STATUS(expr, expected)                                                      \
  do {                                                                                    \
    const tflm_train::Status got_ = (expr);                                               \
    const tflm_train::Status want_ = (expected);                                          \
    if (got_ != want_) {                                                                  \
      char detail_[200];                                                                  \
      snprintf(detail_, sizeof(detail_), "got k%s, expected k%s",                         \
               tflm_train::StatusName(got_), tflm_train::StatusName(want_));              \
      test::ReportFailure(__FILE__, __LINE__, #expr, detail_);                            \
    }                                                                                     \
  } while (0)

#endif  // TFLM_TRAIN_TESTS_TEST_HARNESS_H_
