// Trainer set-up: validate everything the model and plan say, then lay the
// arena out. Nothing here runs per step.
#include <math.h>
#include <string.h>

#include "arena_allocator.h"
#include "model_reader.h"
#include "op_prepare.h"
#include "sgd.h"
#include "sparsity_policy.h"
#include "trainer_internal.h"
#include "tflm_train/trainer.h"

namespace tflm_train {
namespace {

constexpr uint32_t kMaxBatchSize = 65536;

// The op (before `before`) that writes `tensor`, or -1.
int Producer(const plan::TrainingPlan* p, int tensor, int before) {
  for (int i = 0; i < before; ++i) {
    if (p->ops()->Get(i)->output() == tensor) return i;
  }
  return -1;
}

bool IsFused(const plan::TrainingPlan* p, int last_kind) {
  const plan::LossKind loss = p->loss();
  return ((loss == plan::LossKind::SparseCategoricalCrossentropy ||
           loss == plan::LossKind::CategoricalCrossentropy) &&
          last_kind == static_cast<int>(plan::OpKind::Softmax)) ||
         (loss == plan::LossKind::BinaryCrossentropy &&
          last_kind == static_cast<int>(plan::OpKind::Logistic));
}

PolicyParams PolicyFromPlan(const plan::Policy* p) {
  PolicyParams out;
  if (p == nullptr) return out;
  out.kind = static_cast<PolicyKind>(p->kind());
  out.ratio = p->ratio();
  out.s_min = p->s_min();
  out.s_max = p->s_max();
  out.zeta = p->zeta();
  out.ymax_decay = p->ymax_decay();
  out.d_min = p->d_min();
  out.d_max = p->d_max();
  out.beta = p->beta();
  out.tau = p->tau();
  return out;
}

// Training state: "TTST", then its format version. Format 1 ("TTS1", tflm_train
// 0.1) had no version word, no epoch counter and no parameter count.
constexpr uint32_t kStateMagic = 0x54535454;  // "TTST"
constexpr uint32_t kOldStateMagic = 0x31535454;  // "TTS1"
constexpr uint32_t kStateVersion = 2;
constexpr size_t kStateHeaderWords = 5;  // magic, version, layers, momentum flag, parameters

}  // namespace

const char* StatusName(Status status) {
  switch (status) {
    case Status::kOk: return "Ok";
    case Status::kInvalidArgument: return "InvalidArgument";
    case Status::kInvalidModel: return "InvalidModel";
    case Status::kMissingPlan: return "MissingPlan";
    case Status::kUnsupportedPlanVersion: return "UnsupportedPlanVersion";
    case Status::kInvalidPlan: return "InvalidPlan";
    case Status::kUnsupportedModel: return "UnsupportedModel";
    case Status::kArenaTooSmall: return "ArenaTooSmall";
    case Status::kBadInput: return "BadInput";
    case Status::kBadLabel: return "BadLabel";
    case Status::kNonFinite: return "NonFinite";
    case Status::kNotInitialized: return "NotInitialized";
  }
  return "Unknown";
}

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
  report_ = ArenaReport();
  counters_ = Counters();
  state_bytes_ = 0;
  model_state_ = nullptr;
  model_state_size_ = 0;
  error_[0] = '\0';
  if (model == nullptr) return Fail(Status::kInvalidArgument, "model is null");
  if ((reinterpret_cast<uintptr_t>(model) & 15u) != 0) {
    return Fail(Status::kInvalidArgument, "model bytes must start at a 16-byte aligned address");
  }
  ModelView view;
  Message why(error_, sizeof(error_));
  Status status = ReadModel(model, model_size, &view, &why);
  if (status != Status::kOk) return status;
  plan_ = view.plan;
  model_ = model;
  status = Validate(view, options);
  if (status != Status::kOk) return status;

