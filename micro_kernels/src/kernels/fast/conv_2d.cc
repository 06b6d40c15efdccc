#include "kernels/fast/conv_2d.h"

#include "kernels/fast/platform.h"
#include "kernels/fast/window.h"
#include "kernels/fast/zero.h"

namespace tflm_train {
namespace kernels {
namespace fast {
namespace {

// y = act(acc + bias[oc]), as the reference finishes an output.
inline float Finish(float acc, const float* bias, int32_t oc, FusedAct act) {
  if (bias != nullptr) acc += bias[oc];
  return ApplyFusedAct(act, acc);
}

#if TFLM_TRAIN_VFP_ASM
// One filter row of Forward4x2 on a Cortex-M4F, for a span of 4 * blocks taps:
// per four taps one VLDM for each pixel's inputs and for each channel's weights,
// and each sum's VMULs and VADDs in tap order. sums: a0 a1 b0 b1 c0 c1 e0 e1.
void Row4x2Vfp(const float* u0, const float* u1, const float* q0, int32_t K, int32_t blocks, float* sums) {
  const float* q1 = q0 + K;
  const float* q2 = q1 + K;
  const float* q3 = q2 + K;
#define TFLM_TRAIN_F42_CH(Q, S0, S1)                                                            \
  "vldmia %[" Q "]!, {s8-s11}\n\t"                                                                 \
  "vmul.f32 s12, s0, s8\n\t" "vmul.f32 s13, s1, s9\n\t" "vmul.f32 s14, s2, s10\n\t"              \
  "vmul.f32 s15, s3, s11\n\t"                                                                     \
  "vadd.f32 " S0 ", " S0 ", s12\n\t" "vadd.f32 " S0 ", " S0 ", s13\n\t"                            \
  "vadd.f32 " S0 ", " S0 ", s14\n\t" "vadd.f32 " S0 ", " S0 ", s15\n\t"                            \
  "vmul.f32 s12, s4, s8\n\t" "vmul.f32 s13, s5, s9\n\t" "vmul.f32 s14, s6, s10\n\t"              \
  "vmul.f32 s15, s7, s11\n\t"                                                                     \
  "vadd.f32 " S1 ", " S1 ", s12\n\t" "vadd.f32 " S1 ", " S1 ", s13\n\t"                            \
  "vadd.f32 " S1 ", " S1 ", s14\n\t" "vadd.f32 " S1 ", " S1 ", s15\n\t"
  __asm__ volatile(
      "vldm %[sums], {s16-s23}\n\t"
      "1:\n\t"
      "vldmia %[u0]!, {s0-s3}\n\t"
      "vldmia %[u1]!, {s4-s7}\n\t"
      TFLM_TRAIN_F42_CH("q0", "s16", "s17")
      TFLM_TRAIN_F42_CH("q1", "s18", "s19")
      TFLM_TRAIN_F42_CH("q2", "s20", "s21")
      TFLM_TRAIN_F42_CH("q3", "s22", "s23")
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      "vstm %[sums], {s16-s23}\n\t"
      : [u0] "+r"(u0), [u1] "+r"(u1), [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3),
        [n] "+r"(blocks)
      : [sums] "r"(sums)
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
        "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "cc", "memory");
#undef TFLM_TRAIN_F42_CH
}
#endif

// Four output channels (filters w, w + K, w + 2K, w + 3K) at two pixels (x0, x1),
// each sum in the reference's order. out: [channel][pixel].
void Forward4x2(const float* x0, const float* x1, const float* w, int32_t K, const PixelTaps& p,
                const TapSteps& t, float* out) {
#if TFLM_TRAIN_VFP_ASM
  if (p.segs == 1 && p.len >= 4 && (p.len & 3) == 0) {
    for (int32_t i = 0; i < 8; ++i) out[i] = 0.0f;
    for (int32_t r = 0; r < p.rows; ++r) {
      Row4x2Vfp(x0 + r * t.x_row, x1 + r * t.x_row, w + r * t.w_row, K, p.len >> 2, out);
    }
    return;
  }
#endif
  float a0 = 0.0f, a1 = 0.0f, b0 = 0.0f, b1 = 0.0f, c0 = 0.0f, c1 = 0.0f, e0 = 0.0f, e1 = 0.0f;
  for (int32_t r = 0; r < p.rows; ++r) {
    const float* u0 = x0 + r * t.x_row;
    const float* u1 = x1 + r * t.x_row;
    const float* v = w + r * t.w_row;
    for (int32_t g = 0; g < p.segs; ++g) {
      const float* q0 = v;
      const float* q1 = v + K;
      const float* q2 = q1 + K;
      const float* q3 = q2 + K;
      int32_t j = 0;
      for (; j + 2 <= p.len; j += 2) {
        const float xa = u0[j], xb = u1[j], xc = u0[j + 1], xd = u1[j + 1];
        const float w0 = q0[j], w1 = q1[j], w2 = q2[j], w3 = q3[j];
        a0 += xa * w0; a1 += xb * w0;
        b0 += xa * w1; b1 += xb * w1;
        c0 += xa * w2; c1 += xb * w2;
        e0 += xa * w3; e1 += xb * w3;
        const float w4 = q0[j + 1], w5 = q1[j + 1], w6 = q2[j + 1], w7 = q3[j + 1];
        a0 += xc * w4; a1 += xd * w4;
        b0 += xc * w5; b1 += xd * w5;
        c0 += xc * w6; c1 += xd * w6;
        e0 += xc * w7; e1 += xd * w7;
      }
      if (j < p.len) {
        const float xa = u0[j], xb = u1[j];
        a0 += xa * q0[j]; a1 += xb * q0[j];
        b0 += xa * q1[j]; b1 += xb * q1[j];
        c0 += xa * q2[j]; c1 += xb * q2[j];
        e0 += xa * q3[j]; e1 += xb * q3[j];
      }
      u0 += t.x_seg;
      u1 += t.x_seg;
      v += t.w_seg;
    }
  }
  out[0] = a0; out[1] = a1; out[2] = b0; out[3] = b1;
  out[4] = c0; out[5] = c1; out[6] = e0; out[7] = e1;
}

// One input channel, width stride 1: four output channels at four adjacent pixels
// whose taps are x0[j], x0[j + 1], x0[j + 2], x0[j + 3], one pointer for all four
// (a first layer on a grayscale image: the filter rows are too short for the
// two-pixel block to amortize its set-up). out: [channel][pixel].
#if TFLM_TRAIN_VFP_ASM
// On a Cortex-M4F: the 16 sums stay in s16-s31 for the whole window; per tap one
// VLDM of the four pixels' inputs, one load of each channel's weight, and the
// reference's VMUL and VADD per sum, in its order (rows, then taps).
void Forward4x4Gray(const float* x0, const float* w, int32_t K, const PixelTaps& p, const TapSteps& t,
                    float* out) {
  for (int32_t i = 0; i < 16; ++i) out[i] = 0.0f;
  if (p.rows <= 0 || p.len <= 0) return;
  const float* u = x0;
  const float* q0 = w;
  const float* q1 = q0 + K;
  const float* q2 = q1 + K;
  const float* q3 = q2 + K;
  // Bytes from one row's last tap + 1 to the next row's first.
  const int32_t x_skip = (t.x_row - p.len) * static_cast<int32_t>(sizeof(float));
  const int32_t w_skip = (t.w_row - p.len) * static_cast<int32_t>(sizeof(float));
  const int32_t len = p.len;
  int32_t rows = p.rows;
  int32_t j;
#define TFLM_TRAIN_GRAY_CH(W, T0, T1, T2, T3, S0, S1, S2, S3)                                 \
  "vmul.f32 " T0 ", s0, " W "\n\t" "vmul.f32 " T1 ", s1, " W "\n\t"                           \
  "vmul.f32 " T2 ", s2, " W "\n\t" "vmul.f32 " T3 ", s3, " W "\n\t"                           \
  "vadd.f32 " S0 ", " S0 ", " T0 "\n\t" "vadd.f32 " S1 ", " S1 ", " T1 "\n\t"                 \
  "vadd.f32 " S2 ", " S2 ", " T2 "\n\t" "vadd.f32 " S3 ", " S3 ", " T3 "\n\t"
  __asm__ volatile(
      "vldm %[out], {s16-s31}\n\t"
      "1:\n\t"
      "mov %[j], %[len]\n\t"
      "2:\n\t"
      "vldm %[u], {s0-s3}\n\t"
      "add %[u], %[u], #4\n\t"
      "vldmia %[q0]!, {s4}\n\t"
      "vldmia %[q1]!, {s5}\n\t"
      "vldmia %[q2]!, {s6}\n\t"
      "vldmia %[q3]!, {s7}\n\t"
      TFLM_TRAIN_GRAY_CH("s4", "s8", "s9", "s10", "s11", "s16", "s17", "s18", "s19")
      TFLM_TRAIN_GRAY_CH("s5", "s12", "s13", "s14", "s15", "s20", "s21", "s22", "s23")
      TFLM_TRAIN_GRAY_CH("s6", "s8", "s9", "s10", "s11", "s24", "s25", "s26", "s27")
      TFLM_TRAIN_GRAY_CH("s7", "s12", "s13", "s14", "s15", "s28", "s29", "s30", "s31")
      "subs %[j], %[j], #1\n\t"
      "bne 2b\n\t"
      "add %[u], %[u], %[xs]\n\t"
      "add %[q0], %[q0], %[ws]\n\t"
      "add %[q1], %[q1], %[ws]\n\t"
      "add %[q2], %[q2], %[ws]\n\t"
      "add %[q3], %[q3], %[ws]\n\t"
      "subs %[rows], %[rows], #1\n\t"
      "bne 1b\n\t"
      "vstm %[out], {s16-s31}\n\t"
      : [u] "+r"(u), [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3), [rows] "+r"(rows),
        [j] "=&r"(j)
      : [len] "r"(len), [xs] "r"(x_skip), [ws] "r"(w_skip), [out] "r"(out)
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
        "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30",
        "s31", "cc", "memory");
#undef TFLM_TRAIN_GRAY_CH
}
#else
void Forward4x4Gray(const float* x0, const float* w, int32_t K, const PixelTaps& p, const TapSteps& t,
                    float* out) {
  float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
  float c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f, e0 = 0.0f, e1 = 0.0f, e2 = 0.0f, e3 = 0.0f;
  for (int32_t r = 0; r < p.rows; ++r) {
    const float* u = x0 + r * t.x_row;
    const float* q0 = w + r * t.w_row;
    const float* q1 = q0 + K;
    const float* q2 = q1 + K;
    const float* q3 = q2 + K;
    for (int32_t j = 0; j < p.len; ++j) {
      const float x0v = u[j], x1v = u[j + 1], x2v = u[j + 2], x3v = u[j + 3];
      const float w0 = q0[j], w1 = q1[j], w2 = q2[j], w3 = q3[j];
      a0 += x0v * w0; a1 += x1v * w0; a2 += x2v * w0; a3 += x3v * w0;
      b0 += x0v * w1; b1 += x1v * w1; b2 += x2v * w1; b3 += x3v * w1;
      c0 += x0v * w2; c1 += x1v * w2; c2 += x2v * w2; c3 += x3v * w2;
      e0 += x0v * w3; e1 += x1v * w3; e2 += x2v * w3; e3 += x3v * w3;
    }
  }
  out[0] = a0; out[1] = a1; out[2] = a2; out[3] = a3;
  out[4] = b0; out[5] = b1; out[6] = b2; out[7] = b3;
  out[8] = c0; out[9] = c1; out[10] = c2; out[11] = c3;
  out[12] = e0; out[13] = e1; out[14] = e2; out[15] = e3;
}
#endif

// Four output channels at one pixel.
void Forward4x1(const float* x0, const float* w, int32_t K, const PixelTaps& p, const TapSteps& t, float* out) {
  float a = 0.0f, b = 0.0f, c = 0.0f, e = 0.0f;
  for (int32_t r = 0; r < p.rows; ++r) {
    const float* u = x0 + r * t.x_row;
    const float* v = w + r * t.w_row;
    for (int32_t g = 0; g < p.segs; ++g) {
      const float* q0 = v;
      const float* q1 = v + K;
      const float* q2 = q1 + K;
      const float* q3 = q2 + K;
      for (int32_t j = 0; j < p.len; ++j) {
        const float xv = u[j];
        a += xv * q0[j];
        b += xv * q1[j];
        c += xv * q2[j];
        e += xv * q3[j];
      }
      u += t.x_seg;
      v += t.w_seg;
    }
  }
  out[0] = a; out[1] = b; out[2] = c; out[3] = e;
}

// One output channel at one pixel.
float Forward1x1(const float* x0, const float* w, const PixelTaps& p, const TapSteps& t) {
  float a = 0.0f;
  for (int32_t r = 0; r < p.rows; ++r) {
    const float* u = x0 + r * t.x_row;
    const float* v = w + r * t.w_row;
    for (int32_t g = 0; g < p.segs; ++g) {
      for (int32_t j = 0; j < p.len; ++j) a += u[j] * v[j];
      u += t.x_seg;
      v += t.w_seg;
    }
  }
  return a;
}

// All output channels of one pixel (y0) or of two pixels with the same window
// shape (y1 not null).
void ForwardPixels(const float* x, const ConvShape& s, const float* w, const float* bias, FusedAct act,
                   const TapSteps& t, const PixelTaps& p, int32_t x_first1, float* y0, float* y1) {
  const int32_t K = s.filter_h * s.filter_w * s.in_c;
  const float* x0 = x + p.x_first;
  float acc[8];
  int32_t oc = 0;
  for (; oc + 4 <= s.out_c; oc += 4) {
    const float* w_oc = w + oc * K + p.w_first;
    if (y1 != nullptr) {
      Forward4x2(x0, x + x_first1, w_oc, K, p, t, acc);
      for (int32_t i = 0; i < 4; ++i) {
        y0[oc + i] = Finish(acc[2 * i], bias, oc + i, act);
        y1[oc + i] = Finish(acc[2 * i + 1], bias, oc + i, act);
      }
    } else {
      Forward4x1(x0, w_oc, K, p, t, acc);
      for (int32_t i = 0; i < 4; ++i) y0[oc + i] = Finish(acc[i], bias, oc + i, act);
    }
  }
  for (; oc < s.out_c; ++oc) {
    const float* w_oc = w + oc * K + p.w_first;
    y0[oc] = Finish(Forward1x1(x0, w_oc, p, t), bias, oc, act);
    if (y1 != nullptr) y1[oc] = Finish(Forward1x1(x + x_first1, w_oc, p, t), bias, oc, act);
  }
}

#if TFLM_TRAIN_VFP_ASM
// Backward4's inner loops on a Cortex-M4F for the first n4 taps of a span (n4 a
// positive multiple of 4), four at a time with VLDM/VSTM, each element's VMUL and
// VADD as the reference computes it: g_r[j] += d_r * u[j] ...
void GradW4Vfp(const float* u, int n4, float d0, float d1, float d2, float d3, float* g0, float* g1, float* g2,
               float* g3) {
  int blocks = n4 >> 2;
#define TFLM_TRAIN_GW_ROW(G, D)                                          \
  "vldm %[" G "], {s4-s7}\n\t"                                           \
  "vmul.f32 s8, %[" D "], s0\n\t" "vmul.f32 s9, %[" D "], s1\n\t"        \
  "vmul.f32 s10, %[" D "], s2\n\t" "vmul.f32 s11, %[" D "], s3\n\t"      \
  "vadd.f32 s4, s4, s8\n\t" "vadd.f32 s5, s5, s9\n\t"                    \
  "vadd.f32 s6, s6, s10\n\t" "vadd.f32 s7, s7, s11\n\t"                  \
  "vstmia %[" G "]!, {s4-s7}\n\t"
  __asm__ volatile(
      "1:\n\t"
      "vldmia %[u]!, {s0-s3}\n\t"
      TFLM_TRAIN_GW_ROW("g0", "d0")
      TFLM_TRAIN_GW_ROW("g1", "d1")
      TFLM_TRAIN_GW_ROW("g2", "d2")
      TFLM_TRAIN_GW_ROW("g3", "d3")
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      : [u] "+r"(u), [g0] "+r"(g0), [g1] "+r"(g1), [g2] "+r"(g2), [g3] "+r"(g3), [n] "+r"(blocks)
      : [d0] "t"(d0), [d1] "t"(d1), [d2] "t"(d2), [d3] "t"(d3)
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "cc", "memory");
#undef TFLM_TRAIN_GW_ROW
}

// ... and v[j] = (((v[j] + d0 * q0[j]) + d1 * q1[j]) + d2 * q2[j]) + d3 * q3[j].
void GradX4Vfp(const float* q0, const float* q1, const float* q2, const float* q3, float d0, float d1, float d2,
               float d3, int n4, float* v) {
  int blocks = n4 >> 2;
#define TFLM_TRAIN_GX_ROW(Q, D)                                          \
  "vldmia %[" Q "]!, {s4-s7}\n\t"                                        \
  "vmul.f32 s8, %[" D "], s4\n\t" "vmul.f32 s9, %[" D "], s5\n\t"        \
  "vmul.f32 s10, %[" D "], s6\n\t" "vmul.f32 s11, %[" D "], s7\n\t"      \
  "vadd.f32 s0, s0, s8\n\t" "vadd.f32 s1, s1, s9\n\t"                    \
  "vadd.f32 s2, s2, s10\n\t" "vadd.f32 s3, s3, s11\n\t"
  __asm__ volatile(
      "1:\n\t"
      "vldm %[v], {s0-s3}\n\t"
      TFLM_TRAIN_GX_ROW("q0", "d0")
      TFLM_TRAIN_GX_ROW("q1", "d1")
      TFLM_TRAIN_GX_ROW("q2", "d2")
      TFLM_TRAIN_GX_ROW("q3", "d3")
      "vstmia %[v]!, {s0-s3}\n\t"
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      : [v] "+r"(v), [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3), [n] "+r"(blocks)
      : [d0] "t"(d0), [d1] "t"(d1), [d2] "t"(d2), [d3] "t"(d3)
      : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "cc", "memory");
#undef TFLM_TRAIN_GX_ROW
}
#endif

// grad_w[oc_i] += d_i * x and dx += d_i * w[oc_i] over one pixel's taps, for four
// output channels in ascending order (the reference's order for each dx element).
void Backward4(const float* x0, const float* w, float* gw, float* dx0, int32_t K, const int32_t* oc,
               const float* d, const PixelTaps& p, const TapSteps& t) {
  const float d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
  const int32_t o0 = oc[0] * K + p.w_first, o1 = oc[1] * K + p.w_first;
  const int32_t o2 = oc[2] * K + p.w_first, o3 = oc[3] * K + p.w_first;
  for (int32_t r = 0; r < p.rows; ++r) {
    for (int32_t g = 0; g < p.segs; ++g) {
      const int32_t xo = r * t.x_row + g * t.x_seg;
      const int32_t wo = r * t.w_row + g * t.w_seg;
      if (gw != nullptr) {
        const float* u = x0 + xo;
        float* g0 = gw + o0 + wo;
        float* g1 = gw + o1 + wo;
        float* g2 = gw + o2 + wo;
        float* g3 = gw + o3 + wo;
        int32_t j = 0;
#if TFLM_TRAIN_VFP_ASM
        j = p.len & ~3;
        if (j > 0) GradW4Vfp(u, j, d0, d1, d2, d3, g0, g1, g2, g3);
#endif
        for (; j + 4 <= p.len; j += 4) {
          const float xa = u[j], xb = u[j + 1], xc = u[j + 2], xd = u[j + 3];
          g0[j] += d0 * xa; g0[j + 1] += d0 * xb; g0[j + 2] += d0 * xc; g0[j + 3] += d0 * xd;
          g1[j] += d1 * xa; g1[j + 1] += d1 * xb; g1[j + 2] += d1 * xc; g1[j + 3] += d1 * xd;
          g2[j] += d2 * xa; g2[j + 1] += d2 * xb; g2[j + 2] += d2 * xc; g2[j + 3] += d2 * xd;
          g3[j] += d3 * xa; g3[j + 1] += d3 * xb; g3[j + 2] += d3 * xc; g3[j + 3] += d3 * xd;
        }
        for (; j < p.len; ++j) {
          const float xa = u[j];
          g0[j] += d0 * xa;
          g1[j] += d1 * xa;
          g2[j] += d2 * xa;
          g3[j] += d3 * xa;
        }
      }
      if (dx0 != nullptr) {
        float* v = dx0 + xo;
        const float* q0 = w + o0 + wo;
        const float* q1 = w + o1 + wo;
        const float* q2 = w + o2 + wo;
        const float* q3 = w + o3 + wo;
        int32_t j = 0;
#if TFLM_TRAIN_VFP_ASM
        j = p.len & ~3;
        if (j > 0) GradX4Vfp(q0, q1, q2, q3, d0, d1, d2, d3, j, v);
#endif
        for (; j + 4 <= p.len; j += 4) {
          float va = v[j], vb = v[j + 1], vc = v[j + 2], vd = v[j + 3];
          va += d0 * q0[j]; vb += d0 * q0[j + 1]; vc += d0 * q0[j + 2]; vd += d0 * q0[j + 3];
          va += d1 * q1[j]; vb += d1 * q1[j + 1]; vc += d1 * q1[j + 2]; vd += d1 * q1[j + 3];
          va += d2 * q2[j]; vb += d2 * q2[j + 1]; vc += d2 * q2[j + 2]; vd += d2 * q2[j + 3];
          va += d3 * q3[j]; vb += d3 * q3[j + 1]; vc += d3 * q3[j + 2]; vd += d3 * q3[j + 3];
          v[j] = va; v[j + 1] = vb; v[j + 2] = vc; v[j + 3] = vd;
        }
        for (; j < p.len; ++j) {
          float va = v[j];
          va += d0 * q0[j];
          va += d1 * q1[j];
          va += d2 * q2[j];
          va += d3 * q3[j];
          v[j] = va;
        }
      }
    }
  }
}

// The same for one output channel.
void Backward1(const float* x0, const float* w, float* gw, float* dx0, int32_t K, int32_t oc, float d,
               const PixelTaps& p, const TapSteps& t) {
  const int32_t o = oc * K + p.w_first;
  for (int32_t r = 0; r < p.rows; ++r) {
    for (int32_t g = 0; g < p.segs; ++g) {
      const int32_t xo = r * t.x_row + g * t.x_seg;
      const int32_t wo = r * t.w_row + g * t.w_seg;
      if (gw != nullptr) {
        const float* u = x0 + xo;
        float* g0 = gw + o + wo;
        for (int32_t j = 0; j < p.len; ++j) g0[j] += d * u[j];
      }
      if (dx0 != nullptr) {
        float* v = dx0 + xo;
        const float* q = w + o + wo;
        for (int32_t j = 0; j < p.len; ++j) v[j] += d * q[j];
      }
    }
  }
}

// True when the window of p holds every tap of the filter (rows of taps, then
// spans, then floats, run through one output channel's filter in order: its
// gradient is one contiguous run of K floats).
bool FullWindow(const PixelTaps& p, int32_t K) {
  return p.rows > 0 && p.w_first == 0 && p.rows * p.segs * p.len == K;
}

#if TFLM_TRAIN_VFP_ASM
// The weight gradient of one pixel on a Cortex-M4F: the pixel's taps stay in VFP
// registers while, per output channel, one VLDM brings its gradients, each gets
// the reference's VMUL and VADD (error d times tap), one VSTM puts them back.
// With dx too ("Both" loops), the pixel's dx elements also stay in registers and
// each channel's weights times its error are added to them after its gradients.
//
// Each loop that exists with and without dx is one asm text (a macro taking DX,
// and NO_DX where the two differ otherwise): DX(...) is the dx part, kept by
// TFLM_TRAIN_ON and dropped by TFLM_TRAIN_OFF, so both variants come from it.
#define TFLM_TRAIN_ON(...) __VA_ARGS__
#define TFLM_TRAIN_OFF(...)

// A += E * X through the product register T: the reference's VMUL and VADD for
// one element.
#define TFLM_TRAIN_MAC(E, T, X, A) "vmul.f32 " T ", " E ", " X "\n\t" "vadd.f32 " A ", " A ", " T "\n\t"

// Nine taps (three filter rows of three floats, STEP bytes apart from P) in
// s0-s8; the error in s9, products in s13-s15, a channel's gradients (then its
// weights) in s16-s24; with dx, the pixel's nine dx elements (as the taps, at
// their own P) in s10-s12, s25-s27 and s28-s30 (split so that the loops without
// dx use no register above s24: no more callee-saved ones to save than they
// need). OP (vldm or vstm) moves three rows at P, through T (P itself when it
// may move to the last row).
#define TFLM_TRAIN_ROWS3(OP, P, T, STEP, A, B, C)                                          \
  OP " " P ", {" A "}\n\t" "add " T ", " P ", " STEP "\n\t" OP " " T ", {" B "}\n\t"       \
  "add " T ", " T ", " STEP "\n\t" OP " " T ", {" C "}\n\t"
#define TFLM_TRAIN_X9(OP, P, T, STEP) TFLM_TRAIN_ROWS3(OP, P, T, STEP, "s0-s2", "s3-s5", "s6-s8")
#define TFLM_TRAIN_DX9(OP, P, T, STEP) TFLM_TRAIN_ROWS3(OP, P, T, STEP, "s10-s12", "s25-s27", "s28-s30")
// One channel's nine gradients at G += error * tap, then STORE them back.
#define TFLM_TRAIN_GW9_CHANNEL(G, STORE)                                                              \
  "vldm " G ", {s16-s24}\n\t"                                                                         \
  TFLM_TRAIN_MAC("s9", "s13", "s0", "s16") TFLM_TRAIN_MAC("s9", "s14", "s1", "s17")                   \
  TFLM_TRAIN_MAC("s9", "s15", "s2", "s18") TFLM_TRAIN_MAC("s9", "s13", "s3", "s19")                   \
  TFLM_TRAIN_MAC("s9", "s14", "s4", "s20") TFLM_TRAIN_MAC("s9", "s15", "s5", "s21")                   \
  TFLM_TRAIN_MAC("s9", "s13", "s6", "s22") TFLM_TRAIN_MAC("s9", "s14", "s7", "s23")                   \
  TFLM_TRAIN_MAC("s9", "s15", "s8", "s24")                                                            \
  STORE ", {s16-s24}\n\t"
// Its nine weights (LOAD) times the error added to the dx elements.
#define TFLM_TRAIN_DX9_CHANNEL(LOAD)                                                                  \
  LOAD ", {s16-s24}\n\t"                                                                              \
  TFLM_TRAIN_MAC("s9", "s13", "s16", "s10") TFLM_TRAIN_MAC("s9", "s14", "s17", "s11")                 \
  TFLM_TRAIN_MAC("s9", "s15", "s18", "s12") TFLM_TRAIN_MAC("s9", "s13", "s19", "s25")                 \
  TFLM_TRAIN_MAC("s9", "s14", "s20", "s26") TFLM_TRAIN_MAC("s9", "s15", "s21", "s27")                 \
  TFLM_TRAIN_MAC("s9", "s13", "s22", "s28") TFLM_TRAIN_MAC("s9", "s14", "s23", "s29")                 \
  TFLM_TRAIN_MAC("s9", "s15", "s24", "s30")
#define TFLM_TRAIN_GW9_CLOBBERS                                                                      \
  "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s13", "s14", "s15", "s16", "s17", "s18", \
      "s19", "s20", "s21", "s22", "s23", "s24", "cc", "memory"
#define TFLM_TRAIN_BOTH9_CLOBBERS                                                                    \
  TFLM_TRAIN_GW9_CLOBBERS, "s10", "s11", "s12", "s25", "s26", "s27", "s28", "s29", "s30"

// Sixteen contiguous taps (a 1x1 filter over 16 channels) in s0-s15, or eight
// (the list loops) in s0-s7 with their dx elements in s8-s15; the error in s16,
// eight gradients (or weights) in s17-s24, products in s25-s28. TFLM_TRAIN_GW8:
// the gradients += error * the taps X0-X7.
#define TFLM_TRAIN_GW8(X0, X1, X2, X3, X4, X5, X6, X7)                                                \
  TFLM_TRAIN_MAC("s16", "s25", X0, "s17") TFLM_TRAIN_MAC("s16", "s26", X1, "s18")                     \
  TFLM_TRAIN_MAC("s16", "s27", X2, "s19") TFLM_TRAIN_MAC("s16", "s28", X3, "s20")                     \
  TFLM_TRAIN_MAC("s16", "s25", X4, "s21") TFLM_TRAIN_MAC("s16", "s26", X5, "s22")                     \
  TFLM_TRAIN_MAC("s16", "s27", X6, "s23") TFLM_TRAIN_MAC("s16", "s28", X7, "s24")
#define TFLM_TRAIN_GW16_CHANNEL(G, STORE)                                                             \
  "vldm " G ", {s17-s24}\n\t"                                                                         \
  TFLM_TRAIN_GW8("s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7")                                      \
  "vstmia " G "!, {s17-s24}\n\t"                                                                      \
  "vldm " G ", {s17-s24}\n\t"                                                                         \
  TFLM_TRAIN_GW8("s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15")                                \
  STORE ", {s17-s24}\n\t"
#define TFLM_TRAIN_GW16_CLOBBERS                                                                   \
  "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", \
      "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "cc", "memory"

// The two channel loops of a pixel whose taps are loaded: over every output
// channel, in order (n of them, errors at d, the first's gradients at g; +-0
// errors skipped, kernels/fast/zero.h), or over n listed ones (errors at d, none
// zero, the addresses of their gradients at g). E: the error's register;
// CHANNEL(G, STORE): one channel's gradients at G, stored back by STORE (every
// channel's loop: moving G past them); MORE: what else a channel adds, SKIP what
// a skipped one moves past.
#define TFLM_TRAIN_ALL_CHANNELS(E, CHANNEL, MORE, SKIP)                                               \
  "1:\n\t"                                                                                            \
  "vldmia %[d]!, {" E "}\n\t"                                                                         \
  "vcmp.f32 " E ", #0.0\n\t"                                                                          \
  "vmrs APSR_nzcv, fpscr\n\t"                                                                         \
  "beq 2f\n\t"                                                                                        \
  CHANNEL("%[g]", "vstmia %[g]!")                                                                     \
  MORE                                                                                                \
  "subs %[n], %[n], #1\n\t"                                                                           \
  "bne 1b\n\t"                                                                                        \
  "b 3f\n\t"                                                                                          \
  "2:\n\t"                                                                                            \
  SKIP                                                                                                \
  "subs %[n], %[n], #1\n\t"                                                                           \
  "bne 1b\n\t"                                                                                        \
  "3:\n\t"
#define TFLM_TRAIN_LIST_CHANNELS(E, CHANNEL)                                                          \
  "1:\n\t"                                                                                            \
  "vldmia %[d]!, {" E "}\n\t"                                                                         \
  "ldr %[gi], [%[g]], #4\n\t"                                                                         \
  CHANNEL("%[gi]", "vstm %[gi]")                                                                      \
  "subs %[n], %[n], #1\n\t"                                                                           \
  "bne 1b\n\t"

// Nine taps, every channel. With dx: its filters at w, x_row floats between the
// rows of x and of dx (at q); each dx element gets the channels' additions in
// ascending order, as in the reference.
#define TFLM_TRAIN_9ALL_ASM(DX)                                                                       \
  TFLM_TRAIN_X9("vldm", "%[u]", "%[u]", "%[xr]")                                                      \
  DX(TFLM_TRAIN_DX9("vldm", "%[q]", "%[u]", "%[xr]"))                                                 \
  TFLM_TRAIN_ALL_CHANNELS("s9", TFLM_TRAIN_GW9_CHANNEL, DX(TFLM_TRAIN_DX9_CHANNEL("vldmia %[w]!")),   \
                          "add %[g], %[g], #36\n\t" DX("add %[w], %[w], #36\n\t"))                   \
  DX(TFLM_TRAIN_DX9("vstm", "%[q]", "%[q]", "%[xr]"))

void GradW9AllVfp(const float* u, int32_t x_row, const float* d, float* g, int32_t n) {
  const int32_t row_bytes = x_row * static_cast<int32_t>(sizeof(float));
  __asm__ volatile(TFLM_TRAIN_9ALL_ASM(TFLM_TRAIN_OFF)
                   : [u] "+r"(u), [d] "+r"(d), [g] "+r"(g), [n] "+r"(n)
                   : [xr] "r"(row_bytes)
                   : TFLM_TRAIN_GW9_CLOBBERS);
}

void Both9AllVfp(const float* u, float* q, int32_t x_row, const float* d, float* g, const float* w, int32_t n) {
  const int32_t row_bytes = x_row * static_cast<int32_t>(sizeof(float));
  __asm__ volatile(TFLM_TRAIN_9ALL_ASM(TFLM_TRAIN_ON)
                   : [u] "+r"(u), [q] "+r"(q), [d] "+r"(d), [g] "+r"(g), [w] "+r"(w), [n] "+r"(n)
                   : [xr] "r"(row_bytes)
                   : TFLM_TRAIN_BOTH9_CLOBBERS);
}
#undef TFLM_TRAIN_9ALL_ASM

void GradW9ListVfp(const float* u, int32_t x_row, const float* d, float* const* g, int32_t n) {
  const int32_t row_bytes = x_row * static_cast<int32_t>(sizeof(float));
  float* gi;
  __asm__ volatile(TFLM_TRAIN_X9("vldm", "%[u]", "%[u]", "%[xr]")
                   TFLM_TRAIN_LIST_CHANNELS("s9", TFLM_TRAIN_GW9_CHANNEL)
                   : [u] "+r"(u), [d] "+r"(d), [g] "+r"(g), [n] "+r"(n), [gi] "=&r"(gi)
                   : [xr] "r"(row_bytes)
                   : TFLM_TRAIN_GW9_CLOBBERS);
}

// Sixteen taps, every channel or listed ones.
void GradW16AllVfp(const float* u, const float* d, float* g, int32_t n) {
  __asm__ volatile("vldm %[u], {s0-s15}\n\t"
                   TFLM_TRAIN_ALL_CHANNELS("s16", TFLM_TRAIN_GW16_CHANNEL, "", "add %[g], %[g], #64\n\t")
                   : [d] "+r"(d), [g] "+r"(g), [n] "+r"(n)
                   : [u] "r"(u)
                   : TFLM_TRAIN_GW16_CLOBBERS);
}

void GradW16ListVfp(const float* u, const float* d, float* const* g, int32_t n) {
  float* gi;
  __asm__ volatile("vldm %[u], {s0-s15}\n\t"
                   TFLM_TRAIN_LIST_CHANNELS("s16", TFLM_TRAIN_GW16_CHANNEL)
                   : [d] "+r"(d), [g] "+r"(g), [n] "+r"(n), [gi] "=&r"(gi)
                   : [u] "r"(u)
                   : TFLM_TRAIN_GW16_CLOBBERS);
}
#undef TFLM_TRAIN_ALL_CHANNELS
#undef TFLM_TRAIN_LIST_CHANNELS
#endif

// Whether GradWAll and GradWList have a loop for a full window with the taps p.
bool GradWLayout(const PixelTaps& p) {
#if TFLM_TRAIN_VFP_ASM
  return p.segs == 1 && ((p.rows == 3 && p.len == 3) || (p.rows == 1 && p.len == 16));
#else
  (void)p;
  return true;
#endif
}

// The taps of a full window of s, as ConvPixelTaps finds them (x_first 0).
PixelTaps FullTaps(const ConvShape& s) {
  PixelTaps full;
  full.rows = s.filter_h;
  full.segs = s.dilation_w == 1 || s.filter_w == 1 ? 1 : s.filter_w;
  full.len = s.dilation_w == 1 ? s.filter_w * s.in_c : s.in_c;
  full.x_first = 0;
  full.w_first = 0;
  return full;
}

// ConvPixelTaps(s, oy, ox), given full = FullTaps(s): the window's ends are
// tested first, as most windows are full.
inline PixelTaps PixelTapsAt(const ConvShape& s, const PixelTaps& full, int32_t oy, int32_t ox) {
  const int32_t iy = InputRow(s, oy, 0), ix = InputCol(s, ox, 0);
  if (iy < 0 || ix < 0 || InputRow(s, oy, s.filter_h - 1) >= s.in_h || InputCol(s, ox, s.filter_w - 1) >= s.in_w) {
    return ConvPixelTaps(s, oy, ox);
  }
  PixelTaps p = full;
  p.x_first = (iy * s.in_w + ix) * s.in_c;
  return p;
}

// Whether the full windows of s have a GradWLayout (then Conv2DWeightGrad does
// the weight gradient alone).
bool GradWShape(const ConvShape& s) { return GradWLayout(FullTaps(s)); }

// g += d * the taps of a window at x0 (g at the window's first tap in one output
// channel's gradient): the reference's additions for one kept element.
inline void AddTaps(const float* x0, float d, const PixelTaps& p, const TapSteps& t, float* g) {
  for (int32_t r = 0; r < p.rows; ++r) {
    const float* u = x0 + r * t.x_row;
    float* v = g + r * t.w_row;
    for (int32_t seg = 0; seg < p.segs; ++seg) {
      for (int32_t j = 0; j < p.len; ++j) v[j] += d * u[j];
      u += t.x_seg;
      v += t.w_seg;
    }
  }
}

// grad_w[oc] += d[oc] * the pixel's taps for every output channel oc of one
// pixel whose window is full (FullWindow) and has a GradWLayout, skipping zero
// errors (kernels/fast/zero.h). Each gradient element still gets one addition
// per pixel, in pixel order, so the sums are the reference's.
void GradWAll(const float* x0, const float* d, float* gw, int32_t out_c, int32_t K, const PixelTaps& p,
              const TapSteps& t) {
#if TFLM_TRAIN_VFP_ASM
  (void)K;
  if (p.rows == 3) {
    GradW9AllVfp(x0, t.x_row, d, gw, out_c);
  } else {
    GradW16AllVfp(x0, d, gw, out_c);
  }
#else
  for (int32_t oc = 0; oc < out_c; ++oc) {
    if (d[oc] == 0.0f) continue;  // adds nothing (kernels/fast/zero.h)
    AddTaps(x0, d[oc], p, t, gw + oc * K);
  }
#endif
}

// The same for n listed channels of any pixel: g[i] += d[i] * the taps (g[i] at
// the window's first tap). vfp: the window is full and has a GradWLayout.
inline void GradWList(const float* x0, const float* d, float* const* g, int32_t n, bool vfp, const PixelTaps& p,
                      const TapSteps& t) {
#if TFLM_TRAIN_VFP_ASM
  if (vfp) {
    if (p.rows == 3) {
      GradW9ListVfp(x0, t.x_row, d, g, n);
    } else {
      GradW16ListVfp(x0, d, g, n);
    }
    return;
  }
#else
  (void)vfp;
#endif
  for (int32_t i = 0; i < n; ++i) AddTaps(x0, d[i], p, t, g[i]);
}

// True when kept[r ..] lists every output channel of the pixel whose elements
// are [pos_begin, pos_begin + out_c), in order.
bool WholePixelKept(const int32_t* kept, int32_t r, int32_t num_kept, int32_t pos_begin, int32_t out_c) {
  if (num_kept - r < out_c) return false;
  if (kept == nullptr) return r == pos_begin;
  for (int32_t i = 0; i < out_c; ++i) {
    if (kept[r + i] != pos_begin + i) return false;
  }
  return true;
}

// The kept elements kept[r] on of one pixel (their flat indices in [pos_begin,
// pos_end), p its taps): the nonzero errors are listed, then GradWList adds
// them; returns the index of the first kept element past the pixel.
int32_t GradWKept(const float* x, const float* delta, const int32_t* kept, int32_t r, int32_t num_kept,
                  int32_t pos_begin, int32_t pos_end, int32_t K, const PixelTaps& p, const TapSteps& t,
                  float* grad_w) {
  constexpr int32_t kList = 16;
  const float* x0 = x + p.x_first;
  const bool vfp = FullWindow(p, K) && GradWLayout(p);
  float* g[kList];
  float d[kList];
  int32_t m = 0;
  for (; r < num_kept; ++r) {
    const int32_t e = kept != nullptr ? kept[r] : r;
    if (e >= pos_end) break;
    const float de = delta[e];
    if (de == 0.0f || p.rows == 0) continue;  // adds nothing (kernels/fast/zero.h)
    g[m] = grad_w + (e - pos_begin) * K + p.w_first;
    d[m] = de;
    if (++m == kList) {
      GradWList(x0, d, g, m, vfp, p, t);
      m = 0;
    }
  }
  if (m > 0) GradWList(x0, d, g, m, vfp, p, t);
  return r;
}

// A sparse kept list (ascending, not null, num_kept > 0) walked pixel by pixel
// without division: each row's run of pixels whose windows are full goes to
// span(oy, ox, pos_begin, pos_end, span_end, r) in one call (its first pixel's
// position, the run's end position, kept[r] the run's first element; it returns
// the index of the first element at or past span_end), every other pixel with a
// kept element to pixel(oy, ox, pos_begin, pos_end, r) (returning the index of
// the first element past the pixel). A run stops before the last kept element's
// pixel, so an element past it is always listed: a span loop reads the list up
// to the first element at or past span_end without counting.
template <typename SpanFn, typename PixelFn>
inline void WalkKept(const ConvShape& s, const int32_t* kept, int32_t num_kept, SpanFn span, PixelFn pixel) {
  int32_t ox_lo, ox_hi, oy_lo, oy_hi;
  InsideRange(s.out_w, s.in_w, s.filter_w, s.stride_w, s.dilation_w, s.pad_left, &ox_lo, &ox_hi);
  InsideRange(s.out_h, s.in_h, s.filter_h, s.stride_h, s.dilation_h, s.pad_top, &oy_lo, &oy_hi);
  const int32_t last_pos = kept[num_kept - 1] / s.out_c;  // once per call
  const int32_t last_begin = last_pos * s.out_c;
  const int32_t last_oy = last_pos / s.out_w, last_ox = last_pos - last_oy * s.out_w;
  int32_t oy = 0, ox = 0, pos_begin = 0, pos_end = s.out_c;
  int32_t r = 0;
  while (r < num_kept) {
    const int32_t e = kept[r];
    while (e >= pos_end) {
      pos_begin = pos_end;
      pos_end += s.out_c;
      if (++ox == s.out_w) {
        ox = 0;
        ++oy;
      }
    }
    if (ox >= ox_lo && ox <= ox_hi && oy >= oy_lo && oy <= oy_hi) {
      int32_t span_end = pos_begin + (ox_hi + 1 - ox) * s.out_c;
      const bool to_last = span_end > last_begin;
      if (to_last) span_end = last_begin;
      if (pos_end <= span_end) {
        r = span(oy, ox, pos_begin, pos_end, span_end, r);
        if (to_last) {
          oy = last_oy;
          ox = last_ox;
          pos_begin = last_begin;
        } else {
          pos_begin = span_end;
          if (ox_hi + 1 == s.out_w) {
            ox = 0;
            ++oy;
          } else {
            ox = ox_hi + 1;
          }
        }
        pos_end = pos_begin + s.out_c;
        continue;
      }
    }
    r = pixel(oy, ox, pos_begin, pos_end, r);
  }
}

#if TFLM_TRAIN_VFP_ASM
// What the span loops read from memory at each new pixel (byte offsets fixed:
// the assembly loads them).
struct SpanSteps {
  int32_t out_c;     // #0: elements per pixel
  int32_t x_step;    // #4: bytes from one pixel's taps to the next's (stride_w * in_c floats)
  int32_t g_step;    // #8: out_c * K floats, in bytes
  int32_t span_end;  // #12
  int32_t x_row;     // #16: bytes between filter rows in x
};

// The span loops' steps for a layer s (K floats per filter, t its tap steps).
inline SpanSteps ConvSpanSteps(const ConvShape& s, int32_t K, const TapSteps& t) {
  const int32_t f = static_cast<int32_t>(sizeof(float));
  SpanSteps c;
  c.out_c = s.out_c;
  c.x_step = s.stride_w * s.in_c * f;
  c.g_step = s.out_c * K * f;
  c.span_end = 0;
  c.x_row = t.x_row * f;
  return c;
}

// The weight gradient (and with dx, as Both9AllVfp, dx) over a run of full
// nine-tap windows on a Cortex-M4F: kp at the run's first kept element, pos_end
// the end of its pixel, u that pixel's first tap (q its first dx element),
// g_base = grad_w - pos_begin * 9 floats (w_base likewise for the weights; as
// integers). Per pixel the taps (and dx elements) are loaded once, the dx
// elements stored back when the pixel is left; per kept element e its error's
// bits are loaded and +-0 skipped (kernels/fast/zero.h), else its nine gradients
// (at g_base + e * 9 floats) get the reference's VMUL and VADD, then its weights
// (at w_base + e * 9 floats) times the error are added to the dx elements.
// Returns the first element at or past span_end. Without dx the steps to the
// next pixel stay in registers; with dx there are none left, they are loaded.
#define TFLM_TRAIN_9SPAN_ASM(DX, NO_DX)                                                               \
  "ldr %[e], [%[kp]]\n\t"                                                                             \
  "b 2f\n\t"                                                                                          \
  "3:\n\t" /* e >= pos_end: next pixel */                                                             \
  NO_DX("add %[pe], %[pe], %[oc]\n\t"                                                                 \
        "add %[u], %[u], %[xs]\n\t"                                                                   \
        "sub %[gb], %[gb], %[gs]\n\t")                                                                \
  DX("ldr %[t], [%[c], #0]\n\t" "add %[pe], %[pe], %[t]\n\t"                                          \
     "ldr %[t], [%[c], #4]\n\t" "add %[u], %[u], %[t]\n\t" "add %[q], %[q], %[t]\n\t"                 \
     "ldr %[t], [%[c], #8]\n\t" "sub %[gb], %[gb], %[t]\n\t" "sub %[wb], %[wb], %[t]\n\t")            \
  "ldr %[t], [%[c], #12]\n\t" "cmp %[pe], %[t]\n\t" "bgt 9f\n\t"                                      \
  "2:\n\t"                                                                                            \
  "cmp %[e], %[pe]\n\t" "bge 3b\n\t"                                                                  \
  "ldr %[t2], [%[c], #16]\n\t"                                                                        \
  TFLM_TRAIN_X9("vldm", "%[u]", "%[t]", "%[t2]")                                                      \
  DX(TFLM_TRAIN_DX9("vldm", "%[q]", "%[t]", "%[t2]"))                                                 \
  "1:\n\t" /* kept element e of this pixel, at kp */                                                  \
  "ldr %[t], [%[dl], %[e], lsl #2]\n\t"                                                               \
  "cmn %[t], %[t]\n\t" /* Z: the error is +-0 */                                                      \
  "beq 5f\n\t"                                                                                        \
  "vmov s9, %[t]\n\t"                                                                                 \
  "add %[t], %[e], %[e], lsl #3\n\t"                                                                  \
  "add %[t2], %[gb], %[t], lsl #2\n\t"                                                                \
  TFLM_TRAIN_GW9_CHANNEL("%[t2]", "vstm %[t2]")                                                       \
  DX("add %[t], %[wb], %[t], lsl #2\n\t" TFLM_TRAIN_DX9_CHANNEL("vldm %[t]"))                         \
  "5:\n\t"                                                                                            \
  "ldr %[e], [%[kp], #4]!\n\t"                                                                        \
  "cmp %[e], %[pe]\n\t"                                                                               \
  "blt 1b\n\t"                                                                                        \
  DX("ldr %[t2], [%[c], #16]\n\t" /* leaving the pixel: its dx elements back */                       \
     TFLM_TRAIN_DX9("vstm", "%[q]", "%[t]", "%[t2]"))                                                 \
  "b 3b\n\t"                                                                                          \
  "9:\n\t"

const int32_t* GradW9SpanVfp(const float* u, const int32_t* kp, int32_t pos_end, const float* delta,
                             uintptr_t g_base, const SpanSteps* c) {
  int32_t e, tmp, tmp2;
  const int32_t out_c = c->out_c, x_step = c->x_step, g_step = c->g_step;
  __asm__ volatile(TFLM_TRAIN_9SPAN_ASM(TFLM_TRAIN_OFF, TFLM_TRAIN_ON)
                   : [kp] "+r"(kp), [pe] "+r"(pos_end), [u] "+r"(u), [gb] "+r"(g_base), [e] "=&r"(e),
                     [t] "=&r"(tmp), [t2] "=&r"(tmp2)
                   : [dl] "r"(delta), [c] "r"(c), [oc] "r"(out_c), [xs] "r"(x_step), [gs] "r"(g_step)
                   : TFLM_TRAIN_GW9_CLOBBERS);
  return kp;
}

const int32_t* Both9SpanVfp(const float* u, float* q, const int32_t* kp, int32_t pos_end, const float* delta,
                            uintptr_t g_base, uintptr_t w_base, const SpanSteps* c) {
  int32_t e, tmp, tmp2;
  __asm__ volatile(TFLM_TRAIN_9SPAN_ASM(TFLM_TRAIN_ON, TFLM_TRAIN_OFF)
                   : [kp] "+r"(kp), [pe] "+r"(pos_end), [u] "+r"(u), [q] "+r"(q), [gb] "+r"(g_base),
                     [wb] "+r"(w_base), [e] "=&r"(e), [t] "=&r"(tmp), [t2] "=&r"(tmp2)
                   : [dl] "r"(delta), [c] "r"(c)
                   : TFLM_TRAIN_BOTH9_CLOBBERS);
  return kp;
}
#undef TFLM_TRAIN_9SPAN_ASM
#endif

// The weight gradient alone over a sparse kept list (kept not null) when
// GradWShape(s): on a Cortex-M4F, runs of full nine-tap windows by
// GradW9SpanVfp; other runs and pixels as Conv2DWeightGrad does.
__attribute__((noinline)) void Conv2DWeightGradKept(const float* x, const ConvShape& s, const float* delta,
                                                    const int32_t* kept, int32_t num_kept, float* grad_w) {
  if (num_kept <= 0) return;
  const TapSteps t = ConvTapSteps(s);
  const int32_t K = s.filter_h * s.filter_w * s.in_c;
  const PixelTaps full = FullTaps(s);
#if TFLM_TRAIN_VFP_ASM
  SpanSteps c = ConvSpanSteps(s, K, t);
#endif
  auto span = [&](int32_t oy, int32_t ox, int32_t pos_begin, int32_t pos_end, int32_t span_end, int32_t r) {
    PixelTaps p = full;
    p.x_first = (InputRow(s, oy, 0) * s.in_w + InputCol(s, ox, 0)) * s.in_c;
#if TFLM_TRAIN_VFP_ASM
    if (full.rows == 3) {
      c.span_end = span_end;
      const uintptr_t g_base = reinterpret_cast<uintptr_t>(grad_w) -
                               static_cast<uintptr_t>(pos_begin) * static_cast<uintptr_t>(K) * sizeof(float);
      return static_cast<int32_t>(GradW9SpanVfp(x + p.x_first, kept + r, pos_end, delta, g_base, &c) - kept);
    }
#endif
    // Elsewhere pixel by pixel as Conv2DWeightGrad, the window's shape known.
    for (; pos_begin < span_end; pos_begin = pos_end, pos_end += s.out_c, p.x_first += s.stride_w * s.in_c) {
      r = GradWKept(x, delta, kept, r, num_kept, pos_begin, pos_end, K, p, t, grad_w);
    }
    return r;
  };
  auto pixel = [&](int32_t oy, int32_t ox, int32_t pos_begin, int32_t pos_end, int32_t r) {
    return GradWKept(x, delta, kept, r, num_kept, pos_begin, pos_end, K, ConvPixelTaps(s, oy, ox), t, grad_w);
  };
  WalkKept(s, kept, num_kept, span, pixel);
}

// A kept list (or every element, kept null) walked pixel by pixel for the
// first layer's loops: along a row while the windows are full and every channel
// is kept (the window moves by stride_w columns and keeps its shape until its
// last column leaves the input), each pixel goes to whole(p, pos_begin) (p its
// taps, pos_begin its first element); every other pixel with a kept element to
// pixel(p, pos_begin, pos_end, r) (kept[r] its first), which returns the index
// of the first kept element past the pixel.
template <typename WholeFn, typename PixelFn>
inline void WalkWhole(const ConvShape& s, const int32_t* kept, int32_t num_kept, WholeFn whole, PixelFn pixel) {
  const int32_t K = s.filter_h * s.filter_w * s.in_c;
  const PixelTaps full = FullTaps(s);
  int32_t oy = 0, ox = 0, pos_begin = 0, pos_end = s.out_c;  // as in Conv2DWeightAndInputGrad
  int32_t r = 0;
  while (r < num_kept) {
    const int32_t e = kept != nullptr ? kept[r] : r;
    while (e >= pos_end) {
      pos_begin = pos_end;
      pos_end += s.out_c;
      if (++ox == s.out_w) {
        ox = 0;
        ++oy;
      }
    }
    PixelTaps p = PixelTapsAt(s, full, oy, ox);
    if (!FullWindow(p, K) || !WholePixelKept(kept, r, num_kept, pos_begin, s.out_c)) {
      r = pixel(p, pos_begin, pos_end, r);
      continue;
    }
    int32_t ix_last = InputCol(s, ox, s.filter_w - 1);
    for (;;) {
      whole(p, pos_begin);
      r += s.out_c;
      ix_last += s.stride_w;
      if (ox + 1 == s.out_w || ix_last >= s.in_w || !WholePixelKept(kept, r, num_kept, pos_end, s.out_c)) break;
      ++ox;
      pos_begin = pos_end;
      pos_end += s.out_c;
      p.x_first += s.stride_w * s.in_c;
    }
  }
}

// Conv2DWeightAndInputGrad without dx (a first layer) when GradWShape(s): each
// pixel's taps are read once for all its kept channels, by GradWAll for whole
// pixels (WalkWhole), else through a list of the pixel's kept channels.
// Not inlined: Conv2DWeightAndInputGrad's own loop compiles as it did without it.
__attribute__((noinline)) void Conv2DWeightGrad(const float* x, const ConvShape& s, const float* delta,
                                                const int32_t* kept, int32_t num_kept, float* grad_w) {
  const TapSteps t = ConvTapSteps(s);
  const int32_t K = s.filter_h * s.filter_w * s.in_c;
  auto whole = [&](const PixelTaps& p, int32_t pos_begin) {
    GradWAll(x + p.x_first, delta + pos_begin, grad_w, s.out_c, K, p, t);
  };
  auto pixel = [&](const PixelTaps& p, int32_t pos_begin, int32_t pos_end, int32_t r) {
    return GradWKept(x, delta, kept, r, num_kept, pos_begin, pos_end, K, p, t, grad_w);
  };
  WalkWhole(s, kept, num_kept, whole, pixel);
}

#if TFLM_TRAIN_VFP_ASM
// Both gradients alone for one kept element: grad_w (g at the window's first
// tap in the element's filter gradient) += d * its taps, dx += d * its weights
// (w likewise), tap by tap as the reference.
void AddBothTaps(const float* x0, float* dx0, const float* w, float* g, float d, const PixelTaps& p,
                 const TapSteps& t) {
  for (int32_t r = 0; r < p.rows; ++r) {
    const int32_t xr = r * t.x_row, wr = r * t.w_row;
    for (int32_t seg = 0; seg < p.segs; ++seg) {
      const int32_t xo = xr + seg * t.x_seg, wo = wr + seg * t.w_seg;
      for (int32_t j = 0; j < p.len; ++j) {
        g[wo + j] += d * x0[xo + j];
        dx0[xo + j] += d * w[wo + j];
      }
    }
  }
}

// Both gradients of the kept elements kept[r] on (kept null: every element) of
// one pixel (elements [pos_begin, pos_end), taps p), element by element, +-0
// errors skipped; returns the index of the first kept element past the pixel.
inline int32_t BothKept(const float* x, const float* w, const float* delta, const int32_t* kept, int32_t r,
                        int32_t num_kept, int32_t pos_begin, int32_t pos_end, int32_t K, const PixelTaps& p,
                        const TapSteps& t, float* grad_w, float* dx) {
  for (; r < num_kept; ++r) {
    const int32_t e = kept != nullptr ? kept[r] : r;
    if (e >= pos_end) break;
    const float de = delta[e];
    if (de == 0.0f || p.rows == 0) continue;  // adds nothing (kernels/fast/zero.h)
    const int32_t w_at = (e - pos_begin) * K + p.w_first;
    AddBothTaps(x + p.x_first, dx + p.x_first, w + w_at, grad_w + w_at, de, p, t);
  }
  return r;
}

// Whether Conv2DBothGrads has a loop for the full windows of s: nine taps, three
// filter rows of three floats.
bool BothGradsShape(const ConvShape& s) {
  return s.filter_h == 3 && s.filter_w * s.in_c == 3 && (s.dilation_w == 1 || s.filter_w == 1);
}

// Conv2DBothGrads over a sparse kept list (kept not null): runs of full windows
// by Both9SpanVfp, other pixels element by element.
__attribute__((noinline)) void Conv2DBothGradsKept(const float* x, const float* w, const ConvShape& s,
                                                   const float* delta, const int32_t* kept, int32_t num_kept,
                                                   float* grad_w, float* dx) {
  if (num_kept <= 0) return;
  const TapSteps t = ConvTapSteps(s);
  const int32_t K = s.filter_h * s.filter_w * s.in_c;
  SpanSteps c = ConvSpanSteps(s, K, t);
  auto span = [&](int32_t oy, int32_t ox, int32_t pos_begin, int32_t pos_end, int32_t span_end, int32_t r) {
    const int32_t x_first = (InputRow(s, oy, 0) * s.in_w + InputCol(s, ox, 0)) * s.in_c;
    const uintptr_t back = static_cast<uintptr_t>(pos_begin) * static_cast<uintptr_t>(K) * sizeof(float);
    c.span_end = span_end;
    return static_cast<int32_t>(Both9SpanVfp(x + x_first, dx + x_first, kept + r, pos_end, delta,
                                             reinterpret_cast<uintptr_t>(grad_w) - back,
                                             reinterpret_cast<uintptr_t>(w) - back, &c) -
                                kept);
  };
  auto pixel = [&](int32_t oy, int32_t ox, int32_t pos_begin, int32_t pos_end, int32_t r) {
    return BothKept(x, w, delta, kept, r, num_kept, pos_begin, pos_end, K, ConvPixelTaps(s, oy, ox), t, grad_w,
                    dx);
  };
  WalkKept(s, kept, num_kept, span, pixel);
}

// Conv2DWeightAndInputGrad with both gradients on a Cortex-M4F when
// BothGradsShape(s) (a first layer asked for dx too): for whole pixels
// (WalkWhole) the taps and dx elements stay in registers for all its channels
// (Both9AllVfp); other pixels' kept elements one by one (BothKept).
// Not inlined, for the same reason as Conv2DWeightGrad.
__attribute__((noinline)) void Conv2DBothGrads(const float* x, const float* w, const ConvShape& s,
                                               const float* delta, const int32_t* kept, int32_t num_kept,
                                               float* grad_w, float* dx) {
  const TapSteps t = ConvTapSteps(s);
  const int32_t K = s.filter_h * s.filter_w * s.in_c;
  auto whole = [&](const PixelTaps& p, int32_t pos_begin) {
    Both9AllVfp(x + p.x_first, dx + p.x_first, t.x_row, delta + pos_begin, grad_w, w, s.out_c);
  };
  auto pixel = [&](const PixelTaps& p, int32_t pos_begin, int32_t pos_end, int32_t r) {
    return BothKept(x, w, delta, kept, r, num_kept, pos_begin, pos_end, K, p, t, grad_w, dx);
  };
  WalkWhole(s, kept, num_kept, whole, pixel);
}

#endif

#if TFLM_TRAIN_VFP_ASM
// The gradients of a pixel's listed channels, eight taps at a time, on a
// Cortex-M4F (the window's rows each one span of a multiple of 8 floats). What
// the loops read from memory (byte offsets fixed: the assembly loads them):
struct ChannelList {
  int32_t n;            // #0: channels listed
  int32_t chunks;       // #4: eight-float chunks per row
  int32_t x_skip;       // #8: bytes from a row's end to the next row's start in x and dx
  int32_t w_skip;       // #12: the same in a filter
  const int32_t* list;  // #16: per channel, its filter's byte offset then its error's bits
  int32_t rows;         // #20: rows left (counted down)
};

// Per chunk the eight taps (s0-s7) and, with dx, the eight dx elements (s8-s15)
// are loaded once; per channel its error (s16), then its eight gradients (at
// gw0 + offset) get error times tap and, with dx, its weights (at w0 + offset)
// times the error are added to the dx elements, each as the reference's VMUL
// and VADD; the dx elements get the channels in list order (ascending, as the
// reference). Loaded values in s17-s24, products in s25-s28.
#define TFLM_TRAIN_LIST_ASM(DX)                                                                       \
  "1:\n\t"                                                                                            \
  "ldr %[ch], [%[b], #4]\n\t"                                                                         \
  "2:\n\t"                                                                                            \
  "vldmia %[xp]!, {s0-s7}\n\t"                                                                        \
  DX("vldm %[qp], {s8-s15}\n\t")                                                                      \
  "ldr %[lp], [%[b], #16]\n\t"                                                                        \
  "ldr %[cnt], [%[b], #0]\n\t"                                                                        \
  "3:\n\t"                                                                                            \
  "ldr %[off], [%[lp]], #4\n\t"                                                                       \
  "vldmia %[lp]!, {s16}\n\t"                                                                          \
  "add %[g], %[gb], %[off]\n\t"                                                                       \
  "vldm %[g], {s17-s24}\n\t"                                                                          \
  TFLM_TRAIN_GW8("s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7")                                      \
  "vstm %[g], {s17-s24}\n\t"                                                                          \
  DX("add %[g], %[wb], %[off]\n\t"                                                                    \
     "vldm %[g], {s17-s24}\n\t"                                                                       \
     TFLM_TRAIN_MAC("s16", "s25", "s17", "s8") TFLM_TRAIN_MAC("s16", "s26", "s18", "s9")              \
     TFLM_TRAIN_MAC("s16", "s27", "s19", "s10") TFLM_TRAIN_MAC("s16", "s28", "s20", "s11")            \
     TFLM_TRAIN_MAC("s16", "s25", "s21", "s12") TFLM_TRAIN_MAC("s16", "s26", "s22", "s13")            \
     TFLM_TRAIN_MAC("s16", "s27", "s23", "s14") TFLM_TRAIN_MAC("s16", "s28", "s24", "s15"))           \
  "subs %[cnt], %[cnt], #1\n\t"                                                                       \
  "bne 3b\n\t"                                                                                        \
  DX("vstmia %[qp]!, {s8-s15}\n\t")                                                                   \
  "add %[gb], %[gb], #32\n\t"                                                                         \
  DX("add %[wb], %[wb], #32\n\t")                                                                     \
  "subs %[ch], %[ch], #1\n\t"                                                                         \
  "bne 2b\n\t"                                                                                        \
  "ldr %[off], [%[b], #8]\n\t"                                                                        \
  "add %[xp], %[xp], %[off]\n\t"                                                                      \
  DX("add %[qp], %[qp], %[off]\n\t")                                                                  \
  "ldr %[off], [%[b], #12]\n\t"                                                                       \
  "add %[gb], %[gb], %[off]\n\t"                                                                      \
  DX("add %[wb], %[wb], %[off]\n\t")                                                                  \
  "ldr %[off], [%[b], #20]\n\t"                                                                       \
  "subs %[off], %[off], #1\n\t"                                                                       \
  "str %[off], [%[b], #20]\n\t"                                                                       \
  "bne 1b\n\t"
#define TFLM_TRAIN_LIST_CLOBBERS                                                                     \
  "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", \
      "s24", "s25", "s26", "s27", "s28", "cc", "memory"

void BothListVfp(const float* x0, float* dx0, float* gw0, const float* w0, ChannelList* b) {
  const int32_t* lp;
  int32_t cnt, ch, off;
  float* g;
  __asm__ volatile(TFLM_TRAIN_LIST_ASM(TFLM_TRAIN_ON)
                   : [xp] "+r"(x0), [qp] "+r"(dx0), [gb] "+r"(gw0), [wb] "+r"(w0), [lp] "=&r"(lp),
                     [cnt] "=&r"(cnt), [ch] "=&r"(ch), [off] "=&r"(off), [g] "=&r"(g)
                   : [b] "r"(b)
                   : TFLM_TRAIN_LIST_CLOBBERS, "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15");
}

// The weight gradient alone (BothListVfp without dx).
void GradWListVfp(const float* x0, float* gw0, ChannelList* b) {
  const int32_t* lp;
  int32_t cnt, ch, off;
  float* g;
  __asm__ volatile(TFLM_TRAIN_LIST_ASM(TFLM_TRAIN_OFF)
                   : [xp] "+r"(x0), [gb] "+r"(gw0), [lp] "=&r"(lp), [cnt] "=&r"(cnt), [ch] "=&r"(ch),
                     [off] "=&r"(off), [g] "=&r"(g)
                   : [b] "r"(b)
                   : TFLM_TRAIN_LIST_CLOBBERS);
}
#undef TFLM_TRAIN_LIST_ASM
#undef TFLM_TRAIN_LIST_CLOBBERS
#undef TFLM_TRAIN_ON
#undef TFLM_TRAIN_OFF
#undef TFLM_TRAIN_MAC
#undef TFLM_TRAIN_ROWS3
#undef TFLM_TRAIN_X9
#undef TFLM_TRAIN_DX9
#undef TFLM_TRAIN_GW9_CHANNEL
#undef TFLM_TRAIN_DX9_CHANNEL
#undef TFLM_TRAIN_GW9_CLOBBERS
#undef TFLM_TRAIN_BOTH9_CLOBBERS
#undef TFLM_TRAIN_GW8
#undef TFLM_TRAIN_GW16_CHANNEL
#undef TFLM_TRAIN_GW16_CLOBBERS

// Whether ListKeptVfp takes a pixel with the taps p: each row one span of a
// multiple of 8 floats.
inline bool ListLayout(const PixelTaps& p) { return p.rows > 0 && p.segs == 1 && (p.len & 7) == 0; }

// BothListVfp, or GradWListVfp when dx is null.
inline void ListVfp(const float* x, const float* w, float* grad_w, float* dx, const PixelTaps& p,
                    ChannelList* b) {
  if (dx != nullptr) {
    BothListVfp(x + p.x_first, dx + p.x_first, grad_w + p.w_first, w + p.w_first, b);
  } else {
    GradWListVfp(x + p.x_first, grad_w + p.w_first, b);
  }
}

// The weight gradient (and dx when not null) of the kept elements kept[r] on of
// one pixel (elements [pos_begin, pos_end), taps p with ListLayout): the nonzero
// errors are listed (+-0 ones skipped, kernels/fast/zero.h), 16 at most at a
// time, for ListVfp (in ascending order, so dx gets them as in the reference). Returns
// the index of the first kept element past the pixel. Not inlined, so that the
// general loop compiles as before.
__attribute__((noinline)) int32_t ListKeptVfp(const float* x, const float* w, const float* delta,
                                              const int32_t* kept, int32_t r, int32_t num_kept, int32_t pos_begin,
                                              int32_t pos_end, int32_t K, const PixelTaps& p, const TapSteps& t,
                                              float* grad_w, float* dx) {
  constexpr int32_t kList = 16;
  int32_t list[2 * kList];
  ChannelList b;
  b.chunks = p.len >> 3;
  b.x_skip = (t.x_row - p.len) * static_cast<int32_t>(sizeof(float));
  b.w_skip = (t.w_row - p.len) * static_cast<int32_t>(sizeof(float));
  b.list = list;
  const int32_t k_bytes = K * static_cast<int32_t>(sizeof(float));
  int32_t m = 0;
  for (; r < num_kept; ++r) {
    const int32_t e = kept != nullptr ? kept[r] : r;
    if (e >= pos_end) break;
    const uint32_t bits = FloatBits(delta[e]);
    if ((bits << 1) == 0) continue;  // +-0: adds nothing (kernels/fast/zero.h)
    list[2 * m] = (e - pos_begin) * k_bytes;
    list[2 * m + 1] = static_cast<int32_t>(bits);
    if (++m == kList) {
      b.n = m;
      b.rows = p.rows;
      ListVfp(x, w, grad_w, dx, p, &b);
      m = 0;
    }
  }
  if (m > 0) {
    b.n = m;
    b.rows = p.rows;
    ListVfp(x, w, grad_w, dx, p, &b);
  }
  return r;
}
#endif

// The first layer's cases above: Conv2DWeightGrad or Conv2DBothGrads when they
// have loops for s (false otherwise: nothing done). Not inlined either.
__attribute__((noinline)) bool FirstLayerGrads(const float* x, const float* w, const ConvShape& s,
                                               const float* delta, const int32_t* kept, int32_t num_kept,
                                               float* grad_w, float* dx) {
  if (dx == nullptr && GradWShape(s)) {
    if (kept != nullptr) {
      Conv2DWeightGradKept(x, s, delta, kept, num_kept, grad_w);
    } else {
      Conv2DWeightGrad(x, s, delta, kept, num_kept, grad_w);
    }
    return true;
  }
#if TFLM_TRAIN_VFP_ASM
  if (grad_w != nullptr && dx != nullptr && BothGradsShape(s)) {
    if (kept != nullptr) {
      Conv2DBothGradsKept(x, w, s, delta, kept, num_kept, grad_w, dx);
    } else {
      Conv2DBothGrads(x, w, s, delta, kept, num_kept, grad_w, dx);
    }
    return true;
  }
#else
  (void)w;
#endif
  return false;
}

}  // namespace

// y0[px * out_c + oc + i] = Finish(acc[4 i + px], bias, oc + i, act) for a 4x4
// block, with the activation and the bias test outside the loop.
template <FusedAct kAct, bool kBias>
void FinishGray4x4(const float* bias, const float* acc, int32_t oc, int32_t out_c, float* y0) {
  float b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (kBias) {
    for (int32_t i = 0; i < 4; ++i) b[i] = bias[oc + i];
  }
  for (int32_t px = 0; px < 4; ++px) {
    float* y = y0 + px * out_c + oc;
    for (int32_t i = 0; i < 4; ++i) {
      float v = acc[4 * i + px];
      if (kBias) v += b[i];
      y[i] = ApplyFusedAct(kAct, v);
    }
  }
}

void FinishGray(FusedAct act, const float* bias, const float* acc, int32_t oc, int32_t out_c, float* y0) {
  const bool has_bias = bias != nullptr;
  switch (act) {
    case FusedAct::kRelu:
      has_bias ? FinishGray4x4<FusedAct::kRelu, true>(bias, acc, oc, out_c, y0)
               : FinishGray4x4<FusedAct::kRelu, false>(bias, acc, oc, out_c, y0);
      break;
    case FusedAct::kRelu6:
      has_bias ? FinishGray4x4<FusedAct::kRelu6, true>(bias, acc, oc, out_c, y0)
               : FinishGray4x4<FusedAct::kRelu6, false>(bias, acc, oc, out_c, y0);
      break;
    default:
      has_bias ? FinishGray4x4<FusedAct::kNone, true>(bias, acc, oc, out_c, y0)
               : FinishGray4x4<FusedAct::kNone, false>(bias, acc, oc, out_c, y0);
      break;
  }
}

// Four pixels of one row (ox..ox+3) of a one-channel, width-stride-1, width-dilation-1
// convolution whose windows have the taps p (the same for all four, x_first that
// of ox).
void Gray4(const float* x, const ConvShape& s, const float* w, const float* bias, FusedAct act, const TapSteps& t,
           const PixelTaps& p, float* y0) {
  const int32_t K = s.filter_h * s.filter_w;
  float acc[16];
  int32_t oc = 0;
  for (; oc + 4 <= s.out_c; oc += 4) {
    Forward4x4Gray(x + p.x_first, w + oc * K + p.w_first, K, p, t, acc);
    FinishGray(act, bias, acc, oc, s.out_c, y0);
  }
  for (; oc < s.out_c; ++oc) {
    for (int32_t px = 0; px < 4; ++px) {
      y0[px * s.out_c + oc] = Finish(Forward1x1(x + p.x_first + px, w + oc * K + p.w_first, p, t), bias, oc, act);
    }
  }
}

// Gray4 at ox..ox+3 when their windows have the same shape; false otherwise.
bool ForwardGray4(const float* x, const ConvShape& s, const float* w, const float* bias, FusedAct act,
                  const TapSteps& t, int32_t oy, int32_t ox, float* y0) {
  if (ox + 4 > s.out_w) return false;
  const PixelTaps p = ConvPixelTaps(s, oy, ox);
  if (!SameTaps(p, ConvPixelTaps(s, oy, ox + 3))) return false;  // the taps shrink at most at the ends
  Gray4(x, s, w, bias, act, t, p, y0);
  return true;
}

void Conv2D(const float* x, const ConvShape& s, const float* w, const float* bias, FusedAct act, float* y) {
  const TapSteps t = ConvTapSteps(s);
  if (s.in_c == 1 && s.stride_w == 1 && s.dilation_w == 1) {
    // Blocks starting at ox in [ox_lo, ox_hi] have every filter column inside the
    // input for all four pixels: one row's such blocks share their taps but for
    // x_first, which moves with ox (one channel, stride 1).
    const int32_t ox_lo = s.pad_left;
    const int32_t ox_hi = s.in_w + s.pad_left - s.filter_w - 3;
    for (int32_t oy = 0; oy < s.out_h; ++oy) {
      int32_t ox = 0;
      float* y_row = y + oy * s.out_w * s.out_c;
      PixelTaps inner;
      int32_t inner_ox = -1;  // the ox `inner` was found for; -1: not yet
      while (ox < s.out_w) {
        if (ox >= ox_lo && ox <= ox_hi) {
          if (inner_ox < 0) {
            inner = ConvPixelTaps(s, oy, ox);
            inner_ox = ox;
          }
          PixelTaps p = inner;
          if (p.rows > 0) p.x_first += ox - inner_ox;
          Gray4(x, s, w, bias, act, t, p, y_row + ox * s.out_c);
          ox += 4;
          continue;
        }
        if (ForwardGray4(x, s, w, bias, act, t, oy, ox, y_row + ox * s.out_c)) {
          ox += 4;
          continue;
        }
        ForwardPixels(x, s, w, bias, act, t, ConvPixelTaps(s, oy, ox), 0, y_row + ox * s.out_c, nullptr);
        ++ox;
      }
    }
    return;
  }
  // Pixels in raster order, two at a time when their windows have the same shape
  // (all of a VALID convolution's, the interior of a SAME one).
  int32_t oy = 0, ox = 0;
  const int32_t pixels = s.out_h * s.out_w;
  for (int32_t pos = 0; pos < pixels;) {
    const PixelTaps p = ConvPixelTaps(s, oy, ox);
    float* y0 = y + pos * s.out_c;
    int32_t oy1 = oy, ox1 = ox + 1;
    if (ox1 == s.out_w) {
      ox1 = 0;
      ++oy1;
    }
    if (pos + 1 < pixels) {
      const PixelTaps p1 = ConvPixelTaps(s, oy1, ox1);
      if (SameTaps(p, p1)) {
        ForwardPixels(x, s, w, bias, act, t, p, p1.x_first, y0, y0 + s.out_c);
        pos += 2;
        oy = oy1;
        ox = ox1 + 1;
        if (ox == s.out_w) {
          ox = 0;
          ++oy;
        }
        continue;
      }
    }
    ForwardPixels(x, s, w, bias, act, t, p, 0, y0, nullptr);
    pos += 1;
    oy = oy1;
    ox = ox1;
  }
}

void Conv2DWeightAndInputGrad(const float* x, const float* w, const ConvShape& s, const float* delta,
                              const int32_t* kept, int32_t num_kept, float* grad_w, float* dx) {
  if (grad_w == nullptr && dx == nullptr) return;
  if (FirstLayerGrads(x, w, s, delta, kept, num_kept, grad_w, dx)) return;
  const TapSteps t = ConvTapSteps(s);
  const int32_t K = s.filter_h * s.filter_w * s.in_c;
  // The kept list is ascending, so its elements come pixel by pixel: the pixel is
  // found by stepping (pos_end is one past the pixel's last element), not dividing.
  int32_t oy = 0, ox = 0, pos_begin = 0, pos_end = s.out_c;
  int32_t r = 0;
  while (r < num_kept) {
    int32_t e = kept != nullptr ? kept[r] : r;
    while (e >= pos_end) {
      pos_begin = pos_end;
      pos_end += s.out_c;
      if (++ox == s.out_w) {
        ox = 0;
        ++oy;
      }
    }
    const PixelTaps p = ConvPixelTaps(s, oy, ox);
#if TFLM_TRAIN_VFP_ASM
    if (grad_w != nullptr && ListLayout(p)) {
      r = ListKeptVfp(x, w, delta, kept, r, num_kept, pos_begin, pos_end, K, p, t, grad_w, dx);
      continue;
    }
#endif
    const float* x0 = grad_w != nullptr ? x + p.x_first : nullptr;
    float* dx0 = dx != nullptr ? dx + p.x_first : nullptr;
    int32_t oc[4];
    float d[4];
    int32_t m = 0;
    for (; r < num_kept; ++r) {
      e = kept != nullptr ? kept[r] : r;
      if (e >= pos_end) break;
      const float de = delta[e];
      if (de == 0.0f || p.rows == 0) continue;  // adds nothing (kernels/fast/zero.h)
      oc[m] = e - pos_begin;
      d[m] = de;
      if (++m == 4) {
        Backward4(x0, w, grad_w, dx0, K, oc, d, p, t);
        m = 0;
      }
    }
    for (int32_t i = 0; i < m; ++i) Backward1(x0, w, grad_w, dx0, K, oc[i], d[i], p, t);
  }
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
