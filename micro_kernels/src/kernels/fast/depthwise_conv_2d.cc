#include "kernels/fast/depthwise_conv_2d.h"

#include <stddef.h>

#include "kernels/fast/platform.h"
#include "kernels/fast/window.h"
#include "kernels/fast/zero.h"

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

// A pixel's inside taps: `rows` filter rows of `cols`
// taps; offsets of the first at channel 0 in x (and dx) and in w (and grad_w);
// steps between taps and rows in floats, and in bytes from one row's last tap + 1
// to the next row's first, and from the row past the last to the first tap
// eight channels on (Pixel8Vfp's next block).
struct DwTaps {
  int32_t rows, cols;
  int32_t x_first, w_first;
  int32_t x_col, x_row, w_col, w_row;
  int32_t x_skip_bytes, w_skip_bytes;
  int32_t x_next_bytes, w_next_bytes;
};

DwTaps DepthwiseTaps(const ConvShape& s, int32_t oy, int32_t ox) {
  const TapWindow v = InsideTaps(s, oy, ox);
  DwTaps p;
  p.rows = v.ky1 - v.ky0;
  p.cols = v.kx1 - v.kx0;
  if (p.rows <= 0 || p.cols <= 0) p.rows = p.cols = 0;
  p.x_first = p.rows > 0 ? (InputRow(s, oy, v.ky0) * s.in_w + InputCol(s, ox, v.kx0)) * s.in_c : 0;
  p.w_first = p.rows > 0 ? (v.ky0 * s.filter_w + v.kx0) * s.out_c : 0;
  p.x_col = s.dilation_w * s.in_c;
  p.x_row = s.dilation_h * s.in_w * s.in_c;
  p.w_col = s.out_c;
  p.w_row = s.filter_w * s.out_c;
  const int32_t f = static_cast<int32_t>(sizeof(float));
  p.x_skip_bytes = (p.x_row - p.cols * p.x_col) * f;
  p.w_skip_bytes = (p.w_row - p.cols * p.w_col) * f;
  p.x_next_bytes = (8 - p.rows * p.x_row) * f;
  p.w_next_bytes = (8 - p.rows * p.w_row) * f;
  return p;
}

#if TFLM_TRAIN_VFP_ASM
// s16-s23 += s0-s7.
#define TFLM_TRAIN_DW_ADD8                                                                  \
  "vadd.f32 s16, s16, s0\n\t" "vadd.f32 s17, s17, s1\n\t" "vadd.f32 s18, s18, s2\n\t"      \
  "vadd.f32 s19, s19, s3\n\t" "vadd.f32 s20, s20, s4\n\t" "vadd.f32 s21, s21, s5\n\t"      \
  "vadd.f32 s22, s22, s6\n\t" "vadd.f32 s23, s23, s7\n\t"

// Both gradients' loop over a pixel's taps p (operand p: its DwTaps): per tap
// GROUP(x, grad_w) and GROUP(w, dx) at u, g and v, q, then the four pointers on
// by a tap, and by a row's skip after its last.
#define TFLM_TRAIN_DW_BOTH_TAPS(GROUP)     \
  "1:\n\t"                                \
  "ldr %[n], [%[p], %[cols_at]]\n\t"      \
  "2:\n\t"                                \
  GROUP("u", "g")                          \
  GROUP("v", "q")                          \
  "add %[u], %[u], %[xc]\n\t"             \
  "add %[q], %[q], %[xc]\n\t"             \
  "add %[v], %[v], %[wc]\n\t"             \
  "add %[g], %[g], %[wc]\n\t"             \
  "subs %[n], %[n], #1\n\t"               \
  "bne 2b\n\t"                            \
  "ldr %[n], [%[p], %[xs_at]]\n\t"        \
  "add %[u], %[u], %[n]\n\t"              \
  "add %[q], %[q], %[n]\n\t"              \
  "ldr %[n], [%[p], %[ws_at]]\n\t"        \
  "add %[v], %[v], %[n]\n\t"              \
  "add %[g], %[g], %[n]\n\t"              \
  "subs %[rows], %[rows], #1\n\t"         \
  "bne 1b\n\t"

