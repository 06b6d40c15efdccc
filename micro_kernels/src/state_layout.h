// The training state's layout (docs/training-plan-format.md, "Training state"),
// as a walk over its pieces in saved order. SaveState/LoadState copy the pieces
// to and from one buffer; a checkpoint streams them to and from flash, so it
// needs no buffer the size of the state.
#ifndef TFLM_TRAIN_STATE_LAYOUT_H_
#define TFLM_TRAIN_STATE_LAYOUT_H_

#include <stddef.h>
#include <stdint.h>

#include "network.h"
#include "tflm_train/trainer.h"

namespace tflm_train {

// "TTST", then its format version. Format 1 ("TTS1", tflm_train 0.1) had no version
// word, no epoch counter and no parameter count.
constexpr uint32_t kStateMagic = 0x54535454;     // "TTST"
constexpr uint32_t kOldStateMagic = 0x31535454;  // "TTS1"
constexpr uint32_t kStateVersion = 2;
constexpr size_t kStateHeaderWords = 5;  // magic, version, layers, momentum flag, parameters

size_t TrainingStateBytes(int layers, size_t parameters, bool momentum);  // training_state.cc

// One contiguous piece of the state and where it lives in the trainer. (A
// checkpoint's payload adds kWeights pieces: a layer's weights or bias, in the
// model bytes.)
struct StatePiece {
  enum Kind : uint8_t { kHeader, kCounters, kYmax, kVelocity, kWeights };
  Kind kind;
  uint8_t* data;
  size_t size;
};

// Why the bytes of a piece (any whole-float part of it) cannot be restored, or
// null: a Ymax that is negative or not finite, a velocity that is not finite.
// Other pieces have no value check (a header must equal the trainer's own).
const char* StateValueProblem(StatePiece::Kind kind, const uint8_t* bytes, size_t n);  // training_state.cc

// Yields the pieces in saved order: the header words, the Counters, one Ymax per
// layer, then (with momentum) each layer's weight and bias velocities.
class StateWalk {
 public:
  StateWalk(Network* net, Counters* counters, uint32_t* header, bool momentum)
      : net_(net), counters_(counters), header_(header), momentum_(momentum) {}

  bool Next(StatePiece* piece) {
    const int layers = net_->num_layers;
    if (step_ == 0) {
      ++step_;
      *piece = {StatePiece::kHeader, reinterpret_cast<uint8_t*>(header_), kStateHeaderWords * sizeof(uint32_t)};
      return true;
    }
    if (step_ == 1) {
      ++step_;
      *piece = {StatePiece::kCounters, reinterpret_cast<uint8_t*>(counters_), sizeof(Counters)};
      return true;
    }
    if (step_ < 2 + layers) {
      TrainableLayer& l = net_->layers[step_++ - 2];
      *piece = {StatePiece::kYmax, reinterpret_cast<uint8_t*>(&l.ymax), sizeof(float)};
      return true;
    }
    // Velocities: two steps per layer, the bias one skipped when the layer has none.
    while (momentum_ && step_ < 2 + 3 * layers) {
      const int v = step_++ - 2 - layers;
      TrainableLayer& l = net_->layers[v / 2];
      if (v % 2 == 0) {
        *piece = {StatePiece::kVelocity, reinterpret_cast<uint8_t*>(l.weight_velocity),
                  static_cast<size_t>(l.n_weights) * sizeof(float)};
        return true;
      }
      if (l.n_bias > 0) {
        *piece = {StatePiece::kVelocity, reinterpret_cast<uint8_t*>(l.bias_velocity),
                  static_cast<size_t>(l.n_bias) * sizeof(float)};
        return true;
      }
    }
    return false;
  }

 private:
  Network* net_;
  Counters* counters_;
  uint32_t* header_;
  bool momentum_;
  int step_ = 0;
};

}  // namespace tflm_train

#endif  // TFLM_TRAIN_STATE_LAYOUT_H_
