#include "baselines.h"

#include "finite.h"
#include "sparsity_policy.h"

namespace tflm_train {
namespace {

bool Partial(float ratio) { return ratio > 0.0f && ratio < 1.0f; }

int32_t Positions(const TrainableLayer& layer) { return layer.n_out / layer.channels; }

// Per channel, the sum of its squared weights in storage order: rows of
// [out, in] and filters of OHWI are contiguous; a depthwise filter's channel is
// the last axis, so its weights are strided.
void WeightNorms(const OpRuntime& op, const TrainableLayer& layer, float* norm) {
  const int32_t c_count = layer.channels;
  const int32_t per = layer.n_weights / c_count;
  const bool strided = op.unit->code == tflite::BuiltinOperator::DEPTHWISE_CONV_2D;
  for (int32_t c = 0; c < c_count; ++c) {
    float s = 0.0f;
    for (int32_t j = 0; j < per; ++j) {
      const float w = strided ? layer.weights[j * c_count + c] : layer.weights[c * per + j];
      s += w * w;
    }
    norm[c] = s;
  }
}

// The unselected channel with the largest score (the lowest index among equals), or -1.
int32_t BestChannel(const TrainableLayer& layer) {
  int32_t best = -1;
  for (int32_t c = 0; c < layer.channels; ++c) {
    if (layer.selected[c] == 0 && (best < 0 || layer.fisher[c] > layer.fisher[best])) best = c;
  }
  return best;
}

void SelectLargest(TrainableLayer* layer, int32_t count) {
  for (int32_t c = 0; c < layer->channels; ++c) layer->selected[c] = 0;
  for (int32_t i = 0; i < count; ++i) layer->selected[BestChannel(*layer)] = 1;
}

// Backward MACs of the dense input gradients every weight op above `op_index`
// needs once the layer at `op_index` is the lowest that trains.
uint64_t InputGradMacsAbove(const Network& net, int32_t op_index) {
  uint64_t macs = 0;
  for (int32_t j = op_index + 1; j < net.loss_op; ++j) {
    const OpRuntime& op = net.ops[j];
    if (op.needs_grad && Has(op, kWeights)) macs += static_cast<uint64_t>(op.n_out) * op.fan_in;
  }
  return macs;
}

void SetLowest(Network* net) {
  net->lowest_layer = net->num_layers - 1;
  for (int32_t l = net->num_layers - 1; l >= 0; --l) {
    if (net->layers[l].trains != 0) net->lowest_layer = l;
  }
}

}  // namespace

bool IsBaseline(PolicyKind kind) {
  return kind == PolicyKind::kLastLayers || kind == PolicyKind::kBiasOnly || kind == PolicyKind::kSparseUpdate ||
         kind == PolicyKind::kTinyTrain;
}

bool MayTrainSomeChannels(const PolicyParams& p) {
  if (p.kind == PolicyKind::kTinyTrain) return true;
  if (p.kind != PolicyKind::kSparseUpdate) return false;
  // The last layer always trains fully, whatever its ratio says.
  for (int i = 1; i < kMaxTrainableLayers; ++i) {
    if (Partial(p.weight_ratios[i])) return true;
  }
  return false;
}

const char* CheckBaseline(const PolicyParams& p, const Network& net) {
  if (p.kind == PolicyKind::kBiasOnly) {
    for (int32_t l = 0; l < net.num_layers; ++l) {
      if (net.layers[l].bias != nullptr) return nullptr;
    }
    return "BiasOnly needs a trainable layer with a bias";
  }
  if (p.kind != PolicyKind::kSparseUpdate) return nullptr;
  if (p.bias_layers > static_cast<uint32_t>(net.num_layers)) return "SparseUpdate bias_layers exceeds the trainable layers";
  for (int i = 1; i < kMaxTrainableLayers; ++i) {
    if (p.weight_ratios[i] == 0.0f) continue;
    if (i >= net.num_layers) return "SparseUpdate weight_layers names a layer the plan does not have";
    if (static_cast<uint32_t>(i) >= p.bias_layers) {
      return "SparseUpdate weight_layers must lie within the last bias_layers layers";
    }
  }
  return nullptr;
}

void ChooseTrainedParts(const PolicyParams& p, Network* net) {
  for (int32_t l = 0; l < net->num_layers; ++l) {
    TrainableLayer& layer = net->layers[l];
    const OpRuntime& op = net->ops[layer.op];
    const uint8_t bias = layer.bias != nullptr ? kTrainsBias : 0;
    const uint32_t position = static_cast<uint32_t>(layer.position);
    uint8_t trains = kTrainsAllWeights | bias;  // every other policy, and TinyTrain's selection samples
    if (p.kind == PolicyKind::kLastLayers) {
      trains = position < p.last_layers ? trains : 0;
    } else if (p.kind == PolicyKind::kBiasOnly) {
      trains = bias;
    } else if (p.kind == PolicyKind::kSparseUpdate && position > 0) {
      trains = position < p.bias_layers ? bias : 0;
      const float ratio = p.weight_ratios[position];
      if (ratio > 0.0f) {
        const int32_t count = KeptCount(ratio, layer.channels);
        if (count == layer.channels) {
          trains |= kTrainsAllWeights;
        } else {
          WeightNorms(op, layer, layer.fisher);
          SelectLargest(&layer, count);
          trains |= kTrainsSomeChannels;
        }
      }
    }
    layer.trains = trains;
  }
  SetLowest(net);
}

void AccumulateFisher(const OpRuntime& op, TrainableLayer* layer) {
  const int32_t channels = layer->channels, positions = Positions(*layer);
  // op.out is a = act(z): where RELU/RELU6 clip, dloss/dz is 0, elsewhere a = z. A
  // bias kept in an ADD after the op (whose activation is then NONE) is added here.
  const float* split_bias = layer->bias != op.bias ? layer->bias : nullptr;
  for (int32_t c = 0; c < channels; ++c) {
    const float b = split_bias != nullptr ? split_bias[c] : 0.0f;
    float s = 0.0f;
    for (int32_t d = 0; d < positions; ++d) {
      const float z = split_bias != nullptr ? op.out[d * channels + c] + b : op.out[d * channels + c];
      s += z * op.d_out[d * channels + c];
    }
    layer->fisher[c] += s * s;
  }
}

void SelectTinyTrain(const PolicyParams& p, uint64_t full_backward_macs, Network* net) {
  const int32_t n = net->num_layers, head = n - 1;
  const float two_k = 2.0f * static_cast<float>(p.samples);
  float potential[kMaxTrainableLayers];
  float max_params = 0.0f, max_macs = 0.0f;
  for (int32_t l = 0; l < n; ++l) {
    TrainableLayer& layer = net->layers[l];
    const OpRuntime& op = net->ops[layer.op];
    float sum = 0.0f;
    for (int32_t c = 0; c < layer.channels; ++c) {
      layer.fisher[c] = layer.fisher[c] / two_k;  // the Fisher potential Delta_c
      sum += layer.fisher[c];
      layer.selected[c] = 0;
    }
    potential[l] = sum;
    const float params = static_cast<float>(layer.n_weights + layer.n_bias);
    const float macs = static_cast<float>(static_cast<uint64_t>(op.n_out) * op.fan_in);
    if (params > max_params) max_params = params;
    if (macs > max_macs) max_macs = macs;
  }
  // The last layer always trains: its cost comes first.
  const float mac_limit = p.mac_budget * static_cast<float>(full_backward_macs);
  const OpRuntime& head_op = net->ops[net->layers[head].op];
  uint64_t macs = static_cast<uint64_t>(head_op.n_out) * head_op.fan_in + InputGradMacsAbove(*net, head_op.index);
  uint64_t bytes = 4u * (static_cast<uint64_t>(net->layers[head].n_weights) + head_op.n_in);
  for (int32_t c = 0; c < net->layers[head].channels; ++c) net->layers[head].selected[c] = 1;
  int32_t lowest = head;
  uint64_t visited = static_cast<uint64_t>(1) << head;
  for (int32_t round = 0; round < head; ++round) {
    // The unvisited layer with the best score; among equals the one nearer the output.
    int32_t best = -1;
    float best_score = 0.0f;
    for (int32_t l = head - 1; l >= 0; --l) {
      if ((visited >> l) & 1u) continue;
      const TrainableLayer& layer = net->layers[l];
      const OpRuntime& op = net->ops[layer.op];
      const float params = static_cast<float>(layer.n_weights + layer.n_bias) / max_params;
      const float cost = static_cast<float>(static_cast<uint64_t>(op.n_out) * op.fan_in) / max_macs;
      const float score = potential[l] / (params * cost);
      if (best < 0 || score > best_score) {
        best = l;
        best_score = score;
      }
    }
    visited |= static_cast<uint64_t>(1) << best;
    TrainableLayer& layer = net->layers[best];
    const OpRuntime& op = net->ops[layer.op];
    const uint64_t per_channel = static_cast<uint64_t>(Positions(layer)) * op.fan_in;
    const uint64_t propagation = best < lowest ? InputGradMacsAbove(*net, op.index) - InputGradMacsAbove(*net, net->layers[lowest].op) : 0;
    bool first = true;
    for (int32_t c = BestChannel(layer); c >= 0; c = BestChannel(layer)) {
      const uint64_t more_macs = per_channel + (first ? propagation : 0);
      const uint64_t more_bytes = 4u * (static_cast<uint64_t>(layer.n_weights / layer.channels) + (first ? op.n_in : 0));
      if (!(static_cast<float>(macs + more_macs) <= mac_limit) ||
          (p.memory_budget > 0 && bytes + more_bytes > p.memory_budget)) {
        break;
      }
      layer.selected[c] = 1;
      macs += more_macs;
      bytes += more_bytes;
      if (first && best < lowest) lowest = best;
      first = false;
    }
  }
  for (int32_t l = 0; l < n; ++l) {
    TrainableLayer& layer = net->layers[l];
    int32_t count = 0;
    for (int32_t c = 0; c < layer.channels; ++c) count += layer.selected[c];
    const uint8_t bias = layer.bias != nullptr ? kTrainsBias : 0;
    layer.trains = count == 0 ? 0 : static_cast<uint8_t>((count == layer.channels ? kTrainsAllWeights : kTrainsSomeChannels) | bias);
  }
  SetLowest(net);
}

int32_t TrainedElements(const TrainableLayer& layer, int32_t* kept) {
  int32_t m = 0;
  if (layer.trains & kTrainsAllWeights) {
    for (int32_t e = 0; e < layer.n_out; ++e) kept[m++] = e;
    return m;
  }
  if ((layer.trains & kTrainsSomeChannels) == 0) return 0;
  const int32_t channels = layer.channels, positions = Positions(layer);
  for (int32_t d = 0; d < positions; ++d) {
    for (int32_t c = 0; c < channels; ++c) {
      if (layer.selected[c]) kept[m++] = d * channels + c;
    }
  }
  return m;
}

}  // namespace tflm_train
