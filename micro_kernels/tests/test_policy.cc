// The sparsity policy (sparsity_policy.h): kept outputs per layer for Full,
// StaticTopK and TinyProp in float32 as docs/algorithm.md fixes it, the running
// maximum, the TinyPropV2 gate, and the parameter checks.
#include <math.h>

#include <initializer_list>

#include "sparsity_policy.h"
#include "test_harness.h"

using tflm_train::PolicyKind;
using tflm_train::PolicyParams;

// The paper's TinyProp and gate parameters, which the expected values below follow
// (PolicyParams' own defaults are the ones chosen on validation data).
static PolicyParams Policy(PolicyKind kind) {
  PolicyParams p;
  p.kind = kind;
  p.s_min = 0.1f;
  p.s_max = 0.9f;
  p.zeta = 0.5f;
  p.tau = 0.5f;
  return p;
}

TEST(PolicyFullAndStatic) {
  PolicyParams full = Policy(PolicyKind::kFull);
  CHECK(tflm_train::KeptOutputs(full, 10, 0, 0.5f, 1.0f) == 10);
  CHECK(tflm_train::KeptOutputs(full, 1, 3, 0.0f, 0.0f) == 1);
  CHECK(tflm_train::KeptOutputs(full, 77, 5, 1e9f, 1.0f) == 77);

  PolicyParams st = Policy(PolicyKind::kStaticTopK);
  st.ratio = 0.3f;
  CHECK(tflm_train::KeptOutputs(st, 10, 0, 0.0f, 0.0f) == 3);
  CHECK(tflm_train::KeptOutputs(st, 10, 4, 9.0f, 1.0f) == 3);  // position and error do not matter
  st.ratio = 0.25f;
  CHECK(tflm_train::KeptOutputs(st, 10, 0, 0.0f, 0.0f) == 3);  // roundf(2.5) = 3
  CHECK(tflm_train::KeptOutputs(st, 2, 0, 0.0f, 0.0f) == 1);   // roundf(0.5) = 1
  st.ratio = 0.5f;
  CHECK(tflm_train::KeptOutputs(st, 3, 0, 0.0f, 0.0f) == 2);   // roundf(1.5) = 2
  CHECK(tflm_train::KeptOutputs(st, 5, 0, 0.0f, 0.0f) == 3);   // roundf(2.5) = 3
  st.ratio = 0.01f;
  CHECK(tflm_train::KeptOutputs(st, 10, 0, 0.0f, 0.0f) == 1);  // 0 clamps to 1
  st.ratio = 1.0f;
  CHECK(tflm_train::KeptOutputs(st, 10, 0, 0.0f, 0.0f) == 10);
  CHECK(tflm_train::KeptOutputs(st, 1, 0, 0.0f, 0.0f) == 1);
}

TEST(PolicyDenseOutput) {
  for (PolicyKind kind : {PolicyKind::kFull, PolicyKind::kStaticTopK, PolicyKind::kTinyProp,
                          PolicyKind::kTinyPropV2, PolicyKind::kLastLayers, PolicyKind::kBiasOnly,
                          PolicyKind::kSparseUpdate, PolicyKind::kTinyTrain}) {
    PolicyParams p = Policy(kind);
    CHECK(tflm_train::KeepsAllOutputs(p, 0, true));  // on by default
    p.dense_output = false;  // the papers' behaviour (and a version 2 plan)
    CHECK(!tflm_train::KeepsAllOutputs(p, 0, true));
    p.dense_output = true;
    CHECK(tflm_train::KeepsAllOutputs(p, 0, true));
    CHECK(!tflm_train::KeepsAllOutputs(p, 1, true));   // only the last trainable layer
    CHECK(!tflm_train::KeepsAllOutputs(p, 0, false));  // only when it feeds the softmax
  }
}

