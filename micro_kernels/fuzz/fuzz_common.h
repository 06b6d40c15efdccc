// Shared by the libFuzzer harnesses: exactly sized heap copies (so AddressSanitizer
// catches a read one byte past the end), the two-step arena measure, and inputs
// and labels every loss accepts, drawn from a small deterministic generator.
#ifndef TFLM_TRAIN_FUZZ_FUZZ_COMMON_H_
#define TFLM_TRAIN_FUZZ_FUZZ_COMMON_H_

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "fixtures/cnn_model.h"
#include "fixtures/momentum_model.h"
#include "fixtures/plain_model.h"
#include "tflm_train/trainer.h"

namespace fuzz {

using tflm_train::Status;

constexpr size_t kMaxModelBytes = 1 << 20;

// The valid models the state and sample harnesses train (the C++ tests' fixtures).
struct Fixture {
  const uint8_t* bytes;
  size_t size;
};
inline constexpr Fixture kFixtures[] = {{kPlainModel, kPlainModelSize}, {kMomentumModel, kMomentumModelSize},
                                        {kCnnModel, kCnnModelSize}};
constexpr size_t kMaxArenaBytes = 32u << 20;

// `size` bytes at a 16-byte aligned address with nothing after them (glibc's malloc
// aligns to 16 on 64-bit hosts; the harness checks).
struct Block {
  explicit Block(size_t size) : size(size), bytes(static_cast<uint8_t*>(malloc(size == 0 ? 1 : size))) {
    if ((reinterpret_cast<uintptr_t>(bytes) & 15u) != 0) abort();
  }
  Block(const uint8_t* data, size_t size) : Block(size) { memcpy(bytes, data, size); }
  ~Block() { free(bytes); }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  size_t size;
  uint8_t* bytes;
};

// Measures the arena (bookkeeping first, then the rest); false when Init refuses
// the model or it needs more than the harness gives.
inline bool Measure(uint8_t* model, size_t size, const tflm_train::TrainerOptions& options, size_t* arena) {
  tflm_train::Trainer t;
  if (t.Init(model, size, nullptr, 0, options) != Status::kArenaTooSmall) return false;
  if (!t.arena_report().complete) {
    const size_t bookkeeping = t.arena_report().required_bytes;
    if (bookkeeping > kMaxArenaBytes) return false;
    Block scratch(bookkeeping);
    const Status s = t.Init(model, size, scratch.bytes, bookkeeping, options);
    if (s == Status::kOk) {
      *arena = bookkeeping;
      return true;
    }
    if (s != Status::kArenaTooSmall || !t.arena_report().complete) return false;
  }
  *arena = t.arena_report().required_bytes;
  return *arena <= kMaxArenaBytes;
}

// A trainer over a fresh copy of a fixture, with the arena `options` need. The fixtures
// are valid models, so any failure here is a bug: abort.
struct FixtureTrainer {
  FixtureTrainer(const Fixture& fixture, const tflm_train::TrainerOptions& options)
      : model(fixture.bytes, fixture.size), arena(ArenaFor(model, options)) {
    if (trainer.Init(model.bytes, model.size, arena.bytes, arena.size, options) != Status::kOk) abort();
  }
  static size_t ArenaFor(Block& model, const tflm_train::TrainerOptions& options) {
    size_t size = 0;
    if (!Measure(model.bytes, model.size, options, &size)) abort();
    return size;
  }
  Block model;
  Block arena;
  tflm_train::Trainer trainer;
};

struct Lcg {
  uint32_t state;
  float Next() {  // in [-1, 1)
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / 8388608.0f - 1.0f;
  }
};

// `samples` inputs and labels the trainer's loss accepts (a class index, or values
// in [0, 1], or a one-hot row for categorical cross-entropy: which one is decided by
// target_size and by what CheckSample accepts).
inline void MakeSamples(tflm_train::Trainer& t, uint32_t samples, uint32_t seed, std::vector<float>* x,
                        std::vector<float>* y) {
  Lcg rng{seed};
  x->assign(samples * t.input_size(), 0.0f);
  y->assign(samples * t.target_size(), 0.0f);
  for (float& v : *x) v = rng.Next();
  for (uint32_t s = 0; s < samples; ++s) {
    float* target = y->data() + s * t.target_size();
    if (t.target_size() == 1) {  // a class index, or one output in [0, 1]
      target[0] = static_cast<float>((seed + s) % t.output_size());
      if (t.CheckSample(x->data(), t.input_size(), target, 1) != Status::kOk) target[0] = 0.5f;
    } else {
      target[(seed + s) % t.target_size()] = 1.0f;  // one-hot: every dense loss accepts it
    }
  }
}

// Everything a trained model is used for, once: predict, train one sample and a full
// batch, evaluate, save and restore the state, store it in the model, describe.
inline void Exercise(tflm_train::Trainer& t, uint32_t seed) {
  if (t.input_size() > (1u << 20) || t.output_size() > (1u << 20)) return;
  const uint32_t batch = t.batch_size() < 4 ? t.batch_size() : 4;
  std::vector<float> x, y, out(t.output_size());
  MakeSamples(t, batch, seed, &x, &y);
  t.Predict(x.data(), t.input_size(), out.data(), out.size());
  tflm_train::StepResult step;
  tflm_train::SampleResult per[4];
  t.TrainStep(x.data(), t.input_size(), y.data(), t.target_size(), 1, &step, per);
  t.TrainStep(x.data(), t.input_size(), y.data(), t.target_size(), batch, &step, per);
  float loss = 0.0f, correct = 0.0f;
  t.EvaluateSample(x.data(), t.input_size(), y.data(), t.target_size(), &loss, &correct);
  std::vector<uint8_t> state(t.StateBytes());
  if (t.SaveState(state.data(), state.size()) == Status::kOk) t.LoadState(state.data(), state.size());
  if (t.HasStateInModel()) t.StoreStateInModel();
  tflm_train::OpDescription op;
  for (int i = 0; i < t.num_ops(); ++i) t.DescribeOp(i, &op);
  t.ResetPolicyState();
  t.TrainStep(x.data(), t.input_size(), y.data(), t.target_size(), 1, &step, nullptr);
}

}  // namespace fuzz

#endif  // TFLM_TRAIN_FUZZ_FUZZ_COMMON_H_
