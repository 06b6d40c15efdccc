// Trains an MNIST model (whichever make_data.py wrote: the MLP or the CNN) on a
// Cortex-M4F (QEMU mps2-an386) with each sparsity policy, in place in the model array,
// with a fixed arena (sized by make_data.py) and no heap. Prints per-step loss (float
// bits), skip decision and k per layer, then per policy: mean loss, test accuracy, a
// checksum of the trained model bytes, instructions per step (SysTick under
// -icount shift=0) and the ratio to full backprop. Exits 0 on success. Nothing here
// depends on the model: the input size and the layer count come from the trainer.

#include "board.h"
#include "data.h"
#include "tflm_train/trainer.h"

namespace {

using board::Line;
using tflm_train::PolicyKind;
using tflm_train::Status;

struct PolicyRun {
  const char* name;
  tflm_train::PolicyParams params;
  uint64_t step_ticks = 0, forward_ticks = 0;
};

// FNV-1a over the model bytes: the host computes the same over MicroTrainer.model_bytes.
uint32_t Checksum(const unsigned char* p, unsigned int n) {
  uint32_t h = 2166136261u;
  for (unsigned int i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

bool Fail(const char* what, tflm_train::Trainer& t) {
  Line().Str("FAIL: ").Str(what).Str(": ").Str(t.error_message()).Print();
  return false;
}

bool Run(PolicyRun& run) {
  board::RestoreInitialValue(g_model, g_model_len);  // the untrained model
  tflm_train::TrainerOptions options;
  options.override_policy = true;
  options.policy = run.params;
  tflm_train::Trainer trainer;
  if (trainer.Init(g_model, g_model_len, g_arena, g_arena_len, options) != Status::kOk) {
    return Fail("Init", trainer);
  }
  Line().Str("ARENA ").Str(run.name).Str(" required=").U(trainer.arena_report().required_bytes)
      .Str(" given=").U(g_arena_len).Print();
  // The images are stored back to back with the model's input size as the stride.
  const size_t input_len = trainer.input_size();
  if (input_len != g_input_len) {
    Line().Str("FAIL: the model takes ").U(input_len).Str(" inputs, the data has ").U(g_input_len).Print();
    return false;
  }
  const int layers = trainer.num_trainable_layers();
  float loss_sum = 0.0f;
  uint32_t train_correct = 0;
  for (unsigned int i = 0; i < g_num_train; ++i) {
    const float* x = g_train_x + i * input_len;
    const float* y = g_train_y + i;
    float loss = 0.0f, correct = 0.0f;
    uint64_t t0 = board::Ticks();
    if (trainer.EvaluateSample(x, input_len, y, 1, &loss, &correct) != Status::kOk) {
      return Fail("EvaluateSample", trainer);
    }
    uint64_t t1 = board::Ticks();
    tflm_train::StepResult step;
    tflm_train::SampleResult sample;
    if (trainer.TrainStep(x, input_len, y, 1, 1, &step, &sample) != Status::kOk) {
      return Fail("TrainStep", trainer);
    }
    uint64_t t2 = board::Ticks();
    run.forward_ticks += t1 - t0;
    run.step_ticks += t2 - t1;
    loss_sum += step.loss;
    train_correct += step.correct > 0.5f ? 1 : 0;
    Line line;
    line.Str("STEP ").Str(run.name).Str(" ").U(i).Str(" loss=").Bits(step.loss)
        .Str(" skipped=").U(sample.skipped ? 1 : 0).Str(" k=");
    for (int l = 0; l < layers; ++l) line.Str(l ? "," : "").I(sample.k[l]);
    line.Str(" ticks=").U(t2 - t1).Print();
  }
  uint32_t test_correct = 0;
  float test_loss_sum = 0.0f;
  for (unsigned int i = 0; i < g_num_test; ++i) {
    float loss = 0.0f, correct = 0.0f;
    if (trainer.EvaluateSample(g_test_x + i * input_len, input_len, g_test_y + i, 1, &loss, &correct) !=
        Status::kOk) {
      return Fail("EvaluateSample", trainer);
    }
    test_loss_sum += loss;
    test_correct += correct > 0.5f ? 1 : 0;
  }
  const tflm_train::Counters& c = trainer.counters();
  Line().Str("RESULT ").Str(run.name).Str(" steps=").U(c.steps).Str(" skipped=").U(c.skipped)
      .Str(" train_loss_mean=").Fixed(static_cast<int64_t>(loss_sum / g_num_train * 1000.0f))
      .Str(" train_acc=").U(train_correct).Str("/").U(g_num_train)
      .Str(" test_loss_mean=").Fixed(static_cast<int64_t>(test_loss_sum / g_num_test * 1000.0f))
      .Str(" test_acc=").U(test_correct).Str("/").U(g_num_test)
      .Str(" checksum=").Hex(Checksum(g_model, g_model_len)).Print();
  Line().Str("MACS ").Str(run.name).Str(" forward=").U(c.forward_macs).Str(" backward=").U(c.backward_macs)
      .Str(" selection=").U(c.selection_ops).Print();
  return true;
}

}  // namespace

int main() {
  board::Write("tflm_train on Cortex-M4F (QEMU mps2-an386)\n");
  board::StartTicks();
  const uint32_t per_tick = board::InstructionsPerTick();
  Line().Str("CAL instructions_per_tick=").U(per_tick).Print();
  Line().Str("MODEL bytes=").U(g_model_len).Str(" arena=").U(g_arena_len).Str(" train=").U(g_num_train)
      .Str(" test=").U(g_num_test).Print();

  static PolicyRun runs[4];
  runs[0].name = "full";
  runs[0].params.kind = PolicyKind::kFull;
  runs[1].name = "static0.3";
  runs[1].params.kind = PolicyKind::kStaticTopK;
  runs[1].params.ratio = 0.3f;
  runs[2].name = "tinyprop";
  runs[2].params.kind = PolicyKind::kTinyProp;
  runs[2].params.s_min = 0.2f;  // Python's TinyProp() default; PolicyParams' own are TinyPropV2()'s
  runs[3].name = "tinypropv2";
  runs[3].params.kind = PolicyKind::kTinyPropV2;
  for (PolicyRun& run : runs) {
    if (!Run(run)) return 1;
  }
  const uint64_t full = runs[0].step_ticks;
  board::Write("instructions per training step (SysTick ticks x instructions_per_tick, mean over the steps):\n");
  for (const PolicyRun& run : runs) {
    const uint64_t step = run.step_ticks * per_tick / g_num_train;
    const uint64_t fwd = run.forward_ticks * per_tick / g_num_train;
    Line line;
    line.Str("COST ").Str(run.name).Str(" instructions_per_step=").U(step).Str(" forward_loss_instructions=")
        .U(fwd).Str(" backward_update_instructions=").U(step > fwd ? step - fwd : 0).Str(" ratio_to_full=")
        .Fixed(static_cast<int64_t>((run.step_ticks * 1000 + full / 2) / full));
    line.Print();
  }
  board::Write("PASS\n");
  return 0;
}
