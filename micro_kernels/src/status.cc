#include "tflm_train/status.h"

namespace tflm_train {

const char* StatusName(Status status) {
  switch (status) {
    case Status::kOk: return "Ok";
    case Status::kInvalidArgument: return "InvalidArgument";
    case Status::kInvalidModel: return "InvalidModel";
    case Status::kMissingPlan: return "MissingPlan";
    case Status::kUnsupportedPlanVersion: return "UnsupportedPlanVersion";
    case Status::kInvalidPlan: return "InvalidPlan";
    case Status::kUnsupportedModel: return "UnsupportedModel";
    case Status::kArenaTooSmall: return "ArenaTooSmall";
    case Status::kBadInput: return "BadInput";
    case Status::kBadLabel: return "BadLabel";
    case Status::kNonFinite: return "NonFinite";
    case Status::kNotInitialized: return "NotInitialized";
    case Status::kStorageError: return "StorageError";
  }
  return "Unknown";
}

}  // namespace tflm_train
