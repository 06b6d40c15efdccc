#include "kernels/fast/top_k.h"

#include "kernels/fast/zero.h"

namespace tflm_train {
namespace kernels {
namespace fast {
namespace {

// |v| as an integer that orders like the magnitude: the float's bits without the
// sign (finite values only; +0 and -0 are both 0).
inline int32_t MagnitudeKey(float v) { return static_cast<int32_t>(FloatBits(v) & 0x7FFFFFFFu); }

}  // namespace

uint64_t SelectTopKRows(const float* values, int n, int k, int32_t* index, uint8_t* mask, int32_t* rows) {
  (void)mask;
  if (k >= n) {
    for (int i = 0; i < n; ++i) rows[i] = i;
    return 0;
  }
  int32_t* key = index;  // the scratch holds keys, not indices: only the k-th key is needed
  for (int i = 0; i < n; ++i) key[i] = MagnitudeKey(values[i]);
  // Quickselect (Hoare partition, larger keys first, median-of-three pivot moved to
  // lo) until key[k - 1] is the k-th largest key T. Equal keys split evenly, so
  // many ties (ReLU-zeroed errors) cost no more than distinct values.
  uint64_t comparisons = 0;
  const int target = k - 1;
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    int32_t a = key[lo], b = key[mid], c = key[hi];
    if (a < b) { const int32_t s = a; a = b; b = s; }
    if (b < c) { const int32_t s = b; b = c; c = s; }
    if (a < b) { const int32_t s = a; a = b; b = s; }
    // b is the median; put it at lo with its slot's old value where b was.
    const int at = key[mid] == b ? mid : (key[hi] == b ? hi : lo);
    key[at] = key[lo];
    key[lo] = b;
    const int32_t pivot = b;
    comparisons += static_cast<uint64_t>(hi - lo + 1);
    int i = lo - 1, j = hi + 1;
    for (;;) {
      do ++i; while (key[i] > pivot);
      do --j; while (key[j] < pivot);
      if (i >= j) break;
      const int32_t s = key[i];
      key[i] = key[j];
      key[j] = s;
    }
    if (target <= j) {
      hi = j;
    } else {
      lo = j + 1;
    }
  }
  const int32_t threshold = key[target];
  // Every key above T is among the first k; the rest of the k are ties at T, taken
  // from the lowest indices as the reference's ranking does.
  int above = 0;
  for (int i = 0; i < k; ++i) above += key[i] > threshold ? 1 : 0;
  int ties = k - above;
  int count = 0;
  for (int i = 0; i < n; ++i) {
    const int32_t m = MagnitudeKey(values[i]);
    if (m > threshold || (m == threshold && ties-- > 0)) rows[count++] = i;
  }
  return comparisons;
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
