// Untrusted checkpoint images (docs/checkpoints.md) on valid models: the bytes are
// the flash region LoadCheckpoint reads, under a page and program size the input
// picks. Whatever the load says, the trainer still trains; and a save into the same
// region followed by a load in a new trainer gives back exactly what was saved.
#include <string.h>

#include "fuzz_common.h"
#include "tflm_train/flash_storage.h"

namespace {

// The region in an exactly sized heap block, under NOR's rules. An access outside
// it, or a program the flash would refuse, is the trainer's bug: abort.
class Image final : public tflm_train::FlashStorage {
 public:
  Image(fuzz::Block& block, uint32_t page, uint32_t program) : block_(block), page_(page), program_(program) {}
  uint32_t page_size() const override { return page_; }
  uint32_t program_size() const override { return program_; }
  uint32_t size() const override { return static_cast<uint32_t>(block_.size); }
  bool Read(uint32_t offset, void* dst, uint32_t n) override {
    Check(offset, n);
    memcpy(dst, block_.bytes + offset, n);
    return true;
  }
  bool ErasePage(uint32_t offset) override {
    Check(offset, page_);
    if (offset % page_ != 0) abort();
    memset(block_.bytes + offset, 0xFF, page_);
    return true;
  }
  bool Program(uint32_t offset, const void* src, uint32_t n) override {
    Check(offset, n);
    if (offset % program_ != 0 || n % program_ != 0) abort();
    for (uint32_t i = 0; i < n; ++i) {
      if (block_.bytes[offset + i] != 0xFF) abort();
    }
    memcpy(block_.bytes + offset, src, n);
    return true;
  }

 private:
  void Check(uint32_t offset, uint32_t n) const {
    if (offset > block_.size || n > block_.size - offset) abort();
  }
  fuzz::Block& block_;
  uint32_t page_, program_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const fuzz::Fixture& fixture = fuzz::kFixtures[data[0] % 3];
  // Byte 1: log2 of the page size (low 4 bits) and of the program size (next 4):
  // sizes up to 32 KiB, some of them invalid on purpose.
  const uint32_t page = 1u << (data[1] & 15u);
  const uint32_t program = 1u << ((data[1] >> 4) & 15u);
  fuzz::Block image(data + 2, size - 2);
  Image storage(image, page, program);
  tflm_train::TrainerOptions options;
  options.restore_state = false;
  fuzz::FixtureTrainer device(fixture, options);
  tflm_train::Trainer& trainer = device.trainer;

  bool loaded = false;
  const tflm_train::Status load = trainer.LoadCheckpoint(storage, &loaded);
  if (load == tflm_train::Status::kStorageError) abort();  // the image never fails a call
  if (load != tflm_train::Status::kOk && loaded) abort();
  fuzz::Exercise(trainer, 5);

  if (trainer.SaveCheckpoint(storage) != tflm_train::Status::kOk) return 0;  // a geometry it refuses
  std::vector<uint8_t> saved(trainer.StateBytes()), got(trainer.StateBytes());
  if (trainer.SaveState(saved.data(), saved.size()) != tflm_train::Status::kOk) abort();
  fuzz::FixtureTrainer rebooted(fixture, options);  // the original model, as after a reboot
  tflm_train::Trainer& resumed = rebooted.trainer;
  if (resumed.LoadCheckpoint(storage, &loaded) != tflm_train::Status::kOk || !loaded) abort();
  if (resumed.SaveState(got.data(), got.size()) != tflm_train::Status::kOk || got != saved) abort();
  for (int i = 0; i < resumed.num_trainable_layers(); ++i) {
    size_t n = 0, m = 0;
    const float* a = resumed.layer_weights(i, &n);
    const float* b = trainer.layer_weights(i, &m);
    if (n != m || memcmp(a, b, n * sizeof(float)) != 0) abort();
    a = resumed.layer_bias(i, &n);
    b = trainer.layer_bias(i, &m);
    if (n != m || (n > 0 && memcmp(a, b, n * sizeof(float)) != 0)) abort();
  }
  return 0;
}
