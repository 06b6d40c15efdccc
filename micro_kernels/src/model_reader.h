// Verifies .tflite bytes and finds the training plan inside them.
#ifndef TFLM_TRAIN_MODEL_READER_H_
#define TFLM_TRAIN_MODEL_READER_H_

#include <stddef.h>
#include <stdint.h>

// FlatBuffers' internal asserts would pull the C library's stdio-based assert
// handler onto the device. The reader validates every index and size it uses
// (and the Verifier checks the rest), so they compile out, as under NDEBUG.
#ifndef FLATBUFFERS_ASSERT
#define FLATBUFFERS_ASSERT(x) ((void)0)
#endif

#include "generated/tflite_model_subset_generated.h"
#include "generated/training_plan_generated.h"
#include "message.h"
#include "tflm_train/status.h"

namespace tflm_train {

constexpr uint32_t kPlanVersion = 1;
constexpr const char* kPlanMetadataName = "tflm_train";
constexpr const char* kStateMetadataName = "tflm_train_state";
constexpr int8_t kTensorFloat32 = 0;

struct ModelView {
  const tflite::Model* model = nullptr;
  const tflite::SubGraph* subgraph = nullptr;  // subgraph 0, the forward graph
  const plan::TrainingPlan* plan = nullptr;
  const flatbuffers::Vector<uint8_t>* state = nullptr;  // room for the training state, or null
};

// Verifies the flatbuffer, the plan and its version. On failure writes why to `why`.
Status ReadModel(const uint8_t* data, size_t size, ModelView* view, Message* why);

// Tensor helpers over subgraph 0; they return 0 / null when out of range.
const tflite::Tensor* TensorAt(const ModelView& view, int index);
int64_t TensorElements(const tflite::Tensor* tensor);
int32_t TensorLastDim(const tflite::Tensor* tensor);

// The float32 data a constant tensor owns, checked for size and 4-byte alignment.
// Returns null and writes why on failure.
float* ConstantData(const ModelView& view, uint8_t* model_base, int tensor_index,
                    int64_t expected_elements, Message* why);

// How many tensors, across all subgraphs, use buffer `buffer`.
int BufferUsers(const ModelView& view, uint32_t buffer);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_MODEL_READER_H_
