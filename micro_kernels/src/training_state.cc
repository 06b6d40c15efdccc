// The training state (counters, Ymax, momentum; docs/training-plan-format.md):
// saving, restoring, and the copy the model carries in its "tflm_train_state" room.
#include <math.h>
#include <string.h>

#include "baselines.h"
#include "finite.h"
#include "model_reader.h"
#include "network.h"
#include "state_layout.h"
#include "tflm_train/trainer.h"

namespace tflm_train {

size_t TrainingStateBytes(int layers, size_t parameters, bool momentum) {
  return kStateHeaderWords * sizeof(uint32_t) + sizeof(Counters) + static_cast<size_t>(layers) * sizeof(float) +
         (momentum ? parameters * sizeof(float) : 0);
}

void Trainer::StateHeaderWords(uint32_t* out) const {
  out[0] = kStateMagic;
  out[1] = kStateVersion;
  out[2] = static_cast<uint32_t>(net_->num_layers);
  out[3] = sgd_.momentum > 0.0f ? 1u : 0u;
  out[4] = state_parameters_;
}

// Refuses a state of `state_size` bytes whose header (its first words) is not
// what this trainer writes: another format, model or optimizer.
Status Trainer::CheckStateHeader(const uint8_t* bytes, size_t state_size) {
  uint32_t header[kStateHeaderWords], own[kStateHeaderWords];
  memcpy(header, bytes, sizeof(header));
  StateHeaderWords(own);
  if (header[0] == kOldStateMagic) {
    return Fail(Status::kInvalidArgument,
                "state was saved by tflm_train 0.1 (state format 1); this trainer reads format 2");
  }
  if (header[0] != kStateMagic) return Fail(Status::kInvalidArgument, "state is not a tflm_train state");
  if (header[1] != kStateVersion) {
    return Fail(Status::kInvalidArgument, "state has format version ", header[1], "; this trainer reads format 2");
  }
  if (state_size != StateBytes() || memcmp(header, own, sizeof(own)) != 0) {
    return Fail(Status::kInvalidArgument, "state was saved by a trainer for another model or optimizer");
  }
  return Status::kOk;
}

const char* StateValueProblem(StatePiece::Kind kind, const uint8_t* bytes, size_t n) {
  if (kind != StatePiece::kYmax && kind != StatePiece::kVelocity) return nullptr;
  for (size_t at = 0; at + sizeof(float) <= n; at += sizeof(float)) {
    float v;
    memcpy(&v, bytes + at, sizeof(v));
    if (kind == StatePiece::kYmax && (!IsFinite(v) || !(v >= 0.0f))) {
      return "state holds a Ymax that is negative or not finite";
    }
    if (!IsFinite(v)) return "state holds a momentum that is not finite";
  }
  return nullptr;
}

// Layout (native byte order): header words, Counters, Ymax per layer, then each
// layer's weight and bias velocities when momentum is on (state_layout.h walks it).
Status Trainer::SaveState(uint8_t* out, size_t out_size) {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  if (out == nullptr || out_size != StateBytes()) {
    return Fail(Status::kInvalidArgument, "state buffer must be exactly StateBytes() = ",
                static_cast<long long>(StateBytes()), " bytes");
  }
  uint32_t header[kStateHeaderWords];
  StateHeaderWords(header);
  StateWalk walk(net_, &counters_, header, sgd_.momentum > 0.0f);
  StatePiece piece;
  for (size_t at = 0; walk.Next(&piece); at += piece.size) memcpy(out + at, piece.data, piece.size);
  return Status::kOk;
}

Status Trainer::LoadState(const uint8_t* in, size_t in_size) {
  if (!ready_) return Fail(Status::kNotInitialized, "trainer is not initialized");
  if (in == nullptr || in_size < kStateHeaderWords * sizeof(uint32_t)) {
    return Fail(Status::kInvalidArgument, "state is shorter than a tflm_train state header");
  }
  Status status = CheckStateHeader(in, in_size);
  if (status != Status::kOk) return status;
  // Everything is checked before anything is taken over: a refused state changes nothing.
  uint32_t header[kStateHeaderWords];
  StateHeaderWords(header);
  StateWalk check(net_, &counters_, header, sgd_.momentum > 0.0f);
  StatePiece piece;
  for (size_t at = 0; check.Next(&piece); at += piece.size) {
    const char* problem = StateValueProblem(piece.kind, in + at, piece.size);
    if (problem != nullptr) return Fail(Status::kInvalidArgument, problem);
  }
  StateWalk copy(net_, &counters_, header, sgd_.momentum > 0.0f);
  for (size_t at = 0; copy.Next(&piece); at += piece.size) {
    if (piece.kind != StatePiece::kHeader) memcpy(piece.data, in + at, piece.size);
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
  gate_tau_ = policy_.tau;
  budget_spent_ = policy_.budget;  // starts on target: no push before anything was measured
  RestartSelection();
}

// TinyTrain measures anew from its next samples (every layer trains until it chooses).
void Trainer::RestartSelection() {
  if (!ready_ || policy_.kind != PolicyKind::kTinyTrain) return;
  selection_seen_ = 0;
  for (int i = 0; i < net_->num_layers; ++i) {
    TrainableLayer& layer = net_->layers[i];
    for (int32_t c = 0; c < layer.channels; ++c) layer.fisher[c] = 0.0f;
  }
  ChooseTrainedParts(policy_, net_);
}

}  // namespace tflm_train
