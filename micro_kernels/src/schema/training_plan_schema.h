// Generated from schema/training_plan.fbs by scripts/generate_schema_code.py; do not edit.
#ifndef TFLM_TRAIN_SCHEMA_TRAINING_PLAN_H_
#define TFLM_TRAIN_SCHEMA_TRAINING_PLAN_H_

#include <stdint.h>

#include "flatbuffer_reader.h"

namespace tflm_train::plan {

constexpr const char kFileIdentifier[] = "TTPL";

enum class LossKind : uint8_t {
  SparseCategoricalCrossentropy = 0,
  CategoricalCrossentropy = 1,
  MeanSquaredError = 2,
  BinaryCrossentropy = 3,
};

enum class ScheduleKind : uint8_t {
  Constant = 0,
  CosineDecay = 1,
};

enum class PolicyKind : uint8_t {
  Full = 0,
  StaticTopK = 1,
  TinyProp = 2,
  TinyPropV2 = 3,
  LastLayers = 4,
  BiasOnly = 5,
  SparseUpdate = 6,
  TinyTrain = 7,
};

class Layer;
class Optimizer;
class Policy;
class MemoryPlan;
class TrainingPlan;

class Layer {
 public:
  Layer() = default;
  explicit Layer(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  int32_t op_index() const { return t_.Get<int32_t>(0, -1); }
  const char* name(uint32_t* length = nullptr) const { return t_.GetString(1, length); }
  int32_t bias_op_index() const { return t_.Get<int32_t>(2, -1); }
  bool has_bias() const { return t_.Get<uint8_t>(3, 1) != 0; }
 private:
  fb::Table t_;
};

class Optimizer {
 public:
  Optimizer() = default;
  explicit Optimizer(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  float learning_rate() const { return t_.Get<float>(0, 0.01f); }
  float momentum() const { return t_.Get<float>(1, 0.0f); }
  float weight_decay() const { return t_.Get<float>(2, 0.0f); }
  ScheduleKind schedule() const { return static_cast<ScheduleKind>(t_.Get<uint8_t>(3, static_cast<uint8_t>(0))); }
  uint32_t decay_steps() const { return t_.Get<uint32_t>(4, 0); }
  uint32_t warmup_steps() const { return t_.Get<uint32_t>(5, 0); }
  float alpha() const { return t_.Get<float>(6, 0.0f); }
  float warmup_initial() const { return t_.Get<float>(7, 0.0f); }
 private:
  fb::Table t_;
};

class Policy {
 public:
  Policy() = default;
  explicit Policy(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  PolicyKind kind() const { return static_cast<PolicyKind>(t_.Get<uint8_t>(0, static_cast<uint8_t>(0))); }
  float ratio() const { return t_.Get<float>(1, 1.0f); }
  float s_min() const { return t_.Get<float>(2, 0.1f); }
  float s_max() const { return t_.Get<float>(3, 0.9f); }
  float zeta() const { return t_.Get<float>(4, 0.5f); }
  float ymax_decay() const { return t_.Get<float>(5, 1.0f); }
  float d_min() const { return t_.Get<float>(6, 0.0f); }
  float d_max() const { return t_.Get<float>(7, 1.0f); }
  float beta() const { return t_.Get<float>(8, 1.0f); }
  float tau() const { return t_.Get<float>(9, 0.5f); }
  bool dense_output() const { return t_.Get<uint8_t>(10, 0) != 0; }
  float budget() const { return t_.Get<float>(11, 0.0f); }
  float budget_rate() const { return t_.Get<float>(12, 0.01f); }
  float budget_gain() const { return t_.Get<float>(13, 0.05f); }
  uint32_t last_layers() const { return t_.Get<uint32_t>(14, 1); }
  uint32_t bias_layers() const { return t_.Get<uint32_t>(15, 0); }
  fb::Vector weight_ratios() const { return t_.GetVector(16, 4); }
  uint32_t samples() const { return t_.Get<uint32_t>(17, 10); }
  float mac_budget() const { return t_.Get<float>(18, 0.1f); }
  uint32_t memory_budget() const { return t_.Get<uint32_t>(19, 0); }
 private:
  fb::Table t_;
};

class MemoryPlan {
 public:
  MemoryPlan() = default;
  explicit MemoryPlan(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  uint32_t arena_bytes() const { return t_.Get<uint32_t>(0, 0); }
  uint32_t activation_bytes() const { return t_.Get<uint32_t>(1, 0); }
  uint32_t gradient_bytes() const { return t_.Get<uint32_t>(2, 0); }
  uint32_t optimizer_bytes() const { return t_.Get<uint32_t>(3, 0); }
  uint32_t scratch_bytes() const { return t_.Get<uint32_t>(4, 0); }
 private:
  fb::Table t_;
};

class TrainingPlan {
 public:
  TrainingPlan() = default;
  explicit TrainingPlan(fb::Table table) : t_(table) {}
  bool present() const { return t_.present(); }
  const fb::Table& table() const { return t_; }
  uint32_t version() const { return t_.Get<uint32_t>(0, 0); }
  fb::Vector layers() const { return t_.GetVector(1, 4); }
  Layer layers(uint32_t i) const { return Layer(layers().TableAt(i)); }
  LossKind loss() const { return static_cast<LossKind>(t_.Get<uint8_t>(2, static_cast<uint8_t>(0))); }
  Optimizer optimizer() const { return Optimizer(t_.GetTable(3)); }
  Policy policy() const { return Policy(t_.GetTable(4)); }
  uint32_t batch_size() const { return t_.Get<uint32_t>(5, 1); }
  MemoryPlan memory() const { return MemoryPlan(t_.GetTable(6)); }
  uint32_t state_bytes() const { return t_.Get<uint32_t>(7, 0); }
 private:
  fb::Table t_;
};

// Each Verify reads every declared field, so a field that leaves the buffer
// marks the Reader failed wherever it is; tables and vectors of tables recurse.
inline void Verify(const Layer& x);
inline void Verify(const Optimizer& x);
inline void Verify(const Policy& x);
inline void Verify(const MemoryPlan& x);
inline void Verify(const TrainingPlan& x);

inline void Verify(const Layer& x) {
  if (!x.present()) return;
  (void)x.op_index();
  (void)x.name();
  (void)x.bias_op_index();
  (void)x.has_bias();
}

inline void Verify(const Optimizer& x) {
  if (!x.present()) return;
  (void)x.learning_rate();
  (void)x.momentum();
  (void)x.weight_decay();
  (void)x.schedule();
  (void)x.decay_steps();
  (void)x.warmup_steps();
  (void)x.alpha();
  (void)x.warmup_initial();
}

inline void Verify(const Policy& x) {
  if (!x.present()) return;
  (void)x.kind();
  (void)x.ratio();
  (void)x.s_min();
  (void)x.s_max();
  (void)x.zeta();
  (void)x.ymax_decay();
  (void)x.d_min();
  (void)x.d_max();
  (void)x.beta();
  (void)x.tau();
  (void)x.dense_output();
  (void)x.budget();
  (void)x.budget_rate();
  (void)x.budget_gain();
  (void)x.last_layers();
  (void)x.bias_layers();
  (void)x.weight_ratios();
  (void)x.samples();
  (void)x.mac_budget();
  (void)x.memory_budget();
}

inline void Verify(const MemoryPlan& x) {
  if (!x.present()) return;
  (void)x.arena_bytes();
  (void)x.activation_bytes();
  (void)x.gradient_bytes();
  (void)x.optimizer_bytes();
  (void)x.scratch_bytes();
}

inline void Verify(const TrainingPlan& x) {
  if (!x.present()) return;
  (void)x.version();
  for (uint32_t i = 0; i < x.layers().size(); ++i) Verify(x.layers(i));
  (void)x.loss();
  Verify(x.optimizer());
  Verify(x.policy());
  (void)x.batch_size();
  Verify(x.memory());
  (void)x.state_bytes();
}

inline TrainingPlan GetTrainingPlan(const fb::Reader& reader) { return TrainingPlan(reader.Root()); }

}  // namespace tflm_train::plan

#endif  // TFLM_TRAIN_SCHEMA_TRAINING_PLAN_H_
