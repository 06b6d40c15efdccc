#include "model_reader.h"

#include <string.h>

namespace tflm_train {
namespace {

// The data of the metadata entry `name` (left null when there is none).
Status FindMetadata(const tflite::Model* model, const char* name,
                    const flatbuffers::Vector<uint8_t>** data, Message* why) {
  if (model->metadata() == nullptr) return Status::kOk;
  for (const tflite::Metadata* entry : *model->metadata()) {
    if (entry->name() == nullptr || strcmp(entry->name()->c_str(), name) != 0) continue;
    if (entry->buffer() >= model->buffers()->size()) {
      why->Add("metadata \"").Add(name).Add("\" points at buffer ")
          .Add(static_cast<long long>(entry->buffer())).Add(", past the model's ")
          .Add(static_cast<long long>(model->buffers()->size())).Add(" buffers");
      return Status::kInvalidModel;
    }
    *data = model->buffers()->Get(entry->buffer())->data();
    return Status::kOk;
  }
  return Status::kOk;
}

}  // namespace

Status ReadModel(const uint8_t* data, size_t size, ModelView* view, Message* why) {
  if (data == nullptr || size < 8) {
    why->Add("model is empty or shorter than a flatbuffer header");
    return Status::kInvalidModel;
  }
  if (size >= FLATBUFFERS_MAX_BUFFER_SIZE) {
    why->Add("model is larger than a flatbuffer can be (2 GB)");
    return Status::kInvalidModel;
  }
  if (!tflite::ModelBufferHasIdentifier(data)) {
    why->Add("model bytes do not carry the .tflite identifier TFL3");
    return Status::kInvalidModel;
  }
  flatbuffers::Verifier model_verifier(data, size);
  if (!tflite::VerifyModelBuffer(model_verifier)) {
    why->Add("model flatbuffer failed verification (truncated or corrupt)");
    return Status::kInvalidModel;
  }
  const tflite::Model* model = tflite::GetModel(data);
  if (model->subgraphs() == nullptr || model->subgraphs()->size() == 0 ||
      model->buffers() == nullptr) {
    why->Add("model has no subgraph or no buffers");
    return Status::kInvalidModel;
  }
  const tflite::SubGraph* subgraph = model->subgraphs()->Get(0);
  if (subgraph->tensors() == nullptr) {
    why->Add("subgraph 0 has no tensors");
    return Status::kInvalidModel;
  }

  const flatbuffers::Vector<uint8_t>* plan_bytes = nullptr;
  Status status = FindMetadata(model, kPlanMetadataName, &plan_bytes, why);
  if (status != Status::kOk) return status;
  if (plan_bytes == nullptr || plan_bytes->size() == 0) {
    why->Add("this .tflite has no training plan (metadata \"tflm_train\"); "
             "convert the model with tflm_train.convert");
    return Status::kMissingPlan;
  }
  flatbuffers::Verifier plan_verifier(plan_bytes->data(), plan_bytes->size());
  if (!plan::VerifyTrainingPlanBuffer(plan_verifier)) {
    why->Add("training plan failed verification (corrupt, or not a tflm_train plan)");
    return Status::kInvalidModel;
  }
  const plan::TrainingPlan* training_plan = plan::GetTrainingPlan(plan_bytes->data());
  if (training_plan->version() != kPlanVersion) {
    why->Add("training plan has version ").Add(static_cast<long long>(training_plan->version()))
        .Add("; this trainer reads version ").Add(static_cast<long long>(kPlanVersion));
    return Status::kUnsupportedPlanVersion;
  }
  const flatbuffers::Vector<uint8_t>* state_bytes = nullptr;
  status = FindMetadata(model, kStateMetadataName, &state_bytes, why);
  if (status != Status::kOk) return status;
  view->model = model;
  view->subgraph = subgraph;
  view->plan = training_plan;
  view->state = state_bytes != nullptr && state_bytes->size() > 0 ? state_bytes : nullptr;
  return Status::kOk;
}

const tflite::Tensor* TensorAt(const ModelView& view, int index) {
  if (index < 0 || static_cast<uint32_t>(index) >= view.subgraph->tensors()->size()) return nullptr;
  return view.subgraph->tensors()->Get(index);
}

int64_t TensorElements(const tflite::Tensor* tensor) {
  if (tensor == nullptr || tensor->shape() == nullptr) return 0;
  int64_t elements = 1;
  for (int32_t dim : *tensor->shape()) {
    if (dim <= 0) return 0;
    elements *= dim;
    if (elements > (int64_t{1} << 28)) return 0;  // far beyond any microcontroller model
  }
  return elements;
}

int32_t TensorLastDim(const tflite::Tensor* tensor) {
  if (tensor == nullptr || tensor->shape() == nullptr || tensor->shape()->size() == 0) return 1;
  return tensor->shape()->Get(tensor->shape()->size() - 1);
}

float* ConstantData(const ModelView& view, uint8_t* model_base, int tensor_index,
                    int64_t expected_elements, Message* why) {
  const tflite::Tensor* tensor = TensorAt(view, tensor_index);
  if (tensor == nullptr || tensor->type() != kTensorFloat32) {
    why->Add("tensor ").Add(static_cast<long long>(tensor_index)).Add(" is missing or not float32");
    return nullptr;
  }
  const uint32_t buffer = tensor->buffer();
  const flatbuffers::Vector<uint8_t>* data =
      buffer == 0 || buffer >= view.model->buffers()->size() ? nullptr
                                                              : view.model->buffers()->Get(buffer)->data();
  if (data == nullptr || static_cast<int64_t>(data->size()) != expected_elements * 4) {
    why->Add("tensor ").Add(static_cast<long long>(tensor_index))
        .Add(" needs a constant buffer of ").Add(static_cast<long long>(expected_elements * 4))
        .Add(" bytes");
    return nullptr;
  }
  // The flatbuffer API is const; the trainer owns the writable bytes it points into.
  uint8_t* bytes = model_base + (data->data() - static_cast<const uint8_t*>(model_base));
  if ((reinterpret_cast<uintptr_t>(bytes) & 3u) != 0) {
    why->Add("tensor ").Add(static_cast<long long>(tensor_index)).Add(" data is not 4-byte aligned");
    return nullptr;
  }
  return reinterpret_cast<float*>(bytes);
}

int BufferUsers(const ModelView& view, uint32_t buffer) {
  int users = 0;
  for (const tflite::SubGraph* subgraph : *view.model->subgraphs()) {
    if (subgraph->tensors() == nullptr) continue;
    for (const tflite::Tensor* tensor : *subgraph->tensors()) {
      if (tensor->buffer() == buffer) ++users;
    }
  }
  return users;
}

}  // namespace tflm_train
