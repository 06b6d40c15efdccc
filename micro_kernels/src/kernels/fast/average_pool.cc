#include "kernels/fast/average_pool.h"

#include "kernels/fast/window.h"

namespace tflm_train {
namespace kernels {
namespace fast {
namespace {

// Where one output pixel's window lies in the input: `rows` x `cols` inside taps,
// the first at offset `first`; the number of taps is the reference's WindowCount.
struct PoolWindow {
  int32_t rows, cols, first;
};

inline PoolWindow Window(const ConvShape& s, int32_t oy, int32_t ox) {
  const TapWindow t = InsideTaps(s, oy, ox);
  PoolWindow v;
  v.rows = t.ky1 - t.ky0;
  v.cols = t.kx1 - t.kx0;
  v.first = v.rows > 0 && v.cols > 0 ? (InputRow(s, oy, t.ky0) * s.in_w + InputCol(s, ox, t.kx0)) * s.in_c : 0;
  return v;
}

}  // namespace

void AveragePool2D(const float* x, const ConvShape& s, FusedAct act, float* y) {
  const int32_t C = s.out_c;
  const int32_t x_col = s.dilation_w * s.in_c, x_row = s.dilation_h * s.in_w * s.in_c;
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      float* y_pos = y + (oy * s.out_w + ox) * C;
      const PoolWindow v = Window(s, oy, ox);
      const int32_t count = v.rows * v.cols;
      for (int32_t c = 0; c < C; ++c) y_pos[c] = 0.0f;
      for (int32_t r = 0; r < v.rows; ++r) {
        const float* xp = x + v.first + r * x_row;
        for (int32_t k = 0; k < v.cols; ++k) {
          for (int32_t c = 0; c < C; ++c) y_pos[c] += xp[c];
          xp += x_col;
        }
      }
      for (int32_t c = 0; c < C; ++c) {
        const float mean = count > 0 ? y_pos[c] / static_cast<float>(count) : 0.0f;
        y_pos[c] = ApplyFusedAct(act, mean);
      }
    }
  }
}

void AveragePool2DInputGrad(const ConvShape& s, const float* dy, float* dx) {
  const int32_t C = s.out_c;
  const int32_t x_col = s.dilation_w * s.in_c, x_row = s.dilation_h * s.in_w * s.in_c;
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      const PoolWindow v = Window(s, oy, ox);
      const int32_t count = v.rows * v.cols;
      if (count == 0) continue;
      const float* dy_pos = dy + (oy * s.out_w + ox) * C;
      for (int32_t c = 0; c < C; ++c) {
        if (dy_pos[c] == 0.0f) continue;  // adds +-0 (kernels/fast/zero.h)
        const float share = dy_pos[c] / static_cast<float>(count);
        float* row = dx + v.first + c;
        for (int32_t r = 0; r < v.rows; ++r) {
          float* dp = row;
          for (int32_t k = 0; k < v.cols; ++k) {
            *dp += share;
            dp += x_col;
          }
          row += x_row;
        }
      }
    }
  }
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
