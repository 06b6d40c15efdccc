// Untrusted model bytes: Init (with a policy chosen from the input's length), then
// everything a trainer does with a model (fuzz_common.h's Exercise).
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > fuzz::kMaxModelBytes) return 0;
  fuzz::Block model(data, size);
  tflm_train::TrainerOptions options;
  if (size % 5 != 0) {  // most inputs run another policy than the plan's
    options.override_policy = true;
    options.policy.kind = static_cast<tflm_train::PolicyKind>(size % 4);
    options.policy.ratio = 0.3f;
    options.policy.tau = 0.2f;
  }
  size_t arena_size = 0;
  if (!fuzz::Measure(model.bytes, size, options, &arena_size)) return 0;
  fuzz::Block arena(arena_size);
  tflm_train::Trainer trainer;
  if (trainer.Init(model.bytes, size, arena.bytes, arena_size, options) == tflm_train::Status::kOk) {
    fuzz::Exercise(trainer, static_cast<uint32_t>(size));
  }
  return 0;
}
