// Split deployment (docs/int8.md): TFLM runs the frozen int8 backbone, a plain
// .tflite that stays const (in flash on a device), and tflm_train::Trainer trains the
// float head on the backbone's output. For each sparsity policy and each training
// sample: Invoke the backbone, TrainStep the head on its features, and print the
// head's prediction after the step as float bits (the test compares them with the
// host MicroTrainer fed by the pip TFLM runtime's backbone), then per policy the mean
// instructions per backbone Invoke and per head TrainStep (exact on QEMU).
#include <string.h>

#include "backbone_data.h"
#include "data.h"
#include "line.h"
#include "head_data.h"
#include "platform.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tflm_train/trainer.h"

namespace {

constexpr int kMaxOutputs = 16;
constexpr int kMaxFeatures = 1024;

alignas(16) uint8_t g_backbone_arena[g_backbone_tflm_arena_size];

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

// The backbone's float features of one image.
bool Features(tflite::MicroInterpreter& backbone, const float* x, float* features, uint64_t* instructions) {
  memcpy(backbone.input(0)->data.f, x, g_input_len * sizeof(float));
  const uint64_t t0 = platform::Instructions();
  if (backbone.Invoke() != kTfLiteOk) return Fail("backbone Invoke");
  *instructions += platform::Instructions() - t0;
  memcpy(features, backbone.output(0)->data.f, g_model_input_size * sizeof(float));
  return true;
}

bool Run(tflite::MicroInterpreter& backbone, const Policy& policy) {
  platform::RestoreModel();
  tflm_train::TrainerOptions options;
  options.override_policy = true;
  options.policy.kind = policy.kind;
  options.policy.ratio = policy.ratio;
  // Python's TinyProp() default; PolicyParams' own defaults are TinyPropV2()'s.
  if (policy.kind == tflm_train::PolicyKind::kTinyProp) options.policy.s_min = 0.2f;
  tflm_train::Trainer head;
  if (head.Init(g_model, g_model_len, g_arena, g_arena_len, options) != tflm_train::Status::kOk) {
    return Fail("Init: ", head.error_message());
  }
  uint64_t invoke_instructions = 0, step_instructions = 0;
  for (unsigned int i = 0; i < g_num_train; ++i) {
    float features[kMaxFeatures], out[kMaxOutputs];
    if (!Features(backbone, g_train_x + i * g_input_len, features, &invoke_instructions)) return false;
    tflm_train::StepResult step;
    tflm_train::SampleResult sample;
    const uint64_t t0 = platform::Instructions();
    if (head.TrainStep(features, g_model_input_size, g_train_y + i, 1, 1, &step, &sample) !=
        tflm_train::Status::kOk) {
      return Fail("TrainStep: ", head.error_message());
    }
    step_instructions += platform::Instructions() - t0;
    if (head.Predict(features, g_model_input_size, out, g_model_output_size) != tflm_train::Status::kOk) {
      return Fail("Predict: ", head.error_message());
    }
    Line line;
    line.Str("OUT ").Str(policy.name).Str(" ").U(i).Str(" skipped=").U(sample.skipped ? 1 : 0).Str(" ");
    for (unsigned int o = 0; o < g_model_output_size; ++o) line.Str(o ? "," : "").Bits(out[o]);
    line.Print();
  }
  Line().Str("COST ").Str(policy.name).Str(" steps=").U(g_num_train)
      .Str(" instructions_per_backbone_invoke=").U(invoke_instructions / g_num_train)
      .Str(" instructions_per_train_step=").U(step_instructions / g_num_train).Print();
  return true;
}

}  // namespace

int main() {
  Line().Str("TFLM backbone + tflm_train head, split deployment, on ").Str(platform::Name()).Print();
  if (g_backbone_input_size != g_input_len || g_backbone_output_size != g_model_input_size ||
      g_model_input_size > kMaxFeatures || g_model_output_size > kMaxOutputs) {
    return Fail("the backbone, the head and the data do not fit together") ? 0 : 1;
  }
  tflite::MicroMutableOpResolver<6> resolver;
  resolver.AddQuantize();
  resolver.AddConv2D();
  resolver.AddMaxPool2D();
  resolver.AddReshape();
  resolver.AddDequantize();
  resolver.AddFullyConnected();
  tflite::MicroInterpreter backbone(tflite::GetModel(g_backbone), resolver, g_backbone_arena,
                                    sizeof(g_backbone_arena));
  if (backbone.AllocateTensors() != kTfLiteOk) return Fail("backbone AllocateTensors") ? 0 : 1;
  Line().Str("ARENA tflm_used=").U(backbone.arena_used_bytes()).Str(" tflm_given=").U(sizeof(g_backbone_arena))
      .Str(" trainer_given=").U(g_arena_len).Print();
  const Policy policies[] = {{"full", tflm_train::PolicyKind::kFull, 0.0f},
                             {"static0.3", tflm_train::PolicyKind::kStaticTopK, 0.3f},
                             {"tinyprop", tflm_train::PolicyKind::kTinyProp, 0.0f},
                             {"tinypropv2", tflm_train::PolicyKind::kTinyPropV2, 0.0f}};
  for (const Policy& policy : policies) {
    if (!Run(backbone, policy)) return 1;
  }
  board::Write("PASS\n");
  return 0;
}
