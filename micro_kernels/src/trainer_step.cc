// The hot path: forward, loss, gated sparse backward and the SGD update. No
// allocation and no flatbuffer access here: everything was resolved at Init.
#include <math.h>
#include <string.h>

#include "kernels/activations.h"
#include "kernels/conv.h"
#include "kernels/fully_connected.h"
#include "kernels/loss.h"
#include "kernels/pad_add.h"
#include "kernels/pooling.h"
#include "kernels/top_k.h"
#include "message.h"
#include "sgd.h"
#include "sparsity_policy.h"
#include "trainer_internal.h"
#include "tflm_train/trainer.h"

namespace tflm_train {
namespace {

// Updates larger than this are treated as divergence and refused. It is below
// half a float32 ulp at FLT_MAX, so adding such a step to any finite weight
// cannot round to Inf.
constexpr float kMaxUpdate = 1e30f;

float MaxAbs(const float* v, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float a = fabsf(v[i]);
    if (!(a <= m)) m = a;  // NaN propagates as the maximum
  }
  return m;
}

// The gradient step of one tensor is at most lr * max_grad * max_input; with
// momentum the velocity adds momentum * max|v|. Weight decay shrinks a weight
// as long as wd*lr <= 1 (checked once per step).
bool UpdateIsSafe(float lr, float max_grad, float max_input, float momentum, const float* velocity,
                  int n) {
  const float step = lr * max_grad;
  if (!(step <= kMaxUpdate && step * max_input <= kMaxUpdate)) return false;
  if (velocity == nullptr) return true;
  return momentum * MaxAbs(velocity, n) + step * max_input <= kMaxUpdate;
}

// Weight gradient (into grad_w, when not null) and input gradient (into op.d_in,
// when not null) from the errors of the `num_kept` output elements in `kept`
// (null: all of them, in order).
void WeightOpBackward(const OpRuntime& op, const int32_t* kept, int32_t num_kept, float* grad_w) {
  switch (op.kind) {
    case OpKind::kFullyConnected:
      if (grad_w != nullptr) {
        kernels::FullyConnectedAccumulateGrad(op.in, op.n_in, op.d_out, kept, num_kept, grad_w);
      }
      if (op.d_in != nullptr) {
        kernels::FullyConnectedInputGrad(op.weights, op.n_in, op.d_out, kept, num_kept, op.d_in);
      }
      break;
    case OpKind::kConv2D:
      kernels::Conv2DBackward(op.in, op.weights, op.conv, op.d_out, kept, num_kept, grad_w, op.d_in);
      break;
    case OpKind::kDepthwiseConv2D:
      kernels::DepthwiseConv2DBackward(op.in, op.weights, op.conv, op.d_out, kept, num_kept, grad_w,
                                       op.d_in);
      break;
    default:
      break;
  }
}

void AddInto(const float* from, int32_t n, float* to) {
  if (to == nullptr) return;
  for (int32_t i = 0; i < n; ++i) to[i] += from[i];
}

}  // namespace

