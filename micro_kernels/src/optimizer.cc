#include "optimizer.h"

#include <math.h>
#include <string.h>

#include "kernels/active.h"
#include "kernels/fast/scan.h"
#include "kernels/fast/sgd_update.h"
#include "kernels/scan.h"
#include "sgd.h"

namespace tflm_train {
namespace {

// The SGD loops: sgd.h's (the spec) in a reference-kernel build, else kernels/fast/'s.
#ifdef TFLM_TRAIN_REFERENCE_KERNELS
namespace sgd_kernels = ::tflm_train;
#else
namespace sgd_kernels = ::tflm_train::kernels::fast;
#endif

// Updates larger than this are treated as divergence and refused. It is below
// half a float32 ulp at FLT_MAX, so adding such a step to any finite weight
// cannot round to Inf.
constexpr float kMaxUpdate = 1e30f;

// The largest |v[i]|: kernels/scan.h's loop (the spec) or kernels/fast/scan.h's.
using kernels::active::MaxAbs;

// The gradient step of one tensor is at most lr * max_grad * max_input; with
// momentum the velocity adds momentum * max|v|. Weight decay shrinks a weight
// as long as wd*lr <= 1 (checked once per step).
bool UpdateIsSafe(float lr, float max_grad, float max_input, float momentum, const float* velocity, int n) {
  const float step = lr * max_grad;
  if (!(step <= kMaxUpdate && step * max_input <= kMaxUpdate)) return false;
  if (velocity == nullptr) return true;
  return momentum * MaxAbs(velocity, n) + step * max_input <= kMaxUpdate;
}

bool StepIsSafe(const SgdSettings& sgd, const Network& net, float lr, float grad_scale) {
  if (!(sgd.weight_decay * lr <= 1.0f)) return false;
  for (int l = 0; l < net.num_layers; ++l) {
    const TrainableLayer& layer = net.layers[l];
    const OpRuntime& op = net.ops[layer.op];
    bool safe;
    if (layer.direct) {
      const float max_delta = MaxAbs(op.d_out, layer.n_out);
      safe = UpdateIsSafe(lr, max_delta, MaxAbs(op.in, op.n_in), sgd.momentum, layer.weight_velocity,
                          layer.n_weights) &&
             UpdateIsSafe(lr, max_delta, 1.0f, sgd.momentum, layer.bias_velocity, layer.n_bias);
    } else {
      safe = UpdateIsSafe(lr, MaxAbs(layer.weight_grad, layer.n_weights) * grad_scale, 1.0f, sgd.momentum,
                          layer.weight_velocity, layer.n_weights) &&
             (layer.bias_grad == nullptr ||
              UpdateIsSafe(lr, MaxAbs(layer.bias_grad, layer.n_bias) * grad_scale, 1.0f, sgd.momentum,
                           layer.bias_velocity, layer.n_bias));
    }
    if (!safe) return false;
  }
  return true;
}

}  // namespace

float LearningRate(const SgdSettings& sgd, uint64_t step) {
  return ScheduledLearningRate(sgd.schedule, sgd.learning_rate, step, sgd.decay_steps, sgd.warmup_steps,
                               sgd.alpha, sgd.warmup_initial);
}

Status ApplyUpdate(const SgdSettings& sgd, Network* net, float lr, float grad_scale, Message* why) {
  if (!StepIsSafe(sgd, *net, lr, grad_scale)) {
    ClearGradients(net);
    why->Add(sgd.weight_decay * lr > 1.0f ? "weight_decay * learning_rate exceeds 1"
                                          : "update would overflow");
    why->Add("; step refused, weights unchanged");
    return Status::kNonFinite;
  }
  const SgdStep step{lr, sgd.momentum, sgd.weight_decay};
  const bool every_row = sgd.momentum != 0.0f || sgd.weight_decay != 0.0f;
  for (int l = 0; l < net->num_layers; ++l) {
    const TrainableLayer& layer = net->layers[l];
    const OpRuntime& op = net->ops[layer.op];
    // A baseline leaves some parameters frozen: not even weight decay or momentum moves them.
    const bool weights_train = (layer.trains & (kTrainsAllWeights | kTrainsSomeChannels)) != 0;
    const bool bias_trains = layer.bias != nullptr && (layer.trains & kTrainsBias) != 0;
    if (!layer.direct) {
      if (weights_train) {
        sgd_kernels::SgdUpdate(step, layer.weight_grad, grad_scale, layer.n_weights, layer.weights,
                               layer.weight_velocity);
      }
      if (bias_trains) {
        sgd_kernels::SgdUpdate(step, layer.bias_grad, grad_scale, layer.n_bias, layer.bias,
                                   layer.bias_velocity);
      }
      continue;
    }
    // Rows a direct layer did not keep are not touched unless momentum or weight
    // decay move every weight anyway.
    const int32_t n_in = op.n_in;
    if (!weights_train) {
      // frozen weights: only the bias below
    } else if (every_row) {
      int32_t next = 0;  // walks the ascending kept-row list
      for (int32_t o = 0; o < layer.n_out; ++o) {
        float delta = 0.0f;
        if (next < layer.k && layer.rows[next] == o) {
          delta = op.d_out[o];
          ++next;
        }
        float* velocity = layer.weight_velocity != nullptr ? layer.weight_velocity + o * n_in : nullptr;
        sgd_kernels::SgdUpdateRankOne(step, delta, op.in, n_in, layer.weights + o * n_in, velocity);
      }
    } else {
#ifdef TFLM_TRAIN_REFERENCE_KERNELS
      for (int32_t r = 0; r < layer.k; ++r) {
        const int32_t o = layer.rows[r];
        SgdUpdateRankOne(step, op.d_out[o], op.in, n_in, layer.weights + o * n_in, nullptr);
      }
#else
      kernels::fast::SgdRankOneRows(lr, op.d_out, layer.rows, layer.k, op.in, n_in, layer.weights);
#endif
    }
    if (bias_trains) {  // bias gradient uses the dense error
      sgd_kernels::SgdUpdate(step, op.d_out, 1.0f, layer.n_out, layer.bias, layer.bias_velocity);
    }
  }
  ClearGradients(net);
  return Status::kOk;
}

void ClearGradients(Network* net) {
  for (int l = 0; l < net->num_layers; ++l) {
    const TrainableLayer& layer = net->layers[l];
    if (layer.weight_grad != nullptr) {
      memset(layer.weight_grad, 0, static_cast<size_t>(layer.n_weights) * sizeof(float));
    }
    if (layer.bias_grad != nullptr) memset(layer.bias_grad, 0, static_cast<size_t>(layer.n_bias) * sizeof(float));
  }
}

}  // namespace tflm_train
