// Trainer set-up: read and verify the model, prepare every operator through its
// unit, mark the plan's trainable layers, index the graph, then measure and lay
// out the arena. Nothing here runs per step.
#include <math.h>
#include <string.h>

#include "finite.h"
#include "arena_allocator.h"
#include "kernels/loss.h"
#include "arena_planner.h"
#include "baselines.h"
#include "graph.h"
#include "model_reader.h"
#include "network.h"
#include "ops/quantized.h"
#include "optimizer.h"
#include "sparsity_policy.h"
#include "tflm_train/trainer.h"

namespace tflm_train {

size_t TrainingStateBytes(int layers, size_t parameters, bool momentum);  // training_state.cc

namespace {

constexpr uint32_t kMaxBatchSize = 65536;

static_assert(static_cast<int>(PolicyKind::kFull) == static_cast<int>(plan::PolicyKind::Full) &&
                  static_cast<int>(PolicyKind::kStaticTopK) == static_cast<int>(plan::PolicyKind::StaticTopK) &&
                  static_cast<int>(PolicyKind::kTinyProp) == static_cast<int>(plan::PolicyKind::TinyProp) &&
                  static_cast<int>(PolicyKind::kTinyPropV2) == static_cast<int>(plan::PolicyKind::TinyPropV2) &&
                  static_cast<int>(PolicyKind::kLastLayers) == static_cast<int>(plan::PolicyKind::LastLayers) &&
                  static_cast<int>(PolicyKind::kBiasOnly) == static_cast<int>(plan::PolicyKind::BiasOnly) &&
                  static_cast<int>(PolicyKind::kSparseUpdate) == static_cast<int>(plan::PolicyKind::SparseUpdate) &&
                  static_cast<int>(PolicyKind::kTinyTrain) == static_cast<int>(plan::PolicyKind::TinyTrain),
              "the public PolicyKind must equal the plan schema's");
static_assert(static_cast<int>(kernels::LossKind::kSparseCategoricalCrossentropy) ==
                      static_cast<int>(plan::LossKind::SparseCategoricalCrossentropy) &&
                  static_cast<int>(kernels::LossKind::kCategoricalCrossentropy) ==
                      static_cast<int>(plan::LossKind::CategoricalCrossentropy) &&
                  static_cast<int>(kernels::LossKind::kMeanSquaredError) ==
                      static_cast<int>(plan::LossKind::MeanSquaredError) &&
                  static_cast<int>(kernels::LossKind::kBinaryCrossentropy) ==
                      static_cast<int>(plan::LossKind::BinaryCrossentropy),
              "the loss kernel's LossKind must equal the plan schema's (the step casts between them)");

// Into *params, not returned by value: a PolicyParams holds SparseUpdate's
// per-layer ratios (a few hundred bytes), and a returned temporary doubled the
// caller's stack frame.
void PolicyFromPlan(const plan::Policy& p, PolicyParams* params) {
  static const PolicyParams kDefaults;  // copied from here: no temporary on the stack
  PolicyParams& out = *params;
  out = kDefaults;
  if (!p.present()) return;
  out.kind = static_cast<PolicyKind>(p.kind());
  out.ratio = p.ratio();
  out.s_min = p.s_min();
  out.s_max = p.s_max();
  out.zeta = p.zeta();
  out.ymax_decay = p.ymax_decay();
  out.d_min = p.d_min();
  out.d_max = p.d_max();
  out.beta = p.beta();
  out.tau = p.tau();
  out.dense_output = p.dense_output();
  out.budget = p.budget();
  out.budget_rate = p.budget_rate();
  out.budget_gain = p.budget_gain();
  out.last_layers = p.last_layers();
  out.bias_layers = p.bias_layers();
  const fb::Vector ratios = p.weight_ratios();  // ReadSettings refuses more than fit
  for (uint32_t i = 0; i < ratios.size() && i < static_cast<uint32_t>(kMaxTrainableLayers); ++i) {
    out.weight_ratios[i] = ratios.Get<float>(i);
  }
  out.samples = p.samples();
  out.mac_budget = p.mac_budget();
  out.memory_budget = p.memory_budget();
}

bool IsFloat(const ModelView& view, int tensor) {
  return tensor < 0 || TensorType(view, tensor) == static_cast<int>(tflite::TensorType::FLOAT32);
}

// Operator i through its unit. An operator without one, or activations that are
// not float32, are refused naming the operator.
Status PrepareOp(const ModelView& view, uint8_t* model, int32_t i, ArenaAllocator* persistent, OpRuntime* op,
                 Message* why) {
  const tflite::Operator source = view.op(i);
  const int32_t code = view.BuiltinCode(source);
  const OpUnit* unit = FindOpUnit(code);
  if (unit == nullptr) {
    why->Add("operator ").Add(i);
    if (code < 0) {
      why->Add(" is a custom operator");
    } else {
      why->Add(" has builtin code ").Add(static_cast<long long>(code));
    }
    why->Add(", which the trainer does not run");
    return Status::kUnsupportedModel;
  }
  *op = OpRuntime();
  op->unit = unit;
  op->index = i;
  op->layer = -1;
  op->inputs[0] = op->inputs[1] = -1;
  const PrepareContext ctx{view, model, static_cast<int>(i), source, why, persistent};
  Status status = unit->prepare(ctx, op);
  if (status != Status::kOk) return status;
  if (RunsInt8(ctx)) {
    if (unit->prepare_int8 == nullptr) return ctx.Fail("has int8 tensors, and the trainer has no int8 kernel for it");
    // While measuring the records do not fit: the op is checked into a scratch record.
    QuantizedOp scratch;
    QuantizedOp* q = persistent->Take<QuantizedOp>(1);
    status = unit->prepare_int8(ctx, *op, q != nullptr ? q : &scratch);
    if (status != Status::kOk) return status;
    op->quant = q;
  } else if (!IsFloat(view, op->inputs[0]) || !IsFloat(view, op->inputs[1]) || !IsFloat(view, op->output)) {
    return ctx.Fail("mixes float32 with other tensor types (a QUANTIZE or DEQUANTIZE belongs between them)");
  }
  uint32_t bytes = 0;
  if (ConstantBytes(view, op->output, &bytes) != nullptr) {
    return ctx.Fail("writes a tensor that holds constant data", Status::kInvalidModel);
  }
  return Status::kOk;
}

// The loss folds the final SOFTMAX (cross-entropies) or LOGISTIC (binary) into its gradient.
bool LossFoldsLastOp(plan::LossKind loss, const OpRuntime& last) {
  const tflite::BuiltinOperator code = last.unit->code;
  return ((loss == plan::LossKind::SparseCategoricalCrossentropy || loss == plan::LossKind::CategoricalCrossentropy) &&
          code == tflite::BuiltinOperator::SOFTMAX) ||
         (loss == plan::LossKind::BinaryCrossentropy && code == tflite::BuiltinOperator::LOGISTIC);
}

}  // namespace

Status Trainer::Fail(Status status, const char* what, long long value, const char* tail) {
  Message message(error_, sizeof(error_));
  message.Add(what);
  if (value >= 0) message.Add(value);
  message.Add(tail);
  return status;
}

Status Trainer::Init(uint8_t* model, size_t model_size, uint8_t* arena, size_t arena_size,
                     const TrainerOptions& options) {
  ready_ = false;
  net_ = nullptr;
  report_ = ArenaReport();
  counters_ = Counters();
  state_bytes_ = 0;
  state_parameters_ = 0;
  model_state_ = nullptr;
  model_state_size_ = 0;
  error_[0] = '\0';
  if (model == nullptr) return Fail(Status::kInvalidArgument, "model is null");
  if ((reinterpret_cast<uintptr_t>(model) & 15u) != 0) {
    return Fail(Status::kInvalidArgument, "model bytes must start at a 16-byte aligned address");
  }
  if (arena != nullptr && (reinterpret_cast<uintptr_t>(arena) & 15u) != 0) {
    return Fail(Status::kInvalidArgument, "arena must start at a 16-byte aligned address");
  }
  model_ = model;
  ModelView view(model, model_size);
  Message why(error_, sizeof(error_));
  Status status = ReadModel(&view, &why);
  if (status == Status::kOk) status = ReadSettings(view, options);
  if (status != Status::kOk) return status;

  // The bookkeeping first: its size follows from the model's counts alone.
  const int32_t num_ops = static_cast<int32_t>(view.num_operators());
  const int32_t num_tensors = static_cast<int32_t>(view.num_tensors());
  const int32_t num_layers = static_cast<int32_t>(view.plan.layers().size());
  ArenaAllocator a(arena, arena_size);
  Network* net = a.Take<Network>(1);
  OpRuntime* ops = a.Take<OpRuntime>(static_cast<size_t>(num_ops));
  TrainableLayer* layers = a.Take<TrainableLayer>(static_cast<size_t>(num_layers));
  float** tensor_data = a.Take<float*>(static_cast<size_t>(num_tensors));
  float** tensor_grad = a.Take<float*>(static_cast<size_t>(num_tensors));
  int32_t* producer = a.Take<int32_t>(static_cast<size_t>(num_tensors));
  if (net == nullptr || producer == nullptr) {
    // Without room for the records, check each operator on its own and report
    // what the bookkeeping needs; an Init with that much measures the rest.
    for (int32_t i = 0; i < num_ops; ++i) {
      OpRuntime op;
      status = PrepareOp(view, model, i, &a, &op, &why);
      if (status != Status::kOk) return status;
    }
    a.Align();
    report_.bookkeeping_bytes = report_.required_bytes = a.used();
    Message m(error_, sizeof(error_));
    m.Add("arena of ").Add(static_cast<long long>(arena == nullptr ? 0 : arena_size))
        .Add(" bytes is too small: this model needs at least ").Add(static_cast<long long>(a.used()))
        .Add(" bytes (Init with that much measures all it needs)");
    return Status::kArenaTooSmall;
  }
  *net = Network();
  net->ops = ops;
  net->num_ops = num_ops;
  net->layers = layers;
  net->num_layers = num_layers;
  net->tensor_data = tensor_data;
  net->tensor_grad = tensor_grad;
  net->producer = producer;
  net->num_tensors = num_tensors;
  net->input = view.subgraph.inputs().Get<int32_t>(0);
  net->output = view.subgraph.outputs().Get<int32_t>(0);
  net->input_size = input_size_;
  net->output_size = output_size_;
  net_ = net;
  status = PrepareNetwork(view, &a);
  if (status != Status::kOk) return status;
  a.Align();
  report_.bookkeeping_bytes = a.used();
  if (a.used() > arena_size) {  // the records fit, the int8 ops' data did not
    Message m(error_, sizeof(error_));
    m.Add("arena of ").Add(static_cast<long long>(arena_size))
        .Add(" bytes is too small: this model needs at least ").Add(static_cast<long long>(a.used()))
        .Add(" bytes (Init with that much measures all it needs)");
    report_.required_bytes = a.used();
    return Status::kArenaTooSmall;
  }
  status = MarkLayers(view);
  if (status == Status::kOk) status = PrepareBaseline(&a);
  if (status == Status::kOk) status = IndexGraph(net, &why);
  if (status == Status::kOk) status = CheckSplitBiases(view);
  if (status != Status::kOk) return status;
  for (int32_t i = 0; i < num_ops; ++i) {
    // int8 ops run forward only: none may lie between a trainable layer and the loss.
    if (net->ops[i].quant != nullptr && net->ops[i].needs_grad) {
      Message m(error_, sizeof(error_));
      m.Add("operator ").Add(i).Add(" (").Add(net->ops[i].unit->name)
          .Add(") is int8 but comes after a trainable layer; the ops from the first trainable one on must be float");
      return Status::kUnsupportedModel;
    }
  }
  if (view.reader.failed() || view.plan_reader.failed()) {  // verified above: only a corrupt file gets here
    return Fail(Status::kInvalidModel, "model flatbuffer failed verification (truncated or corrupt)");
  }
  const OpRuntime& last = net->ops[num_ops - 1];
  if (last.output != net->output) {
    return Fail(Status::kUnsupportedModel, "the last operator must write the model's output");
  }
  const auto loss = static_cast<plan::LossKind>(loss_kind_);
  const bool cross_entropy =
      loss == plan::LossKind::SparseCategoricalCrossentropy || loss == plan::LossKind::CategoricalCrossentropy;
  if (cross_entropy && last.unit->code != tflite::BuiltinOperator::SOFTMAX) {
    return Fail(Status::kInvalidPlan, "categorical cross-entropy needs a model ending in SOFTMAX");
  }
  if (loss == plan::LossKind::BinaryCrossentropy && last.unit->code != tflite::BuiltinOperator::LOGISTIC) {
    return Fail(Status::kInvalidPlan, "binary cross-entropy needs a model ending in LOGISTIC (sigmoid)");
  }
  if (cross_entropy && static_cast<size_t>(last.depth) != output_size_) {
    return Fail(Status::kUnsupportedModel, "cross-entropy needs one row of class scores per sample");
  }
  net->loss_op = LossFoldsLastOp(loss, last) ? num_ops - 1 : num_ops;
  // What the loss reads: the input of a folded final SOFTMAX/LOGISTIC, else the output.
  const int32_t logits = net->loss_op < num_ops ? last.inputs[0] : net->output;
  if (net->producer[logits] < 0 || !net->ops[net->producer[logits]].needs_grad) {
    return Fail(Status::kInvalidPlan, "no trainable layer reaches the model's output");
  }

  // Measure the rest, then lay it out.
  const PlannerOptions planner{accumulate_, sgd_.momentum > 0.0f};
  ArenaAllocator measure(nullptr, 0, a.used());
  status = PlanArena(net, planner, &measure, &report_, &why);
  if (status != Status::kOk) return status;
  report_.required_bytes = measure.used();
  report_.complete = true;
  if (arena_size < report_.required_bytes) {
    Message m(error_, sizeof(error_));
    m.Add("arena of ").Add(static_cast<long long>(arena_size)).Add(" bytes is too small: this model needs ")
        .Add(static_cast<long long>(report_.required_bytes)).Add(" bytes");
    return Status::kArenaTooSmall;
  }
  status = PlanArena(net, planner, &a, &report_, &why);
  if (status != Status::kOk) return status;
  output_ = net->tensor_data[net->output];
  logits_ = net->tensor_data[logits];
  loss_grad_ = net->tensor_grad[logits];
  // What one sample's backward pass costs under Full(): the budget's denominator.
  full_backward_macs_ = 0;
  for (int32_t i = 0; i < num_ops; ++i) {
    const OpRuntime& op = net->ops[i];
    if (!op.needs_grad || !Has(op, kWeights)) continue;
    const uint64_t macs = static_cast<uint64_t>(op.n_out) * op.fan_in;
    if (op.layer >= 0) full_backward_macs_ += macs;  // weight gradient
    if (op.d_in != nullptr) full_backward_macs_ += macs;  // input gradient
  }
  error_[0] = '\0';
  ready_ = true;
  ChooseTrainedParts(policy_, net_);  // a baseline's layers and channels, from the weights it starts with
  ResetPolicyState();
  return RestoreFromModel(view, options.restore_state);
}

// The plan's loss, optimizer, policy and batch size, and the model's input and output.
Status Trainer::ReadSettings(const ModelView& view, const TrainerOptions& options) {
  const plan::TrainingPlan& p = view.plan;
  Message m(error_, sizeof(error_));
  const fb::Vector inputs = view.subgraph.inputs();
  const fb::Vector outputs = view.subgraph.outputs();
  if (inputs.size() != 1 || outputs.size() != 1) {
    m.Add("model must have exactly one input and one output");
    return Status::kUnsupportedModel;
  }
  Dims in, out;
  const int32_t input = inputs.Get<int32_t>(0), output = outputs.Get<int32_t>(0);
  if (!TensorDims(view, input, &in) || !TensorDims(view, output, &out) || !IsFloat(view, input) ||
      !IsFloat(view, output)) {
    m.Add("model input and output must be float32 tensors of static shape");
    return Status::kUnsupportedModel;
  }
  input_size_ = static_cast<size_t>(Elements(in));
  output_size_ = static_cast<size_t>(Elements(out));
  if (view.plan.layers().size() == 0) {
    m.Add("plan marks no layer trainable");
    return Status::kInvalidPlan;
  }
  if (view.plan.layers().size() > static_cast<uint32_t>(kMaxTrainableLayers)) {
    m.Add("model has more than ").Add(kMaxTrainableLayers).Add(" trainable layers");
    return Status::kUnsupportedModel;
  }

  const int loss = static_cast<int>(p.loss());
  if (loss > static_cast<int>(plan::LossKind::BinaryCrossentropy)) {
    m.Add("plan names loss ").Add(loss).Add(", which this trainer does not know");
    return Status::kUnsupportedModel;
  }
  loss_kind_ = static_cast<uint8_t>(loss);
  target_size_ = p.loss() == plan::LossKind::SparseCategoricalCrossentropy ? 1 : output_size_;

  const plan::Optimizer opt = p.optimizer();
  if (!opt.present()) {
    m.Add("plan has no optimizer");
    return Status::kInvalidPlan;
  }
  sgd_.learning_rate = opt.learning_rate();
  sgd_.momentum = opt.momentum();
  sgd_.weight_decay = opt.weight_decay();
  sgd_.schedule = static_cast<uint8_t>(opt.schedule());
  sgd_.decay_steps = opt.decay_steps();
  sgd_.warmup_steps = opt.warmup_steps();
  sgd_.alpha = opt.alpha();
  sgd_.warmup_initial = opt.warmup_initial();
  if (!(sgd_.learning_rate >= 0.0f && IsFinite(sgd_.learning_rate)) ||
      !(sgd_.momentum >= 0.0f && sgd_.momentum < 1.0f && IsFinite(sgd_.momentum)) ||
      !(sgd_.weight_decay >= 0.0f && IsFinite(sgd_.weight_decay))) {
    m.Add("optimizer needs a finite learning rate >= 0, momentum in [0, 1), weight decay >= 0");
    return Status::kInvalidPlan;
  }
  if (sgd_.schedule > static_cast<uint8_t>(plan::ScheduleKind::CosineDecay)) {
    m.Add("plan names an unknown learning-rate schedule");
    return Status::kUnsupportedModel;
  }
  if (opt.schedule() == plan::ScheduleKind::CosineDecay &&
      (sgd_.decay_steps == 0 || !(sgd_.alpha >= 0.0f && sgd_.alpha <= 1.0f && IsFinite(sgd_.alpha)) || !IsFinite(sgd_.warmup_initial))) {
    m.Add("cosine schedule needs decay_steps > 0, alpha in [0, 1] and a finite warm-up start");
    return Status::kInvalidPlan;
  }

  if (!options.override_policy && p.policy().weight_ratios().size() > static_cast<uint32_t>(kMaxTrainableLayers)) {
    m.Add("plan's SparseUpdate weight ratios name more than ").Add(kMaxTrainableLayers).Add(" layers");
    return Status::kInvalidPlan;
  }
  override_policy_ = options.override_policy;
  if (options.override_policy) {
    policy_ = options.policy;
  } else {
    PolicyFromPlan(p.policy(), &policy_);
  }
  if (const char* problem = CheckPolicy(policy_)) {
    m.Add(problem);
    return options.override_policy ? Status::kInvalidArgument : Status::kInvalidPlan;
  }
  batch_size_ = options.batch_size != 0 ? options.batch_size : p.batch_size();
  if (batch_size_ == 0 || batch_size_ > kMaxBatchSize) {
    m.Add("batch size must be 1 to ").Add(static_cast<long long>(kMaxBatchSize));
    return options.batch_size != 0 ? Status::kInvalidArgument : Status::kInvalidPlan;
  }
  accumulate_ = batch_size_ > 1;
  return Status::kOk;
}

Status Trainer::PrepareNetwork(const ModelView& view, ArenaAllocator* persistent) {
  Message m(error_, sizeof(error_));
  for (int32_t i = 0; i < net_->num_ops; ++i) {
    const Status status = PrepareOp(view, model_, i, persistent, &net_->ops[i], &m);
    if (status != Status::kOk) return status;
  }
  return Status::kOk;
}

// The plan's layers: weight operators in forward order, each owning its weights
// and bias (trained in place, so no other tensor or op may share them).
Status Trainer::MarkLayers(const ModelView& view) {
  Message m(error_, sizeof(error_));
  size_t parameters = 0;
  int32_t previous = -1;
  for (int32_t l = 0; l < net_->num_layers; ++l) {
    const plan::Layer source = view.plan.layers(static_cast<uint32_t>(l));
    const int32_t index = source.op_index();
    if (index <= previous || index >= net_->num_ops || !Has(net_->ops[index], kWeights)) {
      m.Add("plan layer ").Add(l).Add(" names operator ").Add(index)
          .Add(", which is not a weight operator after the previous layer's");
      return Status::kInvalidPlan;
    }
    previous = index;
    OpRuntime& op = net_->ops[index];
    if (op.quant != nullptr) {
      m.Add("plan layer ").Add(l).Add(" names operator ").Add(index)
          .Add(", which is int8: only float weight ops train (convert_tflite rewrites trainable ops as float)");
      return Status::kUnsupportedModel;
    }
    op.layer = l;
    TrainableLayer& layer = net_->layers[l];
    layer = TrainableLayer();
    layer.op = index;
    layer.position = net_->num_layers - 1 - l;
    layer.n_out = op.n_out;
    layer.weights = op.weights;
    layer.n_weights = op.n_weights;
    const fb::Vector inputs = view.op(index).inputs();
    int32_t tensors[2] = {inputs.Get<int32_t>(1, -1), -1};
    if (tensors[0] < 0) return Fail(Status::kInvalidModel, "plan layer ", l, " names an operator without weights");
    if (source.has_bias() && op.bias != nullptr) {
      layer.bias = op.bias;
      layer.n_bias = op.n_bias;
      tensors[1] = inputs.Get<int32_t>(2, -1);
    }
    const int32_t bias_op = source.bias_op_index();
    if (bias_op >= 0) {
      // A bias TensorFlow kept out of the weight op: an ADD of a constant right after it.
      // (That it reads the op's output, through reshapes only, is checked once the graph is indexed.)
      const OpRuntime* add = bias_op < net_->num_ops ? &net_->ops[bias_op] : nullptr;
      const int32_t channels = op.depth;
      if (layer.bias != nullptr || add == nullptr || add->unit->code != tflite::BuiltinOperator::ADD ||
          add->constant == nullptr || bias_op <= index || add->depth != channels ||
          op.act != kernels::FusedAct::kNone) {
        m.Add("plan layer ").Add(l).Add(" names operator ").Add(bias_op)
            .Add(" as its bias, which is not an ADD of one constant per channel to its linear output");
        return Status::kInvalidPlan;
      }
      layer.bias = add->constant;
      layer.n_bias = channels;
      const fb::Vector add_inputs = view.op(bias_op).inputs();
      tensors[1] = add->constant_first ? add_inputs.Get<int32_t>(0, -1) : add_inputs.Get<int32_t>(1, -1);
    }
    for (int32_t t : tensors) {
      if (t < 0) continue;
      if (TensorReaders(view, t) != 1 || BufferUsers(view, view.tensor(t).buffer()) != 1) {
        m.Add("trainable tensor ").Add(t).Add(" of plan layer ").Add(l)
            .Add(" is shared with another tensor or operator; each must own its buffer");
        return Status::kInvalidPlan;
      }
    }
    parameters += static_cast<size_t>(layer.n_weights) + static_cast<size_t>(layer.n_bias);
  }
  state_parameters_ = static_cast<uint32_t>(parameters);
  state_bytes_ = TrainingStateBytes(net_->num_layers, parameters, sgd_.momentum > 0.0f);
  return Status::kOk;
}

// What a baseline policy needs beyond the layers: the check that it fits this
// plan, and per layer a channel mask and score (SparseUpdate, TinyTrain) after
// the bookkeeping. The choice itself is made by ResetPolicyState, once ready.
Status Trainer::PrepareBaseline(ArenaAllocator* a) {
  const Status refused = override_policy_ ? Status::kInvalidArgument : Status::kInvalidPlan;
  if (const char* problem = CheckBaseline(policy_, *net_)) return Fail(refused, problem);
  if (MayTrainSomeChannels(policy_) && (sgd_.momentum != 0.0f || sgd_.weight_decay != 0.0f)) {
    return Fail(refused, "SparseUpdate and TinyTrain train some channels of a layer; they take SGD without "
                         "momentum or weight decay, which would move the frozen channels");
  }
  const bool channel_masks = policy_.kind == PolicyKind::kSparseUpdate || policy_.kind == PolicyKind::kTinyTrain;
  net_->keeps_layer_outputs = policy_.kind == PolicyKind::kTinyTrain;
  for (int32_t l = 0; l < net_->num_layers; ++l) {
    TrainableLayer& layer = net_->layers[l];
    layer.channels = net_->ops[layer.op].depth;
    if (!channel_masks) continue;
    layer.selected = a->Take<uint8_t>(static_cast<size_t>(layer.channels));
    layer.fisher = a->Take<float>(static_cast<size_t>(layer.channels));
  }
  a->Align();
  report_.bookkeeping_bytes = a->used();
  return Status::kOk;
}

// A bias kept in an ADD must be added to the weight op's own output: the ADD reads
// the same storage (reshapes alias it), so nothing else sits in between.
Status Trainer::CheckSplitBiases(const ModelView& view) {
  for (int32_t l = 0; l < net_->num_layers; ++l) {
    const int32_t bias_op = view.plan.layers(static_cast<uint32_t>(l)).bias_op_index();
    const OpRuntime& op = net_->ops[net_->layers[l].op];
    if (bias_op < 0) continue;
    // The ADD must be the only reader of the layer's output (reshapes aside): the
    // bias gradient is taken from the layer's error, which is the ADD's only then.
    int readers = 0;
    for (int32_t j = 0; j < net_->num_ops; ++j) {
      const OpRuntime& other = net_->ops[j];
      if (Has(other, kAliasesInput)) continue;
      for (int k = 0; k < 2; ++k) readers += other.inputs[k] >= 0 && other.input_root[k] == op.output_root;
    }
    if (net_->ops[bias_op].input_root[0] != op.output_root || readers != 1) {
      return Fail(Status::kInvalidPlan, "plan layer ", l,
                  " names as its bias an ADD that is not the only reader of the layer's own output");
    }
  }
  return Status::kOk;
}

size_t Trainer::layer_outputs(int i) const {
  return ready_ && i >= 0 && i < net_->num_layers ? static_cast<size_t>(net_->layers[i].n_out) : 0;
}

int Trainer::num_trainable_layers() const { return ready_ ? net_->num_layers : 0; }

float Trainer::layer_ymax(int i) const {
  return ready_ && i >= 0 && i < net_->num_layers ? net_->layers[i].ymax : 0.0f;
}

float* Trainer::layer_weights(int i, size_t* count) {
  const bool ok = ready_ && i >= 0 && i < net_->num_layers;
  *count = ok ? static_cast<size_t>(net_->layers[i].n_weights) : 0;
  return ok ? net_->layers[i].weights : nullptr;
}

float* Trainer::layer_bias(int i, size_t* count) {
  const bool ok = ready_ && i >= 0 && i < net_->num_layers && net_->layers[i].bias != nullptr;
  *count = ok ? static_cast<size_t>(net_->layers[i].n_bias) : 0;
  return ok ? net_->layers[i].bias : nullptr;
}

int Trainer::num_ops() const { return ready_ ? net_->num_ops : 0; }

bool Trainer::DescribeOp(int i, OpDescription* out) const {
  if (!ready_ || i < 0 || i >= net_->num_ops) return false;
  const OpRuntime& op = net_->ops[i];
  *out = OpDescription();
  out->kind = op.unit->name;
  out->layer = op.layer;
  out->input = op.inputs[0];
  out->second_input = op.inputs[1];
  out->output = op.output;
  out->n_weights = op.n_weights;
  out->n_bias = op.n_bias;
  out->activation = static_cast<uint8_t>(op.act);
  out->int8 = op.quant != nullptr;
  const bool window = op.unit->code == tflite::BuiltinOperator::CONV_2D ||
                      op.unit->code == tflite::BuiltinOperator::DEPTHWISE_CONV_2D ||
                      op.unit->code == tflite::BuiltinOperator::MAX_POOL_2D ||
                      op.unit->code == tflite::BuiltinOperator::AVERAGE_POOL_2D;
  if (window) {
    const kernels::ConvShape& s = op.conv;
    out->filter_h = s.filter_h;
    out->filter_w = s.filter_w;
    out->stride_h = s.stride_h;
    out->stride_w = s.stride_w;
    out->dilation_h = s.dilation_h;
    out->dilation_w = s.dilation_w;
    out->pad_top = s.pad_top;
    out->pad_left = s.pad_left;
    out->depth_multiplier = s.depth_multiplier;
    out->padding = static_cast<uint8_t>(op.padding);
  }
  if (op.unit->code == tflite::BuiltinOperator::PAD) {
    for (int k = 0; k < 4; ++k) {
      out->pad_before[k] = op.pad.before[k];
      out->pad_after[k] = op.pad.after[k];
    }
  }
  if (op.layer >= 0) {  // the trainable layer's parameters (its bias may sit in an ADD)
    out->weights = net_->layers[op.layer].weights;
    out->bias = net_->layers[op.layer].bias;
    out->n_bias = net_->layers[op.layer].n_bias;
  } else {
    out->weights = op.weights;
    out->bias = op.bias;
  }
  return true;
}

float Trainer::LearningRate() const { return tflm_train::LearningRate(sgd_, counters_.steps); }

}  // namespace tflm_train
