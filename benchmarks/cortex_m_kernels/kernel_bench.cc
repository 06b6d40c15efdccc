// Instructions per MAC (or per element) of each optimized kernel and of its
// reference kernel, on the shapes of the Cortex-M example's CNN and MLP, in one
// run: SysTick ticks under QEMU's -icount shift=0 times the calibrated
// instructions per tick (a resolution of one tick, ~40 instructions, per
// measurement; each measurement spans at least ~100,000 instructions). Errors are
// nonzero (no zero-error skipping). Every fast result is also compared with the
// reference's bits; a mismatch fails the run.
#include <string.h>

#include "board.h"
#include "kernels/average_pool.h"
#include "kernels/conv_2d.h"
#include "kernels/depthwise_conv_2d.h"
#include "kernels/fast/average_pool.h"
#include "kernels/fast/conv_2d.h"
#include "kernels/fast/depthwise_conv_2d.h"
#include "kernels/fast/fully_connected.h"
#include "kernels/fast/max_pool.h"
#include "kernels/fast/sgd_update.h"
#include "kernels/fast/top_k.h"
#include "kernels/fully_connected.h"
#include "kernels/max_pool.h"
#include "kernels/top_k.h"
#include "sgd.h"

namespace {

namespace kernels = tflm_train::kernels;
namespace fast = tflm_train::kernels::fast;
using board::Line;

constexpr int kMaxX = 28 * 28 * 16, kMaxW = 16 * 3 * 3 * 16 + 784 * 32, kMaxY = 26 * 26 * 16, kMaxN = 5408;
float g_x[kMaxX], g_w[kMaxW], g_w2[kMaxW], g_b[64], g_y[kMaxY], g_y2[kMaxY], g_d[kMaxY];
float g_g[kMaxW], g_g2[kMaxW], g_dx[kMaxX], g_dx2[kMaxX];
int32_t g_index[kMaxN], g_rows[kMaxN], g_rows2[kMaxN];
uint8_t g_mask[kMaxN];
uint32_t g_per_tick = 40;
bool g_ok = true;

// Read at run time, so the compiler cannot fold the SGD options into the loops
// (the trainer does not know them at compile time either).
volatile float g_lr = 0.01f, g_zero = 0.0f;

uint32_t g_seed = 12345;
float Random() {  // in [-1, 1), never 0
  g_seed = g_seed * 1664525u + 1013904223u;
  return (static_cast<float>(g_seed >> 8) + 0.5f) / 8388608.0f - 1.0f;
}
void Fill(float* v, int n) {
  for (int i = 0; i < n; ++i) v[i] = Random();
}

// Instructions of one call, measured `repeat` times (averaged).
template <typename F>
uint64_t Instructions(F f, int repeat) {
  const uint64_t t0 = board::Ticks();
  for (int i = 0; i < repeat; ++i) f();
  const uint64_t t1 = board::Ticks();
  return (t1 - t0) * g_per_tick / static_cast<uint64_t>(repeat);
}

void Report(const char* name, uint64_t ref, uint64_t fast_count, uint64_t units, bool same) {
  if (!same) g_ok = false;
  Line()
      .Str("KERNEL ")
      .Str(name)
      .Str(" units=")
      .U(units)
      .Str(" reference=")
      .Fixed(static_cast<int64_t>(ref * 1000 / units))
      .Str(" fast=")
      .Fixed(static_cast<int64_t>(fast_count * 1000 / units))
      .Str(" speedup=")
      .Fixed(static_cast<int64_t>(ref * 1000 / (fast_count ? fast_count : 1)))
      .Str(same ? " bits=same" : " bits=DIFFERENT")
      .Print();
}

kernels::ConvShape Valid(int h, int w, int c, int out_c, int f) {
  kernels::ConvShape s{};
  s.in_h = h; s.in_w = w; s.in_c = c; s.out_c = out_c; s.filter_h = f; s.filter_w = f;
  s.stride_h = s.stride_w = s.dilation_h = s.dilation_w = 1;
  s.out_h = h - f + 1; s.out_w = w - f + 1; s.depth_multiplier = 1;
  return s;
}

void Conv(const char* name, const kernels::ConvShape& s, int repeat) {
  const int n_x = s.in_h * s.in_w * s.in_c, n_w = s.out_c * s.filter_h * s.filter_w * s.in_c;
  const int n_y = s.out_h * s.out_w * s.out_c;
  Fill(g_x, n_x); Fill(g_w, n_w); Fill(g_b, s.out_c); Fill(g_d, n_y);
  const uint64_t macs = static_cast<uint64_t>(n_y) * s.filter_h * s.filter_w * s.in_c;
  const auto act = kernels::FusedAct::kRelu;
  const uint64_t r = Instructions([&] { kernels::Conv2D(g_x, s, g_w, g_b, act, g_y); }, repeat);
  const uint64_t f = Instructions([&] { fast::Conv2D(g_x, s, g_w, g_b, act, g_y2); }, repeat);
  Line line;
  line.Str(name);
  char fwd[64], bwd_w[64], bwd[64];
  strcpy(fwd, name); strcat(fwd, "_forward");
  strcpy(bwd_w, name); strcat(bwd_w, "_weight_grad");
  strcpy(bwd, name); strcat(bwd, "_weight_and_input_grad");
  Report(fwd, r, f, macs, memcmp(g_y, g_y2, n_y * sizeof(float)) == 0);
  // Weight gradient only (the first layer), then both gradients: MACs = 1x and 2x.
  memset(g_g, 0, n_w * sizeof(float)); memset(g_g2, 0, n_w * sizeof(float));
  const uint64_t rw = Instructions([&] {
    kernels::Conv2DWeightAndInputGrad(g_x, g_w, s, g_d, nullptr, n_y, g_g, nullptr); }, 1);
  const uint64_t fw = Instructions([&] {
    fast::Conv2DWeightAndInputGrad(g_x, g_w, s, g_d, nullptr, n_y, g_g2, nullptr); }, 1);
  Report(bwd_w, rw, fw, macs, memcmp(g_g, g_g2, n_w * sizeof(float)) == 0);
  memset(g_g, 0, n_w * sizeof(float)); memset(g_g2, 0, n_w * sizeof(float));
  memset(g_dx, 0, n_x * sizeof(float)); memset(g_dx2, 0, n_x * sizeof(float));
  const uint64_t rb = Instructions([&] {
    kernels::Conv2DWeightAndInputGrad(g_x, g_w, s, g_d, nullptr, n_y, g_g, g_dx); }, 1);
  const uint64_t fb = Instructions([&] {
    fast::Conv2DWeightAndInputGrad(g_x, g_w, s, g_d, nullptr, n_y, g_g2, g_dx2); }, 1);
  Report(bwd, rb, fb, 2 * macs,
         memcmp(g_g, g_g2, n_w * sizeof(float)) == 0 && memcmp(g_dx, g_dx2, n_x * sizeof(float)) == 0);
}

// DEPTHWISE_CONV_2D (multiplier 1): forward, then both gradients (MACs = 2x).
void Depthwise(const char* name, const kernels::ConvShape& s, int repeat) {
  const int n_x = s.in_h * s.in_w * s.in_c, n_w = s.filter_h * s.filter_w * s.out_c;
  const int n_y = s.out_h * s.out_w * s.out_c;
  Fill(g_x, n_x); Fill(g_w, n_w); Fill(g_b, s.out_c); Fill(g_d, n_y);
  const uint64_t macs = static_cast<uint64_t>(n_y) * s.filter_h * s.filter_w;
  const auto act = kernels::FusedAct::kRelu;
  const uint64_t r = Instructions([&] { kernels::DepthwiseConv2D(g_x, s, g_w, g_b, act, g_y); }, repeat);
  const uint64_t f = Instructions([&] { fast::DepthwiseConv2D(g_x, s, g_w, g_b, act, g_y2); }, repeat);
  char fwd[64], bwd[64];
  strcpy(fwd, name); strcat(fwd, "_forward");
  strcpy(bwd, name); strcat(bwd, "_weight_and_input_grad");
  Report(fwd, r, f, macs, memcmp(g_y, g_y2, n_y * sizeof(float)) == 0);
  memset(g_g, 0, n_w * sizeof(float)); memset(g_g2, 0, n_w * sizeof(float));
  memset(g_dx, 0, n_x * sizeof(float)); memset(g_dx2, 0, n_x * sizeof(float));
  const uint64_t rb = Instructions([&] {
    kernels::DepthwiseConv2DWeightAndInputGrad(g_x, g_w, s, g_d, nullptr, n_y, g_g, g_dx); }, 1);
  const uint64_t fb = Instructions([&] {
    fast::DepthwiseConv2DWeightAndInputGrad(g_x, g_w, s, g_d, nullptr, n_y, g_g2, g_dx2); }, 1);
  Report(bwd, rb, fb, 2 * macs,
         memcmp(g_g, g_g2, n_w * sizeof(float)) == 0 && memcmp(g_dx, g_dx2, n_x * sizeof(float)) == 0);
}

void Fc(const char* name, int n_in, int n_out, int repeat) {
  Fill(g_x, n_in); Fill(g_w, n_in * n_out); Fill(g_b, n_out); Fill(g_d, n_out);
  const uint64_t macs = static_cast<uint64_t>(n_in) * n_out;
  const auto act = kernels::FusedAct::kRelu;
  char label[64];
  const uint64_t r = Instructions([&] { kernels::FullyConnected(g_x, n_in, g_w, g_b, n_out, act, g_y); }, repeat);
  const uint64_t f = Instructions([&] { fast::FullyConnected(g_x, n_in, g_w, g_b, n_out, act, g_y2); }, repeat);
  strcpy(label, name); strcat(label, "_forward");
  Report(label, r, f, macs, memcmp(g_y, g_y2, n_out * sizeof(float)) == 0);
  memset(g_dx, 0, n_in * sizeof(float)); memset(g_dx2, 0, n_in * sizeof(float));
  const uint64_t ri = Instructions([&] {
    kernels::FullyConnectedInputGrad(g_w, n_in, g_d, nullptr, n_out, g_dx); }, repeat);
  const uint64_t fi = Instructions([&] {
    fast::FullyConnectedInputGrad(g_w, n_in, g_d, nullptr, n_out, g_dx2); }, repeat);
  strcpy(label, name); strcat(label, "_input_grad");
  Report(label, ri, fi, macs, memcmp(g_dx, g_dx2, n_in * sizeof(float)) == 0);
  // The direct layer's fused weight gradient + plain SGD update, every row kept.
  for (int o = 0; o < n_out; ++o) g_rows[o] = o;
  memcpy(g_w2, g_w, n_in * n_out * sizeof(float));
  const tflm_train::SgdStep step{g_lr, g_zero, g_zero};
  const float lr = g_lr;
  const uint64_t ru = Instructions([&] {
    for (int o = 0; o < n_out; ++o) tflm_train::SgdUpdateRankOne(step, g_d[o], g_x, n_in, g_w + o * n_in, nullptr);
  }, repeat);
  const uint64_t fu = Instructions([&] { fast::SgdRankOneRows(lr, g_d, g_rows, n_out, g_x, n_in, g_w2); }, repeat);
  strcpy(label, name); strcat(label, "_weight_grad_sgd");
  Report(label, ru, fu, macs, memcmp(g_w, g_w2, n_in * n_out * sizeof(float)) == 0);
}

// 2x2 stride-2 max pooling: per window element (forward) and per input element
// (gradient: every output error nonzero, so every window is rescanned).
void MaxPool(const char* name, int h, int w, int c) {
  kernels::ConvShape s{};
  s.in_h = h; s.in_w = w; s.in_c = s.out_c = c; s.filter_h = s.filter_w = 2; s.stride_h = s.stride_w = 2;
  s.dilation_h = s.dilation_w = 1; s.out_h = h / 2; s.out_w = w / 2; s.depth_multiplier = 1;
  const int n_x = h * w * c, n_y = s.out_h * s.out_w * c;
  Fill(g_x, n_x); Fill(g_d, n_y);
  const auto act = kernels::FusedAct::kNone;
  const uint64_t units = static_cast<uint64_t>(n_y) * 4;
  char label[64];
  const uint64_t r = Instructions([&] { kernels::MaxPool2D(g_x, s, act, g_y); }, 2);
  const uint64_t f = Instructions([&] { fast::MaxPool2D(g_x, s, act, g_y2); }, 2);
  strcpy(label, name); strcat(label, "_forward");
  Report(label, r, f, units, memcmp(g_y, g_y2, n_y * sizeof(float)) == 0);
  memset(g_dx, 0, n_x * sizeof(float)); memset(g_dx2, 0, n_x * sizeof(float));
  const uint64_t rg = Instructions([&] { kernels::MaxPool2DInputGrad(g_x, s, g_d, g_dx); }, 1);
  const uint64_t fg = Instructions([&] { fast::MaxPool2DInputGrad(g_x, s, g_d, g_dx2); }, 1);
  strcpy(label, name); strcat(label, "_input_grad");
  Report(label, rg, fg, units, memcmp(g_dx, g_dx2, n_x * sizeof(float)) == 0);
}

// 2x2 stride-2 average pooling: per window element (forward) and per input
// element (gradient).
void AvgPool(const char* name, int h, int w, int c) {
  kernels::ConvShape s{};
  s.in_h = h; s.in_w = w; s.in_c = s.out_c = c; s.filter_h = s.filter_w = 2; s.stride_h = s.stride_w = 2;
  s.dilation_h = s.dilation_w = 1; s.out_h = h / 2; s.out_w = w / 2; s.depth_multiplier = 1;
  const int n_x = h * w * c, n_y = s.out_h * s.out_w * c;
  Fill(g_x, n_x); Fill(g_d, n_y);
  const auto act = kernels::FusedAct::kNone;
  const uint64_t units = static_cast<uint64_t>(n_y) * 4;
  char label[64];
  const uint64_t r = Instructions([&] { kernels::AveragePool2D(g_x, s, act, g_y); }, 2);
  const uint64_t f = Instructions([&] { fast::AveragePool2D(g_x, s, act, g_y2); }, 2);
  strcpy(label, name); strcat(label, "_forward");
  Report(label, r, f, units, memcmp(g_y, g_y2, n_y * sizeof(float)) == 0);
  memset(g_dx, 0, n_x * sizeof(float)); memset(g_dx2, 0, n_x * sizeof(float));
  const uint64_t rg = Instructions([&] { kernels::AveragePool2DInputGrad(s, g_d, g_dx); }, 1);
  const uint64_t fg = Instructions([&] { fast::AveragePool2DInputGrad(s, g_d, g_dx2); }, 1);
  strcpy(label, name); strcat(label, "_input_grad");
  Report(label, rg, fg, units, memcmp(g_dx, g_dx2, n_x * sizeof(float)) == 0);
}

void Sgd(int n) {
  Fill(g_g, n); Fill(g_w, n);
  memcpy(g_w2, g_w, n * sizeof(float));
  const tflm_train::SgdStep step{g_lr, g_zero, g_zero};
  const uint64_t r = Instructions([&] { tflm_train::SgdUpdate(step, g_g, 1.0f, n, g_w, nullptr); }, 4);
  const uint64_t f = Instructions([&] { fast::SgdUpdate(step, g_g, 1.0f, n, g_w2, nullptr); }, 4);
  Report("sgd_dense_update", r, f, n, memcmp(g_w, g_w2, n * sizeof(float)) == 0);
}

void TopK(const char* name, int n, int k, bool half_zero) {
  for (int i = 0; i < n; ++i) g_d[i] = half_zero && (i % 2 == 0) ? 0.0f : Random();
  const uint64_t r = Instructions([&] { kernels::SelectTopKRows(g_d, n, k, g_index, g_mask, g_rows); }, 1);
  const uint64_t f = Instructions([&] { fast::SelectTopKRows(g_d, n, k, g_index, g_mask, g_rows2); }, 1);
  Report(name, r, f, n, memcmp(g_rows, g_rows2, k * sizeof(int32_t)) == 0);
}

// The same over `draws` inputs (fresh random values each): the sampled bracket
// misses T on some inputs and lists twice, which one input may not show.
void TopKMean(const char* name, int n, int k, bool half_zero, int draws) {
  uint64_t r = 0, f = 0;
  bool same = true;
  for (int d = 0; d < draws; ++d) {
    for (int i = 0; i < n; ++i) g_d[i] = half_zero && (i % 2 == 0) ? 0.0f : Random();
    r += Instructions([&] { kernels::SelectTopKRows(g_d, n, k, g_index, g_mask, g_rows); }, 1);
    f += Instructions([&] { fast::SelectTopKRows(g_d, n, k, g_index, g_mask, g_rows2); }, 1);
    same = same && memcmp(g_rows, g_rows2, k * sizeof(int32_t)) == 0;
  }
  Report(name, r, f, static_cast<uint64_t>(n) * draws, same);
}

// The conv gradients over a sparse kept list, as TinyProp trains: a deterministic
// pseudo-random `percent`% of the output elements (ascending NHWC indices, the
// trainer's format), scattered over pixels and channels. Units: the MACs done,
// kept elements x taps (x2 with dx), so per-MAC numbers compare with the dense lines.
void ConvSparse(const char* name, const kernels::ConvShape& s, int percent, bool with_dx) {
  const int n_x = s.in_h * s.in_w * s.in_c, n_w = s.out_c * s.filter_h * s.filter_w * s.in_c;
  const int n_y = s.out_h * s.out_w * s.out_c;
  Fill(g_x, n_x); Fill(g_w, n_w); Fill(g_d, n_y);
  int32_t num = 0;
  for (int e = 0; e < n_y; ++e) {
    g_seed = g_seed * 1664525u + 1013904223u;
    if ((g_seed >> 8) % 100u < static_cast<uint32_t>(percent)) g_rows[num++] = e;
  }
  const uint64_t macs = static_cast<uint64_t>(num) * s.filter_h * s.filter_w * s.in_c * (with_dx ? 2 : 1);
  memset(g_g, 0, n_w * sizeof(float)); memset(g_g2, 0, n_w * sizeof(float));
  memset(g_dx, 0, n_x * sizeof(float)); memset(g_dx2, 0, n_x * sizeof(float));
  float* dx_ref = with_dx ? g_dx : nullptr;
  float* dx_fast = with_dx ? g_dx2 : nullptr;
  const uint64_t r = Instructions([&] {
    kernels::Conv2DWeightAndInputGrad(g_x, g_w, s, g_d, g_rows, num, g_g, dx_ref); }, 1);
  const uint64_t f = Instructions([&] {
    fast::Conv2DWeightAndInputGrad(g_x, g_w, s, g_d, g_rows, num, g_g2, dx_fast); }, 1);
  Report(name, r, f, macs,
         memcmp(g_g, g_g2, n_w * sizeof(float)) == 0 && memcmp(g_dx, g_dx2, n_x * sizeof(float)) == 0);
}

}  // namespace

