// The same model and TFLM without the trainer: the baseline the add-on's cost is
// measured against (flash and RAM in the linker map). Infers the test samples and
// prints the accuracy and the mean instructions per Invoke.
#include <string.h>

#include "data.h"
#include "line.h"
#include "model_data.h"
#include "model_ops.h"
#include "platform.h"
#include "tensorflow/lite/micro/micro_interpreter.h"

namespace {
alignas(16) uint8_t g_tflm_arena[g_model_tflm_arena_size];
}  // namespace

int main() {
  ModelOpResolver resolver;
  AddModelOps(resolver);
  tflite::MicroInterpreter interpreter(tflite::GetModel(g_model), resolver, g_tflm_arena, sizeof(g_tflm_arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    board::Write("FAIL: AllocateTensors\n");
    return 1;
  }
  uint64_t correct = 0, instructions = 0;
  for (unsigned int i = 0; i < g_num_test; ++i) {
    memcpy(interpreter.input(0)->data.f, g_test_x + i * g_model_input_size, g_model_input_size * sizeof(float));
    const uint64_t t0 = platform::Instructions();
    if (interpreter.Invoke() != kTfLiteOk) {
      board::Write("FAIL: Invoke\n");
      return 1;
    }
    instructions += platform::Instructions() - t0;
    const float* out = interpreter.output(0)->data.f;
    unsigned int best = 0;
    for (unsigned int o = 1; o < g_model_output_size; ++o) best = out[o] > out[best] ? o : best;
    correct += best == static_cast<unsigned int>(g_test_y[i]) ? 1 : 0;
  }
  board::Line().Str("INFER correct=").U(correct).Str(" of=").U(g_num_test)
      .Str(" instructions_per_invoke=").U(instructions / g_num_test).Print();
  board::Write("PASS\n");
  return 0;
}
