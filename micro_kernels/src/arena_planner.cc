#include "arena_planner.h"

#include <string.h>

#include "graph.h"

namespace tflm_train {
namespace {

// An activation's storage in 4-byte words: int8 outputs take a byte per element.
size_t OutputFloats(const Network& net, int op) {
  const size_t n = static_cast<size_t>(net.ops[op].n_out);
  return WritesInt8(net.ops[op]) ? (n + 3) / 4 : n;
}

// Forward activations. Transient outputs alternate between the two ends of one
// shared region. Only consecutive ones can be alive together (the op writing one
// reads the other), so the region holds the largest such pair.
void PlanActivations(Network* net, ArenaAllocator* a) {
  const bool commit = !a->measuring();
  float* model_input = a->Take<float>(net->input_size);
  if (commit) net->tensor_data[net->input] = model_input;
  size_t shared_floats = 0, previous = 0;
  int previous_reader = -1;
  for (int i = 0; i < net->num_ops; ++i) {
    if (Has(net->ops[i], kAliasesInput)) continue;
    const size_t n = OutputFloats(*net, i);
    const int reader = LastReader(*net, i);
    if (!NeededByBackward(*net, i) && reader <= NextWriter(*net, i)) {
      const size_t together = (previous_reader == i ? previous : 0) + n;
      if (together > shared_floats) shared_floats = together;
      previous = n;
      previous_reader = reader;
      continue;
    }
    float* out = a->Take<float>(n);
    if (commit) net->tensor_data[net->ops[i].output] = out;
  }
  float* shared = shared_floats > 0 ? a->Take<float>(shared_floats) : nullptr;
  if (!commit) return;
  bool from_top = false;
  for (int i = 0; i < net->num_ops; ++i) {
    const OpRuntime& op = net->ops[i];
    if (Has(op, kAliasesInput)) {
      net->tensor_data[op.output] = net->tensor_data[op.inputs[0]];
    } else if (net->tensor_data[op.output] == nullptr) {
      const size_t n = OutputFloats(*net, i);
      net->tensor_data[op.output] = from_top ? shared + (shared_floats - n) : shared;
      from_top = !from_top;
    }
  }
}

// Error buffers, one region zeroed per sample: outputs of the ops that get backward.
void PlanErrors(Network* net, ArenaAllocator* a) {
  const bool commit = !a->measuring();
  size_t region_start = 0;
  bool any = false;
  for (int i = 0; i < net->loss_op; ++i) {
    const OpRuntime& op = net->ops[i];
    if (!op.needs_grad) continue;
    if (Has(op, kAliasesInput)) {  // its input needs a gradient too: share it
      if (commit) net->tensor_grad[op.output] = net->tensor_grad[op.inputs[0]];
      continue;
    }
    const size_t n = OutputFloats(*net, i);
    float* grad = a->Take<float>(n);
    if (!any) region_start = a->used() - n * sizeof(float);
    any = true;
    if (commit) net->tensor_grad[op.output] = grad;
  }
  net->error_region_floats = any ? (a->used() - region_start) / sizeof(float) : 0;
  if (commit && any) net->error_region = reinterpret_cast<float*>(a->base() + region_start);
}

}  // namespace

Status PlanArena(Network* net, const PlannerOptions& options, ArenaAllocator* a, ArenaReport* report,
                 Message* why) {
  const bool commit = !a->measuring();
  if (commit) {
    for (int t = 0; t < net->num_tensors; ++t) net->tensor_data[t] = net->tensor_grad[t] = nullptr;
  }
  size_t mark = a->used();
  PlanActivations(net, a);
  a->Align();  // each section carries its own trailing padding
  report->activation_bytes = a->used() - mark;
  mark = a->used();

  PlanErrors(net, a);
  a->Align();
  const size_t error_bytes = a->used() - mark;

  // Per trainable layer: kept rows (direct) or gradient buffers, and momentum.
  size_t optimizer_bytes = 0, accumulator_bytes = 0, scratch_bytes = 0;
  int32_t widest = 0;  // widest trainable layer, for the selection scratch
  for (int l = 0; l < net->num_layers; ++l) {
    TrainableLayer& layer = net->layers[l];
    const OpRuntime& op = net->ops[layer.op];
    const bool direct = !options.accumulate && op.unit->code == tflite::BuiltinOperator::FULLY_CONNECTED;
    const size_t n_w = static_cast<size_t>(layer.n_weights);
    const size_t n_b = static_cast<size_t>(layer.n_bias);
    if (layer.n_out > widest) widest = layer.n_out;
    size_t before = a->used();
    int32_t* rows = direct ? a->Take<int32_t>(static_cast<size_t>(layer.n_out)) : nullptr;
    scratch_bytes += a->used() - before;
    before = a->used();
    float* w_grad = direct ? nullptr : a->Take<float>(n_w);
    float* b_grad = !direct && n_b > 0 ? a->Take<float>(n_b) : nullptr;
    accumulator_bytes += a->used() - before;
    before = a->used();
    float* w_vel = options.momentum ? a->Take<float>(n_w) : nullptr;
    float* b_vel = options.momentum && n_b > 0 ? a->Take<float>(n_b) : nullptr;
    optimizer_bytes += a->used() - before;
    if (!commit) continue;
    layer.direct = direct;
    layer.rows = rows;
    layer.weight_grad = w_grad;
    layer.bias_grad = b_grad;
    layer.weight_velocity = w_vel;
    layer.bias_velocity = b_vel;
    if (w_grad != nullptr) memset(w_grad, 0, n_w * sizeof(float));
    if (b_grad != nullptr) memset(b_grad, 0, n_b * sizeof(float));
    if (w_vel != nullptr) memset(w_vel, 0, n_w * sizeof(float));
    if (b_vel != nullptr) memset(b_vel, 0, n_b * sizeof(float));
  }
  size_t before = a->used();
  int32_t* select_index = a->Take<int32_t>(static_cast<size_t>(widest));
  uint8_t* select_mask = a->Take<uint8_t>(static_cast<size_t>(widest));
  int32_t* select_rows = a->Take<int32_t>(static_cast<size_t>(widest));
  scratch_bytes += a->used() - before;
  if (a->overflow()) {
    why->Add("model is too large to lay out in memory");
    return Status::kUnsupportedModel;
  }
  report->gradient_bytes = error_bytes + accumulator_bytes;
  report->optimizer_bytes = optimizer_bytes;
  report->scratch_bytes = scratch_bytes;
  if (commit) {
    net->select_index = select_index;
    net->select_mask = select_mask;
    net->select_rows = select_rows;
    // Op records get their activation and gradient pointers.
    for (int i = 0; i < net->num_ops; ++i) {
      OpRuntime& op = net->ops[i];
      op.in = op.inputs[0] >= 0 ? net->tensor_data[op.inputs[0]] : nullptr;
      op.in2 = op.inputs[1] >= 0 ? net->tensor_data[op.inputs[1]] : nullptr;
      op.out = net->tensor_data[op.output];
      op.d_in = op.inputs[0] >= 0 ? net->tensor_grad[op.inputs[0]] : nullptr;
      op.d_in2 = op.inputs[1] >= 0 ? net->tensor_grad[op.inputs[1]] : nullptr;
      op.d_out = net->tensor_grad[op.output];
    }
  }
  return Status::kOk;
}

}  // namespace tflm_train
