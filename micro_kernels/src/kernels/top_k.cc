#include "kernels/top_k.h"

#include <math.h>

namespace tflm_train {
namespace kernels {
namespace {

// The ranking: a larger magnitude first; equal magnitudes, the lower index first.
// A strict total order, so the selected set does not depend on the pivot path.
inline bool RanksBefore(const float* v, int32_t a, int32_t b) {
  const float fa = fabsf(v[a]);
  const float fb = fabsf(v[b]);
  return fa > fb || (fa == fb && a < b);
}

inline void Swap(int32_t* index, int i, int j) {
  const int32_t t = index[i];
  index[i] = index[j];
  index[j] = t;
}

}  // namespace

uint64_t SelectTopKRows(const float* values, int n, int k, int32_t* index, uint8_t* mask,
                        int32_t* rows) {
  uint64_t comparisons = 0;
  if (k >= n) {
    for (int i = 0; i < n; ++i) rows[i] = i;
    return 0;
  }
  for (int i = 0; i < n; ++i) index[i] = i;
  // Quickselect: afterwards index[0..k) holds the k best-ranked entries.
  int lo = 0;
  int hi = n - 1;
  const int target = k - 1;
  while (lo < hi) {
    // Median of three as the pivot, moved to hi.
    const int mid = lo + (hi - lo) / 2;
    comparisons += 3;
    if (RanksBefore(values, index[mid], index[lo])) Swap(index, mid, lo);
    if (RanksBefore(values, index[hi], index[lo])) Swap(index, hi, lo);
    if (RanksBefore(values, index[hi], index[mid])) Swap(index, hi, mid);
    Swap(index, mid, hi);
    const int32_t pivot = index[hi];
    int store = lo;
    for (int i = lo; i < hi; ++i) {
      ++comparisons;
      if (RanksBefore(values, index[i], pivot)) {
        Swap(index, i, store);
        ++store;
      }
    }
    Swap(index, store, hi);
    if (store == target) break;
    if (store < target) {
      lo = store + 1;
    } else {
      hi = store - 1;
    }
  }
  // Back to ascending row order, so kept rows are visited as a dense pass would.
  for (int i = 0; i < n; ++i) mask[i] = 0;
  for (int i = 0; i < k; ++i) mask[index[i]] = 1;
  int count = 0;
  for (int i = 0; i < n; ++i) {
    if (mask[i]) rows[count++] = i;
  }
  return comparisons;
}

}  // namespace kernels
}  // namespace tflm_train
