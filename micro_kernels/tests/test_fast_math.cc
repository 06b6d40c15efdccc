// The trainer built with -Ofast, as some Arduino cores compile every library (Adafruit's
// nRF52 core does by default): its checks of untrusted floats must survive. Under
// -ffinite-math-only, isfinite() folds to true; the trainer reads the bit pattern instead.
#include <stdint.h>
#include <string.h>

#include "finite.h"
#include "trainer_fixture.h"

namespace {

using namespace test;

// Made from bits at run time, so the compiler cannot assume what it holds.
float FromBits(uint32_t bits) {
  volatile uint32_t v = bits;
  const uint32_t b = v;
  float f;
  memcpy(&f, &b, sizeof(f));
  return f;
}

const uint32_t kBadBits[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7f800000u, 0xff800000u};  // NaNs, +-Inf

TEST(IsFiniteReadsTheBits) {
  for (uint32_t bits : kBadBits) CHECK(!tflm_train::IsFinite(FromBits(bits)));
  for (uint32_t bits : {0u, 0x80000000u, 0x3f800000u, 0x7f7fffffu, 0x00000001u, 0xff7fffffu}) {
    CHECK(tflm_train::IsFinite(FromBits(bits)));
  }
}

TEST(RefusesNonFiniteSamplesAndLabels) {
  Session s(PlainModel());
  CHECK_STATUS(s.init, Status::kOk);
  const Bytes before(s.model.data(), s.model.size());
  tflm_train::StepResult r;
  const float label = 1.0f;
  for (uint32_t bits : kBadBits) {
    float x[4] = {0.5f, -1.0f, 0.25f, 1.0f};
    x[2] = FromBits(bits);
    CHECK_STATUS(s.trainer.CheckSample(x, 4, &label, 1), Status::kBadInput);
    CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 1, &r, nullptr), Status::kBadInput);
    const float good[4] = {0.5f, -1.0f, 0.25f, 1.0f};
    const float bad_label = FromBits(bits);
    CHECK_STATUS(s.trainer.TrainStep(good, 4, &bad_label, 1, 1, &r, nullptr), Status::kBadLabel);
  }
  CHECK(before.Same(s.model));
}

TEST(RefusesNonFinitePolicySettings) {
  for (uint32_t bits : kBadBits) {
    TrainerOptions options;
    options.override_policy = true;
    options.policy.kind = PolicyKind::kStaticTopK;
    options.policy.ratio = FromBits(bits);
    Session topk(PlainModel(), options);
    CHECK_STATUS(topk.init, Status::kInvalidArgument);
    options.policy.kind = PolicyKind::kTinyProp;
    options.policy.ratio = 0.5f;
    options.policy.zeta = FromBits(bits);
    Session tinyprop(PlainModel(), options);
    CHECK_STATUS(tinyprop.init, Status::kInvalidArgument);
  }
}

}  // namespace

int main() { return test::RunAll(); }
