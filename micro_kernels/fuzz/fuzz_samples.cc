// Untrusted samples and labels (NaN, Inf, huge, denormal, out-of-range labels come
// from the raw bytes) on valid models, for each policy and batch size: TrainStep,
// EvaluateSample, Predict and CheckSample must refuse or run, never misbehave.
#include <string.h>

#include <algorithm>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const fuzz::Fixture& fixture = fuzz::kFixtures[data[0] % 3];
  tflm_train::TrainerOptions options;
  options.override_policy = true;
  options.policy.kind = static_cast<tflm_train::PolicyKind>((data[0] / 3) % 4);
  options.policy.ratio = 0.3f;
  options.policy.tau = 0.2f;
  options.batch_size = 1 + data[1] % 4;
  fuzz::FixtureTrainer device(fixture, options);
  tflm_train::Trainer& t = device.trainer;

  // The rest of the input, as floats: each sample's inputs, then its label.
  const uint32_t samples = 1 + (data[1] / 4) % options.batch_size;
  const size_t per_sample = t.input_size() + t.target_size();
  std::vector<float> values(samples * per_sample, 0.0f);
  memcpy(values.data(), data + 2, std::min(size - 2, values.size() * sizeof(float)));
  std::vector<float> x(samples * t.input_size()), y(samples * t.target_size()), out(t.output_size());
  for (uint32_t s = 0; s < samples; ++s) {
    memcpy(&x[s * t.input_size()], &values[s * per_sample], t.input_size() * sizeof(float));
    memcpy(&y[s * t.target_size()], &values[s * per_sample + t.input_size()], t.target_size() * sizeof(float));
  }
  tflm_train::StepResult step;
  tflm_train::SampleResult per[4];
  for (uint32_t s = 0; s < samples; ++s) {
    t.CheckSample(&x[s * t.input_size()], t.input_size(), &y[s * t.target_size()], t.target_size());
  }
  t.TrainStep(x.data(), t.input_size(), y.data(), t.target_size(), samples, &step, per);
  float loss = 0.0f, correct = 0.0f;
  t.EvaluateSample(x.data(), t.input_size(), y.data(), t.target_size(), &loss, &correct);
  t.Predict(x.data(), t.input_size(), out.data(), out.size());
  t.TrainStep(x.data(), t.input_size(), y.data(), t.target_size(), samples, &step, nullptr);
  return 0;
}
