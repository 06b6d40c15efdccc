#include "op_prepare.h"

namespace tflm_train {
namespace {

static_assert(static_cast<int>(OpKind::kReshape) == static_cast<int>(plan::OpKind::Reshape) &&
                  static_cast<int>(OpKind::kSoftmax) == static_cast<int>(plan::OpKind::Softmax) &&
                  static_cast<int>(OpKind::kFullyConnected) ==
                      static_cast<int>(plan::OpKind::FullyConnected) &&
                  static_cast<int>(OpKind::kConv2D) == static_cast<int>(plan::OpKind::Conv2D) &&
                  static_cast<int>(OpKind::kAdd) == static_cast<int>(plan::OpKind::Add) &&
                  static_cast<int>(OpKind::kAdd) == static_cast<int>(plan::OpKind::MAX),
              "step-code op kinds must equal the plan's");

constexpr int32_t kMaxWindow = 1 << 16;  // strides, dilations and windows beyond this are corrupt

// A tensor's shape, up to rank 6.
struct Dims {
  int rank = 0;
  int32_t d[6] = {};
};

bool ReadDims(const tflite::Tensor* t, Dims* out) {
  if (t == nullptr || t->shape() == nullptr || t->shape()->size() > 6) return false;
  out->rank = static_cast<int>(t->shape()->size());
  for (int i = 0; i < out->rank; ++i) out->d[i] = t->shape()->Get(i);
  return true;
}

// TFLite's output size and leading padding for one spatial axis.
bool Window(plan::Padding padding, int32_t in, int32_t filter, int32_t stride, int32_t dilation,
            int32_t* out, int32_t* pad_before) {
  const int64_t effective = static_cast<int64_t>(filter - 1) * dilation + 1;
  int64_t size;
  if (padding == plan::Padding::Same) {
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

Status Bad(Message* m, int index, const char* what) {
  m->Add("op ").Add(index).Add(" ").Add(what);
  return Status::kInvalidPlan;
}

// Geometry of a convolution or pooling op over NHWC [1, H, W, C] tensors.
Status PrepareWindow(const plan::Op* op, int index, const Dims& in, const Dims& out,
                     int32_t filter_h, int32_t filter_w, kernels::ConvShape* s, Message* m) {
  if (in.rank != 4 || out.rank != 4 || in.d[0] != 1 || out.d[0] != 1) {
    return Bad(m, index, "needs NHWC input and output tensors of batch 1");
  }
  const int32_t limits[6] = {op->stride_h(), op->stride_w(), op->dilation_h(), op->dilation_w(),
                             filter_h, filter_w};
  for (int32_t v : limits) {
    if (v < 1 || v > kMaxWindow) return Bad(m, index, "has a stride, dilation or window out of range");
  }
  if (static_cast<int>(op->padding()) > static_cast<int>(plan::Padding::MAX)) {
    return Bad(m, index, "has an unknown padding");
  }
  s->in_h = in.d[1];
  s->in_w = in.d[2];
  s->in_c = in.d[3];
  s->out_c = out.d[3];
  s->filter_h = filter_h;
  s->filter_w = filter_w;
  s->stride_h = op->stride_h();
  s->stride_w = op->stride_w();
  s->dilation_h = op->dilation_h();
  s->dilation_w = op->dilation_w();
  s->depth_multiplier = 1;
  int32_t out_h = 0, out_w = 0;
  if (!Window(op->padding(), s->in_h, filter_h, s->stride_h, s->dilation_h, &out_h, &s->pad_top) ||
      !Window(op->padding(), s->in_w, filter_w, s->stride_w, s->dilation_w, &out_w, &s->pad_left) ||
      out_h != out.d[1] || out_w != out.d[2]) {
    m->Add("op ").Add(index).Add(" has output ").Add(out.d[1]).Add("x").Add(out.d[2])
        .Add(", but its window, stride and padding give ").Add(out_h).Add("x").Add(out_w);
    return Status::kInvalidPlan;
  }
  s->out_h = out_h;
  s->out_w = out_w;
  return Status::kOk;
}

// Weights (and bias) of a weight op: shape, constant data, pointers.
Status PrepareWeights(const ModelView& view, uint8_t* model, const plan::Op* op, int index,
                      const int32_t* shape, int rank, int32_t bias_size, OpRuntime* r, Message* m) {
  Dims w;
  bool ok = ReadDims(TensorAt(view, op->weights()), &w) && w.rank == rank;
  for (int i = 0; ok && i < rank; ++i) ok = w.d[i] == shape[i];
  if (!ok) {
    m->Add("op ").Add(index).Add(" needs weights shaped [");
    for (int i = 0; i < rank; ++i) m->Add(i > 0 ? ", " : "").Add(shape[i]);
    m->Add("]");
    return Status::kInvalidPlan;
  }
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= shape[i];
  if (op->weights() == op->bias()) return Bad(m, index, "uses one tensor as both weights and bias");
  r->weights = ConstantData(view, model, op->weights(), n, m);
  r->bias = op->bias() >= 0 ? ConstantData(view, model, op->bias(), bias_size, m) : nullptr;
  if (r->weights == nullptr || (op->bias() >= 0 && r->bias == nullptr)) return Status::kInvalidPlan;
  r->n_weights = static_cast<int32_t>(n);
  r->n_bias = op->bias() >= 0 ? bias_size : 0;
  return Status::kOk;
}

// Equal shapes once leading 1s are dropped: the same elements in the same order.
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

}  // namespace

int OpInputCount(const plan::Op* op) { return op->kind() == plan::OpKind::Add ? 2 : 1; }

bool BackwardReadsOutput(const plan::Op* op) {
  switch (op->kind()) {
    case plan::OpKind::Relu:
    case plan::OpKind::Relu6:
    case plan::OpKind::Logistic:
    case plan::OpKind::Tanh:
    case plan::OpKind::Softmax:
      return true;
    default:
      return op->activation() != plan::FusedActivation::None;
  }
}

Status PrepareOp(const ModelView& view, uint8_t* model, int index, OpRuntime* r, Message* m) {
  const plan::Op* op = view.plan->ops()->Get(index);
  const int kind = static_cast<int>(op->kind());
  if (kind > static_cast<int>(plan::OpKind::MAX)) {
    m->Add("op ").Add(index).Add(" has kind ").Add(kind).Add(", which this trainer does not know");
    return Status::kUnsupportedModel;
  }
  if (static_cast<int>(op->activation()) > static_cast<int>(plan::FusedActivation::MAX)) {
    m->Add("op ").Add(index).Add(" has an unknown fused activation");
    return Status::kUnsupportedModel;
  }
  *r = OpRuntime();
  r->kind = static_cast<OpKind>(kind);
  r->layer = -1;
  r->act = static_cast<kernels::FusedAct>(op->activation());
  if (op->kind() == plan::OpKind::Relu) r->act = kernels::FusedAct::kRelu;
  if (op->kind() == plan::OpKind::Relu6) r->act = kernels::FusedAct::kRelu6;
  const bool fused_allowed = HasWeights(r->kind) || r->kind == OpKind::kMaxPool2D ||
                             r->kind == OpKind::kAveragePool2D || r->kind == OpKind::kAdd;
  if (!fused_allowed && op->activation() != plan::FusedActivation::None) {
    return Bad(m, index, "cannot carry a fused activation");
  }
  if (!HasWeights(r->kind) && (op->weights() >= 0 || op->bias() >= 0 || op->trainable())) {
    return Bad(m, index, "has no weights, yet the plan gives it some or marks it trainable");
  }
  const tflite::Tensor* in_t = TensorAt(view, op->inputs()->Get(0));
  const tflite::Tensor* out_t = TensorAt(view, op->output());
  Dims in, out;
  if (!ReadDims(in_t, &in) || !ReadDims(out_t, &out)) {
    return Bad(m, index, "has a tensor of rank above 6");
  }
  r->n_in = static_cast<int32_t>(TensorElements(in_t));
  r->n_out = static_cast<int32_t>(TensorElements(out_t));
  r->depth = TensorLastDim(out_t);
  r->rows = r->n_out / r->depth;

  switch (r->kind) {
    case OpKind::kFullyConnected: {
      const int32_t shape[2] = {r->n_out, r->n_in};
      r->fan_in = r->n_in;
      return PrepareWeights(view, model, op, index, shape, 2, r->n_out, r, m);
    }
    case OpKind::kConv2D:
    case OpKind::kDepthwiseConv2D: {
      Dims w;
      if (!ReadDims(TensorAt(view, op->weights()), &w) || w.rank != 4) {
        return Bad(m, index, "needs 4-D convolution weights");
      }
      Status status = PrepareWindow(op, index, in, out, w.d[1], w.d[2], &r->conv, m);
      if (status != Status::kOk) return status;
      const kernels::ConvShape& s = r->conv;
      if (r->kind == OpKind::kConv2D) {
        const int32_t shape[4] = {s.out_c, s.filter_h, s.filter_w, s.in_c};
        r->fan_in = s.filter_h * s.filter_w * s.in_c;
        return PrepareWeights(view, model, op, index, shape, 4, s.out_c, r, m);
      }
      if (op->depth_multiplier() < 1 ||
          static_cast<int64_t>(s.out_c) != static_cast<int64_t>(s.in_c) * op->depth_multiplier()) {
        return Bad(m, index, "(DepthwiseConv2D) needs output channels = input channels x depth_multiplier");
      }
      r->conv.depth_multiplier = op->depth_multiplier();
      const int32_t shape[4] = {1, s.filter_h, s.filter_w, s.out_c};
      r->fan_in = s.filter_h * s.filter_w;
      return PrepareWeights(view, model, op, index, shape, 4, s.out_c, r, m);
    }
    case OpKind::kMaxPool2D:
    case OpKind::kAveragePool2D: {
      if (op->dilation_h() != 1 || op->dilation_w() != 1) return Bad(m, index, "(pooling) cannot dilate");
      Status status = PrepareWindow(op, index, in, out, op->filter_h(), op->filter_w(), &r->conv, m);
      if (status == Status::kOk && r->conv.in_c != r->conv.out_c) {
        return Bad(m, index, "(pooling) must keep the channel count");
      }
      return status;
    }
    case OpKind::kMean: {
      // Global average pooling: every axis but the batch and the channels is averaged.
      if (in.rank < 2 || in.d[0] != 1 || r->n_out != in.d[in.rank - 1] || r->depth != r->n_out) {
        return Bad(m, index, "(Mean) must average a [1, ..., C] tensor down to its C channels");
      }
      r->depth = r->n_out;
      r->rows = r->n_in / r->n_out;
      return Status::kOk;
    }
    case OpKind::kPad: {
      const auto* before = op->pad_before();
      const auto* after = op->pad_after();
      if (in.rank < 1 || in.rank > 4 || out.rank != in.rank || before == nullptr || after == nullptr ||
          static_cast<int>(before->size()) != in.rank || static_cast<int>(after->size()) != in.rank) {
        return Bad(m, index, "(Pad) needs a rank 1-4 tensor and one before/after pad per axis");
      }
      const int lead = 4 - in.rank;
      for (int i = 0; i < 4; ++i) {
        const bool real = i >= lead;
        const int32_t b = real ? before->Get(i - lead) : 0;
        const int32_t a = real ? after->Get(i - lead) : 0;
        const int32_t d = real ? in.d[i - lead] : 1;
        if (b < 0 || a < 0 || b > kMaxWindow || a > kMaxWindow ||
            (real && out.d[i - lead] != static_cast<int64_t>(b) + d + a)) {
          return Bad(m, index, "(Pad) has paddings that do not give its output shape");
        }
        r->pad.in[i] = d;
        r->pad.before[i] = b;
        r->pad.after[i] = a;
      }
      return Status::kOk;
    }
    case OpKind::kAdd: {
      Dims in2;
      if (!ReadDims(TensorAt(view, op->inputs()->Get(1)), &in2) || !SameElementOrder(in, in2) ||
          !SameElementOrder(in, out)) {
        return Bad(m, index, "(Add) needs two inputs and an output of one shape (no broadcasting)");
      }
      return Status::kOk;
    }
    case OpKind::kSoftmax:
      if (r->n_out % r->depth != 0 || r->n_in != r->n_out) {
        return Bad(m, index, "(Softmax) has a shape whose last axis does not divide it");
      }
      return Status::kOk;
    default:  // Reshape and elementwise activations
      if (r->n_in != r->n_out) {
        m->Add("op ").Add(index).Add(" must keep the element count (").Add(r->n_in).Add(" in, ")
            .Add(r->n_out).Add(" out)");
        return Status::kInvalidPlan;
      }
      return Status::kOk;
  }
}

}  // namespace tflm_train
