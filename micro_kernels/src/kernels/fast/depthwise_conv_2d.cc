#include "kernels/fast/depthwise_conv_2d.h"

#include "kernels/fast/window.h"

namespace tflm_train {
namespace kernels {
namespace fast {
namespace {

// y[c * m + j] += x[c] * w[c * m + j] over one tap, for every channel.
inline void AddTap(const float* xp, const float* wp, int32_t in_c, int32_t m, float* y) {
  for (int32_t c = 0; c < in_c; ++c) {
    const float xv = xp[c];
    for (int32_t j = 0; j < m; ++j) y[c * m + j] += xv * wp[c * m + j];
  }
}

}  // namespace

// Multiplier 1, activation kAct: each channel's sum in a register over the
// window, four channels at a time, then the bias and the activation.
template <FusedAct kAct>
void ForwardM1(const float* x, const ConvShape& s, const float* w, const float* bias, float* y) {
  const int32_t C = s.out_c;
  const int32_t x_col = s.dilation_w * s.in_c, x_row = s.dilation_h * s.in_w * s.in_c;
  const int32_t w_row = s.filter_w * C;
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      float* y_pos = y + (oy * s.out_w + ox) * C;
      const TapWindow v = InsideTaps(s, oy, ox);
      const int32_t rows = v.ky1 - v.ky0, cols = v.kx1 - v.kx0;
      const bool inside = rows > 0 && cols > 0;
      const float* x_pix = inside ? x + (InputRow(s, oy, v.ky0) * s.in_w + InputCol(s, ox, v.kx0)) * s.in_c : x;
      const float* w_pix = inside ? w + (v.ky0 * s.filter_w + v.kx0) * C : w;
      int32_t c = 0;
      for (; c + 4 <= C; c += 4) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        if (inside) {
          const float* xr = x_pix + c;
          const float* wr = w_pix + c;
          for (int32_t r = 0; r < rows; ++r) {
            const float* xp = xr;
            const float* wp = wr;
            for (int32_t k = 0; k < cols; ++k) {
              a0 += xp[0] * wp[0];
              a1 += xp[1] * wp[1];
              a2 += xp[2] * wp[2];
              a3 += xp[3] * wp[3];
              xp += x_col;
              wp += C;
            }
            xr += x_row;
            wr += w_row;
          }
        }
        if (bias != nullptr) {
          a0 += bias[c];
          a1 += bias[c + 1];
          a2 += bias[c + 2];
          a3 += bias[c + 3];
        }
        y_pos[c] = ApplyFusedAct(kAct, a0);
        y_pos[c + 1] = ApplyFusedAct(kAct, a1);
        y_pos[c + 2] = ApplyFusedAct(kAct, a2);
        y_pos[c + 3] = ApplyFusedAct(kAct, a3);
      }
      for (; c < C; ++c) {
        float a = 0.0f;
        if (inside) {
          for (int32_t r = 0; r < rows; ++r) {
            const float* xp = x_pix + r * x_row + c;
            const float* wp = w_pix + r * w_row + c;
            for (int32_t k = 0; k < cols; ++k) a += xp[k * x_col] * wp[k * C];
          }
        }
        if (bias != nullptr) a += bias[c];
        y_pos[c] = ApplyFusedAct(kAct, a);
      }
    }
  }
}

void DepthwiseConv2D(const float* x, const ConvShape& s, const float* w, const float* bias, FusedAct act,
                     float* y) {
  const int32_t m = s.depth_multiplier;
  if (m == 1) {
    switch (act) {
      case FusedAct::kRelu: ForwardM1<FusedAct::kRelu>(x, s, w, bias, y); return;
      case FusedAct::kRelu6: ForwardM1<FusedAct::kRelu6>(x, s, w, bias, y); return;
      default: ForwardM1<FusedAct::kNone>(x, s, w, bias, y); return;
    }
  }
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      float* y_pos = y + (oy * s.out_w + ox) * s.out_c;
      const TapWindow v = InsideTaps(s, oy, ox);
      // The output row holds the running sums.
      for (int32_t oc = 0; oc < s.out_c; ++oc) y_pos[oc] = 0.0f;
      for (int32_t ky = v.ky0; ky < v.ky1; ++ky) {
        const int32_t iy = InputRow(s, oy, ky);
        for (int32_t kx = v.kx0; kx < v.kx1; ++kx) {
          const int32_t ix = InputCol(s, ox, kx);
          AddTap(x + (iy * s.in_w + ix) * s.in_c, w + (ky * s.filter_w + kx) * s.out_c, s.in_c, m, y_pos);
        }
      }
      for (int32_t oc = 0; oc < s.out_c; ++oc) {
        float acc = y_pos[oc];
        if (bias != nullptr) acc += bias[oc];
        y_pos[oc] = ApplyFusedAct(act, acc);
      }
    }
  }
}

void DepthwiseConv2DWeightAndInputGrad(const float* x, const float* w, const ConvShape& s, const float* delta,
                                       const int32_t* kept, int32_t num_kept, float* grad_w, float* dx) {
  if (grad_w == nullptr && dx == nullptr) return;
  const int32_t m = s.depth_multiplier;
  // The kept list is ascending: its elements come pixel by pixel (as in
  // fast::Conv2DWeightAndInputGrad); pos_end is one past the pixel's last element.
  int32_t oy = 0, ox = 0, pos_begin = 0, pos_end = s.out_c;
  TapWindow v = InsideTaps(s, 0, 0);
  for (int32_t r = 0; r < num_kept; ++r) {
    const int32_t e = kept != nullptr ? kept[r] : r;
    const float d = delta[e];
    if (d == 0.0f) continue;  // adds nothing (kernels/fast/zero.h)
    if (e >= pos_end) {
      while (e >= pos_end) {
        pos_begin = pos_end;
        pos_end += s.out_c;
        if (++ox == s.out_w) {
          ox = 0;
          ++oy;
        }
      }
      v = InsideTaps(s, oy, ox);
    }
    const int32_t oc = e - pos_begin;
    const int32_t ic = m == 1 ? oc : oc / m;
    for (int32_t ky = v.ky0; ky < v.ky1; ++ky) {
      const int32_t iy = InputRow(s, oy, ky);
      for (int32_t kx = v.kx0; kx < v.kx1; ++kx) {
        const int32_t x_at = (iy * s.in_w + InputCol(s, ox, kx)) * s.in_c + ic;
        const int32_t w_at = (ky * s.filter_w + kx) * s.out_c + oc;
        if (grad_w != nullptr) grad_w[w_at] += d * x[x_at];
        if (dx != nullptr) dx[x_at] += d * w[w_at];
      }
    }
  }
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
