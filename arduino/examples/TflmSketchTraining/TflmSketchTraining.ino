// TflmSketchTraining: a TensorFlow Lite Micro sketch that also trains its model.
//
// A tflite::MicroInterpreter runs the model as in any TFLM sketch. A tflm_train::Trainer
// works on the SAME model array (with an arena of its own): every training step changes
// the weights in place, and the interpreter's next Invoke() uses them. TFLM reads float
// weights when it evaluates an operator, so nothing needs to be prepared again.
//
// The model (model_data.h/.cpp, made by tflm_train from Keras) tells a horizontal bar
// from a vertical one in a 6x6 image; it starts untrained, and its training plan says
// full backpropagation with SGD (learning rate 0.05, momentum 0.9). samples.h/.cpp hold
// 8 such images. At start the sketch shows what the model answers for each. Then it reads
// lines from Serial (115200 baud, newline at the end of each line):
//
//   <sample> <label>   train one step on sample 0..7 with label 0 (horizontal) or
//                      1 (vertical); for example "3 1"
//   show               run the interpreter on every sample again
//
// Needs the Arduino_TensorFlowLite library
// (https://github.com/tensorflow/tflite-micro-arduino-examples), which supports the
// Arduino Nano 33 BLE (Sense). The files are made by
// arduino/examples/make_example_models.py in the tflm_train repository.

#include <TensorFlowLite.h>
#include <TflmTrain.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "model_data.h"
#include "samples.h"

// 1 adds a line with every output's float bits in hex after each "show" (the tests
// compare them with the host's trainer; a board's Serial Monitor does not need them).
#ifndef TFLM_TRAIN_PRINT_BITS
#define TFLM_TRAIN_PRINT_BITS 0
#endif

static_assert(kSampleSize == g_model_input_size, "the samples do not fit the model");

alignas(16) uint8_t tflm_arena[g_model_tflm_arena_size];
alignas(16) uint8_t trainer_arena[g_model_trainer_arena_size];
tflite::MicroMutableOpResolver<4> resolver;  // CONV_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX
tflite::MicroInterpreter* interpreter = nullptr;
tflm_train::Trainer trainer;
char line[40];
unsigned int line_length = 0;

void stopWithError(const char* what, const char* why) {
  Serial.print(what);
  Serial.print(": ");
  Serial.println(why);
  while (true) delay(1000);
}

// Runs the interpreter on every sample and prints the class probabilities.
void showOutputs() {
  TfLiteTensor* input = interpreter->input(0);
  TfLiteTensor* output = interpreter->output(0);
#if TFLM_TRAIN_PRINT_BITS
  uint32_t bits[kSketchCount * g_model_output_size];
#endif
  for (unsigned int i = 0; i < kSketchCount; ++i) {
    memcpy(input->data.f, sketch_samples[i], sizeof(sketch_samples[i]));
    if (interpreter->Invoke() != kTfLiteOk) stopWithError("Invoke failed", "see the messages above");
    Serial.print("sample ");
    Serial.print(i);
    Serial.print(":");
    unsigned int best = 0;
    for (unsigned int c = 0; c < g_model_output_size; ++c) {
      Serial.print(" ");
      Serial.print(g_model_class_names[c]);
      Serial.print(" ");
      Serial.print(output->data.f[c], 3);
      if (output->data.f[c] > output->data.f[best]) best = c;
#if TFLM_TRAIN_PRINT_BITS
      memcpy(&bits[i * g_model_output_size + c], &output->data.f[c], sizeof(uint32_t));
#endif
    }
    Serial.print("  -> ");
    Serial.println(g_model_class_names[best]);
  }
#if TFLM_TRAIN_PRINT_BITS
  Serial.print("bits");
  for (unsigned int k = 0; k < kSketchCount * g_model_output_size; ++k) {
    Serial.print(" ");
    Serial.print(bits[k], HEX);
  }
  Serial.println();
#endif
}

// Reads a number at *p, digits only (no sign), after any spaces; moves *p past it.
// False when there are no digits.
bool readNumber(const char** p, long* value) {
  while (**p == ' ') ++*p;
  if (**p < '0' || **p > '9') return false;
  char* end = nullptr;
  *value = strtol(*p, &end, 10);
  *p = end;
  return true;
}

// One line from Serial: "<sample> <label>" trains, "show" infers.
void handleLine(const char* text) {
  if (strcmp(text, "show") == 0) {
    showOutputs();
    return;
  }
  const char* p = text;
  long sample = -1, label = -1;
  const bool numbers = readNumber(&p, &sample) && *p == ' ' && readNumber(&p, &label);
  while (*p == ' ') ++p;
  if (!numbers || *p != '\0' || sample >= static_cast<long>(kSketchCount) ||
      label >= static_cast<long>(g_model_num_classes)) {
    Serial.print("? expected \"<sample 0-");
    Serial.print(kSketchCount - 1);
    Serial.print("> <label 0-");
    Serial.print(g_model_num_classes - 1);
    Serial.println(">\" or \"show\"");
    return;
  }
  const float target = static_cast<float>(label);
  tflm_train::StepResult step;
  if (trainer.TrainStep(sketch_samples[sample], kSampleSize, &target, 1, 1, &step, nullptr) !=
      tflm_train::Status::kOk) {
    stopWithError("TrainStep failed", trainer.error_message());
  }
  Serial.print("trained on sample ");
  Serial.print(sample);
  Serial.print(" as ");
  Serial.print(g_model_class_names[label]);
  Serial.print(": loss ");
  Serial.print(step.loss, 4);
  Serial.println(step.skipped ? " (skipped: the model already agrees)" : "");
}

void setup() {
  Serial.begin(115200);
  while (!Serial && millis() < 4000) {
  }  // boards with native USB: give the Serial Monitor a moment to connect

  const tflite::Model* model = tflite::GetModel(g_model);
  resolver.AddConv2D();
  resolver.AddReshape();
  resolver.AddFullyConnected();
  resolver.AddSoftmax();
  static tflite::MicroInterpreter static_interpreter(model, resolver, tflm_arena, sizeof(tflm_arena));
  interpreter = &static_interpreter;
  if (interpreter->AllocateTensors() != kTfLiteOk) stopWithError("AllocateTensors failed", "is the TFLM arena too small?");

  if (trainer.Init(g_model, g_model_len, trainer_arena, sizeof(trainer_arena)) != tflm_train::Status::kOk) {
    stopWithError("Trainer::Init failed", trainer.error_message());
  }
  Serial.println("TflmSketchTraining: TFLM infers, tflm_train trains the same model array");
  Serial.print("arenas: TFLM ");
  Serial.print(interpreter->arena_used_bytes());
  Serial.print(" of ");
  Serial.print(sizeof(tflm_arena));
  Serial.print(" bytes, trainer ");
  Serial.print(trainer.arena_report().required_bytes);
  Serial.print(" of ");
  Serial.print(sizeof(trainer_arena));
  Serial.println(" bytes");
  showOutputs();
  Serial.println("send \"<sample> <label>\" to train (label 0 horizontal, 1 vertical), \"show\" to infer");
}

void loop() {
  while (Serial.available() > 0) {
    const int c = Serial.read();
    if (c == '\r') continue;
    if (c != '\n') {
      if (line_length < sizeof(line) - 1) line[line_length++] = static_cast<char>(c);
      continue;
    }
    line[line_length] = '\0';
    line_length = 0;
    if (line[0] != '\0') handleLine(line);
  }
}
