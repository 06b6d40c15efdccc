// The hot path: forward, loss, gated sparse backward and the SGD update. No
// allocation and no flatbuffer access here: everything was resolved at Init.
#include <math.h>
#include <string.h>

#include "baselines.h"
#include "finite.h"
#include "kernels/activations.h"
#include "kernels/conv_shape.h"
#include "kernels/loss.h"
#include "kernels/active.h"
#include "kernels/fast/scan.h"
#include "kernels/fast/top_k.h"
#include "kernels/scan.h"
#include "message.h"
#include "network.h"
#include "optimizer.h"
#include "sparsity_policy.h"
#include "tflm_train/trainer.h"

namespace tflm_train {

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
  if (!kernels::active::AllFinite(input, input_len)) {  // one scan; the loop only names the value
    for (size_t i = 0; i < input_len; ++i) {
      if (!IsFinite(input[i])) {
        m.Add("input value ").Add(static_cast<long long>(i)).Add(" is NaN or Inf");
        return Status::kBadInput;
      }
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
    if (!IsFinite(label) || !(label >= 0.0f && label < static_cast<float>(output_size_)) || label != floorf(label)) {
      m.Add("label is not a class index in [0, ").Add(static_cast<long long>(output_size_)).Add(")");
      return Status::kBadLabel;
    }
    return Status::kOk;
  }
  float sum = 0.0f;
  for (size_t i = 0; i < target_len; ++i) {
    if (!IsFinite(target[i])) {
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
  memcpy(net_->tensor_data[net_->input], input, input_size_ * sizeof(float));
  for (int i = 0; i < net_->num_ops; ++i) {
    const OpRuntime& op = net_->ops[i];
    *macs += op.quant != nullptr ? op.unit->forward_int8(op) : op.unit->forward(op);
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
  memset(net_->error_region, 0, net_->error_region_floats * sizeof(float));
  r->loss = kernels::LossAndGradient(static_cast<kernels::LossKind>(loss_kind_), logits_, output_,
                                     static_cast<int>(output_size_), target, loss_grad_, &r->correct);
  if (!IsFinite(r->loss)) {
    return Fail(Status::kNonFinite, "loss is not finite; step refused, weights unchanged");
  }
  const bool selecting = Selecting();
  const Status status = Backward(r);
  if (status == Status::kOk) SpendBudget(r->backward_macs);
  if (status == Status::kOk && selecting) {
    // A selection sample measures and does not train; the last one chooses.
    r->skipped = true;
    for (int l = 0; l < net_->num_layers; ++l) r->k[l] = 0;
    if (++selection_seen_ == policy_.samples) SelectTinyTrain(policy_, full_backward_macs_, net_);
  }
  return status;
}

// The budget sees what the sample really cost (a skip: 0, or the frozen ops after
// the last trainable layer) against full backprop's cost of the same sample.
void Trainer::SpendBudget(uint64_t backward_macs) {
  const float fraction =
      full_backward_macs_ > 0 ? static_cast<float>(backward_macs) / static_cast<float>(full_backward_macs_) : 0.0f;
  UpdateBudget(policy_, fraction, &budget_spent_, &gate_tau_);
}

// Ops run backward from the last one before the loss; ops whose output depends
// on no trainable layer (a frozen prefix) are not visited at all.
Status Trainer::Backward(SampleResult* r) {
  // The last trainable layer feeds a softmax cross-entropy when the loss folds the
  // final SOFTMAX and no weight op sits between them (one would be visited first).
  const auto loss = static_cast<kernels::LossKind>(loss_kind_);
  bool feeds_softmax = net_->loss_op < net_->num_ops &&
                       (loss == kernels::LossKind::kSparseCategoricalCrossentropy ||
                        loss == kernels::LossKind::kCategoricalCrossentropy);
  for (int i = net_->loss_op - 1; i >= 0; --i) {
    OpRuntime& op = net_->ops[i];
    if (!op.needs_grad) continue;
    if (!Has(op, kWeights)) {
      op.unit->backward(op);
      continue;
    }
    // d_out becomes the error w.r.t. the pre-activation output z.
    kernels::FusedActGradInPlace(op.act, op.out, op.n_out, op.d_out);
    if (op.layer >= 0 && Selecting()) {
      AccumulateFisher(op, &net_->layers[op.layer]);
    }
    const float y = TotalError(op.d_out, op.n_out);
    if (!IsFinite(y)) {
      return Fail(Status::kNonFinite, "gradient is not finite; step refused, weights unchanged");
    }
    if (op.layer < 0) {  // frozen layer after a trainable one: dense input gradient
      feeds_softmax = false;
      if (op.d_in != nullptr) {
        op.unit->weight_backward(op, nullptr, op.n_out, nullptr);
        r->backward_macs += static_cast<uint64_t>(op.n_out) * op.fan_in;
      }
      continue;
    }
    TrainableLayer& layer = net_->layers[op.layer];
    const float ymax = UpdateYmax(policy_, y, &layer.ymax);
    if (layer.position == 0 && !GateTrains(policy_, gate_tau_, y, ymax)) {
      r->skipped = true;
      return Status::kOk;
    }
    if (IsBaseline(policy_.kind)) {
      BaselineBackward(op, r);
      if (op.layer == net_->lowest_layer) break;  // nothing below it trains
      continue;
    }
    const int32_t k = KeepsAllOutputs(policy_, layer.position, feeds_softmax)
                          ? op.n_out
                          : KeptOutputs(policy_, op.n_out, layer.position, y, ymax);
    int32_t* kept = layer.direct ? layer.rows : net_->select_rows;
    r->selection_ops +=
        kernels::active::SelectTopKRows(op.d_out, op.n_out, k, net_->select_index, net_->select_mask, kept);
    layer.k = k;
    r->k[op.layer] = k;
    // Direct layers take their weight update from `kept` and d_out after backward.
    op.unit->weight_backward(op, kept, k, layer.weight_grad);
    if (layer.bias_grad != nullptr) {
      kernels::BiasGrad(op.d_out, op.n_out / layer.n_bias, layer.n_bias, layer.bias_grad);
    }
    r->backward_macs += static_cast<uint64_t>(k) * op.fan_in;  // weight gradient
    if (op.d_in != nullptr) r->backward_macs += static_cast<uint64_t>(k) * op.fan_in;
  }
  return Status::kOk;
}

// A baseline's layer: the weight gradient of its trained channels only, the bias
// gradient when its bias trains, and the dense input gradient unless it is the
// lowest layer that trains (lower layers need the whole error). A TinyTrain
// selection sample needs only the errors, which it reads before this.
void Trainer::BaselineBackward(OpRuntime& op, SampleResult* r) {
  TrainableLayer& layer = net_->layers[op.layer];
  const bool selecting = Selecting();
  const bool input_grad = op.d_in != nullptr && (selecting || op.layer != net_->lowest_layer);
  int32_t* kept = layer.direct ? layer.rows : net_->select_rows;
  const int32_t k = selecting ? 0 : TrainedElements(layer, kept);
  layer.k = k;
  r->k[op.layer] = k;
  if (input_grad) {
    op.unit->weight_backward(op, nullptr, op.n_out, nullptr);
    r->backward_macs += static_cast<uint64_t>(op.n_out) * op.fan_in;
  }
  if (k > 0) {
    if (!layer.direct) {  // direct layers take their update from `kept` and d_out
      OpRuntime weights_only = op;
      weights_only.d_in = nullptr;
      op.unit->weight_backward(weights_only, k == op.n_out ? nullptr : kept, k, layer.weight_grad);
    }
    r->backward_macs += static_cast<uint64_t>(k) * op.fan_in;
  }
  if (!selecting && (layer.trains & kTrainsBias) && layer.bias_grad != nullptr) {
    kernels::BiasGrad(op.d_out, op.n_out / layer.n_bias, layer.n_bias, layer.bias_grad);
  }
}

Status Trainer::Update(float lr, float grad_scale) {
  Message m(error_, sizeof(error_));
  return ApplyUpdate(sgd_, net_, lr, grad_scale, &m);
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
  for (int l = 0; l < net_->num_layers; ++l) saved_ymax[l] = net_->layers[l].ymax;
  const float saved_tau = gate_tau_, saved_spent = budget_spent_;
  const bool was_selecting = Selecting();
  *result = StepResult();
  const float lr = LearningRate();
  result->learning_rate = lr;
  float loss_sum = 0.0f;
  for (uint32_t s = 0; s < num_samples; ++s) {
    SampleResult local;
    SampleResult* r = per_sample != nullptr ? &per_sample[s] : &local;
    *r = SampleResult();
    r->num_layers = net_->num_layers;
    Status status = TrainSample(inputs + s * input_len, targets + s * target_len, r);
    if (status == Status::kOk && !r->skipped && !accumulate_) status = Update(lr, 1.0f);
    if (status != Status::kOk) {
      ClearGradients(net_);
      for (int l = 0; l < net_->num_layers; ++l) net_->layers[l].ymax = saved_ymax[l];
      gate_tau_ = saved_tau;
      budget_spent_ = saved_spent;
      if (was_selecting) RestartSelection();  // its sums hold part of a refused step
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
    Status status = Update(lr, 1.0f / static_cast<float>(result->trained));
    if (status != Status::kOk) {
      for (int l = 0; l < net_->num_layers; ++l) net_->layers[l].ymax = saved_ymax[l];
      gate_tau_ = saved_tau;
      budget_spent_ = saved_spent;
      if (was_selecting) RestartSelection();
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