  status = Layout(view, nullptr, 0);  // measure
  if (status != Status::kOk) return status;
  if (arena == nullptr || arena_size < report_.required_bytes) {
    Message message(error_, sizeof(error_));
    message.Add("arena of ").Add(static_cast<long long>(arena == nullptr ? 0 : arena_size))
        .Add(" bytes is too small: this model needs ")
        .Add(static_cast<long long>(report_.required_bytes)).Add(" bytes");
    return Status::kArenaTooSmall;
  }
  if ((reinterpret_cast<uintptr_t>(arena) & 15u) != 0) {
    return Fail(Status::kInvalidArgument, "arena must start at a 16-byte aligned address");
  }
  status = Layout(view, arena, arena_size);
  if (status != Status::kOk) return status;
  ready_ = true;
  return RestoreFromModel(view, options.restore_state);
}

// Finds the model's room for its training state and, when asked, resumes from
// it. All zeros is a fresh state (what the converter writes).
Status Trainer::RestoreFromModel(const ModelView& view, bool restore) {
  if (view.state == nullptr) return Status::kOk;
  if (view.state->size() != state_bytes_) {
    ready_ = false;
    Message m(error_, sizeof(error_));
    m.Add("the model's training-state buffer holds ").Add(static_cast<long long>(view.state->size()))
        .Add(" bytes but its state takes ").Add(static_cast<long long>(state_bytes_))
        .Add("; re-convert the model");
    return Status::kInvalidPlan;
  }
  // The flatbuffer API is const; the trainer owns the writable bytes it points into.
  model_state_ = model_ + (view.state->data() - static_cast<const uint8_t*>(model_));
  model_state_size_ = view.state->size();
  uint32_t magic = 0;
  memcpy(&magic, model_state_, sizeof(magic));
  if (!restore || magic == 0) return Status::kOk;
  const Status status = LoadState(model_state_, model_state_size_);
  if (status != Status::kOk) {
    ready_ = false;
    char why[sizeof(error_)];
    memcpy(why, error_, sizeof(why));
    Message m(error_, sizeof(error_));
    m.Add("the training state the model carries cannot be restored (").Add(why)
        .Add("); start fresh instead (restore_state = false)");
  }
  return status;
}

Status Trainer::StoreStateInModel() {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  if (model_state_ == nullptr) {
    return Fail(Status::kInvalidArgument,
                "this model has no room for its training state; re-convert it with this tflm_train");
  }
  return SaveState(model_state_, model_state_size_);
}

