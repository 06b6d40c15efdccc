// Whether a float is finite, read from its bit pattern. Arduino cores may compile with
// -Ofast (Adafruit's nRF52 core does by default), under which isfinite() and NaN
// comparisons fold to constants; every check of untrusted floats (samples, labels,
// states, settings) would silently vanish. Integer tests of the exponent survive.
#ifndef TFLM_TRAIN_FINITE_H_
#define TFLM_TRAIN_FINITE_H_

#include <stdint.h>
#include <string.h>

namespace tflm_train {

inline bool IsFinite(float v) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof(bits));
  return (bits & 0x7f800000u) != 0x7f800000u;  // exponent all ones: Inf or NaN
}

}  // namespace tflm_train

#endif  // TFLM_TRAIN_FINITE_H_
