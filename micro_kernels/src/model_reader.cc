#include "model_reader.h"

namespace tflm_train {
namespace {

// The bytes of the metadata entry `name`; `present` stays false when there is none.
struct MetadataBytes {
  bool present = false;
  fb::Vector data;
};

Status FindMetadata(const ModelView& view, const char* name, MetadataBytes* out, Message* why) {
  const uint32_t entries = view.model.metadata().size();
  for (uint32_t i = 0; i < entries; ++i) {
    const tflite::Metadata entry = view.model.metadata(i);
    if (!entry.table().StringEquals(0, name)) continue;
    if (entry.buffer() >= view.model.buffers().size()) {
      why->Add("metadata \"").Add(name).Add("\" points at buffer ").Add(static_cast<long long>(entry.buffer()))
          .Add(", past the model's ").Add(static_cast<long long>(view.model.buffers().size()))
          .Add(" buffers");
      return Status::kInvalidModel;
    }
    out->present = true;
    out->data = view.model.buffers(entry.buffer()).data();
    return Status::kOk;
  }
  return Status::kOk;
}

}  // namespace

Status ReadModel(ModelView* view, Message* why) {
  const fb::Reader& r = view->reader;
  if (r.data() == nullptr || r.size() < 8) {
    why->Add("model is empty or shorter than a flatbuffer header");
    return Status::kInvalidModel;
  }
  if (r.size() >= (size_t{1} << 31)) {
    why->Add("model is larger than a flatbuffer can be (2 GB)");
    return Status::kInvalidModel;
  }
  if (!r.HasIdentifier(tflite::kFileIdentifier)) {
    why->Add("model bytes do not carry the .tflite identifier TFL3");
    return Status::kInvalidModel;
  }
  view->model = tflite::GetModel(r);
  tflite::Verify(view->model);
  r.ResetTableBudget();
  if (r.failed() || !view->model.present()) {
    why->Add("model flatbuffer failed verification (truncated or corrupt)");
    return Status::kInvalidModel;
  }
  if (view->model.subgraphs().size() == 0 || !view->model.buffers().present()) {
    why->Add("model has no subgraph or no buffers");
    return Status::kInvalidModel;
  }
  view->subgraph = view->model.subgraphs(0);
  if (!view->subgraph.tensors().present() || !view->subgraph.operators().present()) {
    why->Add("subgraph 0 has no tensors or no operators");
    return Status::kInvalidModel;
  }

  MetadataBytes plan;
  Status status = FindMetadata(*view, kPlanMetadataName, &plan, why);
  if (status != Status::kOk) return status;
  if (!plan.present || plan.data.size() == 0) {
    why->Add("this .tflite has no training plan (metadata \"tflm_train\"); "
             "convert the model with tflm_train.convert");
    return Status::kMissingPlan;
  }
  view->plan_reader = fb::Reader(plan.data.bytes(), plan.data.size());
  const fb::Reader& p = view->plan_reader;
  if (p.size() < 8 || !p.HasIdentifier(plan::kFileIdentifier)) {
    why->Add("training plan failed verification (corrupt, or not a tflm_train plan)");
    return Status::kInvalidModel;
  }
  view->plan = plan::GetTrainingPlan(p);
  // The version first (field 0 in every version): an older plan's tables differ.
  const uint32_t version = view->plan.version();
  const bool known = version >= kOldestPlanVersion && version <= kPlanVersion;
  if (!p.failed() && view->plan.present() && known) plan::Verify(view->plan);
  p.ResetTableBudget();
  if (p.failed() || !view->plan.present()) {
    why->Add("training plan failed verification (corrupt, or not a tflm_train plan)");
    return Status::kInvalidModel;
  }
  if (!known) {
    why->Add("training plan has version ").Add(static_cast<long long>(view->plan.version()))
        .Add("; this trainer reads versions ").Add(static_cast<long long>(kOldestPlanVersion))
        .Add(" to ").Add(static_cast<long long>(kPlanVersion));
    if (view->plan.version() < kOldestPlanVersion) why->Add(": re-convert the model with this tflm_train");
    return Status::kUnsupportedPlanVersion;
  }

  MetadataBytes state;
  status = FindMetadata(*view, kStateMetadataName, &state, why);
  if (status != Status::kOk) return status;
  if (state.present && state.data.size() > 0) {
    view->state = state.data.bytes();
    view->state_size = state.data.size();
  }
  return Status::kOk;
}

tflite::Tensor ModelView::tensor(int index) const {
  if (index < 0 || static_cast<uint32_t>(index) >= num_tensors()) return tflite::Tensor();
  return subgraph.tensors(static_cast<uint32_t>(index));
}

int32_t ModelView::BuiltinCode(const tflite::Operator& op) const {
  if (op.opcode_index() >= model.operator_codes().size()) return -1;
  const tflite::OperatorCode code = model.operator_codes(op.opcode_index());
  if (code.custom_code() != nullptr) return -1;
  // Files from before 2.4 keep codes under 127 in the deprecated byte only.
  const int32_t builtin = static_cast<int32_t>(code.builtin_code());
  const int32_t deprecated = code.deprecated_builtin_code();
  return builtin > deprecated ? builtin : deprecated;
}

bool TensorDims(const ModelView& view, int index, Dims* dims) {
  const fb::Vector shape = view.tensor(index).shape();
  if (!shape.present() || shape.size() > 6) return false;
  dims->rank = static_cast<int>(shape.size());
  for (int i = 0; i < dims->rank; ++i) {
    dims->d[i] = shape.Get<int32_t>(static_cast<uint32_t>(i));
    if (dims->d[i] < 1) return false;
  }
  return Elements(*dims) > 0;
}

int64_t Elements(const Dims& dims) {
  int64_t elements = 1;
  for (int i = 0; i < dims.rank; ++i) {
    elements *= dims.d[i];
    if (elements > (int64_t{1} << 28)) return 0;  // far beyond any microcontroller model
  }
  return elements;
}

int TensorType(const ModelView& view, int index) {
  const tflite::Tensor t = view.tensor(index);
  return t.present() ? static_cast<int>(t.type()) : -1;
}

const uint8_t* ConstantBytes(const ModelView& view, int index, uint32_t* bytes) {
  *bytes = 0;
  const tflite::Tensor t = view.tensor(index);
  if (!t.present() || t.buffer() == 0 || t.buffer() >= view.model.buffers().size()) return nullptr;
  const fb::Vector data = view.model.buffers(t.buffer()).data();
  if (!data.present() || data.size() == 0) return nullptr;
  *bytes = data.size();
  return data.bytes();
}

float* ConstantFloats(const ModelView& view, uint8_t* model_base, int index, int64_t expected_elements,
                      Message* why) {
  uint32_t bytes = 0;
  const uint8_t* data = ConstantBytes(view, index, &bytes);
  if (TensorType(view, index) != static_cast<int>(tflite::TensorType::FLOAT32) || data == nullptr ||
      static_cast<int64_t>(bytes) != expected_elements * 4) {
    why->Add("tensor ").Add(index).Add(" needs constant float32 data of ")
        .Add(static_cast<long long>(expected_elements * 4)).Add(" bytes");
    return nullptr;
  }
  // The reader is read-only; the trainer owns the writable bytes it points into.
  uint8_t* writable = model_base + (data - view.reader.data());
  if ((reinterpret_cast<uintptr_t>(writable) & 3u) != 0) {
    why->Add("tensor ").Add(index).Add(" data is not 4-byte aligned");
    return nullptr;
  }
  return reinterpret_cast<float*>(writable);
}

int BufferUsers(const ModelView& view, uint32_t buffer) {
  int users = 0;
  const uint32_t subgraphs = view.model.subgraphs().size();
  for (uint32_t s = 0; s < subgraphs; ++s) {
    const tflite::SubGraph sg = view.model.subgraphs(s);
    const uint32_t tensors = sg.tensors().size();
    for (uint32_t t = 0; t < tensors; ++t) {
      if (sg.tensors(t).buffer() == buffer) ++users;
    }
  }
  return users;
}

int TensorReaders(const ModelView& view, int index) {
  int readers = 0;
  for (uint32_t o = 0; o < view.num_operators(); ++o) {
    const fb::Vector inputs = view.op(static_cast<int>(o)).inputs();
    for (uint32_t i = 0; i < inputs.size(); ++i) {
      if (inputs.Get<int32_t>(i) == index) ++readers;
    }
  }
  return readers;
}

}  // namespace tflm_train