// Backward4Channels with both gradients on a Cortex-M4F: the four errors stay in
// VFP registers; per tap one VLDM/VSTM of each four-float group (x and grad_w,
// w and dx) and the reference's VMUL and VADD per element. p.rows > 0.
void Backward4Vfp(const float* u, const float* v, float* g, float* q, const DwTaps& p, float d0, float d1,
                  float d2, float d3) {
  const int32_t f = static_cast<int32_t>(sizeof(float));
  const int32_t x_col = p.x_col * f, w_col = p.w_col * f;
  int32_t rows = p.rows;
  int32_t n;
#define TFLM_TRAIN_DW4_GROUP(IN, ACC)                                                            \
  "vldm %[" IN "], {s4-s7}\n\t"                                                                 \
  "vldm %[" ACC "], {s8-s11}\n\t"                                                               \
  "vmul.f32 s12, %[d0], s4\n\t" "vmul.f32 s13, %[d1], s5\n\t" "vmul.f32 s14, %[d2], s6\n\t"     \
  "vmul.f32 s15, %[d3], s7\n\t"                                                                 \
  "vadd.f32 s8, s8, s12\n\t" "vadd.f32 s9, s9, s13\n\t" "vadd.f32 s10, s10, s14\n\t"            \
  "vadd.f32 s11, s11, s15\n\t"                                                                  \
  "vstm %[" ACC "], {s8-s11}\n\t"
  __asm__ volatile(
      TFLM_TRAIN_DW_BOTH_TAPS(TFLM_TRAIN_DW4_GROUP)
      : [u] "+r"(u), [v] "+r"(v), [g] "+r"(g), [q] "+r"(q), [rows] "+r"(rows), [n] "=&r"(n)
      : [xc] "r"(x_col), [wc] "r"(w_col), [p] "r"(&p), [d0] "t"(d0), [d1] "t"(d1), [d2] "t"(d2), [d3] "t"(d3),
        [cols_at] "I"(offsetof(DwTaps, cols)), [xs_at] "I"(offsetof(DwTaps, x_skip_bytes)),
        [ws_at] "I"(offsetof(DwTaps, w_skip_bytes))
      : "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "cc", "memory");
#undef TFLM_TRAIN_DW4_GROUP
}

// Both gradients of eight kept elements at one pixel (taps p) whose output
// channels come in a row, on a Cortex-M4F: their errors d[0 .. 8) in s24-s31;
// per tap one VLDM/VSTM of each eight-float group (x and grad_w, then w and dx)
// and the reference's VMUL and VADD per element. p.rows > 0.
void Backward8Vfp(const float* u, const float* v, float* g, float* q, const DwTaps& p, const float* d) {
  const int32_t f = static_cast<int32_t>(sizeof(float));
  const int32_t x_col = p.x_col * f, w_col = p.w_col * f;
  int32_t rows = p.rows;
  int32_t n;
#define TFLM_TRAIN_DW8_GROUP(IN, ACC)                                                            \
  "vldm %[" IN "], {s0-s7}\n\t"                                                                \
  "vldm %[" ACC "], {s16-s23}\n\t"                                                             \
  "vmul.f32 s0, s24, s0\n\t" "vmul.f32 s1, s25, s1\n\t" "vmul.f32 s2, s26, s2\n\t"              \
  "vmul.f32 s3, s27, s3\n\t" "vmul.f32 s4, s28, s4\n\t" "vmul.f32 s5, s29, s5\n\t"              \
  "vmul.f32 s6, s30, s6\n\t" "vmul.f32 s7, s31, s7\n\t"                                         \
  TFLM_TRAIN_DW_ADD8                                                                            \
  "vstm %[" ACC "], {s16-s23}\n\t"
  __asm__ volatile(
      "vldm %[d], {s24-s31}\n\t"
      TFLM_TRAIN_DW_BOTH_TAPS(TFLM_TRAIN_DW8_GROUP)
      : [u] "+r"(u), [v] "+r"(v), [g] "+r"(g), [q] "+r"(q), [rows] "+r"(rows), [n] "=&r"(n)
      : [xc] "r"(x_col), [wc] "r"(w_col), [p] "r"(&p), [d] "r"(d), [cols_at] "I"(offsetof(DwTaps, cols)),
        [xs_at] "I"(offsetof(DwTaps, x_skip_bytes)), [ws_at] "I"(offsetof(DwTaps, w_skip_bytes))
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23",
        "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31", "cc", "memory");
#undef TFLM_TRAIN_DW8_GROUP
#undef TFLM_TRAIN_DW_BOTH_TAPS
}

// Multiplier 1 on a Cortex-M4F: a pixel's outputs y[0 .. 8 * groups), eight
// channels per block, each sum from +0 over the taps p in the reference's
// order (x and w at the first tap's channel 0), then + b (null: no bias) and
// the activation kAct, as ApplyFusedAct: NaN, -0 and below 0 to +0. p.rows > 0.
template <FusedAct kAct>
void Pixel8Vfp(const float* u, const float* v, const DwTaps& p, const float* b, float* y, int32_t groups) {
  static const float kZeros[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const int32_t f = static_cast<int32_t>(sizeof(float));
  const int32_t x_col = p.x_col * f, w_col = p.w_col * f;
  const float* z = kZeros;
  float* const y_end = y + 8 * groups;
  int32_t rows, n;
#define TFLM_TRAIN_DW_CLAMP(S, COND, LIMIT)                                                \
  "vcmpe.f32 " S ", " LIMIT "\n\t" "vmrs APSR_nzcv, fpscr\n\t" "it " COND "\n\t"           \
  "vmov" COND ".f32 " S ", " LIMIT "\n\t"
#define TFLM_TRAIN_DW_CLAMP8(COND, LIMIT)                                                  \
  TFLM_TRAIN_DW_CLAMP("s16", COND, LIMIT) TFLM_TRAIN_DW_CLAMP("s17", COND, LIMIT)           \
  TFLM_TRAIN_DW_CLAMP("s18", COND, LIMIT) TFLM_TRAIN_DW_CLAMP("s19", COND, LIMIT)           \
  TFLM_TRAIN_DW_CLAMP("s20", COND, LIMIT) TFLM_TRAIN_DW_CLAMP("s21", COND, LIMIT)           \
  TFLM_TRAIN_DW_CLAMP("s22", COND, LIMIT) TFLM_TRAIN_DW_CLAMP("s23", COND, LIMIT)
  __asm__ volatile(
      "vldr s24, [%[z]]\n\t"
      "vmov.f32 s25, #6.0\n\t"
      "0:\n\t"
      "vldm %[z], {s16-s23}\n\t"
      "ldr %[rows], [%[p], %[rows_at]]\n\t"
      "1:\n\t"
      "ldr %[n], [%[p], %[cols_at]]\n\t"
      "2:\n\t"
      "vldm %[u], {s0-s7}\n\t"
      "vldm %[v], {s8-s15}\n\t"
      "vmul.f32 s0, s0, s8\n\t" "vmul.f32 s1, s1, s9\n\t" "vmul.f32 s2, s2, s10\n\t"
      "vmul.f32 s3, s3, s11\n\t" "vmul.f32 s4, s4, s12\n\t" "vmul.f32 s5, s5, s13\n\t"
      "vmul.f32 s6, s6, s14\n\t" "vmul.f32 s7, s7, s15\n\t"
      TFLM_TRAIN_DW_ADD8
      "add %[u], %[u], %[xc]\n\t"
      "add %[v], %[v], %[wc]\n\t"
      "subs %[n], %[n], #1\n\t"
      "bne 2b\n\t"
      "ldr %[n], [%[p], %[xs_at]]\n\t"
      "add %[u], %[u], %[n]\n\t"
      "ldr %[n], [%[p], %[ws_at]]\n\t"
      "add %[v], %[v], %[n]\n\t"
      "subs %[rows], %[rows], #1\n\t"
      "bne 1b\n\t"
      "cmp %[b], #0\n\t"
      "beq 3f\n\t"
      "vldm %[b]!, {s0-s7}\n\t"
      TFLM_TRAIN_DW_ADD8
      "3:\n\t"
      ".if %c[act] != 0\n\t"
      // le: below or equal to +0, or unordered (NaN).
      TFLM_TRAIN_DW_CLAMP8("le", "s24")
      ".endif\n\t"
      ".if %c[act] == 2\n\t"
      // ge: 6 or more (NaN is +0 by now).
      TFLM_TRAIN_DW_CLAMP8("ge", "s25")
      ".endif\n\t"
      "vstm %[y]!, {s16-s23}\n\t"
      "ldr %[n], [%[p], %[xn_at]]\n\t"
      "add %[u], %[u], %[n]\n\t"
      "ldr %[n], [%[p], %[wn_at]]\n\t"
      "add %[v], %[v], %[n]\n\t"
      "cmp %[y], %[ye]\n\t"
      "bne 0b\n\t"
      : [u] "+r"(u), [v] "+r"(v), [b] "+r"(b), [y] "+r"(y), [rows] "=&r"(rows), [n] "=&r"(n)
      : [xc] "r"(x_col), [wc] "r"(w_col), [p] "r"(&p), [z] "r"(z), [ye] "r"(y_end),
        [act] "i"(static_cast<int>(kAct)), [rows_at] "I"(offsetof(DwTaps, rows)),
        [cols_at] "I"(offsetof(DwTaps, cols)), [xs_at] "I"(offsetof(DwTaps, x_skip_bytes)),
        [ws_at] "I"(offsetof(DwTaps, w_skip_bytes)), [xn_at] "I"(offsetof(DwTaps, x_next_bytes)),
        [wn_at] "I"(offsetof(DwTaps, w_next_bytes))
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
        "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "cc", "memory");
#undef TFLM_TRAIN_DW_CLAMP8
#undef TFLM_TRAIN_DW_CLAMP
}
#endif

// Multiplier 1: the gradients of four kept elements at one pixel (taps p) whose
// output channels c .. c + 3 come in a row (errors d[0 .. 4)), tap by tap: each
// tap's four channels are adjacent in x, dx, w and grad_w. Zero errors among
// them are added as the reference adds them. grad_w or dx may be null.
void Backward4Channels(const float* x, const float* w, float* grad_w, float* dx, const DwTaps& p, int32_t c,
                       const float* d) {
  const float d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
  const int32_t xc = p.x_first + c, wc = p.w_first + c;
#if TFLM_TRAIN_VFP_ASM
  if (grad_w != nullptr && dx != nullptr) {
    Backward4Vfp(x + xc, w + wc, grad_w + wc, dx + xc, p, d0, d1, d2, d3);
    return;
  }
#endif
  for (int32_t r = 0; r < p.rows; ++r) {
    for (int32_t k = 0; k < p.cols; ++k) {
      const int32_t xo = xc + r * p.x_row + k * p.x_col, wo = wc + r * p.w_row + k * p.w_col;
      if (grad_w != nullptr) {
        float* g = grad_w + wo;
        g[0] += d0 * x[xo];
        g[1] += d1 * x[xo + 1];
        g[2] += d2 * x[xo + 2];
        g[3] += d3 * x[xo + 3];
      }
      if (dx != nullptr) {
        float* q = dx + xo;
        q[0] += d0 * w[wo];
        q[1] += d1 * w[wo + 1];
        q[2] += d2 * w[wo + 2];
        q[3] += d3 * w[wo + 3];
      }
    }
  }
}

// True when d[0 .. 4) are all +-0.
inline bool FourZeros(const float* d) {
  return ((FloatBits(d[0]) | FloatBits(d[1]) | FloatBits(d[2]) | FloatBits(d[3])) << 1) == 0;
}

}  // namespace

// Multiplier 1, activation kAct: each channel's sum in a register over the
// window, eight or four channels at a time, then the bias and the activation.
template <FusedAct kAct>
void ForwardM1(const float* x, const ConvShape& s, const float* w, const float* bias, float* y) {
  const int32_t C = s.out_c;
  int32_t ox_lo, ox_hi;
  InsideRange(s.out_w, s.in_w, s.filter_w, s.stride_w, s.dilation_w, s.pad_left, &ox_lo, &ox_hi);
  const int32_t x_step = s.stride_w * s.in_c;
  for (int32_t oy = 0; oy < s.out_h; ++oy) {
    DwTaps p{};
    for (int32_t ox = 0; ox < s.out_w; ++ox) {
      float* y_pos = y + (oy * s.out_w + ox) * C;
      // Past the first pixel whose window is whole along x, the taps only move.
      if (ox > ox_lo && ox <= ox_hi) {
        if (p.rows > 0) p.x_first += x_step;
      } else {
        p = DepthwiseTaps(s, oy, ox);
      }
      const float* x_pix = x + p.x_first;
      const float* w_pix = w + p.w_first;
      int32_t c = 0;
#if TFLM_TRAIN_VFP_ASM
      if (p.rows > 0) {
        c = C & ~7;
        if (c > 0) Pixel8Vfp<kAct>(x_pix, w_pix, p, bias, y_pos, c / 8);
      }
#endif
      for (; c + 4 <= C; c += 4) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        const float* xr = x_pix + c;
        const float* wr = w_pix + c;
        for (int32_t r = 0; r < p.rows; ++r) {
          const float* xp = xr;
          const float* wp = wr;
          for (int32_t k = 0; k < p.cols; ++k) {
            a0 += xp[0] * wp[0];
            a1 += xp[1] * wp[1];
            a2 += xp[2] * wp[2];
            a3 += xp[3] * wp[3];
            xp += p.x_col;
            wp += p.w_col;
          }
          xr += p.x_row;
          wr += p.w_row;
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
        for (int32_t r = 0; r < p.rows; ++r) {
          for (int32_t k = 0; k < p.cols; ++k) {
            a += x_pix[r * p.x_row + k * p.x_col + c] * w_pix[r * p.w_row + k * p.w_col + c];
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
  DwTaps p = DepthwiseTaps(s, 0, 0);
  for (int32_t r = 0; r < num_kept; ++r) {
    const int32_t e = kept != nullptr ? kept[r] : r;
    if (e >= pos_end) {
      while (e >= pos_end) {
        pos_begin = pos_end;
        pos_end += s.out_c;
        if (++ox == s.out_w) {
          ox = 0;
          ++oy;
        }
      }
      p = DepthwiseTaps(s, oy, ox);
    }
    const int32_t oc = e - pos_begin;
#if TFLM_TRAIN_VFP_ASM
    // Multiplier 1, both gradients, and the next seven kept elements the next
    // seven channels of this pixel (the list ascends, so kept[r + 7] == e + 7
    // says all seven): the eight together.
    if (m == 1 && grad_w != nullptr && dx != nullptr && oc + 8 <= s.out_c && r + 8 <= num_kept &&
        (kept == nullptr || kept[r + 7] == e + 7)) {
      r += 7;
      // All eight zero: adds nothing (kernels/fast/zero.h).
      if (p.rows > 0 && !(FourZeros(delta + e) && FourZeros(delta + e + 4))) {
        Backward8Vfp(x + p.x_first + oc, w + p.w_first + oc, grad_w + p.w_first + oc, dx + p.x_first + oc, p,
                     delta + e);
      }
      continue;
    }
#endif
    // Multiplier 1 and the next three kept elements the next three channels of
    // this pixel: the four together.
    if (m == 1 && oc + 4 <= s.out_c && r + 4 <= num_kept && (kept == nullptr || kept[r + 3] == e + 3)) {
      r += 3;
      // All four zero: adds nothing (kernels/fast/zero.h).
      if (p.rows > 0 && !FourZeros(delta + e)) Backward4Channels(x, w, grad_w, dx, p, oc, delta + e);
      continue;
    }
    const float d = delta[e];
    if (d == 0.0f) continue;  // adds nothing (kernels/fast/zero.h)
    const int32_t ic = m == 1 ? oc : oc / m;
    for (int32_t ky = 0; ky < p.rows; ++ky) {
      for (int32_t kx = 0; kx < p.cols; ++kx) {
        const int32_t x_at = p.x_first + ky * p.x_row + kx * p.x_col + ic;
        const int32_t w_at = p.w_first + ky * p.w_row + kx * p.w_col + oc;
        if (grad_w != nullptr) grad_w[w_at] += d * x[x_at];
        if (dx != nullptr) dx[x_at] += d * w[w_at];
      }
    }
  }
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
