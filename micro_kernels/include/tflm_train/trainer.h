// tflm_train::Trainer trains a trainable .tflite (a TFLite model carrying a
// "tflm_train" training plan) in place, inside the caller's model bytes, using
// only a caller-provided arena: no heap, no exceptions, no global state.
//
//   static uint8_t arena[8192] __attribute__((aligned(16)));
//   tflm_train::Trainer trainer;
//   if (trainer.Init(model, model_len, arena, sizeof(arena)) != Status::kOk) ...
//   trainer.TrainStep(x, x_len, label, 1, 1, &result, nullptr);
//
// A TFLM interpreter built over the same model array infers with the trained weights.
#ifndef TFLM_TRAIN_TRAINER_H_
#define TFLM_TRAIN_TRAINER_H_

#include <stddef.h>
#include <stdint.h>

#include "tflm_train/flash_storage.h"
#include "tflm_train/status.h"

namespace tflm_train {

struct Network;
struct OpRuntime;
struct ModelView;
class ArenaAllocator;

// Per-step reports keep per-layer numbers in fixed arrays; Init rejects models
// with more trainable layers than this.
constexpr int kMaxTrainableLayers = 64;
// Values as the plan schema's PolicyKind (static_asserted in trainer_init.cc).
enum class PolicyKind : uint8_t {
  kFull = 0, kStaticTopK = 1, kTinyProp = 2, kTinyPropV2 = 3,
  // The baselines (docs/baselines.md): fixed layers or channels instead of per-sample errors.
  kLastLayers = 4, kBiasOnly = 5, kSparseUpdate = 6, kTinyTrain = 7,
};

// The sparsity policy (docs/algorithm.md); field meanings as in the plan schema. The
// TinyProp fields default to TinyPropV2's defaults chosen on validation data
// (docs/algorithm.md, "Defaults"); a plan stores every field, so these matter only to
// a program that fills PolicyParams itself. The paper's: 0.1, 0.9, 0.5 and tau 0.5.
struct PolicyParams {
  PolicyKind kind = PolicyKind::kFull;
  float ratio = 1.0f;
  float s_min = 0.3f, s_max = 1.0f, zeta = 0.8f, ymax_decay = 1.0f;
  float d_min = 0.0f, d_max = 1.0f, beta = 1.0f, tau = 0.3f;
  bool dense_output = true;   // the last layer, feeding a softmax cross-entropy, keeps k = n (the default chosen on validation data: docs/algorithm.md)
  // TinyPropV2 compute budget: tau adapts so the backward MACs average `budget` of
  // full backprop's (0 = off); budget_rate and budget_gain are lambda and kappa.
  float budget = 0.0f, budget_rate = 0.01f, budget_gain = 0.05f;
  // The baselines. LastLayers: how many of the last layers train. SparseUpdate: the
  // last bias_layers layers train their biases; weight_ratios[p] is the share of
  // output channels whose weights train in the layer p layers from the output (0:
  // none; the last layer always trains fully). TinyTrain: the first `samples`
  // samples choose channels within mac_budget (share of Full's backward MACs) and
  // memory_budget (bytes, 0: no limit).
  uint32_t last_layers = 1;
  uint32_t bias_layers = 0;
  float weight_ratios[kMaxTrainableLayers] = {};
  uint32_t samples = 10;
  float mac_budget = 0.1f;
  uint32_t memory_budget = 0;
};

// The plan's optimizer: Keras' SGD and its learning-rate schedule (docs/algorithm.md).
struct SgdSettings {
  float learning_rate = 0.0f, momentum = 0.0f, weight_decay = 0.0f;
  uint8_t schedule = 0;  // the plan's ScheduleKind: 0 constant, 1 cosine decay
  uint32_t decay_steps = 0, warmup_steps = 0;
  float alpha = 0.0f, warmup_initial = 0.0f;
};

struct TrainerOptions {
  uint32_t batch_size = 0;       // most samples per TrainStep; 0 = the plan's batch_size
  bool override_policy = false;  // use `policy` instead of the plan's
  PolicyParams policy;
  bool restore_state = true;     // resume from the training state the model carries, if any
};

// Where the arena goes. required_bytes is also filled when Init fails with kArenaTooSmall.
// The trainer's bookkeeping (one record per operator, layer and tensor) comes first
// and the rest is planned with it: an Init without room for the bookkeeping (no
// arena at all, say) can only report that much (complete = false); an Init with at
// least that much reports the exact total.
struct ArenaReport {
  size_t required_bytes = 0;
  bool complete = false;         // required_bytes is the whole arena, not just the bookkeeping
  size_t activation_bytes = 0;   // forward activations: those backward reads, plus one region
                                 // the others share
  size_t gradient_bytes = 0;     // error (delta) buffers, and weight gradients (convolutions,
                                 // and every layer when batch > 1)
  size_t optimizer_bytes = 0;    // momentum velocities
  size_t scratch_bytes = 0;      // top-k selection and kept-row lists
  size_t bookkeeping_bytes = 0;  // per-op, per-layer and per-tensor records
};

struct SampleResult {
  float loss = 0.0f;
  float correct = 0.0f;  // 1/0 for a class; fraction of outputs right for binary outputs
  bool skipped = false;  // TinyPropV2 gate rejected it: forward and loss only
  int32_t num_layers = 0;
  int32_t k[kMaxTrainableLayers] = {};  // kept outputs per trainable layer (0 when skipped)
  uint64_t forward_macs = 0, backward_macs = 0, selection_ops = 0;
};

struct StepResult {
  float loss = 0.0f;     // mean over the batch's samples
  float correct = 0.0f;  // sum over the batch's samples
  uint32_t samples = 0, trained = 0, skipped = 0;
  bool updated = false;  // false when every sample was skipped
  float learning_rate = 0.0f;
  uint64_t forward_macs = 0, backward_macs = 0, selection_ops = 0;
};

struct Counters {
  uint64_t steps = 0, updates = 0, samples = 0, trained = 0, skipped = 0;
  uint64_t forward_macs = 0, backward_macs = 0, selection_ops = 0;
  uint64_t epochs = 0;  // advanced by CountEpoch(); the trainer itself has no notion of epochs
};

// One operator as the trainer runs it, for reports (tflm-train inspect).
struct OpDescription {
  const char* kind = "";       // the TFLite builtin operator, e.g. "CONV_2D"
  int32_t layer = -1;          // trainable layer index, -1 when it does not train
  int32_t input = -1, second_input = -1, output = -1;  // activation tensors
  int32_t n_weights = 0, n_bias = 0;
  uint8_t activation = 0;      // fused (or the op's own) activation: 0 none, 1 relu, 2 relu6
  bool int8 = false;           // runs TFLite's integer kernel: a frozen op of an int8 backbone
  // Convolutions and pooling (zero otherwise): window, strides, dilations, padding
  // before the first row/column, depth multiplier.
  int32_t filter_h = 0, filter_w = 0, stride_h = 0, stride_w = 0, dilation_h = 0, dilation_w = 0;
  int32_t pad_top = 0, pad_left = 0, depth_multiplier = 0;
  uint8_t padding = 0;         // TFLite's Padding of a windowed op: 0 SAME, 1 VALID
  // PAD: elements added before/after each axis of the input, padded to rank 4 with leading axes.
  int32_t pad_before[4] = {}, pad_after[4] = {};
  const float* weights = nullptr;  // weight ops: in the model bytes
  const float* bias = nullptr;
};

class Trainer {
 public:
  Trainer() = default;
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // model: the .tflite bytes, 16-byte aligned and writable (weights change in place).
  // arena: 16-byte aligned scratch owned by the caller for the trainer's lifetime.
  // An arena too small (or null) measures: Init returns kArenaTooSmall and fills
  // arena_report() (see ArenaReport::complete).
  Status Init(uint8_t* model, size_t model_size, uint8_t* arena, size_t arena_size,
              const TrainerOptions& options = TrainerOptions());