Status Trainer::Validate(const ModelView& view, const TrainerOptions& options) {
  const plan::TrainingPlan* p = view.plan;
  Message m(error_, sizeof(error_));
  if (p->ops() == nullptr || p->ops()->size() == 0) {
    m.Add("training plan lists no ops");
    return Status::kInvalidPlan;
  }
  if (p->ops()->size() > static_cast<uint32_t>(kMaxOps)) {
    m.Add("plan has more than ").Add(kMaxOps).Add(" ops");
    return Status::kUnsupportedModel;
  }
  num_ops_ = static_cast<int>(p->ops()->size());
  num_tensors_ = static_cast<int>(view.subgraph->tensors()->size());
  num_trainable_ = 0;

  for (int i = 0; i < num_ops_; ++i) {
    const plan::Op* op = p->ops()->Get(i);
    const int n_inputs = OpInputCount(op);
    if (op->inputs() == nullptr || static_cast<int>(op->inputs()->size()) != n_inputs) {
      m.Add("op ").Add(i).Add(" must read exactly ").Add(n_inputs).Add(" activation tensor(s)");
      return Status::kInvalidPlan;
    }
    const int out = op->output();
    for (int j = 0; j <= n_inputs; ++j) {
      const int t = j < n_inputs ? op->inputs()->Get(j) : out;
      const tflite::Tensor* tensor = TensorAt(view, t);
      if (tensor == nullptr) {
        m.Add("op ").Add(i).Add(" refers to a tensor outside the model's ").Add(num_tensors_)
            .Add(" tensors");
        return Status::kInvalidPlan;
      }
      if (tensor->type() != kTensorFloat32) {
        m.Add("op ").Add(i).Add(" works on a tensor that is not float32; only float models train");
        return Status::kUnsupportedModel;
      }
      if (TensorElements(tensor) == 0) {
        m.Add("op ").Add(i).Add(" has a tensor with an empty, dynamic or oversized shape");
        return Status::kUnsupportedModel;
      }
      if (j < n_inputs && t != p->input() && Producer(p, t, i) < 0) {
        m.Add("op ").Add(i).Add(" reads tensor ").Add(t).Add(" before any op writes it");
        return Status::kInvalidPlan;
      }
      if (j < n_inputs && t == out) {
        m.Add("op ").Add(i).Add(" writes tensor ").Add(out).Add(", which it also reads");
        return Status::kInvalidPlan;
      }
    }
    if (out == p->input() || Producer(p, out, i) >= 0) {
      m.Add("op ").Add(i).Add(" writes tensor ").Add(out).Add(", which already has a value");
      return Status::kInvalidPlan;
    }
    OpRuntime r;
    const Status status = PrepareOp(view, model_, i, &r, &m);
    if (status != Status::kOk) return status;
    if (!op->trainable()) continue;
    const int tensors[2] = {op->weights(), op->bias()};
    for (int t : tensors) {
      if (t < 0) continue;
      for (int j = 0; j < num_ops_; ++j) {
        const plan::Op* other = p->ops()->Get(j);
        if (j != i && (other->weights() == t || other->bias() == t)) {
          m.Add("trainable tensor ").Add(t).Add(" is also used by op ").Add(j)
              .Add("; each trainable tensor must belong to one op");
          return Status::kInvalidPlan;
        }
      }
      const uint32_t buffer = TensorAt(view, t)->buffer();
      if (BufferUsers(view, buffer) != 1) {
        m.Add("trainable tensor ").Add(t).Add(" shares buffer ").Add(static_cast<long long>(buffer))
            .Add(" with another tensor; each must own its buffer");
        return Status::kInvalidPlan;
      }
    }
    if (num_trainable_ == kMaxTrainableLayers) {
      m.Add("model has more than ").Add(kMaxTrainableLayers).Add(" trainable layers");
      return Status::kUnsupportedModel;
    }
    ++num_trainable_;
  }

  const tflite::SubGraph* sg = view.subgraph;
  if (sg->inputs() == nullptr || sg->inputs()->size() != 1 || sg->outputs() == nullptr ||
      sg->outputs()->size() != 1) {
    m.Add("model must have exactly one input and one output");
    return Status::kUnsupportedModel;
  }
  const plan::Op* last = p->ops()->Get(num_ops_ - 1);
  if (p->input() != sg->inputs()->Get(0) || p->output() != sg->outputs()->Get(0) ||
      last->output() != p->output()) {
    m.Add("plan's input/output tensors do not match the model's");
    return Status::kInvalidPlan;
  }
  if (num_trainable_ == 0) {
    m.Add("plan marks no layer trainable");
    return Status::kInvalidPlan;
  }

  // Loss.
  const int loss = static_cast<int>(p->loss());
  const int last_kind = static_cast<int>(last->kind());
  if (loss > static_cast<int>(plan::LossKind::MAX)) {
    m.Add("plan names loss ").Add(loss).Add(", which this trainer does not know");
    return Status::kUnsupportedModel;
  }
  const bool cross_entropy = p->loss() == plan::LossKind::SparseCategoricalCrossentropy ||
                             p->loss() == plan::LossKind::CategoricalCrossentropy;
  if (cross_entropy && last_kind != static_cast<int>(plan::OpKind::Softmax)) {
    m.Add("categorical cross-entropy needs a model ending in Softmax");
    return Status::kInvalidPlan;
  }
  if (p->loss() == plan::LossKind::BinaryCrossentropy &&
      last_kind != static_cast<int>(plan::OpKind::Logistic)) {
    m.Add("binary cross-entropy needs a model ending in a sigmoid (Logistic)");
    return Status::kInvalidPlan;
  }
  const tflite::Tensor* out_t = TensorAt(view, p->output());
  output_size_ = static_cast<size_t>(TensorElements(out_t));
  if (cross_entropy && TensorLastDim(out_t) != static_cast<int32_t>(output_size_)) {
    m.Add("cross-entropy needs one row of class scores per sample");
    return Status::kUnsupportedModel;
  }
  input_size_ = static_cast<size_t>(TensorElements(TensorAt(view, p->input())));
  loss_kind_ = static_cast<uint8_t>(loss);
  target_size_ = p->loss() == plan::LossKind::SparseCategoricalCrossentropy ? 1 : output_size_;
  loss_op_ = IsFused(p, last_kind) ? num_ops_ - 1 : num_ops_;
  IndexGraph();
  if (loss_op_ == 0 || !needs_grad_[loss_op_ - 1]) {
    m.Add("no trainable layer reaches the model's output");
    return Status::kInvalidPlan;
  }

  // Optimizer.
  const plan::Optimizer* opt = p->optimizer();
  if (opt == nullptr) {
    m.Add("plan has no optimizer");
    return Status::kInvalidPlan;
  }
  lr_ = opt->learning_rate();
  momentum_ = opt->momentum();
  weight_decay_ = opt->weight_decay();
  schedule_ = static_cast<uint8_t>(opt->schedule());
  decay_steps_ = opt->decay_steps();
  warmup_steps_ = opt->warmup_steps();
  alpha_ = opt->alpha();
  warmup_initial_ = opt->warmup_initial();
  if (!(lr_ >= 0.0f && isfinite(lr_)) || !(momentum_ >= 0.0f && momentum_ < 1.0f) ||
      !(weight_decay_ >= 0.0f && isfinite(weight_decay_))) {
    m.Add("optimizer needs a finite learning rate >= 0, momentum in [0, 1), weight decay >= 0");
    return Status::kInvalidPlan;
  }
  if (schedule_ > static_cast<uint8_t>(plan::ScheduleKind::MAX)) {
    m.Add("plan names an unknown learning-rate schedule");
    return Status::kUnsupportedModel;
  }
  if (schedule_ == static_cast<uint8_t>(plan::ScheduleKind::CosineDecay) &&
      (decay_steps_ == 0 || !(alpha_ >= 0.0f && alpha_ <= 1.0f) || !isfinite(warmup_initial_))) {
    m.Add("cosine schedule needs decay_steps > 0, alpha in [0, 1] and a finite warm-up start");
    return Status::kInvalidPlan;
  }

  // Policy and batch.
  policy_ = options.override_policy ? options.policy : PolicyFromPlan(p->policy());
  if (const char* problem = CheckPolicy(policy_)) {
    m.Add(problem);
    return options.override_policy ? Status::kInvalidArgument : Status::kInvalidPlan;
  }
  batch_size_ = options.batch_size != 0 ? options.batch_size : p->batch_size();
  if (batch_size_ == 0 || batch_size_ > kMaxBatchSize) {
    m.Add("batch size must be 1 to ").Add(static_cast<long long>(kMaxBatchSize));
    return Status::kInvalidArgument;
  }
  accumulate_ = batch_size_ > 1;
  error_[0] = '\0';
  return Status::kOk;
}