Status Trainer::CheckSample(const float* input, size_t input_len, const float* target,
                            size_t target_len) {
  Message m(error_, sizeof(error_));
  if (!ready_) {
    m.Add("trainer is not initialized");
    return Status::kNotInitialized;
  }
  if (input == nullptr || input_len != input_size_) {
    m.Add("input has ").Add(static_cast<long long>(input_len)).Add(" values; the model takes ")
        .Add(static_cast<long long>(input_size_));
    return Status::kInvalidArgument;
  }
  for (size_t i = 0; i < input_len; ++i) {
    if (!isfinite(input[i])) {
      m.Add("input value ").Add(static_cast<long long>(i)).Add(" is NaN or Inf");
      return Status::kBadInput;
    }
  }
  if (target == nullptr) return Status::kOk;
  if (target_len != target_size_) {
    m.Add("label has ").Add(static_cast<long long>(target_len)).Add(" values; this loss takes ")
        .Add(static_cast<long long>(target_size_));
    return Status::kInvalidArgument;
  }
  const auto loss = static_cast<kernels::LossKind>(loss_kind_);
  if (loss == kernels::LossKind::kSparseCategoricalCrossentropy) {
    const float label = target[0];
    if (!(label >= 0.0f && label < static_cast<float>(output_size_)) || label != floorf(label)) {
      m.Add("label is not a class index in [0, ").Add(static_cast<long long>(output_size_)).Add(")");
      return Status::kBadLabel;
    }
    return Status::kOk;
  }
  float sum = 0.0f;
  for (size_t i = 0; i < target_len; ++i) {
    if (!isfinite(target[i])) {
      m.Add("label value ").Add(static_cast<long long>(i)).Add(" is NaN or Inf");
      return Status::kBadLabel;
    }
    if (loss == kernels::LossKind::kCategoricalCrossentropy && target[i] < 0.0f) {
      m.Add("categorical label value ").Add(static_cast<long long>(i)).Add(" is negative");
      return Status::kBadLabel;
    }
    sum += target[i];
  }
  if (loss == kernels::LossKind::kCategoricalCrossentropy && fabsf(sum - 1.0f) > 1e-3f) {
    m.Add("categorical label must sum to 1 (one-hot or a distribution)");
    return Status::kBadLabel;
  }
  return Status::kOk;
}

void Trainer::Forward(const float* input, uint64_t* macs) {
  memcpy(input_, input, input_size_ * sizeof(float));
  for (int i = 0; i < num_ops_; ++i) {
    const OpRuntime& op = ops_[i];
    switch (op.kind) {
      case OpKind::kFullyConnected:
        kernels::FullyConnected(op.in, op.n_in, op.weights, op.bias, op.n_out, op.act, op.out);
        break;
      case OpKind::kConv2D:
        kernels::Conv2D(op.in, op.conv, op.weights, op.bias, op.act, op.out);
        break;
      case OpKind::kDepthwiseConv2D:
        kernels::DepthwiseConv2D(op.in, op.conv, op.weights, op.bias, op.act, op.out);
        break;
      case OpKind::kRelu:
      case OpKind::kRelu6:
        kernels::FusedActForward(op.act, op.in, op.n_out, op.out);
        break;
      case OpKind::kLogistic:
        kernels::Logistic(op.in, op.n_out, op.out);
        break;
      case OpKind::kTanh:
        kernels::Tanh(op.in, op.n_out, op.out);
        break;
      case OpKind::kSoftmax:
        kernels::Softmax(op.in, op.rows, op.depth, op.out);
        break;
      case OpKind::kMaxPool2D:
        kernels::MaxPool(op.in, op.conv, op.act, op.out);
        break;
      case OpKind::kAveragePool2D:
        kernels::AveragePool(op.in, op.conv, op.act, op.out);
        break;
      case OpKind::kMean:
        kernels::Mean(op.in, op.rows, op.depth, op.out);
        break;
      case OpKind::kPad:
        kernels::Pad(op.in, op.pad, op.n_out, op.out);
        break;
      case OpKind::kAdd:
        kernels::Add(op.in, op.in2, op.n_out, op.act, op.out);
        break;
      case OpKind::kReshape:
        break;  // output aliases input
    }
    if (HasWeights(op.kind)) *macs += static_cast<uint64_t>(op.n_out) * op.fan_in;
  }
}

Status Trainer::Predict(const float* input, size_t input_len, float* output, size_t output_len) {
  Status status = CheckSample(input, input_len, nullptr, 0);
  if (status != Status::kOk) return status;
  if (output == nullptr || output_len != output_size_) {
    return Fail(Status::kInvalidArgument, "output buffer must hold ",
                static_cast<long long>(output_size_), " values");
  }
  uint64_t macs = 0;
  Forward(input, &macs);
  memcpy(output, output_, output_size_ * sizeof(float));
  return Status::kOk;
}

Status Trainer::EvaluateSample(const float* input, size_t input_len, const float* target,
                               size_t target_len, float* loss, float* correct) {
  if (target == nullptr || loss == nullptr || correct == nullptr) {
    return Fail(Status::kInvalidArgument, "EvaluateSample needs a label and result pointers");
  }
  Status status = CheckSample(input, input_len, target, target_len);
  if (status != Status::kOk) return status;
  uint64_t macs = 0;
  Forward(input, &macs);
  *loss = kernels::LossAndGradient(static_cast<kernels::LossKind>(loss_kind_), logits_, output_,
                                   static_cast<int>(output_size_), target, loss_grad_, correct);
  return Status::kOk;
}

