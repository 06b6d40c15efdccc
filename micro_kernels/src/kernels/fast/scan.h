// kernels/scan.h, optimized: the same answers from integer maxima of the values'
// bit patterns with the sign cleared, which order like the magnitudes for every
// float but a NaN (a pattern above Inf's 0x7f800000). No branch per element, and
// on SSE hosts four at a time. MaxAbs hands a scan that met a NaN back to the
// reference loop, so it returns the reference's bits in every case.
#ifndef TFLM_TRAIN_KERNELS_FAST_SCAN_H_
#define TFLM_TRAIN_KERNELS_FAST_SCAN_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/fast/platform.h"
#include "kernels/scan.h"

namespace tflm_train {
namespace kernels {
namespace fast {

// The largest of v[i]'s bit patterns with the sign bit cleared (0 when n is 0).
inline uint32_t MaxMagnitudeBits(const float* v, size_t n) {
  size_t i = 0;
  int32_t m = 0;  // every masked pattern is a nonnegative int32
#if TFLM_TRAIN_SSE
  if (n >= 8) {
    const __m128i mask = _mm_set1_epi32(0x7fffffff);
    __m128i a = _mm_setzero_si128(), b = _mm_setzero_si128();
    for (; i + 8 <= n; i += 8) {
      const __m128i va = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)), mask);
      const __m128i vb = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i + 4)), mask);
      const __m128i ga = _mm_cmpgt_epi32(va, a), gb = _mm_cmpgt_epi32(vb, b);
      a = _mm_or_si128(_mm_and_si128(ga, va), _mm_andnot_si128(ga, a));
      b = _mm_or_si128(_mm_and_si128(gb, vb), _mm_andnot_si128(gb, b));
    }
    int32_t lanes[8];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes + 4), b);
    for (int j = 0; j < 8; ++j) m = lanes[j] > m ? lanes[j] : m;
  }
#endif
  for (; i < n; ++i) {
    int32_t bits;
    memcpy(&bits, v + i, sizeof(bits));
    bits &= 0x7fffffff;
    m = bits > m ? bits : m;
  }
  return static_cast<uint32_t>(m);
}

inline bool AllFinite(const float* v, size_t n) { return MaxMagnitudeBits(v, n) < 0x7f800000u; }

inline float MaxAbs(const float* v, int n) {
  const uint32_t bits = MaxMagnitudeBits(v, n > 0 ? static_cast<size_t>(n) : 0);
  if (bits > 0x7f800000u) return kernels::MaxAbs(v, n);  // a NaN: the reference's own answer
  float m;
  memcpy(&m, &bits, sizeof(m));
  return m;
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_SCAN_H_