void Trainer::IndexGraph() {
  const plan::TrainingPlan* p = plan_;
  for (int i = 0; i < num_ops_; ++i) {
    const plan::Op* op = p->ops()->Get(i);
    bool needs_grad = op->trainable();
    input_root_[i][1] = -1;
    for (int j = 0; j < OpInputCount(op); ++j) {
      const int producer = Producer(p, op->inputs()->Get(j), i);
      input_root_[i][j] = static_cast<int16_t>(producer < 0 ? -1 : output_root_[producer]);
      if (producer >= 0 && needs_grad_[producer]) needs_grad = true;
    }
    output_root_[i] = static_cast<int16_t>(op->kind() == plan::OpKind::Reshape ? input_root_[i][0] : i);
    needs_grad_[i] = needs_grad;
  }
}

// Whether the storage of `root` must survive the forward pass: backward (or the
// loss) reads it.
bool Trainer::NeededByBackward(int root) const {
  if (root == output_root_[num_ops_ - 1] || root == output_root_[loss_op_ - 1]) return true;
  for (int j = 0; j < loss_op_; ++j) {
    if (!needs_grad_[j]) continue;  // no backward for this op
    const plan::Op* op = plan_->ops()->Get(j);
    if (BackwardReadsOutput(op) && output_root_[j] == root) return true;
    if (BackwardReadsInput(static_cast<OpKind>(op->kind()), op->trainable()) &&
        input_root_[j][0] == root) {
      return true;
    }
  }
  return false;
}