TEST(PolicyTinyProp) {
  for (PolicyKind kind : {PolicyKind::kTinyProp, PolicyKind::kTinyPropV2}) {
    PolicyParams p = Policy(kind);
    p.s_min = 0.25f;  // exactly representable, so the half-way cases are exact
    p.s_max = 0.75f;
    // Y/Ymax = 0.5: S = 0.25 + 0.5 * 0.5 = 0.5 at position 0, 0.25 at 1, 0.125 at 2.
    CHECK(tflm_train::KeptOutputs(p, 10, 0, 0.5f, 1.0f) == 5);
    CHECK(tflm_train::KeptOutputs(p, 10, 1, 0.5f, 1.0f) == 3);    // roundf(2.5) = 3 (half away from 0)
    CHECK(tflm_train::KeptOutputs(p, 100, 2, 0.5f, 1.0f) == 13);  // 12.5 -> 13
    CHECK(tflm_train::KeptOutputs(p, 10, 2, 0.5f, 1.0f) == 1);    // 1.25 -> 1
    CHECK(tflm_train::KeptOutputs(p, 6, 0, 0.5f, 1.0f) == 3);     // 3.0
    CHECK(tflm_train::KeptOutputs(p, 10, 0, 0.25f, 0.5f) == 5);   // only the ratio matters
    // The defaults S_min 0.1, S_max 0.9 in float32 (docs/algorithm.md: float32, fixed
    // order): 0.9f - 0.1f = 0.79999995f, so S = 0.49999997f, not 0.5, and at
    // position 1 S*n = 2.4999998 rounds to 2 (exact arithmetic would give 3).
    PolicyParams d = Policy(kind);
    const float s0 = (d.s_min + (d.s_max - d.s_min) * 0.5f);
    CHECK(s0 < 0.5f);
    CHECK(tflm_train::KeptOutputs(d, 10, 0, 0.5f, 1.0f) == 5);
    CHECK(tflm_train::KeptOutputs(d, 10, 1, 0.5f, 1.0f) == 2);
    CHECK(tflm_train::KeptOutputs(d, 10, 1, 0.5f, 1.0f) == static_cast<int32_t>(roundf(s0 * 0.5f * 10.0f)));
    p = d;
    CHECK(tflm_train::KeptOutputs(p, 100, 0, 2.0f, 4.0f) == 50);  // only the ratio matters
    CHECK(tflm_train::KeptOutputs(p, 100, 0, 1.0f, 1.0f) == 90);  // Y = Ymax: S = s_max
    // Ymax == 0: ratio 0, S = s_min (no division by zero).
    CHECK(tflm_train::KeptOutputs(p, 100, 0, 5.0f, 0.0f) == 10);
    CHECK(tflm_train::KeptOutputs(p, 100, 1, 0.0f, 0.0f) == 5);
    // Clamping to [1, n].
    CHECK(tflm_train::KeptOutputs(p, 10, 6, 0.0f, 1.0f) == 1);    // tiny S
    CHECK(tflm_train::KeptOutputs(p, 10, 0, 5.0f, 1.0f) == 10);   // Y > Ymax: S = 4.1
    PolicyParams all = p;
    all.s_min = all.s_max = 1.0f;
    CHECK(tflm_train::KeptOutputs(all, 7, 0, 0.3f, 1.0f) == 7);
    PolicyParams none = p;
    none.s_min = none.s_max = 0.0f;
    CHECK(tflm_train::KeptOutputs(none, 7, 0, 0.3f, 1.0f) == 1);
    PolicyParams z1 = p;
    z1.zeta = 1.0f;
    CHECK(tflm_train::KeptOutputs(z1, 10, 5, 0.5f, 1.0f) == 5);   // no damping
  }
}

TEST(PolicyYmaxAndTotalError) {
  const float d[] = {0.5f, -1.5f, 0.0f, 2.0f};
  CHECK(tflm_train::TotalError(d, 4) == 4.0f);
  CHECK(tflm_train::TotalError(d, 0) == 0.0f);
  PolicyParams p = Policy(PolicyKind::kTinyProp);
  float ymax = 0.0f;
  CHECK(tflm_train::UpdateYmax(p, 2.0f, &ymax) == 2.0f && ymax == 2.0f);
  CHECK(tflm_train::UpdateYmax(p, 1.0f, &ymax) == 2.0f && ymax == 2.0f);  // no decay
  CHECK(tflm_train::UpdateYmax(p, 3.0f, &ymax) == 3.0f && ymax == 3.0f);
  p.ymax_decay = 0.5f;
  ymax = 2.0f;
  CHECK(tflm_train::UpdateYmax(p, 0.5f, &ymax) == 1.0f && ymax == 1.0f);  // decayed first
  CHECK(tflm_train::UpdateYmax(p, 0.75f, &ymax) == 0.75f && ymax == 0.75f);  // 0.5 < 0.75
  CHECK(tflm_train::UpdateYmax(p, 0.25f, &ymax) == 0.375f && ymax == 0.375f);
}

