// ResumeAfterReboot: training that survives a reset or a power cut.
//
// The sketch trains the classifier of the TrainOnDevice example (model_data.h/.cpp,
// samples.h/.cpp) one step per loop() and saves a checkpoint to flash every
// kSaveEvery steps: the weights and the training state, in one of two slots, so a save
// cut short keeps the previous checkpoint. At start it loads the newest checkpoint, if
// there is one, and carries on from there. Which sample comes next follows from the
// step count, so a run that is reset any number of times ends with exactly the model
// of a run that never was: at most the steps since the last save are done again.
//
// Flash: NrfFlashStorage.h (the nRF52840's NVMC; read the notes there, it has not been
// tried on a board). Open the Serial Monitor at 115200 baud and press reset now and
// then. The files are made by arduino/examples/make_example_models.py in the tflm_train
// repository.

#include <TflmTrain.h>

#include "model_data.h"
#include "samples.h"

// Where the checkpoints go: a tflm_train::FlashStorage.
#if defined(ARDUINO_SHIM_QEMU)
// Only for the tflm_train repository's tests, which run this sketch in QEMU with a core
// of their own: there, "flash" is a file on the host. No board takes this branch.
#include <ShimFlash.h>
ShimFlash flash;
#elif defined(NRF52840_XXAA)
// Your board: the nRF52840's internal flash (NrfFlashStorage.h; read its notes).
#include "NrfFlashStorage.h"
NrfFlashStorage flash(kFlashRegionStart);
#else
#error "ResumeAfterReboot needs a tflm_train::FlashStorage for this board: see NrfFlashStorage.h"
#endif

// 1 adds a line with the float bits of the test outputs at the end (for the tests).
#ifndef TFLM_TRAIN_PRINT_BITS
#define TFLM_TRAIN_PRINT_BITS 0
#endif

static_assert(kSampleSize == g_model_input_size, "the samples do not fit the model");

constexpr uint32_t kTotalSteps = 2 * kTrainCount;  // two epochs
constexpr uint32_t kSaveEvery = 8;                 // steps between checkpoints

alignas(16) uint8_t trainer_arena[g_model_trainer_arena_size];
tflm_train::Trainer trainer;
float loss_since_save = 0.0f;
uint32_t steps_since_save = 0;
bool finished = false;

void stopWithError(const char* what) {
  Serial.print(what);
  Serial.print(": ");
  Serial.println(trainer.error_message());
  while (true) delay(1000);
}

// The test accuracy, and (TFLM_TRAIN_PRINT_BITS) every test output's bits on a line.
void report() {
  unsigned int correct = 0;
#if TFLM_TRAIN_PRINT_BITS
  uint32_t bits[kTestCount * g_model_output_size];
#endif
  for (unsigned int i = 0; i < kTestCount; ++i) {
    float out[g_model_output_size];
    trainer.Predict(test_samples[i], kSampleSize, out, g_model_output_size);
    unsigned int best = 0;
    for (unsigned int c = 1; c < g_model_output_size; ++c) {
      if (out[c] > out[best]) best = c;
    }
    if (best == static_cast<unsigned int>(test_labels[i])) ++correct;
#if TFLM_TRAIN_PRINT_BITS
    memcpy(&bits[i * g_model_output_size], out, sizeof(out));
#endif
  }
  Serial.print("test accuracy ");
  Serial.print(100.0f * correct / kTestCount, 1);
  Serial.print("% (");
  Serial.print(correct);
  Serial.print("/");
  Serial.print(kTestCount);
  Serial.println(")");
#if TFLM_TRAIN_PRINT_BITS
  Serial.print("bits");
  for (unsigned int k = 0; k < kTestCount * g_model_output_size; ++k) {
    Serial.print(" ");
    Serial.print(bits[k], HEX);
  }
  Serial.println();
#endif
}

void setup() {
  Serial.begin(115200);
  while (!Serial && millis() < 4000) {
  }  // boards with native USB: give the Serial Monitor a moment to connect

  // The model array holds the weights as flashed; a checkpoint replaces them.
  if (trainer.Init(g_model, g_model_len, trainer_arena, sizeof(trainer_arena)) != tflm_train::Status::kOk) {
    stopWithError("Trainer::Init failed");
  }
  const uint32_t region = trainer.CheckpointStorageBytes(flash.page_size());
  Serial.print("ResumeAfterReboot: checkpoints in ");
  Serial.print(region);
  Serial.println(" bytes of flash");
  if (!flash.begin(region)) {
    Serial.println("flash.begin refused the region: see NrfFlashStorage.h (it must end by kFlashRegionLimit)");
    while (true) delay(1000);
  }

  bool loaded = false;
  if (trainer.LoadCheckpoint(flash, &loaded) != tflm_train::Status::kOk) stopWithError("LoadCheckpoint failed");
  if (loaded) {
    Serial.print("resumed from the checkpoint at step ");
    Serial.println(static_cast<unsigned long>(trainer.counters().steps));
  } else {
    Serial.println("no checkpoint: starting with the model as flashed");
  }
}

void loop() {
  const uint32_t step = static_cast<uint32_t>(trainer.counters().steps);
  if (step >= kTotalSteps) {
    if (!finished) {
      finished = true;
      Serial.print("finished: ");
      Serial.print(step);
      Serial.print(" steps, ");
      report();
    }
    return;
  }
  const unsigned int i = step % kTrainCount;  // the sample follows from the step count
  tflm_train::StepResult result;
  if (trainer.TrainStep(train_samples[i], kSampleSize, &train_labels[i], 1, 1, &result, nullptr) !=
      tflm_train::Status::kOk) {
    stopWithError("TrainStep failed");
  }
  loss_since_save += result.loss;
  ++steps_since_save;
  if ((step + 1) % kSaveEvery == 0) {
    if (trainer.SaveCheckpoint(flash) != tflm_train::Status::kOk) stopWithError("SaveCheckpoint failed");
    Serial.print("step ");
    Serial.print(step + 1);
    Serial.print("/");
    Serial.print(kTotalSteps);
    Serial.print(": mean loss ");
    Serial.print(loss_since_save / steps_since_save, 4);
    Serial.println(", checkpoint saved");
    loss_since_save = 0.0f;
    steps_since_save = 0;
  }
}