Status Trainer::TrainSample(const float* input, const float* target, SampleResult* r) {
  Forward(input, &r->forward_macs);
  memset(error_region_, 0, error_region_floats_ * sizeof(float));
  r->loss = kernels::LossAndGradient(static_cast<kernels::LossKind>(loss_kind_), logits_, output_,
                                     static_cast<int>(output_size_), target, loss_grad_,
                                     &r->correct);
  if (!isfinite(r->loss)) {
    return Fail(Status::kNonFinite, "loss is not finite; step refused, weights unchanged");
  }
  return Backward(r);
}

// Ops run backward from the last one before the loss; ops whose output depends
// on no trainable layer (a frozen prefix) are not visited at all.
Status Trainer::Backward(SampleResult* r) {
  for (int i = loss_op_ - 1; i >= 0; --i) {
    if (!needs_grad_[i]) continue;
    OpRuntime& op = ops_[i];
    switch (op.kind) {
      case OpKind::kFullyConnected:
      case OpKind::kConv2D:
      case OpKind::kDepthwiseConv2D: {
        // d_out becomes the error w.r.t. the pre-activation output z.
        kernels::FusedActBackwardInPlace(op.act, op.out, op.n_out, op.d_out);
        const float y = TotalError(op.d_out, op.n_out);
        if (!isfinite(y)) {
          return Fail(Status::kNonFinite, "gradient is not finite; step refused, weights unchanged");
        }
        if (op.layer < 0) {  // frozen layer after a trainable one: dense input gradient
          if (op.d_in != nullptr) {
            WeightOpBackward(op, nullptr, op.n_out, nullptr);
            r->backward_macs += static_cast<uint64_t>(op.n_out) * op.fan_in;
          }
          break;
        }
        TrainableLayer& layer = layers_[op.layer];
        const float ymax = UpdateYmax(policy_, y, &layer.ymax);
        if (layer.position == 0 && !GateTrains(policy_, y, ymax)) {
          r->skipped = true;
          return Status::kOk;
        }
        const int32_t k = KeptOutputs(policy_, op.n_out, layer.position, y, ymax);
        int32_t* kept = layer.direct ? layer.rows : select_rows_;
        r->selection_ops +=
            kernels::SelectTopKRows(op.d_out, op.n_out, k, select_index_, select_mask_, kept);
        layer.k = k;
        r->k[op.layer] = k;
        // Direct layers take their weight update from `kept` and d_out after backward.
        WeightOpBackward(op, kept, k, layer.weight_grad);
        if (layer.bias_grad != nullptr) {
          kernels::BiasGrad(op.d_out, op.n_out / layer.n_bias, layer.n_bias, layer.bias_grad);
        }
        r->backward_macs += static_cast<uint64_t>(k) * op.fan_in;  // weight gradient
        if (op.d_in != nullptr) r->backward_macs += static_cast<uint64_t>(k) * op.fan_in;
        break;
      }
      case OpKind::kRelu:
      case OpKind::kRelu6:
        if (op.d_in != nullptr) kernels::FusedActBackward(op.act, op.out, op.d_out, op.n_out, op.d_in);
        break;
      case OpKind::kLogistic:
        if (op.d_in != nullptr) kernels::LogisticBackward(op.out, op.d_out, op.n_out, op.d_in);
        break;
      case OpKind::kTanh:
        if (op.d_in != nullptr) kernels::TanhBackward(op.out, op.d_out, op.n_out, op.d_in);
        break;
      case OpKind::kSoftmax:
        if (op.d_in != nullptr) {
          kernels::SoftmaxBackward(op.out, op.d_out, op.rows, op.depth, op.d_in);
        }
        break;
      case OpKind::kMaxPool2D:
        kernels::FusedActBackwardInPlace(op.act, op.out, op.n_out, op.d_out);
        if (op.d_in != nullptr) kernels::MaxPoolBackward(op.in, op.conv, op.d_out, op.d_in);
        break;
      case OpKind::kAveragePool2D:
        kernels::FusedActBackwardInPlace(op.act, op.out, op.n_out, op.d_out);
        if (op.d_in != nullptr) kernels::AveragePoolBackward(op.conv, op.d_out, op.d_in);
        break;
      case OpKind::kMean:
        if (op.d_in != nullptr) kernels::MeanBackward(op.d_out, op.rows, op.depth, op.d_in);
        break;
      case OpKind::kPad:
        if (op.d_in != nullptr) kernels::PadBackward(op.d_out, op.pad, op.d_in);
        break;
      case OpKind::kAdd:
        kernels::FusedActBackwardInPlace(op.act, op.out, op.n_out, op.d_out);
        AddInto(op.d_out, op.n_out, op.d_in);
        AddInto(op.d_out, op.n_out, op.d_in2);
        break;
      case OpKind::kReshape:
        if (op.d_in != op.d_out) AddInto(op.d_out, op.n_out, op.d_in);
        break;
    }
  }
  return Status::kOk;
}