// The last op that reads the storage of `root` (-1 if none).
int Trainer::LastReader(int root) const {
  int last = -1;
  for (int j = 0; j < num_ops_; ++j) {
    const plan::Op* op = plan_->ops()->Get(j);
    if (op->kind() == plan::OpKind::Reshape) continue;  // an alias, not a read
    for (int k = 0; k < OpInputCount(op); ++k) {
      if (input_root_[j][k] == root) last = j;
    }
  }
  return last;
}

// The first op after `op` that writes storage (num_ops_ if none).
int Trainer::NextWriter(int op) const {
  for (int j = op + 1; j < num_ops_; ++j) {
    if (plan_->ops()->Get(j)->kind() != plan::OpKind::Reshape) return j;
  }
  return num_ops_;
}

// Arena order: op and layer records, activations, the error region (zeroed per
// sample), per-layer gradient/optimizer buffers, top-k scratch. Activations that
// backward reads get their own storage; the others, when they live only from
// their producer to the next op that writes, share one region.
Status Trainer::Layout(const ModelView& view, uint8_t* arena, size_t arena_size) {
  const plan::TrainingPlan* p = view.plan;
  ArenaAllocator a(arena, arena_size);
  const bool commit = !a.measuring();
  Message m(error_, sizeof(error_));

  ops_ = a.Take<OpRuntime>(num_ops_);
  layers_ = a.Take<TrainableLayer>(num_trainable_);
  tensor_data_ = a.Take<float*>(num_tensors_);
  tensor_grad_ = a.Take<float*>(num_tensors_);
  if (commit) {
    for (int t = 0; t < num_tensors_; ++t) tensor_data_[t] = tensor_grad_[t] = nullptr;
  }
  a.Align();
  size_t mark = a.used();
  report_.bookkeeping_bytes = mark;

  // Forward activations.
  input_ = a.Take<float>(input_size_);
  if (commit) tensor_data_[p->input()] = input_;
  // Transient outputs alternate between the two ends of one shared region. Only
  // consecutive ones can be alive together (the op writing one reads the other),
  // so the region holds the largest such pair.
  size_t shared_floats = 0, previous = 0;
  int previous_reader = -1;
  for (int i = 0; i < num_ops_; ++i) {
    const plan::Op* op = p->ops()->Get(i);
    if (op->kind() == plan::OpKind::Reshape) continue;
    const size_t n = static_cast<size_t>(TensorElements(TensorAt(view, op->output())));
    const int reader = LastReader(i);
    if (!NeededByBackward(i) && reader <= NextWriter(i)) {
      const size_t together = (previous_reader == i ? previous : 0) + n;
      if (together > shared_floats) shared_floats = together;
      previous = n;
      previous_reader = reader;
      continue;
    }
    float* out = a.Take<float>(n);
    if (commit) tensor_data_[op->output()] = out;
  }
  float* shared = shared_floats > 0 ? a.Take<float>(shared_floats) : nullptr;
  if (commit) {
    bool from_top = false;
    for (int i = 0; i < num_ops_; ++i) {
      const plan::Op* op = p->ops()->Get(i);
      if (op->kind() == plan::OpKind::Reshape) {
        tensor_data_[op->output()] = tensor_data_[op->inputs()->Get(0)];
      } else if (tensor_data_[op->output()] == nullptr) {
        const size_t n = static_cast<size_t>(TensorElements(TensorAt(view, op->output())));
        tensor_data_[op->output()] = from_top ? shared + (shared_floats - n) : shared;
        from_top = !from_top;
      }
    }
  }
  a.Align();  // each section carries its own trailing padding
  report_.activation_bytes = a.used() - mark;
  mark = a.used();

  // Error buffers, one region zeroed per sample: outputs of the ops that get backward.
  size_t region_start = 0;
  for (int i = 0; i < loss_op_; ++i) {
    const plan::Op* op = p->ops()->Get(i);
    if (!needs_grad_[i]) continue;
    if (op->kind() == plan::OpKind::Reshape) {  // its input needs a gradient too: share it
      if (commit) tensor_grad_[op->output()] = tensor_grad_[op->inputs()->Get(0)];
      continue;
    }
    const size_t n = static_cast<size_t>(TensorElements(TensorAt(view, op->output())));
    float* grad = a.Take<float>(n);
    if (region_start == 0) region_start = a.used() - n * sizeof(float);
    if (commit) tensor_grad_[op->output()] = grad;
  }
  error_region_floats_ = (a.used() - region_start) / sizeof(float);
  if (commit) error_region_ = reinterpret_cast<float*>(arena + region_start);
  a.Align();
  size_t error_bytes = a.used() - mark;
  mark = a.used();

  // Per trainable layer: kept rows (direct) or gradient buffers, and momentum.
  size_t optimizer_bytes = 0, accumulator_bytes = 0, scratch_bytes = 0;
  size_t parameters = 0;
  int32_t widest = 0;  // widest trainable layer, for the selection scratch
  int layer = 0;
  for (int i = 0; i < num_ops_; ++i) {
    const plan::Op* op = p->ops()->Get(i);
    if (!op->trainable()) continue;
    OpRuntime r;
    Status status = PrepareOp(view, model_, i, &r, &m);  // validated already: fills the sizes
    if (status != Status::kOk) return status;
    const bool direct = !accumulate_ && r.kind == OpKind::kFullyConnected;
    const size_t n_w = static_cast<size_t>(r.n_weights);
    const size_t n_b = static_cast<size_t>(r.n_bias);
    if (r.n_out > widest) widest = r.n_out;
    parameters += n_w + n_b;
    size_t before = a.used();
    int32_t* rows = direct ? a.Take<int32_t>(static_cast<size_t>(r.n_out)) : nullptr;
    scratch_bytes += a.used() - before;
    before = a.used();
    float* w_grad = direct ? nullptr : a.Take<float>(n_w);
    float* b_grad = !direct && n_b > 0 ? a.Take<float>(n_b) : nullptr;
    accumulator_bytes += a.used() - before;
    before = a.used();
    float* w_vel = momentum_ > 0.0f ? a.Take<float>(n_w) : nullptr;
    float* b_vel = momentum_ > 0.0f && n_b > 0 ? a.Take<float>(n_b) : nullptr;
    optimizer_bytes += a.used() - before;
    if (commit) {
      TrainableLayer& l = layers_[layer];
      l.op = i;
      l.position = num_trainable_ - 1 - layer;
      l.n_out = r.n_out;
      l.n_weights = r.n_weights;
      l.n_bias = r.n_bias;
      l.direct = direct;
      l.rows = rows;
      l.weight_grad = w_grad;
      l.bias_grad = b_grad;
      l.weight_velocity = w_vel;
      l.bias_velocity = b_vel;
      l.k = 0;
      l.ymax = 0.0f;
      if (w_grad != nullptr) memset(w_grad, 0, n_w * sizeof(float));
      if (b_grad != nullptr) memset(b_grad, 0, n_b * sizeof(float));
      if (w_vel != nullptr) memset(w_vel, 0, n_w * sizeof(float));
      if (b_vel != nullptr) memset(b_vel, 0, n_b * sizeof(float));
    }
    ++layer;
  }
  size_t before = a.used();
  select_index_ = a.Take<int32_t>(static_cast<size_t>(widest));
  select_mask_ = a.Take<uint8_t>(static_cast<size_t>(widest));
  select_rows_ = a.Take<int32_t>(static_cast<size_t>(widest));
  scratch_bytes += a.used() - before;

  if (a.overflow()) {
    m.Add("model is too large to lay out in memory");
    return Status::kUnsupportedModel;
  }
  report_.gradient_bytes = error_bytes + accumulator_bytes;
  report_.optimizer_bytes = optimizer_bytes;
  report_.scratch_bytes = scratch_bytes;
  report_.required_bytes = a.used();
  state_bytes_ = kStateHeaderWords * sizeof(uint32_t) + sizeof(Counters) +
                 static_cast<size_t>(num_trainable_) * sizeof(float) +
                 (momentum_ > 0.0f ? parameters * sizeof(float) : 0);
  state_parameters_ = static_cast<uint32_t>(parameters);
  if (!commit) return Status::kOk;

  // Op records, now that every buffer has its place.
  layer = 0;
  for (int i = 0; i < num_ops_; ++i) {
    const plan::Op* op = p->ops()->Get(i);
    OpRuntime& r = ops_[i];
    Status status = PrepareOp(view, model_, i, &r, &m);
    if (status != Status::kOk) return status;
    const int in = op->inputs()->Get(0);
    const int in2 = OpInputCount(op) > 1 ? op->inputs()->Get(1) : -1;
    r.in = tensor_data_[in];
    r.in2 = in2 >= 0 ? tensor_data_[in2] : nullptr;
    r.out = tensor_data_[op->output()];
    r.d_in = tensor_grad_[in];
    r.d_in2 = in2 >= 0 ? tensor_grad_[in2] : nullptr;
    r.d_out = tensor_grad_[op->output()];
    if (op->trainable()) {
      r.layer = layer;
      layers_[layer].weights = r.weights;
      layers_[layer].bias = r.bias;
      ++layer;
    }
  }
  const plan::Op* last_backward = p->ops()->Get(loss_op_ - 1);
  output_ = tensor_data_[p->output()];
  logits_ = tensor_data_[last_backward->output()];
  loss_grad_ = tensor_grad_[last_backward->output()];
  error_[0] = '\0';
  return Status::kOk;
}

