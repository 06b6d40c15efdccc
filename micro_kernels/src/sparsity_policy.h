// How many outputs of a trainable layer get backward work (k), and the
// TinyPropV2 per-sample gate. The arithmetic is float32 in a fixed order, as
// docs/algorithm.md specifies, so the Python reference can reproduce it exactly.
#ifndef TFLM_TRAIN_SPARSITY_POLICY_H_
#define TFLM_TRAIN_SPARSITY_POLICY_H_

#include <stdint.h>

#include "tflm_train/trainer.h"

namespace tflm_train {

// round(s * n) within [1, n]: how many of n things a share s keeps.
int32_t KeptCount(float s, int32_t n);

// Sum of |delta| over the layer's n outputs: the layer's total error Y.
float TotalError(const float* delta, int n);

// Updates the running maximum (first decayed by ymax_decay) and returns it.
float UpdateYmax(const PolicyParams& policy, float y, float* ymax);

// k for a layer with n outputs at `position` trainable layers from the output,
// given its error Y and its (already updated) running maximum.
int32_t KeptOutputs(const PolicyParams& policy, int32_t n, int position, float y, float ymax);

// True when the layer keeps all n errors whatever the policy: dense_output asks
// for it at the last trainable layer when that feeds a softmax cross-entropy
// directly (its error p - y sums to zero only as a whole).
bool KeepsAllOutputs(const PolicyParams& policy, int position, bool feeds_softmax);

// TinyPropV2: true when the sample should be trained (D > tau), from the output
// layer's error and running maximum. Always true for the other policies.
bool GateTrains(const PolicyParams& policy, float y_out, float ymax_out);
// The same with the threshold the budget has set instead of policy.tau.
bool GateTrains(const PolicyParams& policy, float tau, float y_out, float ymax_out);

// TinyPropV2 budget, after each sample: the moving average of the sample's
// backward-MAC fraction, then tau moved by gain * (average - budget) / budget into [0, 1].
void UpdateBudget(const PolicyParams& policy, float fraction, float* spent, float* tau);

// Checks the parameters; returns a description of the first problem, or null.
const char* CheckPolicy(const PolicyParams& policy);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_SPARSITY_POLICY_H_
