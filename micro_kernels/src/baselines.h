// The baselines TinyPropV2's paper compares with (docs/baselines.md): they fix
// which layers, biases or output channels train, instead of choosing errors per
// sample. LastLayers, BiasOnly and SparseUpdate decide at Init; TinyTrain
// measures each channel's Fisher potential on its first samples, then chooses.
#ifndef TFLM_TRAIN_BASELINES_H_
#define TFLM_TRAIN_BASELINES_H_

#include <stdint.h>

#include "network.h"
#include "tflm_train/trainer.h"

namespace tflm_train {

bool IsBaseline(PolicyKind kind);
// The policy may leave some channels' weights frozen (SparseUpdate with a ratio
// below 1, TinyTrain): their rows cannot take momentum or weight decay.
bool MayTrainSomeChannels(const PolicyParams& policy);

// Why the policy cannot train this network (a SparseUpdate layer outside its bias
// range, BiasOnly without a bias...), or null.
const char* CheckBaseline(const PolicyParams& policy, const Network& net);

// Sets every layer's `trains` bits (and SparseUpdate's channel choice) and
// net->lowest_layer. TinyTrain starts with every layer, for its selection samples.
void ChooseTrainedParts(const PolicyParams& policy, Network* net);

// TinyTrain, per selection sample and layer, after the fused activation's gradient:
// adds, per channel, (the sum over its positions of z * dloss/dz)^2, z the layer's
// linear output with its bias.
void AccumulateFisher(const OpRuntime& op, TrainableLayer* layer);

// TinyTrain after its samples: scores layers and greedily takes channels within
// the budgets (docs/baselines.md), then sets `trains` and lowest_layer.
void SelectTinyTrain(const PolicyParams& policy, uint64_t full_backward_macs, Network* net);

// The error elements of the layer's trained channels, ascending (every element
// when all its weights train); returns their count.
int32_t TrainedElements(const TrainableLayer& layer, int32_t* kept);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_BASELINES_H_