  // One sample in, the model's output out.
  Status Predict(const float* input, size_t input_len, float* output, size_t output_len);

  // Trains one batch of num_samples (1..batch_size) samples stored back to back.
  // Targets per sample: the class index (target_len 1) for sparse categorical
  // cross-entropy, else output_size() values. per_sample may be null.
  Status TrainStep(const float* inputs, size_t input_len, const float* targets, size_t target_len,
                   uint32_t num_samples, StepResult* result, SampleResult* per_sample);

  // Forward and loss for one sample without training (for evaluation).
  Status EvaluateSample(const float* input, size_t input_len, const float* target,
                        size_t target_len, float* loss, float* correct);

  // Checks one sample (and its label, unless target is null) as TrainStep would,
  // without running it: lets a caller validate a whole data set before training.
  Status CheckSample(const float* input, size_t input_len, const float* target, size_t target_len);

  // Forgets the TinyProp running maxima (Ymax) of every layer.
  void ResetPolicyState();
  // Counts one finished pass over the caller's data (saved with the state).
  void CountEpoch() { ++counters_.epochs; }

  // Trainer state beyond the weights: counters (the schedule's position), Ymax,
  // momentum (docs/training-plan-format.md gives the layout). StateBytes() is known
  // once Init has measured the whole model (kOk, or kArenaTooSmall with a complete report).
  size_t StateBytes() const { return state_bytes_; }
  Status SaveState(uint8_t* out, size_t out_size);
  Status LoadState(const uint8_t* in, size_t in_size);
  // A converted model carries room for its state (metadata "tflm_train_state"); Init
  // resumes from it unless TrainerOptions::restore_state is false. StoreStateInModel
  // writes the current state there, so the model bytes alone resume training.
  bool HasStateInModel() const { return model_state_ != nullptr; }
  Status StoreStateInModel();

