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

#include "tflm_train/status.h"

namespace tflm_train {

namespace plan {
struct TrainingPlan;
}  // namespace plan
struct OpRuntime;
struct TrainableLayer;
struct ModelView;

// Per-step reports keep per-layer numbers in fixed arrays; Init rejects models
// with more trainable layers than this.
constexpr int kMaxTrainableLayers = 64;
// Init rejects plans with more ops than this (the trainer object indexes the graph in fixed arrays).
constexpr int kMaxOps = 256;

enum class PolicyKind : uint8_t { kFull = 0, kStaticTopK = 1, kTinyProp = 2, kTinyPropV2 = 3 };

// The sparsity policy (docs/algorithm.md); field meanings as in the plan schema.
struct PolicyParams {
  PolicyKind kind = PolicyKind::kFull;
  float ratio = 1.0f;
  float s_min = 0.1f, s_max = 0.9f, zeta = 0.5f, ymax_decay = 1.0f;
  float d_min = 0.0f, d_max = 1.0f, beta = 1.0f, tau = 0.5f;
};

struct TrainerOptions {
  uint32_t batch_size = 0;       // most samples per TrainStep; 0 = the plan's batch_size
  bool override_policy = false;  // use `policy` instead of the plan's
  PolicyParams policy;
  bool restore_state = true;     // resume from the training state the model carries, if any
};

// Where the arena goes. required_bytes is also filled when Init fails with kArenaTooSmall.
struct ArenaReport {
  size_t required_bytes = 0;
  size_t activation_bytes = 0;   // forward activations: those backward reads, plus one region
                                 // the others share
  size_t gradient_bytes = 0;     // error (delta) buffers, and weight gradients (convolutions,
                                 // and every layer when batch > 1)
  size_t optimizer_bytes = 0;    // momentum velocities
  size_t scratch_bytes = 0;      // top-k selection and kept-row lists
  size_t bookkeeping_bytes = 0;  // per-op records and policy state
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

class Trainer {
 public:
  Trainer() = default;
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // model: the .tflite bytes, 16-byte aligned and writable (weights change in place).
  // arena: 16-byte aligned scratch owned by the caller for the trainer's lifetime.
  // Passing arena == nullptr measures: Init returns kArenaTooSmall and fills arena_report().
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
  // momentum (docs/training-plan-format.md gives the layout). StateBytes() is
  // known once Init has measured the model (also when it returns kArenaTooSmall).
  size_t StateBytes() const { return state_bytes_; }
  Status SaveState(uint8_t* out, size_t out_size);
  Status LoadState(const uint8_t* in, size_t in_size);
  // A converted model carries room for its state (metadata "tflm_train_state"); Init
  // resumes from it unless TrainerOptions::restore_state is false. StoreStateInModel
  // writes the current state there, so the model bytes alone resume training.
  bool HasStateInModel() const { return model_state_ != nullptr; }
  Status StoreStateInModel();

  const char* error_message() const { return error_; }
  const ArenaReport& arena_report() const { return report_; }
  const Counters& counters() const { return counters_; }
  const PolicyParams& policy() const { return policy_; }
  uint32_t batch_size() const { return batch_size_; }
  size_t input_size() const { return input_size_; }
  size_t output_size() const { return output_size_; }
  size_t target_size() const { return target_size_; }
  int num_trainable_layers() const { return num_trainable_; }
  // Outputs and position from the output (0 = last) of trainable layer i.
  size_t layer_outputs(int i) const;
  float LearningRate() const;  // the rate the next step will use
  float layer_ymax(int i) const;
  // Trainable layer i's weights / bias inside the model bytes (TFLite layout), and
  // how many floats each holds; null and 0 when out of range or without a bias.
  float* layer_weights(int i, size_t* count);
  float* layer_bias(int i, size_t* count);

 private:
  Status Fail(Status status, const char* what, long long value = -1, const char* tail = nullptr);
  Status Validate(const ModelView& view, const TrainerOptions& options);
  Status Layout(const ModelView& view, uint8_t* arena, size_t arena_size);
  Status RestoreFromModel(const ModelView& view, bool restore);
  void Forward(const float* input, uint64_t* macs);
  Status TrainSample(const float* input, const float* target, SampleResult* sample);
  Status Backward(SampleResult* sample);
  Status ApplyUpdate(float lr, float grad_scale);
  void ClearGradients();
  void IndexGraph();
  bool NeededByBackward(int root) const;
  int LastReader(int root) const;
  int NextWriter(int op) const;

  const plan::TrainingPlan* plan_ = nullptr;
  uint8_t* model_ = nullptr;
  bool ready_ = false;
  OpRuntime* ops_ = nullptr;
  int num_ops_ = 0;
  TrainableLayer* layers_ = nullptr;
  int num_trainable_ = 0;
  int loss_op_ = 0;             // ops from here on are folded into the loss gradient
  float** tensor_data_ = nullptr;
  float** tensor_grad_ = nullptr;
  int num_tensors_ = 0;
  float* error_region_ = nullptr;  // all per-sample error buffers, zeroed per sample
  size_t error_region_floats_ = 0;
  int32_t* select_index_ = nullptr;  // top-k scratch, sized for the widest trainable layer
  uint8_t* select_mask_ = nullptr;
  int32_t* select_rows_ = nullptr;   // kept elements of layers that are not `direct`
  float* input_ = nullptr;
  const float* output_ = nullptr;
  const float* logits_ = nullptr;  // what the loss reads (the output unless fused)
  float* loss_grad_ = nullptr;     // where the loss writes its gradient
  size_t input_size_ = 0, output_size_ = 0, target_size_ = 0;
  uint32_t batch_size_ = 1;
  bool accumulate_ = false;        // batch size > 1: every layer accumulates into gradient buffers
  PolicyParams policy_;
  uint8_t loss_kind_ = 0;
  float lr_ = 0, momentum_ = 0, weight_decay_ = 0;
  uint8_t schedule_ = 0;
  uint32_t decay_steps_ = 0, warmup_steps_ = 0;
  float alpha_ = 0, warmup_initial_ = 0;
  Counters counters_;
  ArenaReport report_;
  size_t state_bytes_ = 0;
  uint32_t state_parameters_ = 0;  // trainable weights and biases, a check on restored states
  uint8_t* model_state_ = nullptr;  // the model's own state buffer, or null
  size_t model_state_size_ = 0;
  char error_[200] = {};
  // The graph, indexed once at Init. A "root" is the op whose output storage a
  // tensor uses (Reshape outputs share their input's); -1 is the model input.
  int16_t input_root_[kMaxOps][2] = {};
  int16_t output_root_[kMaxOps] = {};
  bool needs_grad_[kMaxOps] = {};   // the op's output depends on a trainable layer
};

}  // namespace tflm_train

#endif  // TFLM_TRAIN_TRAINER_H_