void Trainer::ResetPolicyState() {
  for (int i = 0; i < num_trainable_ && layers_ != nullptr; ++i) layers_[i].ymax = 0.0f;
}

size_t Trainer::layer_outputs(int i) const {
  return ready_ && i >= 0 && i < num_trainable_ ? static_cast<size_t>(layers_[i].n_out) : 0;
}

float Trainer::layer_ymax(int i) const {
  return ready_ && i >= 0 && i < num_trainable_ ? layers_[i].ymax : 0.0f;
}

float* Trainer::layer_weights(int i, size_t* count) {
  const bool ok = ready_ && i >= 0 && i < num_trainable_;
  *count = ok ? static_cast<size_t>(layers_[i].n_weights) : 0;
  return ok ? layers_[i].weights : nullptr;
}

float* Trainer::layer_bias(int i, size_t* count) {
  const bool ok = ready_ && i >= 0 && i < num_trainable_ && layers_[i].bias != nullptr;
  *count = ok ? static_cast<size_t>(layers_[i].n_bias) : 0;
  return ok ? layers_[i].bias : nullptr;
}

float Trainer::LearningRate() const {
  return ScheduledLearningRate(schedule_, lr_, counters_.steps, decay_steps_, warmup_steps_,
                               alpha_, warmup_initial_);
}

