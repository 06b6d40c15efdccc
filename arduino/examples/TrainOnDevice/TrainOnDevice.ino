// TrainOnDevice: trains a small classifier on the board itself.
//
// model_data.h/.cpp hold a 16-12-4 network made with Keras and converted by tflm_train
// (`tflm_train.convert`, then `tflm-train export`); samples.h/.cpp hold 48 training and
// 24 test windows of a noisy sensor, each one of four shapes: rising, falling, peak or
// valley. The sketch trains the model for a few epochs with the policy its training
// plan names (TinyPropV2: samples the model already gets right are skipped), in place
// in the model array, and prints the loss and the accuracy after every epoch.
//
// Open the Serial Monitor at 115200 baud. The files are made by
// arduino/examples/make_example_models.py in the tflm_train repository.

#include <TflmTrain.h>

#include "model_data.h"
#include "samples.h"

static_assert(kSampleSize == g_model_input_size, "the samples do not fit the model");

constexpr int kEpochs = 6;

alignas(16) uint8_t trainer_arena[g_model_trainer_arena_size];
tflm_train::Trainer trainer;
int epochs_done = 0;

// Prints `count` of `total` as a percentage with the count, e.g. "87.5% (21/24)".
void printAccuracy(unsigned int count, unsigned int total) {
  Serial.print(100.0f * count / total, 1);
  Serial.print("% (");
  Serial.print(count);
  Serial.print("/");
  Serial.print(total);
  Serial.print(")");
}

// Loss and correct answers over the test samples, without training on them.
void evaluateTest(float* mean_loss, unsigned int* correct) {
  float loss_sum = 0.0f;
  *correct = 0;
  for (unsigned int i = 0; i < kTestCount; ++i) {
    float loss = 0.0f, right = 0.0f;
    trainer.EvaluateSample(test_samples[i], kSampleSize, &test_labels[i], 1, &loss, &right);
    loss_sum += loss;
    if (right > 0.5f) ++*correct;
  }
  *mean_loss = loss_sum / kTestCount;
}

void stopWithError(const char* what) {
  Serial.print(what);
  Serial.print(": ");
  Serial.println(trainer.error_message());
  while (true) delay(1000);
}

void setup() {
  Serial.begin(115200);
  while (!Serial && millis() < 4000) {
  }  // boards with native USB: give the Serial Monitor a moment to connect

  if (trainer.Init(g_model, g_model_len, trainer_arena, sizeof(trainer_arena)) != tflm_train::Status::kOk) {
    stopWithError("Trainer::Init failed");
  }
  Serial.println("TrainOnDevice: a 16-12-4 classifier trained on the board");
  Serial.print("trainer arena: ");
  Serial.print(trainer.arena_report().required_bytes);
  Serial.print(" of ");
  Serial.print(sizeof(trainer_arena));
  Serial.println(" bytes used");

  float loss = 0.0f;
  unsigned int correct = 0;
  evaluateTest(&loss, &correct);
  Serial.print("before training: test loss ");
  Serial.print(loss, 4);
  Serial.print(", test accuracy ");
  printAccuracy(correct, kTestCount);
  Serial.println();
}

void loop() {
  if (epochs_done == kEpochs) return;  // finished: nothing more to do

  const unsigned long start = millis();
  float loss_sum = 0.0f;
  unsigned int train_correct = 0, skipped = 0;
  for (unsigned int i = 0; i < kTrainCount; ++i) {
    tflm_train::StepResult step;
    if (trainer.TrainStep(train_samples[i], kSampleSize, &train_labels[i], 1, 1, &step, nullptr) !=
        tflm_train::Status::kOk) {
      stopWithError("Trainer::TrainStep failed");
    }
    loss_sum += step.loss;
    if (step.correct > 0.5f) ++train_correct;  // right before this step's update
    skipped += step.skipped;
  }
  trainer.CountEpoch();
  ++epochs_done;
  const unsigned long elapsed = millis() - start;

  float test_loss = 0.0f;
  unsigned int test_correct = 0;
  evaluateTest(&test_loss, &test_correct);
  Serial.print("epoch ");
  Serial.print(epochs_done);
  Serial.print("/");
  Serial.print(kEpochs);
  Serial.print(": loss ");
  Serial.print(loss_sum / kTrainCount, 4);
  Serial.print(", train accuracy ");
  printAccuracy(train_correct, kTrainCount);
  Serial.print(", test accuracy ");
  printAccuracy(test_correct, kTestCount);
  Serial.print(", skipped ");
  Serial.print(skipped);
  Serial.print(" of ");
  Serial.print(kTrainCount);
  Serial.print(", ");
  Serial.print(elapsed);
  Serial.println(" ms");

  if (epochs_done == kEpochs) {
    // The trained model at work: the first few test windows.
    for (unsigned int i = 0; i < 4; ++i) {
      float out[g_model_output_size];
      trainer.Predict(test_samples[i], kSampleSize, out, g_model_output_size);
      unsigned int best = 0;
      for (unsigned int c = 1; c < g_model_output_size; ++c) {
        if (out[c] > out[best]) best = c;
      }
      Serial.print("test window ");
      Serial.print(i);
      Serial.print(": ");
      Serial.print(g_model_class_names[best]);
      Serial.print(" (");
      Serial.print(out[best], 2);
      Serial.print("), labelled ");
      Serial.println(g_model_class_names[static_cast<int>(test_labels[i])]);
    }
    Serial.println("done");
  }
}
