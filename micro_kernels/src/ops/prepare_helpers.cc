#include "ops/prepare_helpers.h"

namespace tflm_train {
namespace {

// TFLite's output size and leading padding for one spatial axis.
bool Window(tflite::Padding padding, int32_t in, int32_t filter, int32_t stride, int32_t dilation,
            int32_t* out, int32_t* pad_before) {
  const int64_t effective = static_cast<int64_t>(filter - 1) * dilation + 1;
  int64_t size;
  if (padding == tflite::Padding::SAME) {
    size = (static_cast<int64_t>(in) + stride - 1) / stride;
    const int64_t total = (size - 1) * stride + effective - in;
    *pad_before = static_cast<int32_t>(total > 0 ? total / 2 : 0);
  } else {
    size = (static_cast<int64_t>(in) - effective + stride) / stride;
    *pad_before = 0;
  }
  *out = static_cast<int32_t>(size);
  return size > 0;
}

}  // namespace

Status PrepareInOut(const PrepareContext& ctx, OpRuntime* op, Dims* in, Dims* out) {
  if (ctx.num_outputs() != 1 || ctx.Output(0) < 0) return ctx.Fail("must have exactly one output");
  op->inputs[0] = ctx.Input(0);
  op->output = ctx.Output(0);
  if (!TensorDims(ctx.view, op->inputs[0], in) || !TensorDims(ctx.view, op->output, out)) {
    return ctx.Fail("has a tensor with an empty, dynamic, oversized or rank > 6 shape");
  }
  op->n_in = static_cast<int32_t>(Elements(*in));
  op->n_out = static_cast<int32_t>(Elements(*out));
  op->depth = out->rank > 0 ? out->d[out->rank - 1] : 1;
  op->rows = op->n_out / op->depth;
  return Status::kOk;
}

Status PrepareWindow(const PrepareContext& ctx, const Dims& in, const Dims& out, tflite::Padding padding,
                     int32_t stride_h, int32_t stride_w, int32_t dilation_h, int32_t dilation_w,
                     int32_t filter_h, int32_t filter_w, kernels::ConvShape* s) {
  if (in.rank != 4 || out.rank != 4 || in.d[0] != 1 || out.d[0] != 1) {
    return ctx.Fail("needs NHWC input and output tensors of batch 1");
  }
  const int32_t limits[6] = {stride_h, stride_w, dilation_h, dilation_w, filter_h, filter_w};
  for (int32_t v : limits) {
    if (v < 1 || v > kMaxWindow) return ctx.Fail("has a stride, dilation or window out of range");
  }
  if (padding != tflite::Padding::SAME && padding != tflite::Padding::VALID) {
    return ctx.Fail("has an unknown padding");
  }
  s->in_h = in.d[1];
  s->in_w = in.d[2];
  s->in_c = in.d[3];
  s->out_c = out.d[3];
  s->filter_h = filter_h;
  s->filter_w = filter_w;
  s->stride_h = stride_h;
  s->stride_w = stride_w;
  s->dilation_h = dilation_h;
  s->dilation_w = dilation_w;
  s->depth_multiplier = 1;
  int32_t out_h = 0, out_w = 0;
  const bool fits = Window(padding, s->in_h, filter_h, stride_h, dilation_h, &out_h, &s->pad_top) &&
                    Window(padding, s->in_w, filter_w, stride_w, dilation_w, &out_w, &s->pad_left);
  if (!fits || out_h != out.d[1] || out_w != out.d[2]) {
    ctx.Fail("has an output whose size its window, stride and padding do not give", Status::kInvalidModel);
    if (fits) ctx.why->Add(" (they give ").Add(out_h).Add("x").Add(out_w).Add(")");
    return Status::kInvalidModel;
  }
  if (s->pad_top > kMaxWindow || s->pad_left > kMaxWindow) return ctx.Fail("needs a padding out of range");
  s->out_h = out_h;
  s->out_w = out_w;
  return Status::kOk;
}

Status PrepareWeights(const PrepareContext& ctx, const int32_t* shape, int rank, int32_t bias_size,
                      OpRuntime* op) {
  const int32_t weights = ctx.Input(1);
  const int32_t bias = ctx.num_inputs() > 2 ? ctx.Input(2) : -1;
  Dims w;
  bool ok = TensorDims(ctx.view, weights, &w) && w.rank == rank;
  for (int i = 0; ok && i < rank; ++i) ok = w.d[i] == shape[i];
  if (!ok) {
    ctx.Fail("needs weights shaped [", Status::kInvalidModel);
    for (int i = 0; i < rank; ++i) ctx.why->Add(i > 0 ? ", " : "").Add(shape[i]);
    ctx.why->Add("]");
    return Status::kInvalidModel;
  }
  if (weights == bias) return ctx.Fail("uses one tensor as both weights and bias", Status::kInvalidModel);
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= shape[i];
  if (TensorType(ctx.view, weights) == static_cast<int>(tflite::TensorType::INT8)) {
    // An int8 op: its prepare_int8 reads weights, bias and their scales.
    if (TensorType(ctx.view, op->output) != static_cast<int>(tflite::TensorType::INT8)) {
      return ctx.Fail("has int8 weights on float activations (a dynamic-range, or hybrid, model); only "
                      "float and full-integer int8 models run");
    }
    op->n_weights = static_cast<int32_t>(n);
    op->n_bias = bias >= 0 ? bias_size : 0;
    return Status::kOk;
  }
  op->weights = ConstantFloats(ctx.view, ctx.model, weights, n, ctx.why);
  op->bias = bias >= 0 ? ConstantFloats(ctx.view, ctx.model, bias, bias_size, ctx.why) : nullptr;
  if (op->weights == nullptr || (bias >= 0 && op->bias == nullptr)) {
    return Status::kUnsupportedModel;  // why says which tensor; only float32 weights run
  }
  op->n_weights = static_cast<int32_t>(n);
  op->n_bias = bias >= 0 ? bias_size : 0;
  return Status::kOk;
}

bool SameElementOrder(const Dims& a, const Dims& b) {
  int i = 0, j = 0;
  while (i < a.rank && a.d[i] == 1) ++i;
  while (j < b.rank && b.d[j] == 1) ++j;
  if (a.rank - i != b.rank - j) return false;
  for (; i < a.rank; ++i, ++j) {
    if (a.d[i] != b.d[j]) return false;
  }
  return true;
}

}  // namespace tflm_train