// Applies this step's gradients once every error is known. Direct layers
// (FullyConnected at batch size 1) update straight from their kept rows and
// errors, with no gradient buffer; the others apply their gradient buffers
// scaled by `grad_scale` (1 / samples trained) and clear them. Rows a direct
// layer did not keep are not touched unless momentum or weight decay move every
// weight anyway.
Status Trainer::ApplyUpdate(float lr, float grad_scale) {
  bool safe = weight_decay_ * lr <= 1.0f;
  if (!safe) {
    ClearGradients();
    return Fail(Status::kNonFinite,
                "weight_decay * learning_rate exceeds 1; step refused, weights unchanged");
  }
  for (int l = 0; l < num_trainable_ && safe; ++l) {
    const TrainableLayer& layer = layers_[l];
    const OpRuntime& op = ops_[layer.op];
    if (layer.direct) {
      const float max_delta = MaxAbs(op.d_out, layer.n_out);
      safe = UpdateIsSafe(lr, max_delta, MaxAbs(op.in, op.n_in), momentum_, layer.weight_velocity,
                          layer.n_weights) &&
             UpdateIsSafe(lr, max_delta, 1.0f, momentum_, layer.bias_velocity, layer.n_bias);
    } else {
      safe = UpdateIsSafe(lr, MaxAbs(layer.weight_grad, layer.n_weights) * grad_scale, 1.0f,
                          momentum_, layer.weight_velocity, layer.n_weights) &&
             (layer.bias_grad == nullptr ||
              UpdateIsSafe(lr, MaxAbs(layer.bias_grad, layer.n_bias) * grad_scale, 1.0f, momentum_,
                           layer.bias_velocity, layer.n_bias));
    }
  }
  if (!safe) {
    ClearGradients();
    return Fail(Status::kNonFinite, "update would overflow; step refused, weights unchanged");
  }
  const SgdStep step{lr, momentum_, weight_decay_};
  const bool every_row = momentum_ != 0.0f || weight_decay_ != 0.0f;
  for (int l = 0; l < num_trainable_; ++l) {
    const TrainableLayer& layer = layers_[l];
    const OpRuntime& op = ops_[layer.op];
    if (!layer.direct) {
      SgdUpdate(step, layer.weight_grad, grad_scale, layer.n_weights, layer.weights,
                layer.weight_velocity);
      if (layer.bias != nullptr) {
        SgdUpdate(step, layer.bias_grad, grad_scale, layer.n_bias, layer.bias, layer.bias_velocity);
      }
      continue;
    }
    const int32_t n_in = op.n_in;
    if (every_row) {
      int32_t next = 0;  // walks the ascending kept-row list
      for (int32_t o = 0; o < layer.n_out; ++o) {
        float delta = 0.0f;
        if (next < layer.k && layer.rows[next] == o) {
          delta = op.d_out[o];
          ++next;
        }
        float* velocity = layer.weight_velocity != nullptr ? layer.weight_velocity + o * n_in : nullptr;
        SgdUpdateRankOne(step, delta, op.in, n_in, layer.weights + o * n_in, velocity);
      }
    } else {
      for (int32_t r = 0; r < layer.k; ++r) {
        const int32_t o = layer.rows[r];
        SgdUpdateRankOne(step, op.d_out[o], op.in, n_in, layer.weights + o * n_in, nullptr);
      }
    }
    if (layer.bias != nullptr) {  // bias gradient uses the dense error
      SgdUpdate(step, op.d_out, 1.0f, layer.n_out, layer.bias, layer.bias_velocity);
    }
  }
  ClearGradients();
  return Status::kOk;
}

