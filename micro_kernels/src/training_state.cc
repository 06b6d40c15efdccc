// The training state (counters, Ymax, momentum; docs/training-plan-format.md):
// saving, restoring, and the copy the model carries in its "tflm_train_state" room.
#include <math.h>
#include <string.h>

#include "model_reader.h"
#include "network.h"
#include "tflm_train/trainer.h"

namespace tflm_train {
namespace {

// "TTST", then its format version. Format 1 ("TTS1", tflm_train 0.1) had no version
// word, no epoch counter and no parameter count.
constexpr uint32_t kStateMagic = 0x54535454;     // "TTST"
constexpr uint32_t kOldStateMagic = 0x31535454;  // "TTS1"
constexpr uint32_t kStateVersion = 2;
constexpr size_t kStateHeaderWords = 5;  // magic, version, layers, momentum flag, parameters

struct StateCursor {
  uint8_t* bytes;
  size_t at;
  void Put(const void* from, size_t n) {
    memcpy(bytes + at, from, n);
    at += n;
  }
  void Get(void* to, size_t n) {
    memcpy(to, bytes + at, n);
    at += n;
  }
};

}  // namespace

size_t TrainingStateBytes(int layers, size_t parameters, bool momentum) {
  return kStateHeaderWords * sizeof(uint32_t) + sizeof(Counters) + static_cast<size_t>(layers) * sizeof(float) +
         (momentum ? parameters * sizeof(float) : 0);
}

// Layout (native byte order): header words, Counters, Ymax per layer, then each
// layer's weight and bias velocities when momentum is on.
Status Trainer::SaveState(uint8_t* out, size_t out_size) {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  if (out == nullptr || out_size != StateBytes()) {
    return Fail(Status::kInvalidArgument, "state buffer must be exactly StateBytes() = ",
                static_cast<long long>(StateBytes()), " bytes");
  }
  const bool momentum = sgd_.momentum > 0.0f;
  StateCursor c{out, 0};
  const uint32_t header[kStateHeaderWords] = {kStateMagic, kStateVersion, static_cast<uint32_t>(net_->num_layers),
                                              momentum ? 1u : 0u, state_parameters_};
  c.Put(header, sizeof(header));
  c.Put(&counters_, sizeof(counters_));
  for (int i = 0; i < net_->num_layers; ++i) c.Put(&net_->layers[i].ymax, sizeof(float));
  if (momentum) {
    for (int i = 0; i < net_->num_layers; ++i) {
      const TrainableLayer& l = net_->layers[i];
      c.Put(l.weight_velocity, static_cast<size_t>(l.n_weights) * sizeof(float));
      if (l.n_bias > 0) c.Put(l.bias_velocity, static_cast<size_t>(l.n_bias) * sizeof(float));
    }
  }
  return Status::kOk;
}

Status Trainer::LoadState(const uint8_t* in, size_t in_size) {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  uint32_t header[kStateHeaderWords] = {};
  if (in == nullptr || in_size < sizeof(header)) {
    return Fail(Status::kInvalidArgument, "state is shorter than a tflm_train state header");
  }
  memcpy(header, in, sizeof(header));
  if (header[0] == kOldStateMagic) {
    return Fail(Status::kInvalidArgument,
                "state was saved by tflm_train 0.1 (state format 1); this trainer reads format 2");
  }
  if (header[0] != kStateMagic) return Fail(Status::kInvalidArgument, "state is not a tflm_train state");
  if (header[1] != kStateVersion) {
    return Fail(Status::kInvalidArgument, "state has format version ", header[1], "; this trainer reads format 2");
  }
  const bool momentum = sgd_.momentum > 0.0f;
  if (in_size != StateBytes() || header[2] != static_cast<uint32_t>(net_->num_layers) ||
      header[3] != (momentum ? 1u : 0u) || header[4] != state_parameters_) {
    return Fail(Status::kInvalidArgument, "state was saved by a trainer for another model or optimizer");
  }
  StateCursor c{const_cast<uint8_t*>(in), sizeof(header)};
  Counters counters;
  c.Get(&counters, sizeof(counters));
  float ymax[kMaxTrainableLayers];
  for (int i = 0; i < net_->num_layers; ++i) {
    c.Get(&ymax[i], sizeof(float));
    if (!(ymax[i] >= 0.0f) || !isfinite(ymax[i])) {
      return Fail(Status::kInvalidArgument, "state holds a Ymax that is negative or not finite");
    }
  }
  // Velocities are checked before anything is taken over: a refused state changes nothing.
  if (momentum) {
    for (size_t at = c.at; at < in_size; at += sizeof(float)) {
      float v;
      memcpy(&v, in + at, sizeof(v));
      if (!isfinite(v)) return Fail(Status::kInvalidArgument, "state holds a momentum that is not finite");
    }
  }
  counters_ = counters;
  for (int i = 0; i < net_->num_layers; ++i) net_->layers[i].ymax = ymax[i];
  if (momentum) {
    for (int i = 0; i < net_->num_layers; ++i) {
      TrainableLayer& l = net_->layers[i];
      c.Get(l.weight_velocity, static_cast<size_t>(l.n_weights) * sizeof(float));
      if (l.n_bias > 0) c.Get(l.bias_velocity, static_cast<size_t>(l.n_bias) * sizeof(float));
    }
  }
  return Status::kOk;
}

// Finds the model's room for its training state and, when asked, resumes from
// it. A zero first word (no magic) is a fresh state: what the converter writes.
Status Trainer::RestoreFromModel(const ModelView& view, bool restore) {
  if (view.state == nullptr) return Status::kOk;
  if (view.state_size != state_bytes_) {
    ready_ = false;
    model_state_ = nullptr;
    Message m(error_, sizeof(error_));
    m.Add("the model's training-state buffer holds ").Add(static_cast<long long>(view.state_size))
        .Add(" bytes but its state takes ").Add(static_cast<long long>(state_bytes_)).Add("; re-convert the model");
    return Status::kInvalidPlan;
  }
  model_state_ = model_ + (view.state - view.reader.data());
  model_state_size_ = view.state_size;
  uint32_t magic = 0;
  memcpy(&magic, model_state_, sizeof(magic));
  if (!restore || magic == 0) return Status::kOk;
  const Status status = LoadState(model_state_, model_state_size_);
  if (status != Status::kOk) {
    ready_ = false;
    model_state_ = nullptr;
    char why[sizeof(error_)];
    memcpy(why, error_, sizeof(why));
    Message m(error_, sizeof(error_));
    m.Add("the training state the model carries cannot be restored (").Add(why)
        .Add("); start fresh instead (restore_state = false)");
  }
  return status;
}

Status Trainer::StoreStateInModel() {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  if (model_state_ == nullptr) {
    return Fail(Status::kInvalidArgument,
                "this model has no room for its training state; re-convert it with this tflm_train");
  }
  return SaveState(model_state_, model_state_size_);
}

void Trainer::ResetPolicyState() {
  for (int i = 0; ready_ && i < net_->num_layers; ++i) net_->layers[i].ymax = 0.0f;
}

}  // namespace tflm_train
