// Window helpers of the optimized convolution kernels: which taps of a filter
// row or column fall inside the input, found by stepping rather than dividing.
#ifndef TFLM_TRAIN_KERNELS_FAST_WINDOW_H_
#define TFLM_TRAIN_KERNELS_FAST_WINDOW_H_

#include <stdint.h>

#include "kernels/conv_shape.h"

namespace tflm_train {
namespace kernels {
namespace fast {

// Taps [*lo, *hi) of `taps` at `first + t * dilation` land in [0, size). The
// positions rise with t, so the valid taps are one range (possibly empty).
inline void ValidTaps(int32_t first, int32_t dilation, int32_t taps, int32_t size, int32_t* lo, int32_t* hi) {
  int32_t a = 0;
  while (a < taps && first + a * dilation < 0) ++a;
  int32_t b = taps;
  while (b > a && first + (b - 1) * dilation >= size) --b;
  *lo = a;
  *hi = b;
}

// The output columns [*lo, *hi] (or rows) whose windows lie wholly inside the
// input along that axis (empty when *lo > *hi): the first tap moves up with the
// pixel and so does the last, so they are one range.
inline void InsideRange(int32_t out, int32_t in, int32_t filter, int32_t stride, int32_t dilation, int32_t pad,
                        int32_t* lo, int32_t* hi) {
  const int32_t reach = (filter - 1) * dilation;
  int32_t a = 0;
  while (a < out && a * stride - pad < 0) ++a;
  int32_t b = out - 1;
  while (b >= a && b * stride - pad + reach >= in) --b;
  *lo = a;
  *hi = b;
}

// The inside taps of one output pixel's window (a depthwise filter, a pool):
// filter rows [ky0, ky1) x columns [kx0, kx1), either range possibly empty.
struct TapWindow {
  int32_t ky0, ky1, kx0, kx1;
};

inline TapWindow InsideTaps(const ConvShape& s, int32_t oy, int32_t ox) {
  TapWindow v;
  ValidTaps(InputRow(s, oy, 0), s.dilation_h, s.filter_h, s.in_h, &v.ky0, &v.ky1);
  ValidTaps(InputCol(s, ox, 0), s.dilation_w, s.filter_w, s.in_w, &v.kx0, &v.kx1);
  return v;
}

// Where the inside taps of one output pixel of a CONV_2D are: `rows` filter rows,
// each `segs` spans of `len` floats contiguous in the input and in the filter
// (one span per row when the dilation along the width is 1: the taps of a row
// and their input channels are then adjacent in both). Offsets of the first
// inside tap: x_first in the image, w_first within one output channel's filter.
struct PixelTaps {
  int32_t rows, segs, len;
  int32_t x_first, w_first;
};

// Steps between those rows and spans, the same for every pixel of a layer.
struct TapSteps {
  int32_t x_row, x_seg;
  int32_t w_row, w_seg;
};

inline TapSteps ConvTapSteps(const ConvShape& s) {
  TapSteps t;
  t.x_row = s.dilation_h * s.in_w * s.in_c;
  t.w_row = s.filter_w * s.in_c;
  t.x_seg = s.dilation_w * s.in_c;
  t.w_seg = s.in_c;
  return t;
}

inline PixelTaps ConvPixelTaps(const ConvShape& s, int32_t oy, int32_t ox) {
  int32_t ky0, ky1, kx0, kx1;
  ValidTaps(InputRow(s, oy, 0), s.dilation_h, s.filter_h, s.in_h, &ky0, &ky1);
  ValidTaps(InputCol(s, ox, 0), s.dilation_w, s.filter_w, s.in_w, &kx0, &kx1);
  PixelTaps p;
  p.rows = ky1 - ky0;
  if (s.dilation_w == 1) {
    p.segs = 1;
    p.len = (kx1 - kx0) * s.in_c;
  } else {
    p.segs = kx1 - kx0;
    p.len = s.in_c;
  }
  if (p.rows == 0 || p.segs == 0 || p.len == 0) {  // no tap inside: nothing to read
    p.rows = 0;
    p.x_first = 0;
    p.w_first = 0;
    return p;
  }
  p.x_first = (InputRow(s, oy, ky0) * s.in_w + InputCol(s, ox, kx0)) * s.in_c;
  p.w_first = (ky0 * s.filter_w + kx0) * s.in_c;
  return p;
}

inline bool SameTaps(const PixelTaps& a, const PixelTaps& b) {
  return a.rows == b.rows && a.segs == b.segs && a.len == b.len && a.w_first == b.w_first;
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train

#endif  // TFLM_TRAIN_KERNELS_FAST_WINDOW_H_