  // Checkpoints in flash-like storage the application provides (docs/checkpoints.md):
  // the trainable weights and biases plus the training state, in two slots, so that
  // a save cut short at any byte leaves the previous checkpoint loadable.
  // The storage region (FlashStorage::size()) this model's checkpoints need: two
  // slots of whole pages; 0 before Init, when page_size is not a power of two, or
  // when the region would be 4 GiB or more (no FlashStorage::size() can say so).
  size_t CheckpointStorageBytes(uint32_t page_size) const;
  // Writes a checkpoint into the slot that does not hold the one LoadCheckpoint would
  // load, its header last. Reads the trainer, never changes it. A slot the storage
  // cannot read is written over (its erase clears the fault).
  Status SaveCheckpoint(FlashStorage& storage);
  // Restores the newest complete checkpoint of this model: its weights into the model
  // bytes and its training state, as if training had never stopped (the model's
  // "tflm_train_state" room is left as it is). *loaded is false, with kOk, when the
  // storage holds none. A slot is checked completely (CRCs, the region size it was
  // saved for, the state's values) before anything is copied; a slot that fails, or
  // cannot be read, is skipped for the other one, so a refused load changes nothing.
  // (Only a storage that fails during the final copy leaves it part-copied:
  // kStorageError, and the trainer needs Init again before anything, TFLM included,
  // uses the model array.)
  Status LoadCheckpoint(FlashStorage& storage, bool* loaded);

  const char* error_message() const { return error_; }
  const ArenaReport& arena_report() const { return report_; }
  const Counters& counters() const { return counters_; }
  const PolicyParams& policy() const { return policy_; }
  const SgdSettings& optimizer() const { return sgd_; }
  uint32_t batch_size() const { return batch_size_; }
  size_t input_size() const { return input_size_; }
  size_t output_size() const { return output_size_; }
  size_t target_size() const { return target_size_; }
  int num_trainable_layers() const;
  int num_ops() const;
  // Operator i (in subgraph 0's order); false when out of range or before Init.
  bool DescribeOp(int i, OpDescription* out) const;
  // Outputs and position from the output (0 = last) of trainable layer i.
  size_t layer_outputs(int i) const;
  float LearningRate() const;  // the rate the next step will use
  float layer_ymax(int i) const;
  // TinyPropV2's gate threshold in use (the configured tau, or the budget's) and the
  // moving average of the backward-MAC fraction the budget steers.
  float gate_tau() const { return gate_tau_; }
  float budget_spent() const { return budget_spent_; }
  // Trainable layer i's weights / bias inside the model bytes (TFLite layout), and
  // how many floats each holds; null and 0 when out of range or without a bias.
  float* layer_weights(int i, size_t* count);
  float* layer_bias(int i, size_t* count);

 private:
  Status Fail(Status status, const char* what, long long value = -1, const char* tail = nullptr);
  Status ReadSettings(const ModelView& view, const TrainerOptions& options);
  Status PrepareNetwork(const ModelView& view, ArenaAllocator* persistent);
  Status MarkLayers(const ModelView& view);
  Status CheckSplitBiases(const ModelView& view);
  Status PrepareBaseline(ArenaAllocator* arena);
  Status RestoreFromModel(const ModelView& view, bool restore);
  void StateHeaderWords(uint32_t* out) const;
  Status CheckStateHeader(const uint8_t* bytes, size_t state_size);
  void Forward(const float* input, uint64_t* macs);
  Status TrainSample(const float* input, const float* target, SampleResult* sample);
  Status Backward(SampleResult* sample);
  void SpendBudget(uint64_t backward_macs);
  void BaselineBackward(OpRuntime& op, SampleResult* r);
  void RestartSelection();
  // TinyTrain is still measuring: its samples run forward and backward, no update.
  bool Selecting() const { return policy_.kind == PolicyKind::kTinyTrain && selection_seen_ < policy_.samples; }
  Status Update(float lr, float grad_scale);

  Network* net_ = nullptr;  // in the arena
  uint8_t* model_ = nullptr;
  bool ready_ = false;
  size_t input_size_ = 0, output_size_ = 0, target_size_ = 0;
  uint32_t batch_size_ = 1;
  bool accumulate_ = false;        // batch size > 1: every layer accumulates into gradient buffers
  PolicyParams policy_;
  bool override_policy_ = false;   // the policy came from TrainerOptions, not the plan
  uint8_t loss_kind_ = 0;
  float gate_tau_ = 0.5f;           // the gate's threshold: policy_.tau, or adapted by the budget
  float budget_spent_ = 0.0f;       // the budget's moving average of backward / full backward MACs
  uint64_t full_backward_macs_ = 0;  // one sample's backward MACs under Full()
  uint32_t selection_seen_ = 0;     // TinyTrain: samples its selection has used so far
  SgdSettings sgd_;
  const float* output_ = nullptr;
  const float* logits_ = nullptr;  // what the loss reads (the output unless fused)
  float* loss_grad_ = nullptr;     // where the loss writes its gradient
  Counters counters_;
  ArenaReport report_;
  size_t state_bytes_ = 0;
  uint32_t state_parameters_ = 0;  // trainable weights and biases, a check on restored states
  uint8_t* model_state_ = nullptr;  // the model's own state buffer, or null
  size_t model_state_size_ = 0;
  char error_[200] = {};
};

}  // namespace tflm_train

#endif  // TFLM_TRAIN_TRAINER_H_