TEST(PolicyGate) {
  PolicyParams v2 = Policy(PolicyKind::kTinyPropV2);  // d_min 0, d_max 1, beta 1, tau 0.5
  CHECK(tflm_train::GateTrains(v2, 0.6f, 1.0f));
  CHECK(!tflm_train::GateTrains(v2, 0.5f, 1.0f));   // D = tau: not strictly greater
  CHECK(tflm_train::GateTrains(v2, 3.0f, 4.0f));
  CHECK(!tflm_train::GateTrains(v2, 0.1f, 1.0f));
  CHECK(!tflm_train::GateTrains(v2, 1.0f, 0.0f));   // Ymax 0: alpha 0, D = 0
  PolicyParams custom = v2;
  custom.d_min = 0.2f;
  custom.d_max = 0.8f;
  CHECK(!tflm_train::GateTrains(custom, 0.5f, 1.0f));  // D = 0.5
  CHECK(tflm_train::GateTrains(custom, 0.6f, 1.0f));   // D = 0.56
  custom.beta = 2.0f;
  CHECK(tflm_train::GateTrains(custom, 0.25f, 1.0f));  // D = (0.2 + 0.15) * 2 = 0.7
  custom.tau = -1.0f;
  CHECK(tflm_train::GateTrains(custom, 0.0f, 0.0f));
  for (PolicyKind kind : {PolicyKind::kFull, PolicyKind::kStaticTopK, PolicyKind::kTinyProp}) {
    PolicyParams p = Policy(kind);
    p.tau = 100.0f;
    CHECK(tflm_train::GateTrains(p, 0.0f, 1.0f));
    CHECK(tflm_train::GateTrains(p, 0.0f, 0.0f));
  }
}

TEST(CheckPolicy) {
  for (PolicyKind kind : {PolicyKind::kFull, PolicyKind::kStaticTopK, PolicyKind::kTinyProp,
                          PolicyKind::kTinyPropV2, PolicyKind::kLastLayers, PolicyKind::kBiasOnly,
                          PolicyKind::kSparseUpdate, PolicyKind::kTinyTrain}) {
    CHECK_MSG(tflm_train::CheckPolicy(Policy(kind)) == nullptr, "kind %d defaults rejected",
              static_cast<int>(kind));
  }
  PolicyParams bad_kind;
  bad_kind.kind = static_cast<PolicyKind>(8);
  CHECK(tflm_train::CheckPolicy(bad_kind) != nullptr);
  bad_kind.kind = static_cast<PolicyKind>(255);
  CHECK(tflm_train::CheckPolicy(bad_kind) != nullptr);

  PolicyParams st = Policy(PolicyKind::kStaticTopK);
  for (float r : {0.0f, -0.5f, 1.5f, NAN, INFINITY}) {
    st.ratio = r;
    CHECK_MSG(tflm_train::CheckPolicy(st) != nullptr, "StaticTopK ratio %g accepted", r);
  }
  st.ratio = 1.0f;
  CHECK(tflm_train::CheckPolicy(st) == nullptr);
  st.ratio = 0.001f;
  CHECK(tflm_train::CheckPolicy(st) == nullptr);

  for (PolicyKind kind : {PolicyKind::kTinyProp, PolicyKind::kTinyPropV2}) {
    const PolicyParams ok = Policy(kind);
    auto rejects = [&](void (*edit)(PolicyParams*)) {
      PolicyParams p = ok;
      edit(&p);
      return tflm_train::CheckPolicy(p) != nullptr;
    };
    CHECK(rejects([](PolicyParams* p) { p->s_min = 0.95f; }));  // s_min > s_max
    CHECK(rejects([](PolicyParams* p) { p->s_min = -0.1f; }));
    CHECK(rejects([](PolicyParams* p) { p->s_max = 1.1f; }));
    CHECK(rejects([](PolicyParams* p) { p->s_min = NAN; }));
    CHECK(rejects([](PolicyParams* p) { p->zeta = 0.0f; }));
    CHECK(rejects([](PolicyParams* p) { p->zeta = 1.5f; }));
    CHECK(rejects([](PolicyParams* p) { p->zeta = NAN; }));
    CHECK(rejects([](PolicyParams* p) { p->ymax_decay = 0.0f; }));
    CHECK(rejects([](PolicyParams* p) { p->ymax_decay = 1.01f; }));
    CHECK(!rejects([](PolicyParams* p) { p->s_min = p->s_max = 0.0f; }));
    CHECK(!rejects([](PolicyParams* p) { p->s_min = p->s_max = 1.0f; }));
    CHECK(!rejects([](PolicyParams* p) { p->zeta = 1.0f; }));
  }
  PolicyParams v2 = Policy(PolicyKind::kTinyPropV2);
  v2.tau = INFINITY;
  CHECK(tflm_train::CheckPolicy(v2) != nullptr);
  v2 = Policy(PolicyKind::kTinyPropV2);
  v2.beta = NAN;
  CHECK(tflm_train::CheckPolicy(v2) != nullptr);
  v2 = Policy(PolicyKind::kTinyPropV2);
  v2.d_min = -INFINITY;
  CHECK(tflm_train::CheckPolicy(v2) != nullptr);
  v2 = Policy(PolicyKind::kTinyPropV2);
  v2.tau = -3.0f;  // any finite tau is allowed
  CHECK(tflm_train::CheckPolicy(v2) == nullptr);
}

int main() { return test::RunAll(); }
