// Untrusted training-state bytes on valid models: LoadState, and the same bytes as
// the state a model carries (Init resumes from it); then train and predict.
#include <string.h>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const fuzz::Fixture& fixture = fuzz::kFixtures[data[0] % 3];
  const uint8_t* state = data + 1;
  const size_t state_size = size - 1;
  tflm_train::TrainerOptions options;
  options.restore_state = false;
  fuzz::FixtureTrainer device(fixture, options);
  tflm_train::Trainer& trainer = device.trainer;
  fuzz::Block& model = device.model;

  // 1. LoadState straight from the bytes.
  fuzz::Block blob(state, state_size);
  if (trainer.LoadState(blob.bytes, blob.size) == tflm_train::Status::kOk) fuzz::Exercise(trainer, 7);

  // 2. The bytes as the state the model carries: find its room (the trainer's own
  // state, stored there, is the only copy of those bytes), overwrite, Init again.
  std::vector<uint8_t> own(trainer.StateBytes());
  if (trainer.SaveState(own.data(), own.size()) != tflm_train::Status::kOk ||
      trainer.StoreStateInModel() != tflm_train::Status::kOk) {
    return 0;
  }
  uint8_t* room = static_cast<uint8_t*>(memmem(model.bytes, model.size, own.data(), own.size()));
  if (room == nullptr) return 0;
  memset(room, 0, own.size());
  memcpy(room, state, state_size < own.size() ? state_size : own.size());
  tflm_train::Trainer resumed;
  options.restore_state = true;
  if (resumed.Init(model.bytes, model.size, device.arena.bytes, device.arena.size, options) == tflm_train::Status::kOk) {
    fuzz::Exercise(resumed, 11);
  }
  return 0;
}