void Trainer::ClearGradients() {
  for (int l = 0; l < num_trainable_; ++l) {
    const TrainableLayer& layer = layers_[l];
    if (layer.weight_grad != nullptr) {
      memset(layer.weight_grad, 0, static_cast<size_t>(layer.n_weights) * sizeof(float));
    }
    if (layer.bias_grad != nullptr) {
      memset(layer.bias_grad, 0, static_cast<size_t>(layer.n_bias) * sizeof(float));
    }
  }
}

Status Trainer::TrainStep(const float* inputs, size_t input_len, const float* targets,
                          size_t target_len, uint32_t num_samples, StepResult* result,
                          SampleResult* per_sample) {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  if (result == nullptr || targets == nullptr) {
    return Fail(Status::kInvalidArgument, "TrainStep needs labels and a result");
  }
  if (num_samples == 0 || num_samples > batch_size_) {
    Message m(error_, sizeof(error_));
    m.Add("batch of ").Add(static_cast<long long>(num_samples))
        .Add(" samples; this trainer was set up for 1 to ").Add(static_cast<long long>(batch_size_));
    return Status::kInvalidArgument;
  }
  // Check the whole batch first, so a bad sample trains nothing.
  for (uint32_t s = 0; s < num_samples; ++s) {
    Status status = CheckSample(inputs + s * input_len, input_len, targets + s * target_len,
                                target_len);
    if (status != Status::kOk) return status;
  }
  // A refused step must leave the policy state as it was, like the weights.
  float saved_ymax[kMaxTrainableLayers];
  for (int l = 0; l < num_trainable_; ++l) saved_ymax[l] = layers_[l].ymax;
  *result = StepResult();
  const float lr = LearningRate();
  result->learning_rate = lr;
  float loss_sum = 0.0f;
  for (uint32_t s = 0; s < num_samples; ++s) {
    SampleResult local;
    SampleResult* r = per_sample != nullptr ? &per_sample[s] : &local;
    *r = SampleResult();
    r->num_layers = num_trainable_;
    Status status = TrainSample(inputs + s * input_len, targets + s * target_len, r);
    if (status == Status::kOk && !r->skipped && !accumulate_) status = ApplyUpdate(lr, 1.0f);
    if (status != Status::kOk) {
      ClearGradients();
      for (int l = 0; l < num_trainable_; ++l) layers_[l].ymax = saved_ymax[l];
      return status;
    }
    loss_sum += r->loss;
    result->correct += r->correct;
    result->forward_macs += r->forward_macs;
    result->backward_macs += r->backward_macs;
    result->selection_ops += r->selection_ops;
    if (r->skipped) {
      ++result->skipped;
    } else {
      ++result->trained;
    }
  }
  if (accumulate_ && result->trained > 0) {
    Status status = ApplyUpdate(lr, 1.0f / static_cast<float>(result->trained));
    if (status != Status::kOk) {
      for (int l = 0; l < num_trainable_; ++l) layers_[l].ymax = saved_ymax[l];
      return status;
    }
  }
  result->samples = num_samples;
  result->updated = result->trained > 0;
  result->loss = loss_sum / static_cast<float>(num_samples);
  counters_.steps += 1;
  counters_.updates += result->updated ? 1 : 0;
  counters_.samples += num_samples;
  counters_.trained += result->trained;
  counters_.skipped += result->skipped;
  counters_.forward_macs += result->forward_macs;
  counters_.backward_macs += result->backward_macs;
  counters_.selection_ops += result->selection_ops;
  return Status::kOk;
}

}  // namespace tflm_train