int main() {
  board::Write("tflm_train kernels on Cortex-M4F (QEMU mps2-an386): instructions per MAC (per element: top-k, sgd)\n");
  board::StartTicks();
  g_per_tick = board::InstructionsPerTick();
  Line().Str("CAL instructions_per_tick=").U(g_per_tick).Print();
  Conv("conv1_28x28x1_3x3x8", Valid(28, 28, 1, 8, 3), 1);
  Conv("conv2_13x13x8_3x3x16", Valid(13, 13, 8, 16, 3), 1);
  Conv("conv3_5x5x16_3x3x16", Valid(5, 5, 16, 16, 3), 4);
  Conv("conv_1x1_8x8x16_16", Valid(8, 8, 16, 16, 1), 4);
  Fc("fc_784x32", 784, 32, 1);
  Fc("fc_144x32", 144, 32, 4);
  Fc("fc_32x16", 32, 16, 16);
  MaxPool("max_pool_26x26x8", 26, 26, 8);
  MaxPool("max_pool_11x11x16", 11, 11, 16);
  Sgd(2304);
  TopK("top_k_5408_k1622", 5408, 1622, false);
  TopK("top_k_5408_k1622_half_zero", 5408, 1622, true);
  TopK("top_k_1936_k200_half_zero", 1936, 200, true);
  // Last, so that the random data of the entries above stay as they were.
  Depthwise("dwconv_14x14x16_3x3", Valid(14, 14, 16, 16, 3), 2);
  AvgPool("avg_pool_26x26x8", 26, 26, 8);
  TopKMean("top_k_5408_k1622_mean_of_32", 5408, 1622, false, 32);
  TopKMean("top_k_1936_k200_half_zero_mean_of_32", 1936, 200, true, 32);
  ConvSparse("conv1_28x28x1_3x3x8_weight_grad_kept30", Valid(28, 28, 1, 8, 3), 30, false);
  ConvSparse("conv1_28x28x1_3x3x8_weight_and_input_grad_kept30", Valid(28, 28, 1, 8, 3), 30, true);
  ConvSparse("conv2_13x13x8_3x3x16_weight_grad_kept30", Valid(13, 13, 8, 16, 3), 30, false);
  ConvSparse("conv2_13x13x8_3x3x16_weight_and_input_grad_kept30", Valid(13, 13, 8, 16, 3), 30, true);
  Fc("fc_16x10", 16, 10, 32);  // the MLP's last layer
  board::Write(g_ok ? "PASS\n" : "FAIL: a fast kernel's bits differ from the reference's\n");
  return g_ok ? 0 : 1;
}
