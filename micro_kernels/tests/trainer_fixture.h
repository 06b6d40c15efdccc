// What the Trainer tests share: the fixture models (C arrays, see
// tests/fixtures/), aligned writable copies of them, a trainer over an exactly
// sized arena, and random samples.
#ifndef TFLM_TRAIN_TESTS_TRAINER_FIXTURE_H_
#define TFLM_TRAIN_TESTS_TRAINER_FIXTURE_H_

#include <stdint.h>
#include <string.h>

#include <vector>

#include "fixtures/cnn_model.h"
#include "fixtures/momentum_model.h"
#include "fixtures/plain_model.h"
#include "test_harness.h"
#include "tflm_train/trainer.h"

namespace test {

using tflm_train::PolicyKind;
using tflm_train::PolicyParams;
using tflm_train::Status;
using tflm_train::Trainer;
using tflm_train::TrainerOptions;

// Model bytes, as the tests hand them around.
using Model = std::vector<uint8_t>;
inline Model PlainModel() { return Model(kPlainModel, kPlainModel + kPlainModelSize); }
inline Model MomentumModel() { return Model(kMomentumModel, kMomentumModel + kMomentumModelSize); }
inline Model CnnModel() { return Model(kCnnModel, kCnnModel + kCnnModelSize); }

// Owned bytes at a 16-byte aligned address (plus `offset`).
class Bytes {
 public:
  Bytes(const uint8_t* src, size_t size, size_t offset = 0) : storage_(size + 64, 0), size_(size) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(storage_.data());
    data_ = reinterpret_cast<uint8_t*>((p + 15) & ~static_cast<uintptr_t>(15)) + offset;
    if (src != nullptr && size > 0) memcpy(data_, src, size);
  }
  explicit Bytes(const Model& m, size_t offset = 0) : Bytes(m.data(), m.size(), offset) {}
  explicit Bytes(size_t size) : Bytes(nullptr, size) {}
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  Model ToModel() const { return Model(data_, data_ + size_); }
  bool Same(const Bytes& other) const { return size_ == other.size_ && memcmp(data_, other.data_, size_) == 0; }

 private:
  std::vector<uint8_t> storage_;
  uint8_t* data_;
  size_t size_;
};

// The arena a model needs, by the documented two-step measure: Init without an
// arena reports the bookkeeping; Init with that much reports the whole arena.
inline size_t RequiredArena(const Model& src, const TrainerOptions& options = TrainerOptions()) {
  Bytes copy(src);
  Trainer t;
  if (t.Init(copy.data(), copy.size(), nullptr, 0, options) != Status::kArenaTooSmall) return 0;
  Bytes arena(t.arena_report().required_bytes);
  const Status s = t.Init(copy.data(), copy.size(), arena.data(), arena.size(), options);
  if (s == Status::kOk) return arena.size();
  return s == Status::kArenaTooSmall && t.arena_report().complete ? t.arena_report().required_bytes : 0;
}

// A model copy with an initialized trainer over an exactly sized arena.
struct Session {
  Bytes model;
  Bytes arena;
  Trainer trainer;
  Status init;
  explicit Session(const Model& src, const TrainerOptions& options = TrainerOptions())
      : model(src), arena(RequiredArena(src, options)) {
    init = trainer.Init(model.data(), model.size(), arena.data(), arena.size(), options);
  }
};

// `count` samples of `input_len` values in [-2, 2) and class labels below `classes`.
inline void MakeSamples(Lcg& rng, int count, int input_len, int classes, std::vector<float>* x,
                        std::vector<float>* y) {
  x->resize(static_cast<size_t>(count) * input_len);
  y->resize(count);
  for (auto& v : *x) v = rng.Uniform(-2.0f, 2.0f);
  for (auto& v : *y) v = static_cast<float>(rng.Int(0, classes - 1));
}

inline TrainerOptions WithPolicy(PolicyKind kind, uint32_t batch_size = 0) {
  TrainerOptions o;
  o.override_policy = true;
  o.policy.kind = kind;
  o.batch_size = batch_size;
  return o;
}

}  // namespace test

#endif  // TFLM_TRAIN_TESTS_TRAINER_FIXTURE_H_
