// Verifies .tflite bytes and gives typed access to what the trainer reads: subgraph
// 0 (its tensors, operators and their options), the buffers, and the training plan
// and training-state room in the metadata. No FlatBuffers library: every read goes
// through the bounds-checked fb::Reader, and ReadModel walks every declared field
// of the model and the plan before anything is used.
#ifndef TFLM_TRAIN_MODEL_READER_H_
#define TFLM_TRAIN_MODEL_READER_H_

#include <stddef.h>
#include <stdint.h>

#include "flatbuffer_reader.h"
#include "message.h"
#include "schema/tflite_schema.h"
#include "schema/training_plan_schema.h"
#include "tflm_train/status.h"

namespace tflm_train {

constexpr uint32_t kPlanVersion = 3;
// The oldest version still read: its tables are version 3's minus appended fields.
constexpr uint32_t kOldestPlanVersion = 2;
constexpr const char* kPlanMetadataName = "tflm_train";
constexpr const char* kStateMetadataName = "tflm_train_state";

// A tensor's shape, up to rank 6.
struct Dims {
  int rank = 0;
  int32_t d[6] = {};
};

// Tables point at the readers inside the view: it is neither copied nor moved.
struct ModelView {
  ModelView(const uint8_t* data, size_t size) : reader(data, size), plan_reader(nullptr, 0) {}
  ModelView(const ModelView&) = delete;
  ModelView& operator=(const ModelView&) = delete;

  fb::Reader reader;       // the .tflite
  fb::Reader plan_reader;  // the plan: a flatbuffer of its own inside a buffer
  tflite::Model model;
  tflite::SubGraph subgraph;  // subgraph 0, the forward graph
  plan::TrainingPlan plan;
  const uint8_t* state = nullptr;  // room for the training state, or null
  uint32_t state_size = 0;

  uint32_t num_tensors() const { return subgraph.tensors().size(); }
  uint32_t num_operators() const { return subgraph.operators().size(); }
  tflite::Tensor tensor(int index) const;  // absent when out of range
  tflite::Operator op(int index) const { return subgraph.operators(static_cast<uint32_t>(index)); }
  // The operator's builtin code (0..), or -1 for a custom or unknown operator code.
  int32_t BuiltinCode(const tflite::Operator& op) const;
};

// Verifies the flatbuffer, the plan and its version. On failure writes why to `why`.
Status ReadModel(ModelView* view, Message* why);

// The shape of tensor `index` (rank <= 6, every dimension >= 1); false otherwise.
bool TensorDims(const ModelView& view, int index, Dims* dims);
int64_t Elements(const Dims& dims);
// The tensor's type, or -1 when it does not exist.
int TensorType(const ModelView& view, int index);

// The constant data of tensor `index` (its buffer's bytes; null for an activation
// tensor, which has none), and its byte count.
const uint8_t* ConstantBytes(const ModelView& view, int index, uint32_t* bytes);

// The float32 data a constant tensor owns, checked for size and 4-byte alignment
// and made writable (the trainer owns the model bytes). Null, with why, otherwise.
float* ConstantFloats(const ModelView& view, uint8_t* model_base, int index, int64_t expected_elements,
                      Message* why);

// How many tensors, across all subgraphs, use buffer `buffer`; how many operator
// inputs of subgraph 0 read tensor `index`.
int BufferUsers(const ModelView& view, uint32_t buffer);
int TensorReaders(const ModelView& view, int index);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_MODEL_READER_H_