namespace {

struct StateCursor {
  uint8_t* bytes;
  size_t at;
  void Put(const void* from, size_t n) { memcpy(bytes + at, from, n); at += n; }
  void Get(void* to, size_t n) { memcpy(to, bytes + at, n); at += n; }
};

}  // namespace

// State layout (native byte order): header words, Counters, Ymax per layer, then
// each layer's weight and bias velocities when momentum is on.
Status Trainer::SaveState(uint8_t* out, size_t out_size) {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  if (out == nullptr || out_size != StateBytes()) {
    return Fail(Status::kInvalidArgument, "state buffer must be exactly StateBytes() = ",
                static_cast<long long>(StateBytes()), " bytes");
  }
  StateCursor c{out, 0};
  const uint32_t header[kStateHeaderWords] = {kStateMagic, kStateVersion,
                                              static_cast<uint32_t>(num_trainable_),
                                              momentum_ > 0.0f ? 1u : 0u, state_parameters_};
  c.Put(header, sizeof(header));
  c.Put(&counters_, sizeof(counters_));
  for (int i = 0; i < num_trainable_; ++i) c.Put(&layers_[i].ymax, sizeof(float));
  if (momentum_ > 0.0f) {
    for (int i = 0; i < num_trainable_; ++i) {
      const TrainableLayer& l = layers_[i];
      c.Put(l.weight_velocity, static_cast<size_t>(l.n_weights) * sizeof(float));
      if (l.n_bias > 0) c.Put(l.bias_velocity, static_cast<size_t>(l.n_bias) * sizeof(float));
    }
  }
  return Status::kOk;
}

