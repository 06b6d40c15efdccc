#include "sparsity_policy.h"

#include <math.h>

#include "finite.h"

namespace tflm_train {
namespace {

bool InUnit(float v) { return IsFinite(v) && v >= 0.0f && v <= 1.0f; }

}  // namespace

int32_t KeptCount(float s, int32_t n) {
  const float kept = roundf(s * static_cast<float>(n));
  if (!(kept >= 1.0f)) return 1;  // also catches NaN
  if (kept >= static_cast<float>(n)) return n;
  return static_cast<int32_t>(kept);
}

float TotalError(const float* delta, int n) {
  float y = 0.0f;
  for (int i = 0; i < n; ++i) y += fabsf(delta[i]);
  return y;
}

float UpdateYmax(const PolicyParams& policy, float y, float* ymax) {
  const float decayed = *ymax * policy.ymax_decay;
  *ymax = y > decayed ? y : decayed;
  return *ymax;
}

int32_t KeptOutputs(const PolicyParams& policy, int32_t n, int position, float y, float ymax) {
  switch (policy.kind) {
    case PolicyKind::kStaticTopK:
      return KeptCount(policy.ratio, n);
    case PolicyKind::kTinyProp:
    case PolicyKind::kTinyPropV2: {
      const float ratio = ymax > 0.0f ? y / ymax : 0.0f;
      float damping = 1.0f;  // zeta^position by repeated float32 multiplication
      for (int p = 0; p < position; ++p) damping *= policy.zeta;
      const float s = (policy.s_min + (policy.s_max - policy.s_min) * ratio) * damping;
      return KeptCount(s, n);
    }
    default:
      return n;
  }
}

bool KeepsAllOutputs(const PolicyParams& policy, int position, bool feeds_softmax) {
  return policy.dense_output && position == 0 && feeds_softmax;
}

bool GateTrains(const PolicyParams& policy, float y_out, float ymax_out) {
  return GateTrains(policy, policy.tau, y_out, ymax_out);
}

bool GateTrains(const PolicyParams& policy, float tau, float y_out, float ymax_out) {
  if (policy.kind != PolicyKind::kTinyPropV2) return true;
  const float alpha = ymax_out > 0.0f ? y_out / ymax_out : 0.0f;
  const float d = (policy.d_min + alpha * (policy.d_max - policy.d_min)) * policy.beta;
  return d > tau;
}

void UpdateBudget(const PolicyParams& policy, float fraction, float* spent, float* tau) {
  if (policy.kind != PolicyKind::kTinyPropV2 || !(policy.budget > 0.0f)) return;
  *spent = *spent + policy.budget_rate * (fraction - *spent);
  // Relative overspending: the same step at a 1% as at a 50% budget.
  const float moved = *tau + policy.budget_gain * ((*spent - policy.budget) / policy.budget);
  *tau = moved < 0.0f ? 0.0f : (moved > 1.0f ? 1.0f : moved);
}

const char* CheckPolicy(const PolicyParams& p) {
  if (static_cast<uint8_t>(p.kind) > static_cast<uint8_t>(PolicyKind::kTinyTrain)) {
    return "unknown policy kind";
  }
  if (p.kind == PolicyKind::kLastLayers && p.last_layers == 0) return "LastLayers needs at least 1 layer";
  if (p.kind == PolicyKind::kSparseUpdate) {
    for (int i = 0; i < kMaxTrainableLayers; ++i) {
      if (!InUnit(p.weight_ratios[i])) return "SparseUpdate weight ratios must be in [0, 1]";
    }
  }
  if (p.kind == PolicyKind::kTinyTrain) {
    if (p.samples == 0) return "TinyTrain needs at least 1 selection sample";
    if (!(IsFinite(p.mac_budget) && p.mac_budget > 0.0f && p.mac_budget <= 1.0f)) {
      return "TinyTrain mac_budget must be in (0, 1]";
    }
  }
  if (p.kind == PolicyKind::kStaticTopK && !(IsFinite(p.ratio) && p.ratio > 0.0f && p.ratio <= 1.0f)) {
    return "StaticTopK ratio must be in (0, 1]";
  }
  if (p.kind == PolicyKind::kTinyProp || p.kind == PolicyKind::kTinyPropV2) {
    if (!InUnit(p.s_min) || !InUnit(p.s_max) || p.s_min > p.s_max) {
      return "TinyProp needs 0 <= s_min <= s_max <= 1";
    }
    if (!(IsFinite(p.zeta) && p.zeta > 0.0f && p.zeta <= 1.0f)) return "TinyProp zeta must be in (0, 1]";
    if (!(IsFinite(p.ymax_decay) && p.ymax_decay > 0.0f && p.ymax_decay <= 1.0f)) {
      return "TinyProp ymax_decay must be in (0, 1]";
    }
  }
  if (p.kind == PolicyKind::kTinyPropV2) {
    if (!IsFinite(p.d_min) || !IsFinite(p.d_max) || !IsFinite(p.beta) || !IsFinite(p.tau)) {
      return "TinyPropV2 d_min, d_max, beta and tau must be finite";
    }
    if (!(IsFinite(p.budget) && p.budget >= 0.0f && p.budget <= 1.0f)) return "TinyPropV2 budget must be in [0, 1]";
    if (!(IsFinite(p.budget_rate) && p.budget_rate > 0.0f && p.budget_rate <= 1.0f)) {
      return "TinyPropV2 budget_rate must be in (0, 1]";
    }
    if (!(IsFinite(p.budget_gain) && p.budget_gain >= 0.0f)) return "TinyPropV2 budget_gain must be >= 0";
  }
  return nullptr;
}

}  // namespace tflm_train
