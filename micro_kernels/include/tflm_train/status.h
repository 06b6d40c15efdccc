// Status codes returned by every tflm_train call. A call that fails changes no
// weights and leaves a human-readable explanation in Trainer::error_message().
#ifndef TFLM_TRAIN_STATUS_H_
#define TFLM_TRAIN_STATUS_H_

#include <stdint.h>

namespace tflm_train {

enum class Status : int32_t {
  kOk = 0,
  kInvalidArgument = 1,         // a null pointer, a zero count, a length that does not match
  kInvalidModel = 2,            // bytes that are not a valid .tflite flatbuffer
  kMissingPlan = 3,             // a valid .tflite without a "tflm_train" training plan
  kUnsupportedPlanVersion = 4,  // a plan written for another version of the trainer
  kInvalidPlan = 5,             // a plan that does not fit the model it rides in
  kUnsupportedModel = 6,        // an op, type or shape the trainer does not handle
  kArenaTooSmall = 7,           // see Trainer::arena_report().required_bytes
  kBadInput = 8,                // input values that are not finite
  kBadLabel = 9,                // a label out of range or not finite
  kNonFinite = 10,              // the step would write NaN/Inf: rejected, weights unchanged
  kNotInitialized = 11,         // Init() has not succeeded
  kStorageError = 12,           // a FlashStorage refused a Read, ErasePage or Program
};

// A stable name for each status ("kArenaTooSmall" -> "ArenaTooSmall").
const char* StatusName(Status status);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_STATUS_H_