Status Trainer::LoadState(const uint8_t* in, size_t in_size) {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  uint32_t header[kStateHeaderWords] = {};
  if (in == nullptr || in_size < sizeof(header)) {
    return Fail(Status::kInvalidArgument, "state is shorter than a tflm_train state header");
  }
  memcpy(header, in, sizeof(header));
  if (header[0] == kOldStateMagic) {
    return Fail(Status::kInvalidArgument,
                "state was saved by tflm_train 0.1 (state format 1); this trainer reads format 2");
  }
  if (header[0] != kStateMagic) return Fail(Status::kInvalidArgument, "state is not a tflm_train state");
  if (header[1] != kStateVersion) {
    return Fail(Status::kInvalidArgument, "state has format version ", header[1],
                "; this trainer reads format 2");
  }
  if (in_size != StateBytes() || header[2] != static_cast<uint32_t>(num_trainable_) ||
      header[3] != (momentum_ > 0.0f ? 1u : 0u) || header[4] != state_parameters_) {
    return Fail(Status::kInvalidArgument, "state was saved by a trainer for another model or optimizer");
  }
  StateCursor c{const_cast<uint8_t*>(in), sizeof(header)};
  Counters counters;
  c.Get(&counters, sizeof(counters));
  float ymax[kMaxTrainableLayers];
  for (int i = 0; i < num_trainable_; ++i) {
    c.Get(&ymax[i], sizeof(float));
    if (!(ymax[i] >= 0.0f) || !isfinite(ymax[i])) {
      return Fail(Status::kInvalidArgument, "state holds a Ymax that is negative or not finite");
    }
  }
  // Velocities are checked before anything is taken over: a refused state changes nothing.
  const size_t velocities = c.at;
  if (momentum_ > 0.0f) {
    for (size_t at = velocities; at < in_size; at += sizeof(float)) {
      float v;
      memcpy(&v, in + at, sizeof(v));
      if (!isfinite(v)) return Fail(Status::kInvalidArgument, "state holds a momentum that is not finite");
    }
  }
  counters_ = counters;
  for (int i = 0; i < num_trainable_; ++i) layers_[i].ymax = ymax[i];
  if (momentum_ > 0.0f) {
    for (int i = 0; i < num_trainable_; ++i) {
      TrainableLayer& l = layers_[i];
      c.Get(l.weight_velocity, static_cast<size_t>(l.n_weights) * sizeof(float));
      if (l.n_bias > 0) c.Get(l.bias_velocity, static_cast<size_t>(l.n_bias) * sizeof(float));
    }
  }
  return Status::kOk;
}

}  // namespace tflm_train
