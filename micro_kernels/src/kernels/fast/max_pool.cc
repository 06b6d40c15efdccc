#include "kernels/fast/max_pool.h"

#include <float.h>
#include <stdint.h>

#include "kernels/fast/window.h"

namespace tflm_train {
namespace kernels {
namespace fast {
namespace {

inline TapWindow PoolWindow(const ConvShape& s, int32_t oy, int32_t ox) {
  TapWindow win = InsideTaps(s, oy, ox);
  if (win.kx0 == win.kx1) win.ky1 = win.ky0;  // empty: no row is visited
  return win;
}

}  // namespace

void MaxPool2D(const float* x, const ConvShape& s, FusedAct act, float* y) {
  const int32_t C = s.in_c;
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      const TapWindow win = PoolWindow(s, oy, ox);
      float* y_pos = y + (oy * s.out_w + ox) * s.out_c;
      int32_t c = 0;
      for (; c + 4 <= s.out_c; c += 4) {
        float m0 = -FLT_MAX, m1 = -FLT_MAX, m2 = -FLT_MAX, m3 = -FLT_MAX;
        for (int32_t ky = win.ky0; ky < win.ky1; ++ky) {
          const float* row = x + (InputRow(s, oy, ky) * s.in_w + InputCol(s, ox, win.kx0)) * C + c;
          const int32_t step = s.dilation_w * C;
          for (int32_t kx = win.kx0; kx < win.kx1; ++kx, row += step) {
            const float v0 = row[0], v1 = row[1], v2 = row[2], v3 = row[3];
            if (v0 > m0) m0 = v0;
            if (v1 > m1) m1 = v1;
            if (v2 > m2) m2 = v2;
            if (v3 > m3) m3 = v3;
          }
        }
        y_pos[c] = ApplyFusedAct(act, m0);
        y_pos[c + 1] = ApplyFusedAct(act, m1);
        y_pos[c + 2] = ApplyFusedAct(act, m2);
        y_pos[c + 3] = ApplyFusedAct(act, m3);
      }
      for (; c < s.out_c; ++c) {
        float m = -FLT_MAX;
        for (int32_t ky = win.ky0; ky < win.ky1; ++ky) {
          for (int32_t kx = win.kx0; kx < win.kx1; ++kx) {
            const float v = x[(InputRow(s, oy, ky) * s.in_w + InputCol(s, ox, kx)) * C + c];
            if (v > m) m = v;
          }
        }
        y_pos[c] = ApplyFusedAct(act, m);
      }
    }
  }
}

void MaxPool2DInputGrad(const float* x, const ConvShape& s, const float* dy, float* dx) {
  const int32_t C = s.in_c;
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      const float* dy_pos = dy + (oy * s.out_w + ox) * s.out_c;
      const TapWindow win = PoolWindow(s, oy, ox);
      if (win.ky0 == win.ky1) continue;  // no tap inside: no gradient
      const int32_t first = (InputRow(s, oy, win.ky0) * s.in_w + InputCol(s, ox, win.kx0)) * C;
      const int32_t row_step = s.dilation_h * s.in_w * C, col_step = s.dilation_w * C;
      for (int32_t c = 0; c < s.out_c; ++c) {
        const float g = dy_pos[c];
        if (g == 0.0f) continue;  // adds nothing (kernels/fast/zero.h)
        // The first maximum in scan order, as the reference: the first tap, then
        // any strictly greater one.
        int32_t best_at = first + c;
        float best = x[best_at];
        int32_t row = best_at;
        for (int32_t ky = win.ky0; ky < win.ky1; ++ky, row += row_step) {
          int32_t at = row;
          for (int32_t kx = win.kx0; kx < win.kx1; ++kx, at += col_step) {
            if (x[at] > best) {
              best = x[at];
              best_at = at;
            }
          }
        }
        dx[best_at] += g;
      }
    }
  }
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
