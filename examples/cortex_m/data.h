// What make_data.py generates (model_data.cpp/.h, mnist_data.cc) for the example.
#ifndef TFLM_TRAIN_CORTEX_M_DATA_H_
#define TFLM_TRAIN_CORTEX_M_DATA_H_

#include <stdint.h>

// The trainable model from `tflm-train export`: writable, 16-byte aligned, trained in place.
extern unsigned char g_model[];
extern const unsigned int g_model_len;

// The trainer's arena, sized by the host measurement (largest over the four policies).
extern unsigned char g_arena[];
extern const unsigned int g_arena_len;

// A slice of MNIST: images as float32 in [0, 1], g_input_len values each (784: the MLP's
// input vector or the CNN's 28x28x1 NHWC image), labels as float class indices.
extern const unsigned int g_input_len, g_num_train, g_num_test;
extern const float g_train_x[], g_train_y[], g_test_x[], g_test_y[];

#endif  // TFLM_TRAIN_CORTEX_M_DATA_H_
