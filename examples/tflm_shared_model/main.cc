// One model array, two engines: TFLM's MicroInterpreter infers from the array while
// tflm_train::Trainer trains the same bytes in place. For each sparsity policy and each
// training sample: Invoke, check TFLM's output against the trainer's own prediction,
// TrainStep, Invoke again, check again and that the step moved the output. Prints every
// output after a step as float bits (the test compares them with the host MicroTrainer),
// then per policy the mean instructions per Invoke and per TrainStep (exact on QEMU).
//
// Why it works: the weights are float tensors TFLM reads from the model buffer at every
// Invoke (Eval); none of the float kernels the models use (model_ops.h) computes
// anything from weight values in Prepare, so AllocateTensors runs once and every update
// is seen by the next Invoke.
#include <math.h>
#include <string.h>

#include "data.h"
#include "line.h"
#include "model_data.h"
#include "model_ops.h"
#include "platform.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tflm_train/trainer.h"

namespace {

constexpr float kTolerance = 1e-6f;  // TFLM's output vs the trainer's prediction
constexpr int kMaxOutputs = 16;

alignas(16) uint8_t g_tflm_arena[g_model_tflm_arena_size];
float g_largest_difference = 0.0f;  // over every comparison of TFLM with the trainer

using board::Line;

struct Policy {
  const char* name;
  tflm_train::PolicyKind kind;
  float ratio;
};

bool Fail(const char* what, const char* detail = "") {
  Line().Str("FAIL: ").Str(what).Str(detail).Print();
  return false;
}

float MaxDifference(const float* a, const float* b, int n) {
  float worst = 0.0f;
  for (int i = 0; i < n; ++i) worst = fmaxf(worst, fabsf(a[i] - b[i]));
  return worst;
}

// Invokes TFLM on one sample and checks its output against the trainer's prediction.
bool InferBoth(tflite::MicroInterpreter& interpreter, tflm_train::Trainer& trainer, const float* x,
               float* out, uint64_t* instructions) {
  TfLiteTensor* input = interpreter.input(0);
  memcpy(input->data.f, x, g_model_input_size * sizeof(float));
  const uint64_t t0 = platform::Instructions();
  if (interpreter.Invoke() != kTfLiteOk) return Fail("Invoke");
  *instructions += platform::Instructions() - t0;
  memcpy(out, interpreter.output(0)->data.f, g_model_output_size * sizeof(float));
  float predicted[kMaxOutputs];
  if (trainer.Predict(x, g_model_input_size, predicted, g_model_output_size) != tflm_train::Status::kOk) {
    return Fail("Predict: ", trainer.error_message());
  }
  const float difference = MaxDifference(out, predicted, g_model_output_size);
  if (!(difference <= kTolerance)) return Fail("TFLM's output differs from the trainer's prediction");
  g_largest_difference = fmaxf(g_largest_difference, difference);
  return true;
}

bool Run(tflite::MicroInterpreter& interpreter, const Policy& policy) {
  platform::RestoreModel();
  tflm_train::TrainerOptions options;
  options.override_policy = true;
  options.policy.kind = policy.kind;
  options.policy.ratio = policy.ratio;
  // Python's TinyProp() default; PolicyParams' own defaults are TinyPropV2()'s.
  if (policy.kind == tflm_train::PolicyKind::kTinyProp) options.policy.s_min = 0.2f;
  tflm_train::Trainer trainer;
  if (trainer.Init(g_model, g_model_len, g_arena, g_arena_len, options) != tflm_train::Status::kOk) {
    return Fail("Init: ", trainer.error_message());
  }
  uint64_t invoke_instructions = 0, step_instructions = 0, invokes = 0, moved = 0;
  for (unsigned int i = 0; i < g_num_train; ++i) {
    const float* x = g_train_x + i * g_model_input_size;
    float before[kMaxOutputs], after[kMaxOutputs];
    if (!InferBoth(interpreter, trainer, x, before, &invoke_instructions)) return false;
    tflm_train::StepResult step;
    tflm_train::SampleResult sample;
    const uint64_t t0 = platform::Instructions();
    if (trainer.TrainStep(x, g_model_input_size, g_train_y + i, 1, 1, &step, &sample) != tflm_train::Status::kOk) {
      return Fail("TrainStep: ", trainer.error_message());
    }
    step_instructions += platform::Instructions() - t0;
    if (!InferBoth(interpreter, trainer, x, after, &invoke_instructions)) return false;
    invokes += 2;
    const bool changed = MaxDifference(before, after, g_model_output_size) > 0.0f;
    if (!sample.skipped && !changed) return Fail("a step that updated the weights left TFLM's output unchanged");
    if (sample.skipped && changed) return Fail("a skipped step changed TFLM's output");
    moved += changed ? 1 : 0;
    Line line;
    line.Str("OUT ").Str(policy.name).Str(" ").U(i).Str(" skipped=").U(sample.skipped ? 1 : 0).Str(" ");
    for (unsigned int o = 0; o < g_model_output_size; ++o) line.Str(o ? "," : "").Bits(after[o]);
    line.Print();
  }
  Line().Str("COST ").Str(policy.name).Str(" steps=").U(g_num_train).Str(" moved=").U(moved)
      .Str(" instructions_per_invoke=").U(invoke_instructions / invokes)
      .Str(" instructions_per_train_step=").U(step_instructions / g_num_train).Print();
  return true;
}

}  // namespace

int main() {
  Line().Str("tflm_train + TFLM, one model array, on ").Str(platform::Name()).Print();
  if (g_input_len != g_model_input_size || g_model_output_size > kMaxOutputs) {
    return Fail("the data does not fit the model") ? 0 : 1;
  }
  const tflite::Model* model = tflite::GetModel(g_model);
  ModelOpResolver resolver;
  AddModelOps(resolver);
  tflite::MicroInterpreter interpreter(model, resolver, g_tflm_arena, sizeof(g_tflm_arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) return Fail("AllocateTensors") ? 0 : 1;
  Line().Str("ARENA tflm_used=").U(interpreter.arena_used_bytes()).Str(" tflm_given=").U(sizeof(g_tflm_arena))
      .Str(" trainer_given=").U(g_arena_len).Print();
  const Policy policies[] = {{"full", tflm_train::PolicyKind::kFull, 0.0f},
                             {"static0.3", tflm_train::PolicyKind::kStaticTopK, 0.3f},
                             {"tinyprop", tflm_train::PolicyKind::kTinyProp, 0.0f},
                             {"tinypropv2", tflm_train::PolicyKind::kTinyPropV2, 0.0f}};
  for (const Policy& policy : policies) {
    if (!Run(interpreter, policy)) return 1;
  }
  Line().Str("LARGEST_DIFFERENCE tflm_vs_trainer=").Bits(g_largest_difference).Print();
  board::Write("PASS\n");
  return 0;
}
